"""scheduler.py and daemon/jobs.py: schedules, next runs after a restart, batches, and the command line."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from archive.schema import open_db
from config.sources import Source
from daemon.jobs import (
    EPOCH,
    SlotTrigger,
    build_jobs,
    cron_trigger,
    crontab_weekdays,
    next_batch,
    next_run_time,
    schedule_changed,
)
from scheduler import EXIT_NOT_RUNNING, main
from tests.conftest import run_scheduler
from tests.feedsite import FeedSite

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
MINUTE = timedelta(minutes=1)


def source(name: str = "news", **fields: object) -> Source:
    return Source(name=name, feeds=("http://127.0.0.1:9/feed.xml",), **fields)  # type: ignore[arg-type]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- schedules ----------------------------------------------------------------------------------


def test_interval_runs_stay_on_clock_slots_however_long_the_jitter_has_run() -> None:
    trigger = SlotTrigger(15 * MINUTE, timedelta(seconds=30))
    start = at("2025-01-01T10:00:07+00:00")
    fire = start
    for _ in range(10_000):  # about 104 days of runs
        fire = trigger.get_next_fire_time(fire, fire)
    slot = at("2025-01-01T10:00:00+00:00") + 10_000 * 15 * MINUTE
    assert slot <= fire <= slot + timedelta(seconds=30)  # APScheduler's IntervalTrigger drifts ~42 h


def test_a_late_run_is_followed_by_the_next_slot_that_is_not_almost_immediate() -> None:
    trigger = SlotTrigger(15 * MINUTE)
    assert trigger.get_next_fire_time(at("2025-01-01T10:14:50+00:00"), at("2025-01-01T10:14:51+00:00")) == at(
        "2025-01-01T10:30:00+00:00"
    )
    assert trigger.get_next_fire_time(at("2025-01-01T10:05:00+00:00"), at("2025-01-01T10:05:01+00:00")) == at(
        "2025-01-01T10:15:00+00:00"
    )


def test_jitter_is_at_most_half_the_interval() -> None:
    assert SlotTrigger(timedelta(seconds=1), timedelta(seconds=30)).jitter == timedelta(seconds=0.5)
    assert SlotTrigger(15 * MINUTE, timedelta(seconds=30)).jitter == timedelta(seconds=30)


def test_slots_count_from_the_epoch_so_equal_intervals_fall_due_together() -> None:
    trigger = SlotTrigger(7 * MINUTE)
    fire = trigger.get_next_fire_time(None, at("2025-03-04T05:06:07+00:00"))
    assert (fire - EPOCH) % (7 * MINUTE) == timedelta(0)
    assert timedelta(0) <= fire - at("2025-03-04T05:06:07+00:00") < 7 * MINUTE


def test_after_a_restart_the_next_run_follows_the_last_recorded_run() -> None:
    news = source(every=15 * MINUTE, jitter=timedelta(seconds=30))
    due = next_run_time(news, at("2025-01-01T10:00:12+00:00"), at("2025-01-01T10:05:00+00:00"))
    assert at("2025-01-01T10:15:00+00:00") <= due <= at("2025-01-01T10:15:30+00:00")


def test_runs_missed_while_the_daemon_was_down_are_one_run_at_start() -> None:
    news = source(every=15 * MINUTE)
    now = at("2025-01-01T13:00:00+00:00")
    assert next_run_time(news, at("2025-01-01T10:00:12+00:00"), now) == now
    assert next_run_time(news, None, now) == now  # never run: at start too


def test_cron_schedules_follow_the_last_run_and_read_weekdays_as_cron_does() -> None:
    weekly = source(cron="0 6 * * 1", jitter=timedelta(seconds=1))  # Mondays at 06:00 (local time)
    last = datetime(2025, 1, 6, 6, 0, 5).astimezone()  # a Monday
    due = next_run_time(weekly, last, last + timedelta(days=1))
    assert due.astimezone().weekday() == 0  # Monday, not APScheduler's "day 1" (Tuesday)
    assert (due.astimezone().date() - last.date()).days == 7
    assert due.astimezone().hour == 6


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("*/2", "sun,tue,thu,sat"),
        ("0,6", "sun,sat"),
        ("mon-fri", "mon-fri"),
    ],
)
def test_crontab_weekday_numbers_become_names(field: str, names: str) -> None:
    assert crontab_weekdays(field) == names
    cron_trigger(f"0 6 * * {field}")  # and APScheduler accepts them


def test_jobs_are_built_for_enabled_sources_only() -> None:
    now = at("2025-01-01T12:00:00+00:00")
    jobs = build_jobs(
        [
            source("a", every=MINUTE),
            source("b", every=MINUTE, enabled=False),
            source("c", cron="*/5 * * * *"),
        ],
        {"a": now - timedelta(seconds=10)},
        now,
    )
    assert [(j.id, j.source) for j in jobs] == [("crawl:a", "a"), ("crawl:c", "c")]
    assert jobs[0].next_run_time > now  # a ran 10 s ago: next minute
    assert jobs[1].next_run_time == now  # c never ran


def test_only_schedule_fields_make_a_job_reschedule() -> None:
    base = source(every=MINUTE)
    assert schedule_changed(base, source(every=2 * MINUTE))
    assert schedule_changed(base, source(every=MINUTE, enabled=False))
    assert not schedule_changed(base, source(every=MINUTE, max_articles=5))


def test_a_batch_takes_the_oldest_source_and_those_sharing_its_timeout() -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    timeouts = {"a": hour, "b": day, "c": hour, "d": hour, "e": hour}
    assert next_batch(["a", "b", "c", "d", "e"], timeouts, 3) == ["a", "c", "d"]
    assert next_batch(["b", "c"], timeouts, 3) == ["b"]


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "crawl", "status", "list", "reextract", "worker", "writer", "push"])
def test_every_command_has_help_and_takes_sources_and_db(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert "--sources" in help_text
    assert "--db" in help_text


def write_sources(path: Path, *names: str) -> Path:
    path.write_text(
        "".join(f'[[source]]\nname = "{n}"\nfeeds = ["http://127.0.0.1:9/{n}.xml"]\nevery = "15m"\n' for n in names),
        encoding="utf-8",
    )
    return path


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def test_status_shows_the_daemon_alive_and_each_sources_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "news.db"
    now = datetime.now(UTC)
    db = open_db(db_path)
    db["daemon"].insert(
        {
            "id": 1,
            "pid": os.getpid(),  # a live pid on this host stands in for the daemon
            "host": socket.gethostname(),
            "status": "running",
            "started_at": iso(now - timedelta(hours=2)),
            "last_tick_at": iso(now),
            "tick_s": 15,
            "sources": 2,
            "running": 1,
            "queued": 0,
        }
    )
    db["daemon_jobs"].insert({"source": "alpha", "schedule": "every 15m", "next_run_at": iso(now + 10 * MINUTE)})
    db["crawl_runs"].insert_all(
        [
            {
                "source": "alpha",
                "started_at": iso(now - 5 * MINUTE),
                "status": "ok",
                "pid": 1,
                "articles_new": 7,
            },
            {"source": "alpha", "started_at": iso(now - 4 * MINUTE), "status": "skipped"},
            {
                "source": "beta",
                "started_at": iso(now - 3 * MINUTE),
                "status": "timed_out",
                "pid": 2,
                "finish_reason": "timed out after 1h: the daemon killed the crawl",
            },
        ]
    )
    db["failures"].insert(
        {
            "run_id": 3,
            "source": "beta",
            "url": "http://x/",
            "stage": "fetch",
            "reason": "HTTP 500",
            "occurred_at": iso(now),
        }
    )
    db.close()

    code = main(
        [
            "status",
            "--sources",
            str(write_sources(tmp_path / "s.toml", "alpha", "beta")),
            "--db",
            str(db_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"daemon: running, pid {os.getpid()}" in out
    assert "up 2h" in out
    alpha = next(line for line in out.splitlines() if line.startswith("alpha"))
    assert " ok " in alpha  # the skipped tick after it is not its last run
    assert " 7 " in alpha
    assert (now + 10 * MINUTE).strftime("%H:%M:%SZ") in alpha
    beta = next(line for line in out.splitlines() if line.startswith("beta"))
    assert "timed_out" in beta
    assert beta.split()[-2:] == ["1", "1"]  # a failed run and a failure in the last 24 hours
    assert "beta run 3: timed_out: timed out after 1h" in out


def test_status_counts_rounds_for_a_coordinator_and_crawl_processes_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`running` is the coordinator's open rounds (runs with its own pid) with --redis."""
    db_path = tmp_path / "news.db"
    sources = str(write_sources(tmp_path / "s.toml", "alpha", "beta"))
    now = datetime.now(UTC)
    db = open_db(db_path)
    row = {"id": 1, "pid": os.getpid(), "host": socket.gethostname(), "status": "running", "tick_s": 15}
    counts = {"sources": 2, "running": 2, "queued": 0}
    db["daemon"].insert({**row, **counts, "started_at": iso(now - timedelta(hours=1)), "last_tick_at": iso(now)})
    db["crawl_runs"].insert_all(
        [
            {"source": name, "started_at": iso(now - MINUTE), "status": "running", "pid": os.getpid()}
            for name in ("alpha", "beta")
        ]
    )
    db.close()
    assert main(["status", "--sources", sources, "--db", str(db_path)]) == 0
    assert "2 sources scheduled, 2 rounds open for the workers, " in capsys.readouterr().out

    db = open_db(db_path)
    db.execute("UPDATE crawl_runs SET pid = 1")  # the pids of crawl processes, not the daemon's
    db.conn.commit()
    db.close()
    assert main(["status", "--sources", sources, "--db", str(db_path)]) == 0
    assert "2 sources scheduled, 2 crawl processes running, " in capsys.readouterr().out


def test_status_tells_a_stopped_or_dead_daemon_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path = tmp_path / "news.db"
    sources = str(write_sources(tmp_path / "s.toml", "alpha"))
    open_db(db_path).close()
    assert main(["status", "--sources", sources, "--db", str(db_path)]) == EXIT_NOT_RUNNING
    assert "daemon: never run on this database" in capsys.readouterr().out

    db = open_db(db_path)
    long_ago = iso(datetime.now(UTC) - timedelta(hours=1))
    row = {"id": 1, "pid": os.getpid(), "host": socket.gethostname(), "status": "running", "tick_s": 15}
    db["daemon"].insert({**row, "started_at": long_ago, "last_tick_at": long_ago})
    db.close()
    assert main(["status", "--sources", sources, "--db", str(db_path)]) == EXIT_NOT_RUNNING
    out = capsys.readouterr().out
    assert "daemon: NOT RESPONDING" in out
    assert "alpha" in out
    assert "at daemon start" in out  # never run: it runs as soon as a daemon starts

    db = open_db(db_path)
    db["daemon"].update(1, {"status": "stopped", "stopped_at": long_ago})
    db.close()
    assert main(["status", "--sources", sources, "--db", str(db_path)]) == EXIT_NOT_RUNNING
    assert "daemon: stopped (" in capsys.readouterr().out


@pytest.fixture
def feedsite(tmp_path: Path) -> Iterator[FeedSite]:
    site = FeedSite(tmp_path / "site").start()
    yield site
    site.stop()


def test_crawl_shows_a_progress_line_and_prints_its_summary(feedsite: FeedSite, tmp_path: Path) -> None:
    feedsite.add_source("brook", articles=2)
    sources = tmp_path / "sources.toml"
    sources.write_text(feedsite.sources_toml({"brook": 'every = "1h"'}), encoding="utf-8")
    db = tmp_path / "news.db"
    result = run_scheduler(
        "crawl",
        "brook",
        "--progress",
        "--sources",
        str(sources),
        "--db",
        str(db),
        "--log-level",
        "WARNING",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [line for line in result.stderr.splitlines() if "sources done" in line]
    assert progress, result.stderr[-3000:]
    assert "1/1 sources done" in progress[-1]
    assert "2 new" in progress[-1]
    assert "brook: ok - 2 new" in result.stdout


def test_status_loads_neither_the_crawler_nor_the_archive_writer(tmp_path: Path) -> None:
    """`status` is what monitoring runs every minute: it reads the archive and the sources file and
    prints, without importing Scrapy, the extractor or the store (a third of its time when it did)."""
    import subprocess
    import sys

    db_path = tmp_path / "news.db"
    open_db(db_path).conn.close()
    sources = write_sources(tmp_path / "sources.toml", "alpha")
    heavy = ["scrapy", "twisted", "trafilatura", "courlan", "archive.store", "commands.crawl", "commands.add"]
    program = (
        "import sys, scheduler\n"
        f"code = scheduler.main(['status', '--db', {str(db_path)!r}, '--sources', {str(sources)!r}])\n"
        f"print('loaded:', [name for name in {heavy!r} if name in sys.modules])\n"
        "sys.exit(code)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", program], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_NOT_RUNNING, done.stderr  # no daemon: status says so, and ran through
    assert "alpha" in done.stdout
    assert "loaded: []" in done.stdout, done.stdout


def test_help_loads_no_database_library() -> None:
    """`--help` and a usage error answer at once: sqlite-utils (0.1 s with numpy) is not imported."""
    import subprocess
    import sys

    program = (
        "import sys, scheduler\n"
        "try:\n    scheduler.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('loaded:', [name for name in ('sqlite_utils', 'archive.sqlite') if name in sys.modules])\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", program], cwd=root, capture_output=True, text=True, timeout=60)
    assert "usage:" in done.stdout, done.stderr
    assert "loaded: []" in done.stdout, done.stdout
