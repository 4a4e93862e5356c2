"""Runs whose crawl process is gone: telling a live crawl process from a dead one (/proc), and closing
the run records it left open. Apart from the store (archive/store.py), which a crawl needs whole,
so that `scheduler.py status` and the daemon read runs without loading the crawler's writer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.transactions import immediate_transaction
from config.dates import utc_now_iso

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from sqlite_utils import Database


def process_state(pid: int) -> str:
    """'crawl' (a live crawl process), 'orphan' (a live crawl process a daemon started: it leads its
    own process group), or 'gone' (dead, a zombie, or the pid reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return "gone"
    if state == "Z" or not any(m in cmdline for m in (b"runner.py", b"scheduler.py", b"scrapy")):
        return "gone"
    try:
        leader = os.getpgid(pid) == pid
    except ProcessLookupError:
        return "gone"
    return "orphan" if leader and b"runner.py" in cmdline else "crawl"


def close_run(db: Database, run_id: int, status: str, reason: str, *, only_if: Iterable[str]) -> bool:
    """End a run its crawl process left open; only while its status is one of `only_if`.

    Its counts stay as the crawl last saved them; `failures` is at least the failures recorded for
    it, which are written as they happen while the counts are saved every few seconds.
    """
    allowed = list(only_if)
    now = utc_now_iso()
    with immediate_transaction(db):
        cursor = db.conn.execute(
            "UPDATE crawl_runs SET status = ?, finish_reason = ?, finished_at = ?, "
            "duration_s = round((julianday(?) - julianday(started_at)) * 86400, 1), "
            "failures = max(coalesce(failures, 0), (SELECT count(*) FROM failures f WHERE f.run_id = crawl_runs.id)) "
            f"WHERE id = ? AND status IN ({', '.join('?' * len(allowed))})",
            [status, reason, now, now, run_id, *allowed],
        )
    return cursor.rowcount > 0


def close_runs_of_gone_processes(
    db: Database, *, keep: Callable[[dict[str, Any]], bool] = lambda row: False
) -> list[tuple[dict[str, Any], str]]:
    """Close as failed each run still marked running whose crawl process is gone (killed, crashed,
    the machine restarted), except those `keep` says to leave; returns each closed run and why."""
    closed = []
    for row in db.table("crawl_runs").rows_where("status = 'running'", order_by="id"):
        if keep(row) or (row["pid"] and process_state(row["pid"]) != "gone"):
            continue
        reason = f"crawl process {row['pid']} is gone: it crashed or was killed"
        if close_run(db, row["id"], "failed", reason, only_if=("running",)):
            closed.append((row, reason))
    return closed


def daemon_alive(db: Database) -> bool:
    """Whether a daemon process is running on this archive (it looks after the runs itself)."""
    if not db.table("daemon").exists():
        return False
    row = db.execute("SELECT pid FROM daemon WHERE id = 1 AND status = 'running'").fetchone()
    return bool(row and row[0] and process_state(row[0]) != "gone")
