"""The daemon behind `scheduler.py run`: every source on its schedule, unattended, for months.

How it works (STYLE.md 2.5, option A, with batching):

- APScheduler 3 holds one job per enabled source (daemon/schedule.py); each job's first run follows
  from the source's last run in ``crawl_runs`` (daemon/jobs.py). A job does not crawl: it puts its
  source on the due queue, or records the run as skipped when the source's last run is still going.
- The main loop (here) hands the due sources to a dispatcher: local crawl processes in batches
  (daemon/local.py), or, with a Redis URL, rounds of a crawl shared by workers (daemon/rounds.py).
  Children record their own runs (crawl_runs: 'running' with their pid, then ok, failed or
  cancelled); the daemon records what they could not.
- SIGTERM/SIGINT: no new runs; running crawls get `grace` to finish, then are stopped (a second
  signal stops them at once). SIGHUP: the sources file is read again and jobs are added, removed
  or rescheduled; a broken file keeps the old schedule and the error is logged.
- The `daemon` table holds a heartbeat (pid, last tick), `daemon_jobs` each source's next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import signal
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from config.durations import format_duration
from config.sources import SourceConfigError, load_sources
from daemon.batch import crawl_command
from daemon.config import DaemonError, write_whole
from daemon.elsewhere import Elsewhere
from daemon.health import SourceHealth
from daemon.local import LocalCrawls
from daemon.logs import guarded, open_daemon_log
from daemon.processes import process_state
from daemon.schedule import Schedule
from daemon.state import DaemonState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from config.sources import Source
    from daemon.batch import Batch
    from daemon.config import DaemonConfig
    from daemon.dispatch import Dispatcher

logger = logging.getLogger(__name__)


def read_sources(path: Path) -> tuple[list[Source], str]:
    """Load and validate the sources file; also return the exact text that was validated."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise SourceConfigError(f"{path.name}: not UTF-8 text: {exc}") from None
    # Validate a private copy (same file name, so errors read the same), never a file that
    # may change between validating it and handing it to the crawls.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(text, encoding="utf-8")
        return load_sources(copy), text


def make_dispatcher(
    state: DaemonState, command: Callable[[Batch, DaemonConfig], list[str]] = crawl_command
) -> Dispatcher:
    """Rounds of a shared crawl with a Redis URL, else local crawl processes."""
    if state.config.redis_url:
        from daemon.rounds import SharedRounds  # Redis only when coordinating

        return SharedRounds(state)
    return LocalCrawls(state, command)


class Daemon:
    def __init__(
        self, config: DaemonConfig, *, command: Callable[[Batch, DaemonConfig], list[str]] = crawl_command
    ) -> None:
        self.config = config
        self.state = DaemonState(config, wake=self._wake)
        self.book = self.state.book
        self.dispatcher = make_dispatcher(self.state, command)
        self.schedule = Schedule(self.state, self.due)
        self.health = SourceHealth(self.state)
        self.state.runs_ended = self._runs_ended
        self.elsewhere = Elsewhere(self.state, self.dispatcher)
        self._next_prune = 0.0
        self._lock_fd: int | None = None
        # Set from signal handlers: plain flags and a byte down a pipe (nothing that takes a lock).
        self._stop_requested = False
        self._force_stop = False
        self._reload_requested = False
        self._stop_logged = False
        self._signals: list[int] = []  # received, not logged yet: a handler must not log (_log_signals)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def _runs_ended(self, names: Iterable[str]) -> None:
        """Runs of these sources ended: adaptive polling picks their next interval, health judges them."""
        names = list(names)
        self.schedule.adapt(names)
        self.health.runs_ended(names)

    @property
    def queue(self) -> dict[str, float]:
        """The due sources not started yet, oldest first."""
        return self.state.queue

    # --- control, safe to call from signal handlers and other threads -------------------------

    def request_stop(self, signum: int | None = None) -> None:
        if self._stop_requested:
            self._force_stop = True  # a second signal: stop the crawls now
        self._stop_requested = True
        if signum is not None:
            self._signals.append(signum)
        self._wake()

    def request_reload(self, signum: int | None = None) -> None:
        self._reload_requested = True
        if signum is not None:
            self._signals.append(signum)
        self._wake()

    def _log_signals(self) -> None:
        """One line per signal received, logged from the main loop: a signal handler that logs can
        deadlock, interrupting the same thread inside a logging call that holds the handler's lock."""
        while self._signals:
            signum = self._signals.pop(0)
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                logger.info("received SIGHUP: reading %s again", self.config.sources)
            elif not self._stop_logged:
                self._stop_logged = True
                logger.info("received %s: stopping (a second signal stops the running crawls at once)", name)
            else:
                logger.info("received %s again: stopping the running crawls now", name)

    def _wake(self) -> None:
        if self._wake_w < 0:  # stopped: the pipe is closed (and its number may be reused)
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def _sleep(self, seconds: float) -> None:
        """Sleep until woken or `seconds` pass."""
        try:
            ready, _, _ = select.select([self._wake_r], [], [], max(0.0, seconds))
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            return
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)

    # --- life cycle -----------------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until asked to stop, stop cleanly. Returns the exit status (0)."""
        self.start()
        try:
            self.serve()
        finally:
            self.stop()
        return 0

    def start(self) -> None:
        sources, text = read_sources(self.config.sources)  # a broken file stops the start here
        self._take_lock()
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        self._write_snapshot(text)
        self.state.sources, self.state.sources_text = {s.name: s for s in sources}, text
        self.dispatcher.start()
        self.elsewhere.check()  # rows left 'running' by a killed daemon or machine
        enabled = sum(s.enabled for s in sources)
        self.schedule.start(sources)
        self.book.heartbeat_start(
            pid=os.getpid(),
            tick_s=self.config.tick.total_seconds(),
            sources_file=str(self.config.sources.resolve()),
            sources=enabled,
        )
        self.schedule.save()
        logger.info(
            "daemon started: pid %d, %d sources (%d enabled) from %s, database %s, %s",
            os.getpid(),
            len(sources),
            enabled,
            self.config.sources,
            self.config.db,
            self.dispatcher.started_line(),
        )

    def serve(self) -> None:
        next_tick = time.monotonic() + self.config.tick.total_seconds()
        while not self._stop_requested:
            self._log_signals()
            if self._reload_requested:
                self._reload_requested = False
                guarded("reloading the sources file", self.reload)
            wait = guarded("starting crawls", self.dispatcher.dispatch, default=1.0)
            if time.monotonic() >= next_tick:
                guarded("housekeeping", self.housekeeping)
                next_tick = time.monotonic() + self.config.tick.total_seconds()
            self._sleep(min(wait, next_tick - time.monotonic()))

    def stop(self) -> None:
        """No new runs; let running crawls finish within the grace period, then stop them."""
        self._log_signals()
        with self.state.lock:
            self.state.stopping = True
            never_started, self.state.queue = list(self.state.queue), {}
        self.schedule.shutdown()
        for name in never_started:
            reason = "the daemon stopped before the run started"
            guarded("recording a cancelled run", self.state.record, name, "cancelled", reason)
        self.dispatcher.stop(self._wait_until)
        guarded("saving the schedule", self.schedule.save)
        guarded("recording the stop", self.book.heartbeat_stop)
        logger.info("daemon stopped")
        self.book.close()
        self._release_lock()
        wake_r, wake_w, self._wake_r, self._wake_w = self._wake_r, self._wake_w, -1, -1
        os.close(wake_r)
        os.close(wake_w)

    def _wait_until(self, done: Callable[[], bool], seconds: float, *, until_forced: bool = False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until_forced and self._force_stop):
            self._log_signals()
            if done():
                return
            self._sleep(min(1.0, deadline - time.monotonic()))
        self._log_signals()  # the second signal that ended the wait

    # --- the lock file and the sources snapshot --------------------------------------------------

    def _take_lock(self) -> None:
        path = self.config.lock_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonError(f"another daemon (pid {other}) is running on {self.config.db}; stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd  # held (and so locked) until this process exits, however it exits
        open_daemon_log()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write_snapshot(self, text: str) -> None:
        write_whole(self.config.snapshot, text)  # the round seeds of a shared crawl read it

    # --- due runs --------------------------------------------------------------------------------

    def due(self, name: str) -> None:
        """The APScheduler job of every source: queue the run, or record it as skipped."""
        with self.state.lock:
            if self.state.stopping:
                return
            busy = self._busy(name)
            if busy is None:
                self.state.queue[name] = time.monotonic()
        if busy is None:
            logger.debug("source=%s run=- due, queued", name)
            self._wake()
            return
        self.state.record(name, "skipped", busy)

    def _busy(self, name: str) -> str | None:
        """Why `name` cannot run now, or None. Called with the lock held."""
        own = self.dispatcher.busy(name)  # first: a coordinator's source stays queued while its round opens
        if own is not None:
            return own
        if name in self.state.queue:
            return self.dispatcher.queued_reason
        row = self.state.elsewhere.get(name)
        if row is not None and process_state(row["pid"]) != "gone":
            return f"run {row['id']} is still going in process {row['pid']}, not started by this daemon"
        self.state.elsewhere.pop(name, None)  # it ended; a crashed one is recorded at the next tick
        return None

    # --- housekeeping and reload ------------------------------------------------------------------

    def housekeeping(self) -> None:
        self.dispatcher.tick()
        with self.state.lock:
            # Crawl processes; a coordinator has none, and counts its open rounds instead.
            running, queued = self.dispatcher.running(), len(self.state.queue)
        self.book.heartbeat(running=running, queued=queued, sources=self.schedule.jobs())
        self.elsewhere.check()
        self.schedule.save()
        self.prune_logs()

    def prune_logs(self) -> None:
        """Delete per-crawl logs older than `keep_logs` (daemon.log rotates by itself)."""
        now = time.time()
        if now < self._next_prune:
            return
        self._next_prune = now + 3600
        cutoff = now - self.config.keep_logs.total_seconds()
        removed = 0
        for folder in self.config.log_dir.iterdir():
            if not folder.is_dir():
                continue
            for file in folder.glob("*.log"):
                with contextlib.suppress(FileNotFoundError):
                    if file.stat().st_mtime < cutoff:
                        file.unlink()
                        removed += 1
        if removed:
            logger.info("deleted %d crawl logs older than %s", removed, format_duration(self.config.keep_logs))

    def reload(self) -> None:
        """Read the sources file again and update the jobs; a broken file changes nothing."""
        try:
            sources, text = read_sources(self.config.sources)
        except SourceConfigError as exc:
            logger.error("reload failed, keeping the schedule of %d sources: %s", len(self.state.sources), exc)
            return
        new = {s.name: s for s in sources}
        self.schedule.apply(self.state.sources, new)
        with self.state.lock:
            self.state.sources, self.state.sources_text = new, text
            for name in [n for n in self.state.queue if n not in new or not new[n].enabled]:
                del self.state.queue[name]  # never started: nothing to record
        self._write_snapshot(text)
        self.book.heartbeat(sources=sum(s.enabled for s in sources))
        self.schedule.save()
        logger.info("reloaded %s: %d sources", self.config.sources, len(new))


def install_signal_handlers(daemon: Daemon) -> None:
    """SIGTERM and SIGINT stop the daemon (twice: at once), SIGHUP reloads the sources file."""
    signal.signal(signal.SIGTERM, lambda signum, _: daemon.request_stop(signum))
    signal.signal(signal.SIGINT, lambda signum, _: daemon.request_stop(signum))
    signal.signal(signal.SIGHUP, lambda signum, _: daemon.request_reload(signum))
