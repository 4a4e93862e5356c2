"""Logs an operator can keep for months: one line per event, naming its URL and reason.

Real crawls of a local site and real daemon processes: a dropped 5 MB page stays one short line,
an unreachable port is one line with no traceback, and the daemon logs the signals it gets and
the end of a crawl it took over, and a refused second daemon leaves the first one's log alone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from scrapy import Request
from scrapy.exceptions import DropItem
from twisted.python.failure import Failure

from crawl.items import ArticleItem
from crawl.log_format import ItemLogFormatter
from tests.conftest import ROOT, scrapy_crawl
from tests.feedsite import FeedSite
from tests.test_daemon import DaemonProcess, runs, wait_for, write
from tests.test_distributed import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# A log record's first line; any other line continues the record above it.
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[(?P<logger>[\w.]+)\] (?P<level>[A-Z]+): (?P<message>.*)$")
# The only records Scrapy spreads over several lines: its start-up inventory and its final stats.
SCRAPY_BLOCKS = re.compile(r"^(Versions|Enabled [a-z ]+|Overridden settings|Dumping Scrapy stats):$")
# Marks every byte of the page that gets dropped, so any of it in a log is found.
FILLER = "HUGEPAGEFILLER "


def records(log: str) -> list[tuple[str, str, list[str]]]:
    """(level, first line, continuation lines) of each record in a Scrapy log."""
    found: list[tuple[str, str, list[str]]] = []
    for line in log.splitlines():
        if match := RECORD.match(line):
            found.append((match["level"], match["message"], []))
        elif found:
            found[-1][2].append(line)
    return found


def assert_one_line_per_event(log: str) -> None:
    """Every record is one line, but Scrapy's start-up inventory and stats; and no traceback."""
    assert "Traceback" not in log
    for _, message, more in records(log):
        assert not more or SCRAPY_BLOCKS.match(message), f"a record of {len(more) + 1} lines: {message[:200]}"


# --- items: the URL and the reason, never the page ------------------------------------------


@pytest.fixture
def site_with_a_huge_page(tmp_path: Path) -> Iterator[FeedSite]:
    """One article and, in the same feed, a 5 MB page of five words and a script: too short to keep."""
    site = FeedSite(tmp_path / "site").start()
    site.add_source("big", articles=2)
    script = FILLER * (5 * 1024 * 1024 // len(FILLER))
    (site.root / "big" / "2.html").write_text(
        "<!doctype html><html><head><title>Huge</title></head><body><p>Only five words are here.</p>"
        f'<script>var blob = "{script}";</script></body></html>',
        encoding="utf-8",
    )
    yield site
    site.stop()


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_a_dropped_5_mb_page_is_one_short_line_naming_its_url_and_reason(
    site_with_a_huge_page: FeedSite, tmp_path: Path, level: str
) -> None:
    site = site_with_a_huge_page
    sources = write(tmp_path / "sources.toml", site.sources_toml({"big": 'every = "1h"'}))
    log_file = tmp_path / "crawl.log"
    scrapy_crawl(
        "big", db=tmp_path / "news.db", sources=sources, settings={"LOG_FILE": str(log_file), "LOG_LEVEL": level}
    )

    log = log_file.read_text(encoding="utf-8")
    assert len(log.encode()) < 50_000  # Scrapy's own formatter wrote 5.3 MB here
    assert FILLER not in log
    assert "<html" not in log
    [dropped] = [message for _, message, _ in records(log) if message.startswith("Dropped")]
    huge = site.article_url("big", 2)
    assert dropped == f"Dropped {huge}: not an article: too short (5 words < 80)"
    if level == "DEBUG":  # the stored article's line names it, and only it
        assert [m for _, m, _ in records(log) if m.startswith("Scraped")] == [f"Scraped {site.article_url('big', 1)}"]
    assert_one_line_per_event(log)


def test_item_errors_and_download_errors_name_the_url_not_the_item() -> None:
    """The two other item lines Scrapy writes: an exception in a pipeline (its traceback is added by
    Scrapy, as our bug), and a failed request that had no errback."""
    html = "<html><body>" + FILLER * 1000 + "</body></html>"
    item = ArticleItem(url="https://news.example/a.html", source="x", html=html, fetched_at="2025-01-06T10:00:00Z")
    formatter = ItemLogFormatter()

    error = formatter.item_error(item, ValueError("no title\nin the page"), None, None)  # type: ignore[arg-type]
    assert error["msg"] % error["args"] == "Error processing https://news.example/a.html: no title in the page"
    dropped = formatter.dropped(item, DropItem(html, log_level="INFO"), None, None)  # type: ignore[arg-type]
    line = dropped["msg"] % dropped["args"]
    assert line.startswith("Dropped https://news.example/a.html: <html><body>HUGEPAGEFILLER")
    assert len(line) < 400  # an exception quoting the page is cut short
    failure = Failure(ConnectionRefusedError("Connection refused"))
    download = formatter.download_error(failure, Request("https://news.example/b.html"), None)  # type: ignore[arg-type]
    assert download["msg"] % download["args"] == "Error downloading https://news.example/b.html: Connection refused"


# --- fetch failures: one line, no traceback --------------------------------------------------


def test_an_unreachable_port_is_one_line_with_its_url_and_reason_and_no_traceback(tmp_path: Path) -> None:
    port = free_port()  # nothing listens on it
    url = f"http://127.0.0.1:{port}/"
    result = subprocess.run(
        [sys.executable, "scheduler.py", "crawl", "--url", url, "--allow-private", "--db", str(tmp_path / "news.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "Unhandled error" not in output
    assert_one_line_per_event(result.stderr)
    logged = records(result.stderr)
    problems = [message for level, message, _ in logged if level in ("WARNING", "ERROR", "CRITICAL")]
    # The page's failure, and why: its host's robots.txt could not be read (refused for a while).
    assert len(problems) <= 2, problems
    [failure] = [message for message in problems if url in message]
    assert "Connection was refused" in failure
    assert not [message for message in problems if "Gave up retrying" in message or "Error downloading" in message]
    assert len(logged) <= 25, [message for _, message, _ in logged]  # was 21 records and 60 lines of traceback


# --- the daemon ------------------------------------------------------------------------------


@pytest.fixture
def feedsite(tmp_path: Path) -> Iterator[FeedSite]:
    site = FeedSite(tmp_path / "site").start()
    yield site
    site.stop()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def daemon_log(db: Path) -> str:
    path = db.parent / "logs" / "daemon.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.mark.timeout(150)
def test_the_daemon_logs_each_signal_it_receives(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("calm", articles=1)
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"calm": 'every = "1h"'}))
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db)
    daemons.append(daemon)
    wait_for(lambda: runs(db, "calm", "ok"), 60, "a first run", daemon.output)

    daemon.send(signal.SIGHUP)
    wait_for(lambda: "reloaded" in daemon_log(db), 30, "the reload", daemon.output)
    daemon.send(signal.SIGINT)
    assert daemon.wait(60) == 0

    log = daemon_log(db)
    assert f"received SIGHUP: reading {sources} again" in log
    assert "received SIGINT: stopping" in log
    assert log.index("received SIGHUP") < log.index("reloaded") < log.index("received SIGINT")
    assert log.index("received SIGINT") < log.index("daemon stopped")


@pytest.mark.timeout(150)
def test_a_second_sigterm_is_logged_as_stopping_the_crawls_at_once(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("stuck", articles=1)
    feedsite.server.delays[feedsite.feed_path("stuck")] = 600
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"stuck": 'every = "1h"'}))
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db, "--grace", "60s")
    daemons.append(daemon)
    wait_for(lambda: runs(db, "stuck", "running"), 60, "a crawl under way", daemon.output)

    daemon.send(signal.SIGTERM)
    wait_for(lambda: "received SIGTERM: stopping" in daemon_log(db), 30, "the first signal", daemon.output)
    daemon.send(signal.SIGTERM)
    assert daemon.wait(30) == 0  # well within the 60 s grace: the second signal cut it short

    log = daemon_log(db)
    assert log.count("received SIGTERM: stopping") == 1
    assert log.count("received SIGTERM again: stopping the running crawls now") == 1
    assert [r["status"] for r in runs(db, "stuck")] == ["cancelled"]


@pytest.mark.timeout(150)
def test_a_refused_second_daemon_says_why_on_its_stderr_and_leaves_the_first_ones_log_alone(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("solo", articles=1)
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"solo": 'every = "1h"'}))
    db = tmp_path / "data" / "news.db"
    first = DaemonProcess(tmp_path, sources, db)
    daemons.append(first)
    wait_for(lambda: " ok in " in daemon_log(db), 60, "a first run, logged", first.output)
    log_file = db.parent / "logs" / "daemon.log"
    before = log_file.read_text(encoding="utf-8")

    second = subprocess.run(
        [sys.executable, "scheduler.py", "run", "--sources", str(sources), "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert second.returncode != 0
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    assert f"another daemon (pid {first.pid}) is running on {db}; stop it first" in lines[0]
    after = log_file.read_text(encoding="utf-8")
    assert after.startswith(before)  # neither truncated nor rotated
    assert "another daemon" not in after  # not a line of the refused daemon in the first one's log
    assert first.process.poll() is None
    assert first.stop() == 0


@pytest.mark.timeout(150)
def test_the_end_of_a_crawl_taken_over_from_a_killed_daemon_is_logged(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("keep", articles=2)
    feedsite.server.delays[feedsite.feed_path("keep")] = 4  # the crawl outlives its daemon
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"keep": 'every = "1h"'}))
    db = tmp_path / "data" / "news.db"
    first = DaemonProcess(tmp_path, sources, db)
    daemons.append(first)
    cut = wait_for(lambda: runs(db, "keep", "running"), 60, "a crawl under way", first.output)[0]
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    first_ones = len(daemon_log(db))

    second = DaemonProcess(tmp_path, sources, db)
    daemons.append(second)
    wait_for(lambda: runs(db, "keep", "ok"), 60, "the taken-over crawl to end", second.output)
    ended = f"source=keep run={cut['id']} ok in "
    wait_for(lambda: ended in daemon_log(db), 30, "its end in the new daemon's log", second.output)
    assert second.stop() == 0

    log = daemon_log(db)[first_ones:]  # the second daemon's lines
    taken = log.index(f"source=keep run={cut['id']} is going in process {cut['pid']}, not started by this daemon")
    assert taken < log.index(ended)
    assert log.count(f"run={cut['id']} ") == 2  # taken over, ended: nothing else, nothing twice
