"""The daemon's settings: DaemonConfig is the one home of their defaults (the command line reads them
from here), and the paths the daemon derives from the database's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Every run ends with one of these in crawl_runs.status ('running' while it goes).
FINAL_STATUSES = ("ok", "failed", "timed_out", "cancelled", "skipped")


class DaemonError(RuntimeError):
    """The daemon cannot start (another one runs on this database, ...)."""


@dataclass(frozen=True)
class DaemonConfig:
    db: Path
    sources: Path
    max_parallel: int = 2  # crawl processes at once
    batch_size: int = 25  # sources per crawl process, at most
    batch_window: timedelta = timedelta(seconds=10)  # wait this long for sources due together
    grace: timedelta = timedelta(seconds=30)  # at shutdown, running crawls get this long to finish
    kill_wait: timedelta = timedelta(seconds=10)  # between SIGTERM and SIGKILL of a crawl
    tick: timedelta = timedelta(seconds=15)  # heartbeat and housekeeping interval
    crawl_log_level: str = "INFO"
    keep_logs: timedelta = timedelta(days=14)  # per-crawl logs older than this are deleted
    redis_url: str = ""  # set: coordinate a shared crawl (rounds for workers) instead of crawling
    round_grace: timedelta = timedelta(seconds=10)  # a round ends when idle this long

    @property
    def log_dir(self) -> Path:
        return self.db.parent / "logs"

    @property
    def snapshot(self) -> Path:
        """The last sources file that loaded without errors: what the children crawl from."""
        return Path(f"{self.db}-daemon-sources.toml")

    def batch_sources(self, batch_id: int) -> Path:
        """The sources file of one crawl process, as it was when the process was started: a reload
        between its start and its reading the file must not take its sources away. Batch ids
        start at 1 with each daemon, so a file a killed daemon left is overwritten, not piled up."""
        return Path(f"{self.db}-daemon-sources-batch{batch_id}.toml")

    @property
    def lock_file(self) -> Path:
        return Path(f"{self.db}-daemon.lock")


def write_whole(path: Path, text: str) -> None:
    """Write a file that a process starting at any moment reads whole: the old text or the new."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def iso(moment: datetime) -> str:
    """A datetime as the tables write it: ISO 8601 UTC, second precision."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
