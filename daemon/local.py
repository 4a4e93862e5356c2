"""Local dispatch: due sources crawl in batches of child processes (runner.py) on this machine.

Sources due together that share a timeout crawl in one child process, so process start-up is paid
once per batch; at most `max_parallel` children run at once. Each child starts a session of its
own, so its whole process group (extraction workers too) can be killed. A supervisor thread per
child (daemon/supervise.py) waits for it and records what it could not.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from config.dates import utc_now
from config.durations import format_duration
from config.paths import PROJECT_ROOT, STAMP_FORMAT, crawl_log_path
from daemon.batch import Batch, crawl_command, signal_stop
from daemon.config import iso, write_whole
from daemon.jobs import next_batch
from daemon.logs import guarded
from daemon.processes import kill_group, process_state
from daemon.supervise import supervise

if TYPE_CHECKING:
    from collections.abc import Callable

    from daemon.config import DaemonConfig
    from daemon.dispatch import Waiter
    from daemon.state import DaemonState

logger = logging.getLogger(__name__)


class LocalCrawls:
    """The Dispatcher of a daemon that crawls: batches of due sources in child processes."""

    queued_reason = "the previous run is still waiting for a free crawl process"

    def __init__(self, state: DaemonState, command: Callable[[Batch, DaemonConfig], list[str]] = crawl_command) -> None:
        self.state = state
        self.config = state.config
        self.command = command
        self.batches: dict[int, Batch] = {}  # running crawl processes (guarded by state.lock)
        self.supervisors: list[threading.Thread] = []
        self._batch_ids = 0

    def start(self) -> None:
        return None

    def started_line(self) -> str:
        return f"at most {self.config.max_parallel} crawl processes of up to {self.config.batch_size} sources"

    def busy(self, name: str) -> str | None:
        for batch in self.batches.values():
            if name in batch.sources:
                return f"the previous run is still going (crawl process {batch.pid})"
        return None

    def tick(self) -> None:
        return None

    def running(self) -> int:
        return len(self.batches)

    def own_pids(self) -> set[int]:
        with self.state.lock:
            return {b.pid for b in self.batches.values() if b.pid}

    def runs_known(self) -> bool:
        return True

    # --- starting crawl processes --------------------------------------------------------------

    def dispatch(self) -> float:
        window = self.config.batch_window.total_seconds()
        queue = self.state.queue
        to_start: list[Batch] = []
        wait = 3600.0
        with self.state.lock:
            while queue and len(self.batches) + len(to_start) < self.config.max_parallel:
                waited = time.monotonic() - next(iter(queue.values()))
                if len(queue) < self.config.batch_size and waited < window:
                    wait = window - waited  # sources due within the window share the process
                    break
                timeouts = {name: self._timeout(name) for name in queue}
                names = next_batch(queue, timeouts, self.config.batch_size)
                for name in names:
                    del queue[name]
                self._batch_ids += 1
                batch = Batch(
                    id=self._batch_ids,
                    sources=names,
                    timeout=timeouts[names[0]],
                    sources_text=self.state.sources_text,  # read under the lock a reload takes
                )
                self.batches[batch.id] = batch
                to_start.append(batch)
        for batch in to_start:
            self._launch(batch)
        return wait

    def _timeout(self, name: str) -> timedelta:
        source = self.state.sources.get(name)
        return source.timeout if source else timedelta(hours=1)

    def _launch(self, batch: Batch) -> None:
        started = utc_now()
        batch.stamp = started.strftime(STAMP_FORMAT)
        batch.started_at = iso(started)
        log_dir = self.config.log_dir
        if len(batch.sources) == 1:
            batch.log_file = crawl_log_path(log_dir, batch.sources[0], batch.stamp)
        else:
            batch.log_file = log_dir / "batches" / f"{batch.stamp}-{batch.id}.log"
        try:
            batch.log_file.parent.mkdir(parents=True, exist_ok=True)
            for name, busy in self._running_elsewhere(batch.sources).items():
                batch.sources.remove(name)
                self.state.record(name, "skipped", busy)
            if batch.sources:
                write_whole(self.config.batch_sources(batch.id), batch.sources_text)
                batch.first_run_id = self.state.book.max_run_id()
                with open(batch.log_file, "ab") as log:
                    batch.process = subprocess.Popen(
                        self.command(batch, self.config),
                        cwd=PROJECT_ROOT,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: killed as a whole
                    )
        except Exception as exc:  # no process, so no supervisor: every run ends here
            logger.exception("batch %d: cannot start a crawl process", batch.id)
            self.config.batch_sources(batch.id).unlink(missing_ok=True)
            for name in batch.sources:
                reason = f"cannot start a crawl process: {exc}"
                guarded("recording a failed run", self.state.record, name, "failed", reason)
        if batch.process is None:
            with self.state.lock:
                self.batches.pop(batch.id, None)
            return
        batch.pid = batch.process.pid
        batch.started = time.monotonic()
        logger.info(
            "batch %d started: pid %d, %d sources (%s), timeout %s, log %s",
            batch.id,
            batch.pid,
            len(batch.sources),
            ", ".join(batch.sources),
            format_duration(batch.timeout),
            batch.log_file,
        )
        thread = threading.Thread(target=supervise, args=(self.state, self.batches, batch), name=f"batch-{batch.id}")
        self.supervisors = [t for t in self.supervisors if t.is_alive()]
        self.supervisors.append(thread)
        thread.start()

    def _running_elsewhere(self, names: list[str]) -> dict[str, str]:
        """Sources of `names` with a run going in a process this daemon did not start."""
        ours = self.own_pids()
        return {
            source: f"run {run_id} is still going in process {pid}, not started by this daemon"
            for run_id, source, pid in self.state.book.running_runs_of(names)
            if pid and pid not in ours and process_state(pid) != "gone"
        }

    # --- stopping ----------------------------------------------------------------------------

    def _idle(self) -> bool:
        with self.state.lock:
            return not self.batches

    def _running_batches(self) -> list[Batch]:
        with self.state.lock:
            return list(self.batches.values())

    def stop(self, wait: Waiter) -> None:
        """Running crawls get the grace period to finish, then SIGTERM, then SIGKILL."""
        running = self._running_batches()
        if running:
            logger.info(
                "stopping: waiting up to %s for %d crawl processes",
                format_duration(self.config.grace),
                len(running),
            )
        wait(self._idle, self.config.grace.total_seconds(), until_forced=True)
        for batch in self._running_batches():
            logger.info("batch %d: stopping pid %d (%s)", batch.id, batch.pid, ", ".join(batch.sources))
            signal_stop(batch, "shutdown")
        wait(self._idle, self.config.kill_wait.total_seconds())
        for batch in self._running_batches():
            logger.warning("batch %d: pid %d still running, killing its process group", batch.id, batch.pid)
            kill_group(batch.pid, signal.SIGKILL)
        for thread in self.supervisors:
            thread.join()
