"""Source health in the archive: each ended run's signals (`run_signals`), each source's verdict
(`source_health`) and every change of it (`health_changes`, which the Atom feed lists).

The daemon (daemon/health.py) calls `judge_new_runs` after a source's run ends; the verdict itself
is archive/health_verdict.py, a pure function. A run's signals are read once, when it ends, from
what that run stored: its crawl_runs counts, its failures (by run_id) and the articles it stored
(by source and first-seen time); judging reads only the source's last `run_signals` rows, so the
cost stays flat at any length of history (bench/source_health.py).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from archive.health_verdict import HealthRules, Verdict, judge
from archive.transactions import immediate_transaction
from config.dates import utc_now_iso

if TYPE_CHECKING:
    from sqlite_utils import Database

# Runs that crawled: a skipped or cancelled run says nothing about the site.
JUDGED_STATUSES = ("ok", "failed", "timed_out")
# A source new to source health learns from this many of its past runs first.
BACKFILL_RUNS = 60
# Article bodies compared to tell site chrome: the run's new articles and the source's latest before them.
REFERENCE_ARTICLES = 10
CHROME_SHARE = 0.5  # a body is chrome when half its words are in lines many other articles share
MAX_NEW_ARTICLES = 500
DEFAULT_RULES = HealthRules()  # a run's new articles read for its signals (a first crawl may store thousands)


def judge_new_runs(db: Database, source: str, rules: HealthRules = DEFAULT_RULES) -> list[dict[str, Any]]:
    """Signals and a verdict for each run of `source` that ended since the last one judged.

    Returns the change to announce, if any: the last change, when the verdict after these runs is
    not the one before them (several runs are judged at once after a restart, or the first time a
    daemon judges an archive with history: a trouble that came and went then is recorded, not news)."""
    before = db.execute("SELECT verdict FROM source_health WHERE source = ?", [source]).fetchone()
    changes = []
    for run_id in unjudged_runs(db, source):
        with immediate_transaction(db):
            signals = run_signals(db, run_id)
            _replace(db, "run_signals", signals)
            recent, baseline = judged_history(db, source, rules)
            verdict = judge(recent, baseline, rules)
            if change := save_verdict(db, source, verdict, run_id, signals["finished_at"] or utc_now_iso()):
                changes.append(change)
    if changes and changes[-1]["verdict"] != (before[0] if before else "ok"):
        return changes[-1:]
    return []


def unjudged_runs(db: Database, source: str) -> list[int]:
    """Ended runs of `source` after its last judged one (the last BACKFILL_RUNS when none was), oldest first."""
    marks = ", ".join("?" * len(JUDGED_STATUSES))
    ids = db.execute(
        f"SELECT id FROM crawl_runs WHERE source = ? AND status IN ({marks})"
        " AND id > coalesce((SELECT max(run_id) FROM run_signals WHERE source = ?), 0)"
        " ORDER BY id DESC LIMIT ?",
        [source, *JUDGED_STATUSES, source, BACKFILL_RUNS],
    ).fetchall()
    return [row[0] for row in reversed(ids)]


# --- one run's signals --------------------------------------------------------------------------------


def run_signals(db: Database, run_id: int) -> dict[str, Any]:
    """The `run_signals` row of an ended run (its verdict column is filled in by `save_verdict`)."""
    run = db.table("crawl_runs").get(run_id)
    source = run["source"]
    count = {column: int(run.get(column) or 0) for column in _RUN_COLUMNS}
    failures = db.execute(
        "SELECT url, stage, http_status, reason FROM failures WHERE run_id = ? ORDER BY id", [run_id]
    ).fetchall()
    blocked = [f for f in failures if f[1] == "fetch" and f[2] in (403, 429)]
    challenges = [f for f in failures if f[1] == "blocked"]
    timeouts = [f for f in failures if f[2] is None and _timed_out(f[3])]
    server_errors = sum(1 for f in failures if (f[2] or 0) >= 500)
    error_answers = sum(1 for f in failures if f[1] == "fetch" and (f[2] or 0) >= 400)
    answers = count["responses"] + len(timeouts)
    article_pages = sum(
        count[c] for c in ("articles_new", "articles_updated", "articles_unchanged", "articles_duplicate")
    )
    article_pages += count["not_articles"]
    ok_answers = count["responses"] - count["not_modified"] - error_answers - count["pages_retried_or_redirected"]
    row: dict[str, Any] = {
        "run_id": run_id,
        "source": source,
        "finished_at": run["finished_at"],
        "status": run["status"],
        "finish_reason": run["finish_reason"],
        "articles_new": count["articles_new"],
        "articles_copied": count["articles_duplicate"],
        "pages_fetched": count["responses"],
        "article_pages": article_pages,
        "skipped_stored": count["skipped_stored"],
        "not_modified": count["not_modified"],
        "failed_pages": count["failures"],
        "not_article_share": _share(count["not_articles"], article_pages),
        "ok_share": _share(max(ok_answers - len(challenges), 0), answers),
        "not_modified_share": _share(count["not_modified"], answers),
        "blocked_share": _share(len(blocked) + len(challenges), answers),
        "server_error_share": _share(server_errors, answers),
        "timeout_share": _share(len(timeouts), answers),
        "robots_share": _share(count["robots_refused"], count["requests"] + count["robots_refused"]),
        "blocked_answers": len(blocked),
        "challenge_pages": len(challenges),
        "hours_since_new_article": _hours_since_new_article(db, source, run["finished_at"]),
        "sample_failures": _urls([*challenges, *blocked, *failures]),
        "top_failure": _top_failure(failures),
    }
    row.update(article_signals(db, source, run["started_at"], run["finished_at"], count))
    return row


_RUN_COLUMNS = (
    "requests",
    "responses",
    "articles_new",
    "articles_updated",
    "articles_unchanged",
    "articles_duplicate",
    "not_articles",
    "skipped_stored",
    "failures",
    "not_modified",
    "pages_retried_or_redirected",
    "robots_refused",
)


def article_signals(
    db: Database, source: str, started_at: str, finished_at: str | None, count: dict[str, int]
) -> dict[str, Any]:
    """Extraction signals of the articles the run stored first (by source and first-seen time)."""
    columns = ("url", "title", "authors", "published_at", "word_count", "text", "provenance", "cluster_id")
    new = [
        dict(zip(columns, row, strict=True))
        for row in db.execute(
            f"SELECT {', '.join(columns)} FROM articles WHERE source = ? AND first_seen_at >= ?"
            " AND first_seen_at <= coalesce(?, '9999') ORDER BY first_seen_at LIMIT ?",
            [source, started_at, finished_at, MAX_NEW_ARTICLES],
        )
    ]
    copies = count["articles_duplicate"]
    during = [source, started_at, finished_at]
    copied = _first_urls(
        db,
        "SELECT alias FROM url_aliases WHERE source = ? AND first_seen_at >= ? AND first_seen_at <= coalesce(?, '9999')"
        " AND reason IN ('same_body', 'near_copy')",
        during,
    )
    # Pages of this run found to be no article (archive/not_articles.py): the evidence first when
    # they outnumber the new articles, as a template that turned articles into menus makes them.
    passed_over = _first_urls(
        db,
        "SELECT url FROM not_articles WHERE source = ? AND checked_at >= ? AND checked_at <= coalesce(?, '9999')",
        during,
    )
    if count["not_articles"] > count["articles_new"]:
        copied = [*passed_over, *copied]
    else:
        copied += passed_over
    if not new:
        return {
            "median_words": None,
            **dict.fromkeys(("no_title_share", "no_date_share", "no_author_share", "chrome_share"), None),
            **dict.fromkeys(("same_title_share", "disagree_share"), None),
            "repeat_share": _share(copies, copies),
            "sample_articles": json.dumps(copied),
        }
    earlier = db.execute(
        "SELECT title, text FROM articles WHERE source = ? AND first_seen_at < ? ORDER BY first_seen_at DESC LIMIT ?",
        [source, started_at, REFERENCE_ARTICLES],
    ).fetchall()
    chrome = chrome_flags([a["text"] or "" for a in new], [text or "" for _, text in earlier])
    titles = Counter((a["title"] or "").strip().lower() for a in new)
    titles.update({(title or "").strip().lower() for title, _ in earlier})
    same_title = [a for a in new if a["title"] and titles[a["title"].strip().lower()] > 1]
    repeats = _repeating(db, source, new)
    no_title = [a for a in new if not a["title"]]
    flagged = [a["url"] for a, is_chrome in zip(new, chrome, strict=True) if is_chrome] + copied
    flagged += [a["url"] for a in [*no_title, *same_title]]
    flagged += [a["url"] for a in sorted(new, key=lambda a: a["word_count"] or 0)]
    n = len(new)
    return {
        "median_words": statistics.median(a["word_count"] or 0 for a in new),
        "no_title_share": len(no_title) / n,
        "no_date_share": sum(1 for a in new if not a["published_at"]) / n,
        "no_author_share": sum(1 for a in new if (a["authors"] or "[]") in ("[]", "")) / n,
        "chrome_share": sum(chrome) / n if len(new) + len(earlier) >= 3 else None,
        "repeat_share": (repeats + copies) / (n + copies),
        "same_title_share": len(same_title) / n,
        "disagree_share": sum(1 for a in new if "disagree" in (a["provenance"] or "")) / n,
        "sample_articles": json.dumps(list(dict.fromkeys(flagged))[:3]),
    }


def chrome_flags(bodies: list[str], earlier: list[str]) -> list[bool]:
    """For each body: are most of its words in lines that many other articles of the source share
    (menus, cookie notices, teasers), rather than its own? `earlier` are the source's latest bodies."""
    line_sets = [_lines(body) for body in bodies]
    seen_in: Counter[str] = Counter()
    for lines in [*line_sets, *(_lines(body) for body in earlier)]:
        seen_in.update(lines)
    others = len(bodies) + len(earlier) - 1
    needed = max(2, 0.3 * others)
    flags = []
    for lines in line_sets:
        words = sum(len(line.split()) for line in lines)
        shared = sum(len(line.split()) for line in lines if seen_in[line] - 1 >= needed)
        flags.append(words > 0 and shared >= CHROME_SHARE * words)
    return flags


def _first_urls(db: Database, sql: str, params: list[Any], limit: int = 3) -> list[str]:
    return [row[0] for row in db.execute(f"{sql} LIMIT {int(limit)}", params)]


def _lines(body: str) -> set[str]:
    """The body's lines of three words or more, case and spacing ignored."""
    return {" ".join(line.lower().split()) for line in body.splitlines() if len(line.split()) >= 3}


def _repeating(db: Database, source: str, new: list[dict[str, Any]]) -> int:
    """New articles in a near-duplicate cluster with another article of the same source."""
    clusters = [a["cluster_id"] for a in new if a["cluster_id"] is not None]
    if not clusters:
        return 0
    marks = ", ".join("?" * len(clusters))
    shared = {
        row[0]
        for row in db.execute(
            f"SELECT cluster_id FROM articles WHERE cluster_id IN ({marks}) AND source = ?"
            " GROUP BY cluster_id HAVING count(*) > 1",
            [*clusters, source],
        )
    }
    return sum(1 for a in new if a["cluster_id"] in shared)


def _hours_since_new_article(db: Database, source: str, finished_at: str | None) -> float | None:
    last = db.execute("SELECT max(first_seen_at) FROM articles WHERE source = ?", [source]).fetchone()[0]
    if last is None or finished_at is None:
        return None
    return max((datetime.fromisoformat(finished_at) - datetime.fromisoformat(last)).total_seconds(), 0) / 3600


def _top_failure(failures: list[tuple[Any, ...]]) -> str | None:
    """The run's most frequent failure reason, with how often and one URL it happened at."""
    if not failures:
        return None
    reason, times = Counter(f[3] for f in failures).most_common(1)[0]
    url = next(f[0] for f in failures if f[3] == reason)
    return f"{reason} x{times}, e.g. {url}" if times > 1 else f"{reason} at {url}"


def _timed_out(reason: str | None) -> bool:
    """A failure without an answer because the request timed out (TimeoutError, TCPTimedOutError,
    "User timeout caused connection failure")."""
    squeezed = (reason or "").lower().replace(" ", "")
    return "timeout" in squeezed or "timedout" in squeezed


def _urls(failures: list[tuple[Any, ...]], limit: int = 3) -> str:
    """The first few distinct URLs of these failures, as JSON."""
    return json.dumps(list(dict.fromkeys(f[0] for f in failures if f[0]))[:limit])


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- verdicts ---------------------------------------------------------------------------------------


def judged_history(db: Database, source: str, rules: HealthRules) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(recent, baseline): the source's last `recent_runs` runs, oldest first, and up to `history_runs`
    runs before the last one that were judged ok (the median and MAD shrug off the few that overlap)."""
    recent = _signal_rows(db, "source = ? ORDER BY run_id DESC LIMIT ?", [source, rules.recent_runs])[::-1]
    if not recent:
        return [], []
    baseline = _signal_rows(
        db,
        "source = ? AND run_id < ? AND verdict = 'ok' ORDER BY run_id DESC LIMIT ?",
        [source, recent[-1]["run_id"], rules.history_runs],
        columns=BASELINE_COLUMNS,
    )
    return recent, baseline


# What the verdict reads of the baseline's runs (hundreds of rows: the fewer columns, the faster).
BASELINE_COLUMNS = (
    "run_id",
    "finished_at",
    "articles_new",
    "articles_copied",
    "article_pages",
    "median_words",
    "not_article_share",
    "no_title_share",
    "no_date_share",
    "no_author_share",
    "chrome_share",
    "repeat_share",
    "same_title_share",
    "disagree_share",
    "blocked_share",
    "hours_since_new_article",
)


def _signal_rows(db: Database, where: str, params: list[Any], *, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """run_signals rows as dicts (all columns, the sample URLs decoded, unless `columns` names some)."""
    cursor = db.execute(f"SELECT {', '.join(columns) or '*'} FROM run_signals WHERE {where}", params)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor]
    if not columns:
        for row in rows:
            for column in ("sample_articles", "sample_failures"):
                row[column] = json.loads(row[column]) if row[column] else []
    return rows


def save_verdict(db: Database, source: str, verdict: Verdict, run_id: int, judged_at: str) -> dict[str, Any] | None:
    """Keep the verdict (on the run and as the source's); a change is also added to `health_changes`
    and returned. A source's first verdict is a change only when it is not ok."""
    db.execute("UPDATE run_signals SET verdict = ? WHERE run_id = ?", [verdict.verdict, run_id])
    before = db.execute("SELECT verdict, since FROM source_health WHERE source = ?", [source]).fetchone()
    previous = before[0] if before else None
    changed = previous != verdict.verdict
    evidence = json.dumps(list(verdict.evidence))
    row = {
        "source": source,
        "verdict": verdict.verdict,
        "reason": verdict.reason,
        "evidence": evidence,
        "since": judged_at if changed or before is None else before[1],
        "judged_at": judged_at,
        "run_id": run_id,
    }
    _replace(db, "source_health", row)
    if not changed or (previous is None and verdict.verdict == "ok"):
        return None
    change = {
        "source": source,
        "verdict": verdict.verdict,
        "previous": previous,
        "reason": verdict.reason,
        "evidence": evidence,
        "changed_at": judged_at,
        "run_id": run_id,
    }
    change_id = _replace(db, "health_changes", change)
    return {"id": change_id, **change, "evidence": list(verdict.evidence)}


def _replace(db: Database, table: str, row: dict[str, Any]) -> int:
    """INSERT OR REPLACE one row (plain SQL: sqlite-utils' upsert reads the schema on every call)."""
    columns = ", ".join(row)
    cursor = db.conn.execute(
        f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )
    return int(cursor.lastrowid or 0)


def health_of(db: Database, source: str) -> dict[str, Any] | None:
    """The source's verdict row (`status --json`), or None if it was never judged."""
    return health_of_sources(db, source).get(source)


def health_of_sources(db: Database, source: str | None = None) -> dict[str, dict[str, Any]]:
    """Each judged source's verdict row (`scheduler.py status`), by source name; or one source's."""
    if "source_health" not in db.table_names():
        return {}
    where, params = ("WHERE source = ?", [source]) if source else ("", [])
    cursor = db.execute(f"SELECT * FROM source_health {where}", params)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor]
    for row in rows:
        row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else []
    return {row["source"]: row for row in rows}
