"""The daemon as users run it: `python scheduler.py run`, real crawls, a local site, real signals.

Every wait polls the database (or the daemon's log) against a deadline; nothing sleeps blindly.
The daemon's own bookkeeping is also tested in-process, with stand-in crawl processes that
crash, hang or never start, which real crawls do too rarely to test on demand.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

from archive.sqlite import sqlite3
from daemon.batch import Batch, crawl_command
from daemon.config import FINAL_STATUSES, DaemonConfig
from daemon.loop import Daemon
from daemon.processes import process_state
from distributed.redis_link import ITEMS_KEY, PROCESSING_KEY
from tests.feedsite import FeedSite
from tests.test_distributed import free_port, start_redis, stop_redis

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
EVERY_SECOND = 'every = "1s"\njitter = "1s"'

pytestmark = pytest.mark.timeout(150)


# --- helpers ------------------------------------------------------------------------------------


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows as dicts, from a short-lived connection (the daemon and its crawls write meanwhile)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def runs(db: Path, source: str, status: str | None = None) -> list[dict[str, Any]]:
    if status:
        return query(db, "SELECT * FROM crawl_runs WHERE source = ? AND status = ? ORDER BY id", (source, status))
    return query(db, "SELECT * FROM crawl_runs WHERE source = ? ORDER BY id", (source,))


def stored_urls(db: Path) -> list[str]:
    return [row["url"] for row in query(db, "SELECT url FROM articles")]


def wait_for(check: Callable[[], Any], seconds: float, what: str, log: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}\n--- daemon output ---\n{log()[-6000:]}")


def assert_no_overlap(rows: list[dict[str, Any]]) -> None:
    """Runs of one source, in order: each ended before the next began."""
    for before, after in itertools.pairwise(rows):
        assert before["finished_at"] <= after["started_at"], (before, after)


class DaemonProcess:
    """`python scheduler.py run` in a subprocess, its output in a file."""

    count = 0

    def __init__(self, tmp_path: Path, sources: Path, db: Path, *options: str) -> None:
        DaemonProcess.count += 1
        self.output_file = tmp_path / f"daemon-{DaemonProcess.count}.out"
        command = [
            sys.executable,
            "scheduler.py",
            "run",
            "--sources",
            str(sources),
            "--db",
            str(db),
            "--tick",
            "1s",
            "--batch-window",
            "0s",
            "--kill-wait",
            "2s",
            *options,
        ]
        with open(self.output_file, "wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.output_file.read_text(encoding="utf-8", errors="replace")

    def send(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, seconds: float) -> int:
        return self.process.wait(timeout=seconds)

    def stop(self, seconds: float = 60) -> int:
        if self.process.poll() is None:
            self.send(signal.SIGTERM)
        return self.wait(seconds)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def feedsite(tmp_path: Path) -> Iterator[FeedSite]:
    site = FeedSite(tmp_path / "site").start()
    yield site
    site.stop()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[DaemonProcess]]:
    """Daemons a test starts; at the end they are stopped, with any crawl process left behind."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()
    for db in tmp_path.glob("**/news.db"):
        for row in query(db, "SELECT DISTINCT pid FROM crawl_runs WHERE pid IS NOT NULL"):
            if process_state(row["pid"]) == "orphan":  # a crawl our daemons started
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(row["pid"], signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the real daemon ----------------------------------------------------------------------------


def test_daemon_crawls_on_schedule_never_overlaps_and_stores_new_articles(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("brook", articles=2)
    feed = feedsite.feed_path("brook")
    feedsite.server.delays[feed] = 1.5  # every run outlasts the one-second schedule
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"brook": EVERY_SECOND}))
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db)
    daemons.append(daemon)

    wait_for(lambda: runs(db, "brook", "ok"), 60, "a first run", daemon.output)
    before = max(r["id"] for r in runs(db, "brook"))
    new_url = feedsite.add_article("brook")
    wait_for(lambda: len(runs(db, "brook", "ok")) >= 3 and new_url in stored_urls(db), 60, "3 runs", daemon.output)
    assert daemon.stop() == 0

    rows = runs(db, "brook")
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["status"] for r in rows} <= {"ok", "skipped"}
    assert len(ok) >= 3
    # Runs fell due while the last one was still going: skipped, and never two at once.
    assert any(r["status"] == "skipped" for r in rows)
    assert feedsite.server.most_active[feed] == 1
    assert_no_overlap(ok)
    assert len({r["pid"] for r in ok}) == len(ok)  # each run in a fresh crawl process
    # The added article was stored by the run after it appeared, or by one already reading the feed.
    first_after = min(r["id"] for r in ok if r["id"] > before)
    storing = [r for r in ok if r["articles_new"] and r["id"] > ok[0]["id"]]
    assert [r["articles_new"] for r in storing] == [1]
    assert storing[0]["id"] <= first_after
    assert sorted(stored_urls(db)) == sorted(feedsite.urls("brook"))
    # Each run's Scrapy log is kept, and named in crawl_runs.
    for run in ok:
        assert Path(run["log_file"]).is_file()
        assert Path(run["log_file"]).parent == db.parent / "logs" / "brook"
    log = (db.parent / "logs" / "daemon.log").read_text(encoding="utf-8")
    assert f"source=brook run={ok[-1]['id']} ok" in log


def test_a_hung_crawl_is_killed_at_its_timeout_and_the_next_run_still_happens(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("stall", articles=1)
    feed = feedsite.feed_path("stall")
    feedsite.server.delays[feed] = 600  # the site stops answering
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"stall": EVERY_SECOND + '\ntimeout = "8s"'}))
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db, "--kill-wait", "1s")
    daemons.append(daemon)

    hung = wait_for(lambda: runs(db, "stall", "timed_out"), 60, "a timed-out run", daemon.output)[0]
    feedsite.server.delays.pop(feed)  # the site answers again
    wait_for(
        lambda: [r for r in runs(db, "stall", "ok") if r["id"] > hung["id"]],
        60,
        "a run after it",
        daemon.output,
    )
    assert daemon.stop() == 0

    assert hung["finish_reason"].startswith("timed out after 8s")
    assert hung["duration_s"] < 20
    assert process_state(hung["pid"]) == "gone"  # its whole process group was killed
    assert stored_urls(db) == [feedsite.article_url("stall", 1)]
    assert {r["status"] for r in runs(db, "stall")} <= {"ok", "skipped", "timed_out"}
    assert "timeout 8s reached" in daemon.output()


def test_killing_the_daemon_mid_crawl_loses_nothing_and_the_schedule_resumes(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("keep", articles=4)
    feedsite.server.delays[feedsite.feed_path("keep")] = 2
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"keep": EVERY_SECOND}))
    db = tmp_path / "data" / "news.db"
    first = DaemonProcess(tmp_path, sources, db)
    daemons.append(first)
    cut = wait_for(lambda: runs(db, "keep", "running"), 60, "a crawl under way", first.output)[0]
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)

    second = DaemonProcess(tmp_path, sources, db)
    daemons.append(second)
    # The crawl of the killed daemon finishes on its own; the new daemon waits for it, then goes on.
    wait_for(lambda: runs(db, "keep", "ok"), 60, "the interrupted crawl to end", second.output)
    wait_for(
        lambda: [r for r in runs(db, "keep", "ok") if r["id"] > cut["id"]],
        60,
        "a run of the new daemon",
        second.output,
    )
    assert second.stop() == 0

    assert query(db, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    ok = runs(db, "keep", "ok")
    assert ok[0]["id"] == cut["id"]  # the interrupted run ended well, recorded by its own process
    assert_no_overlap(ok)
    assert {r["status"] for r in runs(db, "keep")} <= {"ok", "skipped"}
    urls = stored_urls(db)
    assert sorted(urls) == sorted(feedsite.urls("keep"))  # none lost, none twice
    hashes = query(db, "SELECT count(*) AS n, count(DISTINCT body_hash) AS distinct_bodies FROM articles")
    assert hashes == [{"n": 4, "distinct_bodies": 4}]
    assert f"run={cut['id']} is going in process {cut['pid']}, not started by this daemon" in second.output()


def test_sigterm_lets_crawls_finish_within_the_grace_period_then_stops_them(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("quick", articles=1)
    feedsite.add_source("stuck", articles=1)
    feedsite.server.delays[feedsite.feed_path("quick")] = 1
    feedsite.server.delays[feedsite.feed_path("stuck")] = 600
    sources = write(
        tmp_path / "sources.toml",
        # Different timeouts: the two sources crawl in two processes.
        feedsite.sources_toml({"quick": 'every = "1h"', "stuck": 'every = "1h"\ntimeout = "10m"'}),
    )
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db, "--grace", "12s")
    daemons.append(daemon)
    wait_for(
        lambda: runs(db, "quick", "running") and runs(db, "stuck", "running"),
        60,
        "both crawls",
        daemon.output,
    )

    started = time.monotonic()
    daemon.send(signal.SIGTERM)
    assert daemon.wait(60) == 0
    took = time.monotonic() - started

    assert took < 12 + 2 + 6  # grace + kill wait + room for a slow machine
    [quick] = runs(db, "quick")
    [stuck] = runs(db, "stuck")
    assert quick["status"] == "ok"  # finished within the grace period
    assert stuck["status"] == "cancelled"
    assert stuck["finished_at"] is not None
    assert all(r["status"] in FINAL_STATUSES for r in query(db, "SELECT status FROM crawl_runs"))
    assert process_state(stuck["pid"]) == "gone"
    assert stored_urls(db) == [feedsite.article_url("quick", 1)]
    assert query(db, "SELECT status, stopped_at IS NOT NULL AS stopped FROM daemon") == [
        {"status": "stopped", "stopped": 1}
    ]
    assert "stopping: waiting up to 12s for 2 crawl processes" in daemon.output()


def test_a_broken_edit_and_sighup_keep_the_old_schedule_and_log_the_error(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    feedsite.add_source("alpha", articles=1)
    feedsite.add_source("beta", articles=1)
    good = feedsite.sources_toml({"alpha": EVERY_SECOND})
    sources = write(tmp_path / "sources.toml", good)
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db)
    daemons.append(daemon)
    wait_for(lambda: runs(db, "alpha", "ok"), 60, "a first run", daemon.output)

    write(sources, good.replace('every = "1s"', "every = 30"))
    daemon.send(signal.SIGHUP)
    wait_for(lambda: "reload failed" in daemon.output(), 30, "the reload error", daemon.output)
    [error] = [line for line in daemon.output().splitlines() if "reload failed" in line]
    assert 'source "alpha"' in error
    assert 'field "every"' in error
    # The old schedule goes on, and crawls still read the last good file.
    done = len(runs(db, "alpha", "ok"))
    wait_for(lambda: len(runs(db, "alpha", "ok")) > done, 60, "another run", daemon.output)

    # A good edit: alpha removed, beta added.
    write(sources, feedsite.sources_toml({"beta": EVERY_SECOND}))
    daemon.send(signal.SIGHUP)
    wait_for(lambda: "reloaded" in daemon.output(), 30, "the reload", daemon.output)
    wait_for(lambda: runs(db, "beta", "ok"), 60, "a run of the new source", daemon.output)
    assert daemon.stop() == 0

    assert {r["status"] for r in runs(db, "alpha")} <= {"ok", "skipped"}
    after_reload = daemon.output().split("reloaded", 1)[1]
    assert "source=alpha run=- removed from the schedule" in daemon.output()
    assert not [line for line in after_reload.splitlines() if "started" in line and "alpha" in line]
    assert sorted(stored_urls(db)) == sorted(feedsite.urls("alpha") | feedsite.urls("beta"))


# --- the daemon's bookkeeping, with stand-in crawl processes ------------------------------------

# A stand-in for runner.py: records 'running' rows like CrawlRunRecorder, then misbehaves.
FAKE_CRAWL = r"""
import os, signal, sqlite3, subprocess, sys, time
db, behaviour, pid_file, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
if behaviour == "early":
    sys.exit(3)  # dies before any run is recorded (a broken install, an import error)
conn = sqlite3.connect(db, timeout=30)
for name in names:
    conn.execute("INSERT INTO crawl_runs (source, started_at, status, pid) "
                 "VALUES (?, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), 'running', ?)", (name, os.getpid()))
conn.commit()
if behaviour == "crash":
    os._exit(3)
if behaviour == "ok":
    conn.execute("UPDATE crawl_runs SET status = 'ok', finished_at = started_at WHERE pid = ?",
                 (os.getpid(),))
    conn.commit()
if behaviour == "hang":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # deaf to the polite stop: SIGKILL is needed
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    open(pid_file, "w").write(str(helper.pid))
    time.sleep(300)
"""


def run_daemon_in_thread(daemon: Daemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.run, name="daemon-under-test")
    thread.start()
    return thread


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[Callable[..., tuple[Daemon, Path]]]:
    made: list[tuple[Daemon, threading.Thread]] = []

    def make(behaviour: str, sources: str, **config: Any) -> tuple[Daemon, Path]:
        db = tmp_path / "data" / "news.db"
        pid_file = tmp_path / "helper.pid"

        def command(batch: Batch, cfg: DaemonConfig) -> list[str]:
            return [sys.executable, "-c", FAKE_CRAWL, str(cfg.db), behaviour, str(pid_file), *batch.sources]

        defaults = {
            "tick": timedelta(seconds=1),
            "batch_window": timedelta(seconds=1),  # sources due together share a process
            "kill_wait": timedelta(seconds=1),
            "grace": timedelta(seconds=1),
        }
        cfg = DaemonConfig(db=db, sources=write(tmp_path / "sources.toml", sources), **{**defaults, **config})
        daemon = Daemon(cfg, command=command)
        made.append((daemon, run_daemon_in_thread(daemon)))
        return daemon, db

    yield make
    for daemon, thread in made:
        daemon.request_stop()
        thread.join(60)


SOURCE = '[[source]]\nname = "{name}"\nfeeds = ["http://127.0.0.1:9/feed.xml"]\nevery = "1h"\n{extra}\n'


@pytest.mark.parametrize(
    ("behaviour", "status", "reason"),
    [
        ("crash", "failed", "crawl process exited with code 3 during the run"),
        ("early", "failed", "crawl process exited with code 3 before the run started"),
        ("hang", "timed_out", "timed out after 2s: the daemon killed the crawl"),
    ],
)
def test_crawl_processes_that_crash_or_hang_still_end_with_a_recorded_status(
    fake_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path, behaviour: str, status: str, reason: str
) -> None:
    sources = SOURCE.format(name="one", extra='timeout = "2s"') + SOURCE.format(name="two", extra='timeout = "2s"')
    _, db = fake_daemon(behaviour, sources)
    wait_for(lambda: len(query(db, "SELECT * FROM crawl_runs WHERE status != 'running'")) == 2, 30, "both runs")
    rows = query(db, "SELECT * FROM crawl_runs ORDER BY source")
    assert [(r["source"], r["status"]) for r in rows] == [("one", status), ("two", status)]
    assert all(r["finish_reason"].startswith(reason) for r in rows)
    assert rows[0]["pid"] == rows[1]["pid"]  # due together: one process for both
    if behaviour == "hang":  # the helper process in the crawl's group went with it
        helper = int((tmp_path / "helper.pid").read_text())
        wait_for(lambda: not alive(helper), 10, "the helper process to be killed")


# A stand-in for runner.py that reads its sources file late, as a crawl process slow to import
# Scrapy does, and records whether it found its source there.
LATE_READER = r"""
import os, sqlite3, sys, time
from config.sources import find_source, load_sources
db, sources, go, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
open(go + ".waiting", "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
conn = sqlite3.connect(db, timeout=30)
for name in names:
    try:
        find_source(load_sources(sources), name, sources)
        status, reason = "ok", "found its source"
    except Exception as exc:
        status, reason = "failed", str(exc)
    conn.execute("INSERT INTO crawl_runs (source, started_at, finished_at, status, finish_reason, pid) "
                 "VALUES (?, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), "
                 "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), ?, ?, ?)", (name, status, reason, os.getpid()))
conn.commit()
"""


def test_a_crawl_started_before_a_reload_still_reads_its_source_after_the_reload_removed_it(
    tmp_path: Path,
) -> None:
    """A crawl process reads the sources file a second or two after it starts (Scrapy's import): a
    reload in between that removes its source must not fail its run."""
    go = tmp_path / "go"
    passed: list[Path] = []

    def command(batch: Batch, cfg: DaemonConfig) -> list[str]:
        real = crawl_command(batch, cfg)
        passed.append(Path(real[real.index("--sources") + 1]))
        return [sys.executable, "-c", LATE_READER, str(cfg.db), str(passed[-1]), str(go), *batch.sources]

    sources = write(tmp_path / "sources.toml", SOURCE.format(name="one", extra=""))
    db = tmp_path / "data" / "news.db"
    cfg = DaemonConfig(db=db, sources=sources, tick=timedelta(seconds=1), batch_window=timedelta(seconds=0))
    daemon = Daemon(cfg, command=command)
    thread = run_daemon_in_thread(daemon)
    try:
        wait_for(lambda: Path(f"{go}.waiting").exists(), 30, "the crawl process to start")
        write(sources, SOURCE.format(name="two", extra=""))
        daemon.request_reload()
        wait_for(lambda: "two" in daemon.state.sources, 30, "the reload")
        go.touch()
        [run] = wait_for(lambda: runs(db, "one"), 30, "the run of the removed source")
        assert (run["status"], run["finish_reason"]) == ("ok", "found its source")
        wait_for(lambda: not passed[0].exists(), 30, "the crawl's own sources file to be deleted")
    finally:
        daemon.request_stop()
        thread.join(60)


def test_a_run_going_in_another_process_makes_the_daemon_skip_and_a_dead_ones_run_fails(
    fake_daemon: Callable[..., tuple[Daemon, Path]], tmp_path: Path
) -> None:
    from archive.schema import open_db
    from config.dates import utc_now_iso

    db = tmp_path / "data" / "news.db"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    # A foreground `scheduler.py crawl` still going (its command line says so), and a crash.
    foreground = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "scheduler.py", "crawl"])
    try:
        archive = open_db(db)
        now = utc_now_iso()
        archive["crawl_runs"].insert_all(
            [
                {"source": "busy", "started_at": now, "status": "running", "pid": foreground.pid},
                {"source": "gone", "started_at": now, "status": "running", "pid": int(dead.stdout)},
            ]
        )
        archive.close()
        fake_daemon("ok", SOURCE.format(name="busy", extra="").replace('"1h"', '"1s"\njitter = "1s"'))
        skipped = wait_for(lambda: runs(db, "busy", "skipped"), 30, "a skipped run")[0]
        assert skipped["finish_reason"] == (
            f"run 1 is still going in process {foreground.pid}, not started by this daemon"
        )
        assert skipped["pid"] is None
        [gone] = runs(db, "gone")
        assert gone["status"] == "failed"
        assert gone["finish_reason"] == f"crawl process {int(dead.stdout)} is gone: it crashed or was killed"
        assert runs(db, "busy", "running")[0]["pid"] == foreground.pid  # never touched
    finally:
        foreground.kill()
        foreground.wait()


def test_an_adaptive_source_is_rescheduled_from_its_publishing_rate(
    feedsite: FeedSite, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """Two articles a week is slow: after its first run the source drops from every second to its
    upper bound, and the daemon records the interval and why."""
    feedsite.add_source("slow", articles=2)
    adaptive = 'every = "1s"\njitter = "0s"\nmin_every = "1s"\nmax_every = "4s"'
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"slow": adaptive}))
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db)
    daemons.append(daemon)

    decided = wait_for(lambda: query(db, "SELECT * FROM source_polling"), 60, "a polling decision", daemon.output)
    assert decided[0]["source"] == "slow"
    assert decided[0]["interval_s"] == 4
    assert "2 new articles in 7d" in decided[0]["reason"]
    wait_for(lambda: len(runs(db, "slow", "ok")) >= 3, 60, "3 runs", daemon.output)
    assert daemon.stop() == 0
    starts = [datetime.fromisoformat(r["started_at"]) for r in runs(db, "slow", "ok")]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts[1:])]
    assert gaps
    assert min(gaps) >= 2  # on the 4 s grid now, not every second
    log = (db.parent / "logs" / "daemon.log").read_text(encoding="utf-8")
    assert "polling every 4s: 2 new articles in 7d" in log


def test_the_daemon_refuses_to_start_on_a_broken_sources_file(tmp_path: Path) -> None:
    sources = write(tmp_path / "sources.toml", '[[source]]\nname = "x"\nfeeds = ["https://x.example/f"]\nevery = 5\n')
    db = tmp_path / "data" / "news.db"
    result = subprocess.run(
        [sys.executable, "scheduler.py", "run", "--sources", str(sources), "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == 'error: sources.toml: source "x": field "every": expected a duration like "30m", got 5'
    assert not query(db, "SELECT * FROM crawl_runs")  # nothing ran


# --- the daemon as the coordinator of a crawl shared through Redis -----------------------------------


def shared_process(
    command: str, tmp_path: Path, url: str, sources: Path, db: Path, log: str
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "scheduler.py", command, "--redis", url, "--sources", str(sources), "--db", str(db)]
    if command == "worker":  # no source names: it serves every source in the file
        argv += ["-s", "NEWS_EXTRACT_WORKERS=0"]
    with open(tmp_path / log, "ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A Redis for the test, and the workers and writers it starts (stopped at the end)."""
    port = free_port()
    server = start_redis(port, tmp_path)
    processes: list[subprocess.Popen[bytes]] = []
    yield f"redis://127.0.0.1:{port}/0", processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    stop_redis(server)


def test_with_redis_the_daemon_opens_rounds_for_workers_that_need_no_database(
    feedsite: FeedSite,
    tmp_path: Path,
    daemons: list[DaemonProcess],
    shared: tuple[str, list[subprocess.Popen[bytes]]],
) -> None:
    url, processes = shared
    feedsite.add_source("tide", articles=2)
    feedsite.add_source("reef", articles=1)
    feed = feedsite.feed_path("tide")
    feedsite.server.delays[feed] = 2.5  # every round outlasts the two-second schedule
    entries = {"tide": 'every = "2s"\njitter = "1s"', "reef": 'every = "3s"\njitter = "1s"'}
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml(entries))
    db = tmp_path / "data" / "news.db"
    nowhere = tmp_path / "no-such-folder" / "news.db"  # the workers' --db: never created
    workers = [shared_process("worker", tmp_path, url, sources, nowhere, f"worker{i}.log") for i in range(2)]
    writer = shared_process("writer", tmp_path, url, sources, db, "writer.log")
    processes += [*workers, writer]
    daemon = DaemonProcess(tmp_path, sources, db, "--redis", url, "--round-grace", "3s")
    daemons.append(daemon)

    def ok_runs(source: str) -> list[dict[str, Any]]:
        return runs(db, source, "ok")

    wait_for(lambda: ok_runs("tide") and ok_runs("reef"), 90, "a round of each source", daemon.output)
    new_url = feedsite.add_article("tide")
    wait_for(
        lambda: len(ok_runs("tide")) >= 3 and sum(r["articles_new"] or 0 for r in ok_runs("tide")) == 3,
        90,
        "3 rounds, the last one storing the new article",
        daemon.output,
    )
    assert new_url in stored_urls(db)
    assert daemon.stop() == 0
    with redis.Redis.from_url(url) as client:
        wait_for(lambda: client.llen(ITEMS_KEY) + client.llen(PROCESSING_KEY) == 0, 30, "the writer to drain")
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(timeout=60) == 0

    assert sorted(stored_urls(db)) == sorted(feedsite.urls("tide") | feedsite.urls("reef"))
    assert not nowhere.parent.exists()
    rows = runs(db, "tide")
    ok = [r for r in rows if r["status"] == "ok"]
    # A round open when the daemon stopped stays open (the workers finish it; the next daemon closes it).
    assert [r["status"] for r in rows if r["status"] not in ("ok", "skipped")] in ([], ["running"])
    assert any(r["status"] == "skipped" for r in rows)  # fell due while a round was still open
    assert all("still being crawled by the workers" in r["finish_reason"] for r in rows if r["status"] == "skipped")
    assert_no_overlap(ok)
    assert feedsite.server.most_active[feed] == 1  # two workers, and the feed never fetched twice at once
    assert {r["pid"] for r in ok} == {daemon.pid}  # rounds are the daemon's runs, crawled by the workers
    assert {r["log_file"] for r in ok} == {str((db.parent / "logs" / "daemon.log").resolve())}
    # The workers' counts reached the runs through the writer: each article counted new once,
    assert sum(r["articles_new"] or 0 for r in ok) == len(feedsite.urls("tide"))
    assert all(r["requests"] for r in ok)
    # and a clean round's feed validators were kept: later rounds asked If-None-Match and got a 304.
    assert sum(r["not_modified"] or 0 for r in ok) >= 1
    assert query(db, "SELECT url FROM http_validators") != []
    log = (db.parent / "logs" / "daemon.log").read_text(encoding="utf-8")
    assert f"source=tide run={ok[0]['id']} round opened" in log
    assert "coordinating workers through Redis" in log


def test_with_redis_down_due_sources_wait_and_their_round_opens_once_it_is_back(
    fake_daemon: Callable[..., tuple[Daemon, Path]], feedsite: FeedSite, tmp_path: Path
) -> None:
    feedsite.add_source("tide", articles=1)
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    daemon, db = fake_daemon("crash", feedsite.sources_toml({"tide": 'every = "1h"'}), redis_url=url)
    time.sleep(3)  # due at start; Redis is not there
    assert query(db, "SELECT * FROM crawl_runs") == []  # nothing failed: the source waits
    assert "tide" in daemon.queue
    server = start_redis(port, tmp_path)
    try:
        (run,) = wait_for(lambda: runs(db, "tide"), 30, "the round to open")
        with redis.Redis(port=port) as client:
            assert int(client.hget("news:tide:round", "run_id")) == run["id"]
            assert client.zcard("news:tide:requests") == 1  # the feed, as the spider's start() yields it
        assert run["status"] == "running"
        assert run["pid"] == os.getpid()  # the (in-process) daemon's
    finally:
        daemon.request_stop()
        stop_redis(server)
