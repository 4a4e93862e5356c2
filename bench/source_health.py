"""Source health at scale: what judging a run costs with 200 sources and a year of run history, and
how often a steady source is called unhealthy over a simulated year (false alarms).

    python bench/source_health.py                  # both parts, results into bench/RESULTS.md
    python bench/source_health.py --sources 20 --days 30 --no-write   # a quick look

The archive is a real one (archive.schema.open_db, every migration): each simulated run is a
crawl_runs row with the articles it stored, judged by the same `archive.health.judge_new_runs` the
daemon calls after every run. The steady source (`SteadySource`, also used by
tests/test_source_health.py) publishes at random around its mean, less at night and at weekends,
with body lengths, missing authors and missing dates varying from article to article.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.health import judge_new_runs
from archive.health_verdict import HealthRules, judge
from archive.schema import open_db
from archive.transactions import immediate_transaction
from bench.results import write_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Source health (bench/source_health.py)"
# Made-up words, so bodies share no lines the way site chrome would.
VOCABULARY = [
    a + b + c for a in ("ba", "ko", "mi", "tu", "se", "ra") for b in ("len", "dor", "vi", "sta") for c in "aeiou"
]


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


class SteadySource:
    """A healthy source: new articles per run drawn from a Poisson law around `mean`, fewer at
    night (00-06 UTC, a third) and at weekends (half); body words normal around 480 (sd 140)."""

    def __init__(self, name: str, seed: int, *, mean: float = 6.0) -> None:
        self.name = name
        self.mean = mean
        self.rng = np.random.default_rng(seed)
        self.published = 0

    def rate(self, when: datetime) -> float:
        rate = self.mean * (0.5 if when.weekday() >= 5 else 1.0)
        return rate / 3 if when.hour < 6 else rate

    def articles(self, when: datetime) -> list[dict[str, object]]:
        rows = []
        for i in range(int(self.rng.poisson(self.rate(when)))):
            self.published += 1
            words = max(120, int(self.rng.normal(480, 140)))
            body = self.rng.choice(VOCABULARY, size=words)
            text = "\n".join(" ".join(body[p : p + 60]) for p in range(0, words, 60))
            seen = iso(when + timedelta(seconds=5 + i))
            rows.append(
                {
                    "url": f"https://{self.name}.example/news/{self.published}",
                    "source": self.name,
                    "title": f"{self.name} story {self.published}: {' '.join(body[:6])}",
                    "authors": json.dumps(["Ann Writer"] if self.rng.random() > 0.1 else []),
                    "published_at": seen if self.rng.random() > 0.05 else None,
                    "text": text + "\nCopyright the publisher. All rights reserved.",
                    "word_count": words + 6,
                    "body_hash": hashlib.sha1(text.encode()).hexdigest(),
                    "first_seen_at": seen,
                    "last_seen_at": seen,
                    "provenance": json.dumps({"text": "trafilatura precise"}),
                }
            )
        return rows


def record_run(db: object, source: str, started: datetime, articles: list[dict[str, object]], **counts: int) -> int:
    """One ended crawl of `source` as a crawl writes it: its crawl_runs row and its articles."""
    from sqlite_utils import Database

    assert isinstance(db, Database)
    finished = started + timedelta(seconds=60)
    row: dict[str, object] = {
        "source": source,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_s": 60.0,
        "status": "ok",
        "finish_reason": "finished",
        "pid": 1,
        "requests": len(articles) + 2,
        "responses": len(articles) + 2,
        "articles_new": len(articles),
        "pages_discovery": 2,
        "skipped_stored": 20,
        "failures": 0,
        **counts,
    }
    with immediate_transaction(db):
        table = db.table("crawl_runs")
        table.insert(row)
        run_id = int(table.last_pk)  # type: ignore[arg-type]
        if articles:
            db.table("articles").insert_all(articles)
    return run_id


# --- part 1: the cost of a verdict at a year of history --------------------------------------------


# run_signals columns of a healthy run that are zero (the others are set per run below).
SIGNAL_ZEROS = (
    "articles_copied",
    "not_modified",
    "failed_pages",
    "not_article_share",
    "no_title_share",
    "chrome_share",
    "repeat_share",
    "same_title_share",
    "disagree_share",
    "blocked_share",
    "timeout_share",
    "blocked_answers",
    "challenge_pages",
)


def fill_history(db_path: Path, sources: int, days: int) -> None:
    """A year (`days`) of hourly runs of every source, as run_signals rows judged ok, with their
    crawl_runs rows, and an article every other hour (the last day's full, the others short)."""
    db = open_db(db_path)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = days * 24
    rng = np.random.default_rng(7)
    run_id = 0
    for s in range(sources):
        name = f"source_{s:03d}"
        runs: list[tuple[object, ...]] = []
        signals: list[dict[str, object]] = []
        for h in range(hours):
            run_id += 1
            when = start + timedelta(hours=h)
            new = int(rng.poisson(6))
            runs.append((run_id, name, iso(when), iso(when + timedelta(minutes=1)), "ok", "finished", 1, new + 2, new))
            signals.append(
                {
                    **dict.fromkeys(SIGNAL_ZEROS, 0),
                    "run_id": run_id,
                    "source": name,
                    "finished_at": iso(when + timedelta(minutes=1)),
                    "status": "ok",
                    "finish_reason": "finished",
                    "articles_new": new,
                    "pages_fetched": new + 2,
                    "article_pages": new,
                    "skipped_stored": 20,
                    "median_words": float(rng.normal(480, 40)),
                    "no_date_share": 0.05,
                    "no_author_share": 0.1,
                    "ok_share": 1.0,
                    "hours_since_new_article": 1.0,
                    "verdict": "ok",
                }
            )
        columns = list(signals[0])
        with immediate_transaction(db):
            db.conn.executemany(
                "INSERT INTO crawl_runs (id, source, started_at, finished_at, status, finish_reason, pid,"
                " responses, articles_new) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                runs,
            )
            db.conn.executemany(
                f"INSERT INTO run_signals ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [[row[c] for c in columns] for row in signals],
            )
        source = SteadySource(name, seed=s)
        with immediate_transaction(db):
            # The year's articles, one every other hour and short (the table's size is what counts:
            # a run's articles are read through the (source, first_seen_at) index) ...
            db.table("articles").insert_all(
                {
                    "url": f"https://{name}.example/old/{h}",
                    "source": name,
                    "title": f"{name} old story {h}",
                    "text": " ".join(source.rng.choice(VOCABULARY, size=20)),
                    "word_count": 20,
                    "first_seen_at": iso(start + timedelta(hours=h, seconds=5)),
                    "last_seen_at": iso(start + timedelta(hours=h, seconds=5)),
                }
                for h in range(0, hours - 24, 2)
            )
            # ... and the last day's as the source publishes them (the bodies chrome is judged against).
            for h in range(max(hours - 24, 0), hours):
                db.table("articles").insert_all(source.articles(start + timedelta(hours=h)))
    db.execute("ANALYZE")
    db.close()


def time_verdicts(db_path: Path, sources: int, days: int) -> dict[str, float]:
    """One new run per source, then `judge_new_runs` (signals + verdict + writes), timed per run;
    and the pure `judge` on the rows it read."""
    db = open_db(db_path)
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=days, minutes=5)
    whole, pure = [], []
    rules = HealthRules()
    for s in range(sources):
        name = f"source_{s:03d}"
        source = SteadySource(name, seed=10_000 + s)
        source.published = 1_000_000
        run_id = record_run(db, name, when, source.articles(when))
        began = time.perf_counter()
        judge_new_runs(db, name)
        whole.append(time.perf_counter() - began)
        from archive.health import judged_history

        recent, baseline = judged_history(db, name, rules)
        began = time.perf_counter()
        judge(recent, baseline, rules)
        pure.append(time.perf_counter() - began)
        assert db.execute("SELECT verdict FROM run_signals WHERE run_id = ?", [run_id]).fetchone()[0]
    runs = db.execute("SELECT count(*) FROM crawl_runs").fetchone()[0]
    articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    db.close()
    whole.sort()
    return {
        "runs": runs,
        "articles": articles,
        "median_ms": 1000 * statistics.median(whole),
        "p95_ms": 1000 * whole[int(0.95 * (len(whole) - 1))],
        "max_ms": 1000 * whole[-1],
        "pure_median_ms": 1000 * statistics.median(pure),
    }


# --- part 2: false alarms over a steady year ----------------------------------------------------------


def steady_year(db_path: Path, sources: int, days: int) -> dict[str, object]:
    """Hourly runs of `sources` steady sources for `days`, each judged as the daemon does."""
    db = open_db(db_path)
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    alarms: list[str] = []
    judged = 0
    for s in range(sources):
        source = SteadySource(f"steady_{s}", seed=100 + s)
        for h in range(days * 24):
            when = start + timedelta(hours=h)
            record_run(db, source.name, when, source.articles(when))
            for change in judge_new_runs(db, source.name):
                if change["verdict"] != "ok":
                    alarms.append(f"{source.name} {change['changed_at']}: {change['verdict']}: {change['reason']}")
            judged += 1
    db.close()
    return {"judged": judged, "alarms": alarms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=200, help="sources in the archive (part 1)")
    parser.add_argument("--days", type=int, default=365, help="days of hourly runs of history")
    parser.add_argument("--steady-sources", type=int, default=3, help="steady sources simulated for a year (part 2)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    # The code measured is the code checked out now (read before the minutes the runs take).
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "archive", "bench/*.py"], capture_output=True, text=True, cwd=ROOT
    )
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        fill_history(Path(tmp) / "year.db", args.sources, args.days)
        filled = time.perf_counter() - began
        cost = time_verdicts(Path(tmp) / "year.db", args.sources, args.days)
        steady = steady_year(Path(tmp) / "steady.db", args.steady_sources, args.days)
    alarms = steady["alarms"]
    assert isinstance(alarms, list)
    lines = [
        f"part 1: {args.sources} sources, {args.days} days of hourly runs: {cost['runs']:,} runs,"
        f" {cost['articles']:,} articles (built in {filled:.0f}s)",
        f"  judge_new_runs per run (signals of the run + verdict + writes): median {cost['median_ms']:.1f} ms,"
        f" p95 {cost['p95_ms']:.1f} ms, max {cost['max_ms']:.1f} ms (target < 50 ms)",
        f"  the pure verdict (archive.health_verdict.judge): median {cost['pure_median_ms']:.3f} ms",
        f"part 2: {args.steady_sources} steady sources x {args.days} days of hourly runs"
        f" ({steady['judged']:,} runs judged): {len(alarms)} verdicts other than ok"
        f" ({len(alarms) / max(args.steady_sources * args.days / 365, 1e-9):.1f} per source-year)",
        *(f"  {alarm}" for alarm in alarms[:10]),
    ]
    report = "\n".join(lines)
    print(report)
    if args.no_write:
        return
    section = (
        f"{HEADING}\n\nCommand: `python bench/source_health.py {' '.join(sys.argv[1:])}".rstrip()
        + f" (commit {commit.stdout.strip()}{' with uncommitted changes' if dirty.stdout.strip() else ''})`  \n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}  \n"
        f"Run: {datetime.now(UTC).replace(microsecond=0).isoformat()}\n\n```\n{report}\n```\n"
    )
    write_section(ROOT / "bench" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
