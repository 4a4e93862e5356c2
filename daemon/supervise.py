"""A supervisor thread per crawl process: it waits for it, kills its process group at the batch's
timeout, and records what the child could not (timed out, crashed, cancelled at shutdown)."""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from config.durations import format_duration
from daemon.batch import terminate
from daemon.logs import event, log_run
from daemon.processes import describe_exit, kill_group

if TYPE_CHECKING:
    from daemon.batch import Batch
    from daemon.state import DaemonState

logger = logging.getLogger(__name__)


def supervise(state: DaemonState, batches: dict[int, Batch], batch: Batch) -> None:
    """The thread's body: wait, record, and take the batch off `batches`."""
    returncode: int | None = None
    try:
        returncode, usage = wait_for(state, batch)
        kill_group(batch.pid, signal.SIGKILL)  # whatever it left behind in its group
        logger.info(
            "batch %d finished: pid %d %s after %.1fs, cpu %.1fs, max rss %d MB",
            batch.id,
            batch.pid,
            describe_exit(returncode),
            time.monotonic() - batch.started,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss // 1024,
        )
    except Exception:
        logger.exception("batch %d: supervising pid %d failed", batch.id, batch.pid)
    finally:
        try:
            finish(state, batch, returncode)
        except Exception:
            logger.exception("batch %d: recording its runs failed", batch.id)
        finally:
            state.config.batch_sources(batch.id).unlink(missing_ok=True)  # read at its start, long ago
            with state.lock:
                batches.pop(batch.id, None)
            state.book.close()
            state.wake()


def wait_for(state: DaemonState, batch: Batch) -> tuple[int, Any]:
    """Wait for the crawl process; kill its group at the timeout. Returns (returncode, rusage)."""
    deadline = batch.started + batch.timeout.total_seconds()
    try:
        pidfd: int | None = os.pidfd_open(batch.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): poll instead
        pidfd = None
    try:
        while True:
            pid, status, usage = os.wait4(batch.pid, os.WNOHANG)
            if pid:
                returncode = os.waitstatus_to_exitcode(status)
                assert batch.process is not None
                batch.process.returncode = returncode  # reaped here, not by Popen
                batch.exited.set()
                return returncode, usage
            remaining = deadline - time.monotonic()
            if remaining <= 0 and batch.killed_for is None:
                logger.warning(
                    "batch %d: timeout %s reached, stopping pid %d (%s)",
                    batch.id,
                    format_duration(batch.timeout),
                    batch.pid,
                    ", ".join(batch.sources),
                )
                threading.Thread(
                    target=terminate, args=(batch, "timeout", state.config.kill_wait), name=f"kill-{batch.id}"
                ).start()
                remaining = 3600.0
            elif remaining <= 0:
                remaining = 3600.0
            if pidfd is not None:
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(min(remaining, 0.2))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def finish(state: DaemonState, batch: Batch, returncode: int | None) -> None:
    """Give every source of the batch a final status, and log it."""
    book = state.book
    rows = {row["source"]: row for row in book.runs_of(batch.pid, batch.first_run_id)}
    if batch.killed_for == "timeout":
        status = "timed_out"
        reason = f"timed out after {format_duration(batch.timeout)}: the daemon killed the crawl"
        reopen: tuple[str, ...] = ("running", "cancelled")  # our SIGTERM made Scrapy record 'cancelled'
    elif batch.killed_for == "shutdown":
        status, reason, reopen = (
            "cancelled",
            "the daemon stopped: crawl stopped after the grace period",
            ("running",),
        )
    else:
        exit_text = describe_exit(returncode) if returncode is not None else "was lost"
        status, reason, reopen = "failed", f"crawl process {exit_text} during the run", ("running",)
    for name in batch.sources:
        row = rows.get(name)
        if row is None:  # the process ended before the crawl recorded its run
            early = reason
            if batch.killed_for is None:
                early = f"crawl process {exit_text} before the run started (see {batch.log_file})"
            run_id = book.record_run(
                name, status, early, started_at=batch.started_at, pid=batch.pid, log_file=str(batch.log_file)
            )
            event(logging.INFO if status == "cancelled" else logging.ERROR, name, run_id, "%s: %s", status, early)
            continue
        if row["status"] in reopen:
            book.close_run(row["id"], status, reason, only_if=reopen)
        log_run(book.run(row["id"]))
    state.runs_ended(batch.sources)
