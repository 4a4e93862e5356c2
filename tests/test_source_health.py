"""Source health: a real daemon notices a source that breaks (a template that yields site chrome, a
feed gone quiet, 403s, challenge pages with 200, a feed moved away) and says why, in `status`, the
`source_health` table, the Atom feed of changes and an `on_alarm` command's stdin; a steady source
with natural variation is never called unhealthy; alarm commands that fail or hang never stop it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from archive import not_articles
from archive.health import judge_new_runs, run_signals
from archive.health_verdict import judge
from archive.schema import open_db
from bench.source_health import SteadySource, iso, record_run
from config.sources import SourceConfigError, load_sources
from daemon.health import run_alarm
from demo.server import CONTENT_TYPES
from extraction.challenge import challenge_phrase
from tests.feedsite import WORDS, DelayHandler, FeedSite
from tests.test_daemon import DaemonProcess, daemons, query, wait_for, write  # noqa: F401  (daemons: a fixture)

ROOT = Path(__file__).resolve().parent.parent
ATOM = "{http://www.w3.org/2005/Atom}"

pytestmark = pytest.mark.timeout(240)


# --- a site whose sources break on demand ----------------------------------------------------------------


class HealthHandler(DelayHandler):
    """DelayHandler that first answers `server.answers[prefix]` = (status, html) for matching paths."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        for prefix, (status, body) in list(getattr(self.server, "answers", {}).items()):
            if path.startswith(prefix):
                self._send(status, body.encode(), CONTENT_TYPES[".html"])
                return
        super().do_GET()


CHALLENGE_HTML = (
    "<!doctype html><html><head><title>Just a moment...</title></head><body><div>"
    "<h1>Checking your browser before accessing the site</h1>"
    "<p>Enable JavaScript and cookies to continue.</p></div></body></html>"
)


def chrome_html(source: str, number: int) -> str:
    """The article after a template change: its headline, then the site's menus, cookie notice and
    teasers (the same on every page), and no story."""
    teasers = "".join(
        f"<p>Most read: the {a} and the {b} - what the {a} council said about the {b} this week, and more.</p>"
        for a, b in zip(WORDS[:10], WORDS[10:20], strict=True)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{source} story {number}</title>"
        '<meta property="og:type" content="article">'
        '<meta property="article:published_time" content="2025-01-06T10:00:00Z">'
        f"</head><body><article><h1>{source} story {number}</h1>"
        "<p>We use cookies to give you the best experience on our website. By continuing to browse the site"
        " you agree to our use of cookies, our privacy policy and our terms of service.</p>"
        f"{teasers}<p>Subscribe to our newsletter for the latest headlines every morning.</p>"
        "</article></body></html>"
    )


class BreakingSite(FeedSite):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.server.RequestHandlerClass = HealthHandler
        self.server.answers = {}  # type: ignore[attr-defined]
        self.chrome: set[str] = set()

    @property
    def answers(self) -> dict[str, tuple[int, str]]:
        return self.server.answers  # type: ignore[attr-defined, no-any-return]

    def add_article(self, source: str) -> str:
        url = super().add_article(source)
        if source in self.chrome:
            number = self.articles[source][-1]
            (self.root / source / f"{number}.html").write_text(chrome_html(source, number), encoding="utf-8")
        return url

    def publish(self, source: str, count: int) -> None:
        for _ in range(count):
            self.add_article(source)


# --- the real daemon -------------------------------------------------------------------------------------

PER_RUN = 8  # new articles per healthy run: two silent runs are then unlikely enough to be quiet
HEALTHY_RUNS = 6  # the baseline needs 5 runs judged ok


def judged(db: Path, source: str) -> list[dict[str, Any]]:
    return query(db, "SELECT * FROM run_signals WHERE source = ? ORDER BY run_id", (source,))


def test_a_daemon_names_each_way_a_source_breaks_within_two_runs(
    tmp_path: Path,
    daemons: list[DaemonProcess],  # noqa: F811
) -> None:
    site = BreakingSite(tmp_path / "site").start()
    try:
        run_breaking_sources(site, tmp_path, daemons)
    finally:
        site.stop()


BREAKS = {
    "chrome": ("degraded", "bodies"),  # mostly site chrome, or repeating one another
    "quiet": ("quiet", "new articles in the last"),
    "forbidden": ("blocked", "403/429"),
    "challenge": ("blocked", "challenge pages"),
    "moved": ("failing", "HTTP 404"),
}


def break_source(site: BreakingSite, name: str) -> None:
    if name == "chrome":
        site.chrome.add(name)
    elif name == "forbidden":
        site.answers[f"/{name}/"] = (403, "<html><body><h1>Forbidden</h1></body></html>")
        site.answers[site.feed_path(name)] = (403, "<html><body><h1>Forbidden</h1></body></html>")
    elif name == "challenge":
        site.answers[f"/{name}/"] = (200, CHALLENGE_HTML)
    elif name == "moved":
        (site.root / "feeds" / f"{name}.xml").unlink()


def run_breaking_sources(site: BreakingSite, tmp_path: Path, daemons: list[DaemonProcess]) -> None:  # noqa: F811
    names = ["steady", *BREAKS]
    for name in names:
        site.add_source(name, articles=PER_RUN)
    alarms = tmp_path / "alarms.jsonl"
    append_stdin = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read())"
    on_alarm = json.dumps([sys.executable, "-c", append_stdin, str(alarms)])
    defaults = f'every = "1s"\njitter = "0s"\non_alarm = {on_alarm}'
    sources = write(tmp_path / "sources.toml", site.sources_toml(dict.fromkeys(names, ""), defaults))
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db)
    daemons.append(daemon)

    seen = dict.fromkeys(names, 0)
    broken_after: dict[str, int] = {}  # source -> the last run id judged before it broke

    def step() -> bool:
        for name in names:
            rows = judged(db, name)
            if len(rows) == seen[name]:
                continue
            seen[name] = len(rows)
            if len(rows) == HEALTHY_RUNS and name != "steady":
                break_source(site, name)
                broken_after[name] = rows[-1]["run_id"]
            if len(rows) < HEALTHY_RUNS or name in ("steady", "chrome", "challenge"):
                site.publish(name, PER_RUN)
        return all(
            any(r["verdict"] == BREAKS[n][0] for r in judged(db, n) if r["run_id"] > broken_after.get(n, 10**9))
            for n in BREAKS
        )

    wait_for(step, 200, "every broken source's verdict", daemon.output)
    assert daemon.stop() == 0

    # Each verdict came within two runs of the break, with its reason, in the table.
    health = {row["source"]: row for row in query(db, "SELECT * FROM source_health")}
    for name, (verdict, words) in BREAKS.items():
        after = [r for r in judged(db, name) if r["run_id"] > broken_after[name]]
        first = next(i for i, r in enumerate(after) if r["verdict"] == verdict)
        assert first < 2, (name, [(r["verdict"], r["articles_new"]) for r in after])
        assert health[name]["verdict"] == verdict, health[name]
        [change] = query(db, "SELECT * FROM health_changes WHERE source = ?", (name,))
        assert words in change["reason"], change  # the reason when it changed (a quiet one goes on "still ...")
    assert health["steady"]["verdict"] == "ok"
    assert {r["verdict"] for r in judged(db, "steady")} == {"ok"}
    # Evidence: pages to open. Chrome: the broken articles; blocked: the refused pages; moved: the feed.
    evidence = {name: json.loads(health[name]["evidence"]) for name in BREAKS}
    assert evidence["chrome"]
    assert all("/chrome/" in u for u in evidence["chrome"])
    assert any("/challenge/" in u for u in evidence["challenge"])
    assert any(u.endswith("/feeds/forbidden.xml") for u in evidence["forbidden"])
    assert any(u.endswith("/feeds/moved.xml") for u in evidence["moved"])

    # Every change, in health_changes, and on the alarm command's stdin: one JSON document each.
    changes = query(db, "SELECT * FROM health_changes ORDER BY id")
    assert {c["source"] for c in changes} == set(BREAKS)
    sent = [json.loads(line) for line in alarms.read_text(encoding="utf-8").splitlines()]
    assert sorted((c["source"], c["verdict"], c["reason"]) for c in sent) == sorted(
        (c["source"], c["verdict"], c["reason"]) for c in changes
    )
    assert all(c["previous"] == "ok" for c in sent)

    # `status` shows each verdict and its reason.
    status = subprocess.run(
        [sys.executable, "scheduler.py", "status", "--db", str(db), "--sources", str(sources)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = status.stdout.split("source health:")[1].splitlines()
    for name, row in health.items():
        line = next(line for line in lines if line.split()[:1] == [name])
        assert row["verdict"] in line.split()
        assert row["reason"] in line
    as_json = subprocess.run(
        [sys.executable, "scheduler.py", "status", "--json", "--db", str(db), "--sources", str(sources)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    by_name = {s["name"]: s for s in json.loads(as_json.stdout)["sources"]}
    assert {name: by_name[name]["health"]["verdict"] for name in health} == {n: r["verdict"] for n, r in health.items()}

    # The Atom feed of changes, as Datasette serves it.
    entries = atom_entries(db, "/news/health_changes_feed.atom")
    assert len(entries) == len(changes)
    for change in changes:
        title = f"{change['source']}: {change['verdict']} (was ok)"
        entry = next(e for e in entries if e["title"] == title)
        assert change["reason"] in entry["content"]


def atom_entries(db: Path, path: str) -> list[dict[str, str]]:
    from tests.test_datasette import make_datasette

    async def get() -> Any:
        return await make_datasette(db).client.get(path)

    response = asyncio.run(get())
    assert response.status_code == 200, response.text
    feed = ElementTree.fromstring(response.content)
    return [
        {"title": e.findtext(f"{ATOM}title") or "", "content": e.findtext(f"{ATOM}content") or ""}
        for e in feed.iter(f"{ATOM}entry")
    ]


# --- a steady source, 50 runs, through the archive -------------------------------------------------------


def test_a_steady_source_with_natural_variation_runs_50_times_without_an_alarm(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    source = SteadySource("steady", seed=3)
    start = datetime(2026, 3, 6, tzinfo=UTC)  # a Friday: the runs span a weekend, and nights
    counts, changes = [], []
    for run in range(50):
        when = start + timedelta(hours=2 * run)
        articles = source.articles(when)
        counts.append(len(articles))
        record_run(db, "steady", when, articles)
        changes += judge_new_runs(db, "steady")
    verdicts = [row[0] for row in db.execute("SELECT verdict FROM run_signals ORDER BY run_id")]
    assert len(verdicts) == 50
    assert changes == [], changes
    assert set(verdicts) == {"ok"}
    assert min(counts) <= 1  # it did vary: lulls ...
    assert max(counts) >= 9  # ... and busy runs
    # And the same history, then a silence twice as long as its longest lull, is quiet: the steady
    # test could fail.
    for run in range(50, 60):
        record_run(db, "steady", start + timedelta(hours=2 * run), [])
        changes += judge_new_runs(db, "steady")
    assert [c["verdict"] for c in changes] == ["quiet"]


def test_judging_an_archive_with_history_announces_only_where_the_source_stands_now(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    source = SteadySource("brook", seed=5, mean=8.0)
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for run in range(12):  # a daemon never judged these: an old failed run among them
        when = start + timedelta(hours=run)
        run_id = record_run(db, "brook", when, source.articles(when))
        if run == 3:
            db.execute("UPDATE crawl_runs SET status = 'failed', finish_reason = 'killed' WHERE id = ?", [run_id])
    db.conn.commit()
    assert judge_new_runs(db, "brook") == []
    verdicts = [row[0] for row in db.execute("SELECT verdict FROM run_signals ORDER BY run_id")]
    assert verdicts[3] == "failing"  # recorded, with its change, but not news now
    assert set(verdicts[4:]) == {"ok"}
    assert [row[0] for row in db.execute("SELECT verdict FROM health_changes ORDER BY id")] == ["failing", "ok"]
    # A change now is news.
    when = start + timedelta(hours=12)
    run_id = record_run(db, "brook", when, [], failures=1)
    db.execute(
        "UPDATE crawl_runs SET status = 'timed_out', finish_reason = 'timed out after 1h' WHERE id = ?", [run_id]
    )
    db.conn.commit()
    [change] = judge_new_runs(db, "brook")
    assert (change["verdict"], change["previous"]) == ("failing", "ok")
    assert change["reason"] == "the run timed out: timed out after 1h in the last run"


def test_a_runs_signals_count_its_answers_and_read_its_new_articles(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    source = SteadySource("brook", seed=8, mean=8.0)
    when = datetime(2026, 3, 2, 9, tzinfo=UTC)
    articles = source.articles(when)
    articles[0]["title"] = articles[1]["title"]
    run_id = record_run(db, "brook", when, articles, responses=len(articles) + 6, not_modified=1, robots_refused=2)
    failures = [
        ("https://brook.example/a", "fetch", 403, "HTTP 403"),
        ("https://brook.example/b", "fetch", 429, "HTTP 429 (Retry-After: 120)"),
        ("https://brook.example/c", "fetch", 503, "HTTP 503"),
        ("https://brook.example/d", "fetch", None, "TCPTimedOutError: TCP connection timed out: 110"),
        ("https://brook.example/e", "blocked", 200, "a challenge page ('Just a moment...') instead of an article"),
    ]
    for url, stage, status, reason in failures:
        db.table("failures").insert(
            {
                "run_id": run_id,
                "source": "brook",
                "url": url,
                "stage": stage,
                "http_status": status,
                "reason": reason,
                "occurred_at": when.isoformat(),
            }
        )
    row = run_signals(db, run_id)
    n, answers = len(articles), len(articles) + 6 + 1  # the timeout had no answer
    assert row["articles_new"] == n
    assert row["median_words"] == statistics.median(a["word_count"] for a in articles)
    assert row["same_title_share"] == 2 / n
    assert row["no_author_share"] == sum(a["authors"] == "[]" for a in articles) / n
    assert row["chrome_share"] == 0.0  # they share one copyright line, not their bodies
    assert (row["blocked_answers"], row["challenge_pages"]) == (2, 1)
    assert row["blocked_share"] == 3 / answers
    assert row["server_error_share"] == 1 / answers
    assert row["timeout_share"] == 1 / answers
    assert row["not_modified_share"] == 1 / answers
    assert row["robots_share"] == 2 / (n + 2 + 2)
    assert json.loads(row["sample_failures"])[:3] == ["https://brook.example/e", "https://brook.example/a",
                                                      "https://brook.example/b"]  # fmt: skip
    assert row["top_failure"].startswith("HTTP 403 at https://brook.example/a")


# --- the verdict, on made-up signals ---------------------------------------------------------------------


def signals(run_id: int, every: timedelta = timedelta(hours=1), **changed: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "finished_at": (datetime(2026, 1, 1, tzinfo=UTC) + run_id * every).isoformat(),
        "status": "ok",
        "finish_reason": "finished",
        "articles_new": 6,
        "articles_copied": 0,
        "pages_fetched": 8,
        "article_pages": 6,
        "skipped_stored": 10,
        "not_modified": 0,
        "failed_pages": 0,
        "not_article_share": 0.0,
        "median_words": 500.0 + 10 * (run_id % 5),
        "blocked_answers": 0,
        "challenge_pages": 0,
        "blocked_share": 0.0,
        "hours_since_new_article": 0.5,
        "sample_articles": [f"https://site.example/{run_id}/1"],
        "sample_failures": [],
        "top_failure": None,
    }
    for column in ("no_title_share", "no_date_share", "no_author_share", "chrome_share", "repeat_share"):
        row[column] = 0.0
    row.update(same_title_share=0.0, disagree_share=0.0)
    return row | changed


HISTORY = [signals(i) for i in range(1, 21)]


def test_the_verdict_names_the_signal_and_the_figures() -> None:
    short = [signals(i, median_words=40.0) for i in (21, 22)]
    assert judge(short, HISTORY) == judge(short, HISTORY)
    verdict = judge(short, HISTORY)
    assert verdict.verdict == "degraded"
    assert verdict.reason == "median body words 40, usually 520 over the last 2 runs"
    assert verdict.evidence == ("https://site.example/22/1", "https://site.example/21/1")
    # One odd run is not enough: the run before must agree.
    assert judge([*HISTORY[-3:], short[0]], HISTORY).verdict == "ok"


def test_nothing_relative_is_judged_before_the_minimum_history() -> None:
    short = [signals(i, median_words=40.0) for i in (21, 22)]
    verdict = judge(short, HISTORY[:4])
    assert verdict.verdict == "ok"
    assert "4 of 5 runs" in verdict.reason
    # Absolute troubles need no history.
    failed = signals(21, status="failed", finish_reason="crawl process was killed by SIGKILL")
    assert judge([failed], []).verdict == "failing"


def test_blocked_comes_before_failing_and_counts_the_runs() -> None:
    refused = [signals(i, blocked_answers=1, pages_fetched=2, article_pages=0, skipped_stored=0, failed_pages=1,
                       sample_failures=["https://site.example/feed"]) for i in (21, 22, 23)]  # fmt: skip
    verdict = judge([*HISTORY[-2:], *refused], HISTORY)
    assert verdict.verdict == "blocked"
    assert verdict.reason == "1 answer 403/429 of 2 answers, usually 0% over the last 3 runs"
    assert verdict.evidence == ("https://site.example/feed",)


def test_a_weekend_lull_is_not_quiet_but_silence_is() -> None:
    lull = [signals(i, articles_new=2, hours_since_new_article=1.0) for i in (21, 22, 23)]
    assert judge([*HISTORY[-3:], *lull], HISTORY).verdict == "ok"
    silent = [signals(i, articles_new=0, hours_since_new_article=float(i - 20)) for i in (21, 22, 23)]
    verdict = judge(silent, HISTORY)
    assert verdict.verdict == "quiet"
    assert verdict.reason.startswith(
        "0 new articles in the last 2 runs, usually 6 a run; the last new article came 3h ago"
    )


def test_a_source_that_publishes_less_often_than_it_is_crawled_can_still_go_quiet() -> None:
    # Crawled every 15 minutes, an article every 45 minutes: most runs bring nothing.
    every = timedelta(minutes=15)
    sparse = [
        signals(i, every, articles_new=int(i % 3 == 0), hours_since_new_article=(i % 3) / 4) for i in range(1, 61)
    ]
    assert judge(sparse[-6:], sparse).verdict == "ok"
    for silent_runs in range(1, 40):
        runs = [
            *sparse,
            *(signals(60 + i, every, articles_new=0, hours_since_new_article=i / 4) for i in range(1, silent_runs + 1)),
        ]
        verdict = judge(runs[-6:], sparse)
        if verdict.verdict != "ok":
            break
    assert verdict.verdict == "quiet"
    assert silent_runs > 6  # longer than the six runs the count of new articles looks at
    assert verdict.reason.startswith(f"no new article for {silent_runs // 4}h")


def test_a_challenge_is_named_by_its_title_or_the_start_of_its_text() -> None:
    assert challenge_phrase("Just a moment...", "") == "Just a moment..."
    assert challenge_phrase(None, "Please verify you are human to continue.") == "verify you are human"
    # An article that mentions one further down is no challenge.
    assert challenge_phrase("Court rules on data", "The ruling came on Monday. " * 30 + "Access denied.") is None


# --- alarm commands that fail, hang or are missing -------------------------------------------------------

CHANGE = {"source": "brook", "verdict": "blocked", "previous": "ok", "reason": "1 answer 403/429", "run_id": 7}


@pytest.mark.parametrize(
    ("command", "logged"),
    [
        (
            [sys.executable, "-c", "import sys; sys.stderr.write('no route to ntfy\\n'); sys.exit(3)"],
            "exit status 3: no",
        ),
        ([sys.executable, "-c", "import time; time.sleep(60)"], "killed after 1s"),
        (["/nonexistent/alarm"], "could not start"),
    ],
)
def test_an_alarm_that_fails_or_hangs_is_one_logged_line(
    command: list[str], logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="daemon"):
        assert run_alarm(command, CHANGE, timeout_s=1.0) is False
    lines = [r.getMessage() for r in caplog.records if r.name == "daemon"]
    assert len(lines) == 1, lines
    assert lines[0].startswith("source=brook run=7 on_alarm command")
    assert logged in lines[0]


@pytest.mark.parametrize("value", ['"mail -s alarm me@example.com"', "[]", '["mail", 3]', '[""]'])
def test_on_alarm_must_be_a_command_as_a_list_of_strings(value: str, tmp_path: Path) -> None:
    path = write(
        tmp_path / "sources.toml",
        f'[[source]]\nname = "x"\nfeeds = ["https://x.example/f"]\nevery = "1h"\non_alarm = {value}\n',
    )
    with pytest.raises(SourceConfigError) as caught:
        load_sources(path)
    assert str(caught.value).startswith(
        'sources.toml: source "x": field "on_alarm": expected a command as a list of strings'
    )
    assert "\n" not in str(caught.value)


def test_on_alarm_in_defaults_applies_to_every_source_and_a_source_may_have_its_own(tmp_path: Path) -> None:
    text = (
        '[defaults]\nevery = "1h"\non_alarm = ["notify", "all"]\n'
        '[[source]]\nname = "a"\nfeeds = ["https://a.example/f"]\n'
        '[[source]]\nname = "b"\nfeeds = ["https://b.example/f"]\non_alarm = ["sh", "-c", "mail me"]\n'
    )
    a, b = load_sources(write(tmp_path / "sources.toml", text))
    assert (a.on_alarm, b.on_alarm) == (("notify", "all"), ("sh", "-c", "mail me"))


def test_an_alarm_reads_the_change_as_json(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    command = [sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write(sys.stdin.read())", str(out)]
    assert run_alarm(command, CHANGE, timeout_s=30) is True
    assert json.loads(out.read_text(encoding="utf-8")) == CHANGE


def test_pages_found_no_article_are_the_evidence_when_they_outnumber_the_new_articles(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    when = datetime(2026, 3, 2, 9, tzinfo=UTC)
    articles = SteadySource("brook", seed=3, mean=2.0).articles(when)[:1]
    run_id = record_run(db, "brook", when, articles, not_articles=4)
    passed_over = [f"https://brook.example/menu-{n}" for n in range(4)]
    for url in passed_over:  # as the crawl remembers them (archive/not_articles.py)
        not_articles.record(db, {url: {"source": "brook", "reason": "too short (12 words < 80)"}}, now=iso(when))
    samples = json.loads(run_signals(db, run_id)["sample_articles"])
    assert samples[:3] == passed_over[:3]
