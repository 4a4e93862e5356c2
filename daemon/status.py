"""What `scheduler.py status` says about the daemon: its heartbeat, and whether it is alive."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.runs import coordinator_runs_exist, heartbeat_row
from config.dates import utc_now

if TYPE_CHECKING:
    from archive.runs import Database


def daemon_state(db: Database, now: datetime | None = None) -> dict[str, Any] | None:
    """The heartbeat row plus 'alive': running, ticking on time, and its pid still there."""
    row = heartbeat_row(db)
    if row is None:
        return None
    now = now or utc_now()
    since_tick = (now - datetime.fromisoformat(row["last_tick_at"])).total_seconds()
    fresh = since_tick <= 3 * (row["tick_s"] or 15) + 10
    same_host = row["host"] == socket.gethostname()
    pid_there = not same_host or Path(f"/proc/{row['pid']}").exists()
    row["since_tick_s"] = since_tick
    row["alive"] = row["status"] == "running" and fresh and pid_there
    # A coordinator (run --redis) records its rounds with its own pid (and adopts a previous one's
    # open rounds); the runs of a daemon that crawls have the pids of its crawl processes. Until a
    # coordinator opens its first round, `running` is 0 either way.
    row["coordinating"] = coordinator_runs_exist(db, row["pid"], row["started_at"])
    return row
