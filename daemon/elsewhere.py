"""Runs left 'running' by processes this daemon did not start (a killed daemon's or machine's)."""

from __future__ import annotations

import logging
import os
import signal
from datetime import datetime
from typing import TYPE_CHECKING, Any

from config.dates import utc_now
from config.durations import format_duration
from daemon.logs import event, log_run
from daemon.processes import kill_group, process_state

if TYPE_CHECKING:
    from daemon.dispatch import Dispatcher
    from daemon.state import DaemonState

logger = logging.getLogger(__name__)


class Elsewhere:
    """Gone (crashed, killed with the daemon or the machine): the run failed. Alive: the source is
    busy until it ends. An orphan crawl of a killed daemon past its source's timeout is killed, as
    its own daemon would have done. Main thread only."""

    def __init__(self, state: DaemonState, dispatcher: Dispatcher) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.taken_over: set[int] = set()  # ids of the runs found going, whose end is logged

    def check(self) -> None:
        state = self.state
        self._log_taken_over_ends()
        ours = self.dispatcher.own_pids() | {os.getpid()}  # a coordinator's rounds: it closes them
        runs_unknown = not self.dispatcher.runs_known()
        for row, reason in state.book.close_runs_of_gone_processes(keep=lambda row: runs_unknown or row["pid"] in ours):
            event(logging.ERROR, row["source"], row["id"], "failed: %s", reason)
        busy: dict[str, dict[str, Any]] = {}
        for row in state.book.running():
            process = process_state(row["pid"]) if row["pid"] else "gone"
            if row["pid"] in ours or process == "gone":
                continue
            source = state.sources.get(row["source"])
            started = datetime.fromisoformat(row["started_at"])
            if process == "orphan" and source and utc_now() - started > source.timeout:
                kill_group(row["pid"], signal.SIGKILL)
                reason = f"timed out after {format_duration(source.timeout)}: the daemon killed the crawl"
                if state.book.close_run(row["id"], "timed_out", reason, only_if=("running",)):
                    event(logging.ERROR, row["source"], row["id"], "timed_out: %s", reason)
                self.taken_over.discard(row["id"])  # its end is the line just logged
                continue
            busy[row["source"]] = row
        with state.lock:
            for name in busy.keys() - state.elsewhere.keys():
                logger.info(
                    "source=%s run=%s is going in process %s, not started by this daemon",
                    name,
                    busy[name]["id"],
                    busy[name]["pid"],
                )
                self.taken_over.add(busy[name]["id"])
            state.elsewhere = busy

    def _log_taken_over_ends(self) -> None:
        """A crawl found going in a process this daemon did not start that has ended: one line with
        its status and counts, as for the daemon's own crawls. One that died without recording its
        end is closed as failed by `check`, which logs that instead."""
        for run_id in sorted(self.taken_over):
            row = self.state.book.run(run_id)
            if row["status"] == "running" and process_state(row["pid"]) != "gone":
                continue
            self.taken_over.discard(run_id)
            if row["status"] != "running":
                log_run(row)
