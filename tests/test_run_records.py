"""Run records and counts that add up (issue #18, section 4), with real crawls against local sites.

- every page a crawl fetched lands in exactly one of a run's counts, summed against the site's log;
- a crawl told to stop (SIGTERM) fetches nothing more, and keeps its counts;
- a crawl killed outright (kill -9) keeps the counts it saved, and the next command closes its run;
- a 404 robots.txt is no failure of a `--url` crawl, whose ad-hoc source never looks scheduled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from archive.schema import open_db
from crawl.run_records import PAGE_COUNTS
from demo.server import DEFAULT_ROOT, SiteServer
from tests.conftest import DEMO_SOURCES, ROOT, run_scheduler, write_sources
from tests.feedsite import FeedSite

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def runs(db_path: Path) -> list[dict[str, Any]]:
    db = open_db(db_path)
    try:
        return list(db["crawl_runs"].rows_where(order_by="id"))
    finally:
        db.close()


def counted_pages(run: dict[str, Any]) -> int:
    return sum(run[column] or 0 for column in PAGE_COUNTS)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def feedsite(tmp_path: Path) -> Iterator[FeedSite]:
    site = FeedSite(tmp_path / "site").start()
    yield site
    site.stop()


def start_crawl(*args: str) -> subprocess.Popen[str]:
    """`scheduler.py crawl ARGS...` in the background, in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "scheduler.py", "crawl", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


# --- every fetched page in exactly one count ---------------------------------------------------------


def test_every_page_of_the_demo_crawl_lands_in_exactly_one_count(tmp_path: Path) -> None:
    server = SiteServer(DEFAULT_ROOT).start()  # a fresh request log: the session's site is shared
    try:
        sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), server.base_url, tmp_path / "s.toml")
        db_path = tmp_path / "news.db"
        result = run_scheduler("crawl", "--all", "--sources", str(sources), "--db", str(db_path))
        assert result.returncode == 0, result.stderr[-3000:]
        served = len(server.requests)
    finally:
        server.stop()
    recorded = runs(db_path)
    assert len(recorded) == 3
    for run in recorded:
        assert counted_pages(run) == run["responses"], run
    # The site's own log: every request it answered is one page counted once, in one run.
    assert sum(counted_pages(run) for run in recorded) == served
    # Truncated pages, non-news pages, feeds, sitemaps, listings, robots.txt, the 404 and the
    # retried 500 are all there: the demo site has each of them.
    for column in ("not_articles", "pages_discovery", "pages_retried_or_redirected", "pages_failed"):
        assert sum(run[column] or 0 for run in recorded) > 0, column
    # "new" is what was added: a copy published earlier than the one stored replaces it, no more.
    db = open_db(db_path)
    stored = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    db.close()
    assert sum(run["articles_new"] for run in recorded) == stored


# --- stopping and killing a crawl --------------------------------------------------------------------


SLOW = 'every = "1h"\ndelay = "1s"'


def slow_source(feedsite: FeedSite, tmp_path: Path, name: str, articles: int) -> Path:
    """A source with `articles` pages fetched about one a second, one of them missing (a 404)."""
    feedsite.add_source(name, articles=articles)
    (feedsite.root / name / "2.html").unlink()
    text = feedsite.sources_toml({name: SLOW})
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_crawl_told_to_stop_fetches_nothing_more_and_keeps_its_counts(feedsite: FeedSite, tmp_path: Path) -> None:
    sources = slow_source(feedsite, tmp_path, "tide", articles=30)
    db_path = tmp_path / "news.db"
    crawl = start_crawl("tide", "--sources", str(sources), "--db", str(db_path), "-s", "AUTOTHROTTLE_ENABLED=0")
    try:
        wait_for(lambda: len(feedsite.server.requests) >= 6, 60, "a few pages fetched")
        crawl.send_signal(signal.SIGTERM)
        at_stop = len(feedsite.server.requests)
        stopped = time.monotonic()
        crawl.communicate(timeout=60)
    finally:
        if crawl.poll() is None:
            os.killpg(crawl.pid, signal.SIGKILL)
    # Without dropping the queued requests, the ~15 handed to the downloader were fetched one
    # second apart after the SIGTERM. Those on the wire when it came may still land.
    assert len(feedsite.server.requests) <= at_stop + 2, feedsite.server.paths_requested()
    assert time.monotonic() - stopped < 15
    (run,) = runs(db_path)
    assert (run["status"], run["finish_reason"]) == ("cancelled", "shutdown")
    assert run["requests"] == len(feedsite.server.requests)
    assert counted_pages(run) == run["responses"] == len(feedsite.server.requests)
    assert run["failures"] == 1  # the missing page, and no failure for the requests dropped


def test_a_killed_crawl_keeps_its_counts_and_the_next_command_closes_its_run(
    feedsite: FeedSite, tmp_path: Path
) -> None:
    sources = slow_source(feedsite, tmp_path, "tide", articles=30)
    db_path = tmp_path / "news.db"
    crawl = start_crawl("--all", "--sources", str(sources), "--db", str(db_path), "-s", "NEWS_RUN_COUNTS_EVERY=0.5")
    try:
        # The 404 (page 2) has been recorded and the counts saved since.
        wait_for(lambda: (runs(db_path) or [{}])[0].get("failures"), 60, "the run's counts saved")
        wait_for(lambda: (runs(db_path)[0]["responses"] or 0) >= 5, 60, "more pages fetched")
    finally:
        os.killpg(crawl.pid, signal.SIGKILL)  # kill -9: no chance to record anything
        crawl.communicate(timeout=30)
    (killed,) = runs(db_path)
    assert killed["status"] == "running"
    fetched = len(feedsite.server.requests)

    # Cron's next command (no daemon anywhere) closes it: the process is gone.
    feedsite.add_source("brook", articles=1)
    sources.write_text(feedsite.sources_toml({"tide": SLOW, "brook": 'every = "1h"'}), encoding="utf-8")
    result = run_scheduler("crawl", "brook", "--sources", str(sources), "--db", str(db_path))
    assert result.returncode == 0, result.stderr[-3000:]
    closed, brook = runs(db_path)
    assert brook["status"] == "ok"
    assert closed["id"] == killed["id"]
    assert closed["status"] == "failed"
    assert f"crawl process {killed['pid']} is gone" in closed["finish_reason"]
    assert closed["finished_at"]
    # What it counted before the kill is kept: its pages, and as many failures as it recorded.
    assert 5 <= closed["responses"] <= fetched
    db = open_db(db_path)
    recorded = db.execute("SELECT count(*) FROM failures WHERE run_id = ?", [closed["id"]]).fetchone()[0]
    db.close()
    assert closed["failures"] == recorded == 1


def test_a_live_daemon_closes_the_runs_itself(tmp_path: Path) -> None:
    """While a daemon runs, a command leaves the runs to it (it knows which crawls are its own)."""
    from archive.run_closing import process_state
    from archive.store import Archive

    db_path = tmp_path / "news.db"
    archive = Archive.open(db_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone_pid = int(dead.stdout)
    run_id = archive.start_run("tide")
    archive.db.execute("UPDATE crawl_runs SET pid = ? WHERE id = ?", [gone_pid, run_id])
    # A live daemon, as process_state sees one: a process whose command line names scheduler.py.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "scheduler.py"])
    try:
        wait_for(lambda: process_state(sleeper.pid) != "gone", 10, "the stand-in daemon to start")
        archive.db["daemon"].insert({"id": 1, "pid": sleeper.pid, "status": "running"}, pk="id", alter=True)
        archive.db.conn.commit()
        assert archive.close_runs_of_dead_crawls() == []
        assert archive.db["crawl_runs"].get(run_id)["status"] == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    (closed, reason), *_ = archive.close_runs_of_dead_crawls()
    assert closed["id"] == run_id
    assert archive.db["crawl_runs"].get(run_id)["status"] == "failed"
    assert str(gone_pid) in reason
    archive.close()


# --- ad-hoc crawls -------------------------------------------------------------------------------------


def test_a_url_crawl_with_a_404_robots_txt_records_no_failure_and_no_schedule(
    feedsite: FeedSite, tmp_path: Path
) -> None:
    (feedsite.root / "robots.txt").unlink()  # RFC 9309: a 404 robots.txt means "no rules"
    feedsite.add_source("tide", articles=2)
    links = "".join(f'<a href="/tide/{n}.html">story {n}</a>' for n in (1, 2))
    (feedsite.root / "index.html").write_text(f"<html><body>{links}</body></html>", encoding="utf-8")
    db_path = tmp_path / "news.db"
    result = run_scheduler(
        "crawl", "--url", feedsite.base_url + "/", "--allow-private", "--db", str(db_path), "--log-level", "WARNING"
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert feedsite.server.statuses("/robots.txt")["/robots.txt"][0] == 404
    (run,) = runs(db_path)
    assert (run["status"], run["failures"]) == ("ok", 0)
    assert counted_pages(run) == run["responses"] == len(feedsite.server.requests)
    db = open_db(db_path)
    assert db.execute("SELECT count(*) FROM failures").fetchone()[0] == 0
    (source,) = db["sources"].rows
    db.close()
    assert source["name"].startswith("adhoc_")
    assert (source["adhoc"], source["enabled"], source["schedule"]) == (1, 0, None)


def test_the_migration_marks_adhoc_rows_written_before_it(tmp_path: Path) -> None:
    db_path = tmp_path / "old.db"
    db = open_db(db_path)
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'mark_adhoc_sources_and_count_every_page'")
    db.execute("ALTER TABLE sources DROP COLUMN adhoc")
    db["sources"].insert_all(
        [
            {"name": "adhoc_example_org", "enabled": 1, "schedule": "every 1h"},
            {"name": "adhocracy", "enabled": 1, "schedule": "every 1h"},
        ]
    )
    db.conn.commit()
    db.close()
    db = open_db(db_path)
    rows = {row["name"]: row for row in db["sources"].rows}
    db.close()
    assert (rows["adhoc_example_org"]["adhoc"], rows["adhoc_example_org"]["enabled"]) == (1, 0)
    assert rows["adhoc_example_org"]["schedule"] is None
    assert (rows["adhocracy"]["adhoc"], rows["adhocracy"]["enabled"]) == (0, 1)
