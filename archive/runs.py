"""The daemon's bookkeeping in the archive: the runs only it can record, its heartbeat, each source's
next run, and what `scheduler.py status` reads about the daemon.

The daemon calls these and never speaks SQL itself (docs/architecture.md: only archive/ does).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from archive.run_closing import close_run, close_runs_of_gone_processes, process_state
from archive.schema import open_db
from archive.transactions import immediate_transaction
from config.dates import utc_now_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

__all__ = ["Database", "RunBook", "coordinator_runs_exist", "heartbeat_row", "process_state"]


class RunBook:
    """What the daemon reads and writes: runs only it can record, the heartbeat, next runs.

    SQLite connections are per thread (the scheduler's, the supervisors' and the main thread).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    @property
    def db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_db(self.path)
        return db

    @contextlib.contextmanager
    def writing(self) -> Iterator[Database]:
        """A write transaction on this thread's connection (archive/transactions.py: why IMMEDIATE)."""
        db = self.db
        with immediate_transaction(db):
            yield db

    def close(self) -> None:
        """Close this thread's connection (a supervisor thread's, as it ends)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # --- runs ---------------------------------------------------------------------------------

    def last_started(self) -> dict[str, datetime]:
        """When each source's last real run started (skipped and never-started runs have no pid)."""
        rows = self.db.execute(
            "SELECT source, max(started_at) FROM crawl_runs WHERE pid IS NOT NULL GROUP BY source"
        ).fetchall()
        return {source: datetime.fromisoformat(started) for source, started in rows}

    def max_run_id(self) -> int:
        return int(self.db.execute("SELECT coalesce(max(id), 0) FROM crawl_runs").fetchone()[0])

    def record_run(
        self,
        source: str,
        status: str,
        reason: str,
        *,
        started_at: str | None = None,
        pid: int | None = None,
        log_file: str | None = None,
    ) -> int:
        """A run that ended before its crawl process could record it (or never had one)."""
        now = utc_now_iso()
        started_at = started_at or now
        duration = (datetime.fromisoformat(now) - datetime.fromisoformat(started_at)).total_seconds()
        table = self.db.table("crawl_runs")
        with self.writing():
            table.insert(
                {
                    "source": source,
                    "started_at": started_at,
                    "finished_at": now,
                    "duration_s": duration,
                    "status": status,
                    "finish_reason": reason,
                    "pid": pid,
                    "log_file": log_file,
                }
            )
        return int(table.last_pk)  # type: ignore[arg-type]  # last_pk is typed Any | None

    def close_run(self, run_id: int, status: str, reason: str, *, only_if: Iterable[str]) -> bool:
        """End a run the crawl process left open; only while its status is one of `only_if`."""
        return close_run(self.db, run_id, status, reason, only_if=only_if)

    def close_runs_of_gone_processes(self, keep: Callable[[dict[str, Any]], bool]) -> list[tuple[dict[str, Any], str]]:
        """Fail the runs left 'running' whose process is gone, except those `keep` says to leave."""
        return close_runs_of_gone_processes(self.db, keep=keep)

    def runs_of(self, pid: int, after_id: int) -> list[dict[str, Any]]:
        """The runs process `pid` recorded with ids above `after_id` (one crawl process's)."""
        return list(self.db.table("crawl_runs").rows_where("pid = ? AND id > ?", [pid, after_id], order_by="id"))

    def run(self, run_id: int) -> dict[str, Any]:
        return self.db.table("crawl_runs").get(run_id)

    def running(self) -> list[dict[str, Any]]:
        return list(self.db.table("crawl_runs").rows_where("status = 'running'", order_by="id"))

    def running_runs_of(self, sources: list[str]) -> list[tuple[int, str, int | None]]:
        """(run id, source, pid) of each run of `sources` still marked running."""
        marks = ", ".join("?" * len(sources))
        return self.db.execute(
            f"SELECT id, source, pid FROM crawl_runs WHERE status = 'running' AND source IN ({marks})",
            sources,
        ).fetchall()

    # --- heartbeat and schedule ---------------------------------------------------------------

    def heartbeat_start(self, *, pid: int, tick_s: float, sources_file: str, sources: int) -> None:
        now = utc_now_iso()
        with self.writing():
            self.db.table("daemon").upsert(
                {
                    "id": 1,
                    "pid": pid,
                    "host": socket.gethostname(),
                    "started_at": now,
                    "last_tick_at": now,
                    "tick_s": tick_s,
                    "stopped_at": None,
                    "status": "running",
                    "sources_file": sources_file,
                    "sources": sources,
                    "running": 0,
                    "queued": 0,
                },
                pk="id",
            )

    def heartbeat(self, **values: Any) -> None:
        with self.writing():
            self.db.table("daemon").update(1, {"last_tick_at": utc_now_iso(), **values})

    def heartbeat_stop(self) -> None:
        now = utc_now_iso()
        with self.writing():
            self.db.table("daemon").update(1, {"last_tick_at": now, "stopped_at": now, "status": "stopped"})

    def scheduled_sources(self) -> set[str]:
        """The sources `daemon_jobs` has a next run for (as a previous daemon left it)."""
        return {row[0] for row in self.db.execute("SELECT source FROM daemon_jobs")}

    def save_schedule(self, jobs: dict[str, tuple[str, str | None]], removed: Iterable[str]) -> None:
        """Each source's (schedule, next run) into `daemon_jobs`; drop the `removed` sources."""
        now = utc_now_iso()
        rows = [
            {"source": name, "schedule": schedule, "next_run_at": next_run, "updated_at": now}
            for name, (schedule, next_run) in jobs.items()
        ]
        with self.writing():
            if rows:
                self.db.table("daemon_jobs").upsert_all(rows, pk="source")
            for name in removed:
                self.db.execute("DELETE FROM daemon_jobs WHERE source = ?", [name])


# --- what `scheduler.py status` reads ---------------------------------------------------------------


def heartbeat_row(db: Database) -> dict[str, Any] | None:
    """The daemon's heartbeat row, or None if no daemon ever ran on this archive."""
    if not db.table("daemon").exists():
        return None
    rows = list(db.table("daemon").rows_where("id = 1"))
    return rows[0] if rows else None


def coordinator_runs_exist(db: Database, pid: int, since: str) -> bool:
    """Whether process `pid` has runs started since `since` or still running: a coordinator records
    its rounds with its own pid, a crawling daemon's runs have its crawl processes' pids."""
    return bool(
        db.execute(
            "SELECT EXISTS (SELECT 1 FROM crawl_runs WHERE pid = ? AND (started_at >= ? OR status = 'running'))",
            [pid, since],
        ).fetchone()[0]
    )
