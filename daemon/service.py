"""The daemon behind `scheduler.py run`: every source on its schedule, unattended, for months.

How it works (sources crawl in batches):

- APScheduler 3 (BackgroundScheduler, MemoryJobStore) holds one job per enabled source, id
  ``crawl:<name>``, rebuilt from the sources file at start; each job's first run follows from the
  source's last run in ``crawl_runs`` (daemon/jobs.py). A job does not crawl: it puts its source on the
  due queue, or records the run as skipped when the source's last run is still going.
- The main thread takes sources off the queue in batches: sources due together that share a
  timeout crawl in one child process (``runner.py``), so process start-up is paid once per batch.
  At most ``max_parallel`` children run at once. Each child starts a session of its own, so its
  whole process group (extraction workers too) can be killed.
- One supervisor thread per child waits for it, kills its process group at the batch's timeout,
  and records what the child could not: timed out, crashed, cancelled at shutdown. Children
  record their own runs (extensions.CrawlRunRecorder: 'running' with their pid, then ok, failed
  or cancelled).
- SIGTERM/SIGINT: no new runs; running crawls get `grace` to finish, then are stopped (a second
  signal stops them at once). SIGHUP: the sources file is read again and jobs are added, removed
  or rescheduled; a broken file keeps the old schedule and the error is logged.
- The `daemon` table holds a heartbeat (pid, last tick), `daemon_jobs` each source's next run.

With a Redis URL the daemon is the *coordinator* of a crawl shared by workers on several machines
(distributed/): at a source's due time it opens a round instead of starting a crawl process
(a `crawl_runs` row with the daemon's pid, and the seeds the spider's own `start()` builds, pushed
to the shared queue), and at each tick it closes the rounds the workers have finished (or that
ran past the source's timeout). No overlap holds as before: a source whose round is still open is
recorded `skipped`. A Redis outage keeps due sources queued until Redis is back.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import logging.handlers
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from archive.runs import RunBook, coordinator_runs_exist, heartbeat_row, process_state
from config.dates import utc_now
from config.paths import PROJECT_ROOT, STAMP_FORMAT, crawl_log_path
from config.sources import SourceConfigError, format_duration, load_sources
from daemon import polling
from daemon.jobs import build_jobs, job_id, make_trigger, next_batch, next_run_time, schedule_changed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from archive.runs import Database
    from config.sources import Source
    from distributed.coordinator import Coordinator

logger = logging.getLogger(__name__)

# Every run ends with one of these in crawl_runs.status ('running' while it goes).
FINAL_STATUSES = ("ok", "failed", "timed_out", "cancelled", "skipped")
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


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

    @property
    def lock_file(self) -> Path:
        return Path(f"{self.db}-daemon.lock")


class DaemonError(RuntimeError):
    """The daemon cannot start (another one runs on this database, ...)."""


class DaemonLogHandler(logging.handlers.RotatingFileHandler):
    """<log dir>/daemon.log (rotated at 10 MB, 5 kept), written only once this process holds the
    daemon's lock (`open_daemon_log`): a second daemon, refused because one already runs on the
    database, says so on its own stderr and never touches the running daemon's log."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, maxBytes=10_000_000, backupCount=5, encoding="utf-8", delay=True)
        self.holding_lock = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.holding_lock:
            super().emit(record)


def setup_logging(log_dir: Path, level: str = "INFO") -> None:
    """One line per event, to stderr, and to <log dir>/daemon.log once the daemon holds its lock."""
    log_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT)
    formatter.converter = time.gmtime
    root = logging.getLogger()
    root.setLevel(level)
    for handler in (logging.StreamHandler(sys.stderr), DaemonLogHandler(log_dir / "daemon.log")):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    # APScheduler logs two lines per job run at INFO; our own lines say more. Keep its warnings.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def open_daemon_log() -> None:
    """This process holds the daemon's lock: its daemon.log handler (setup_logging) may write."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, DaemonLogHandler):
            handler.holding_lock = True


def event(level: int, source: str, run_id: int | None, message: str, *args: Any) -> None:
    """One log line about one source: `source=NAME run=ID message`."""
    logger.log(level, "source=%s run=%s " + message, source, run_id if run_id else "-", *args)


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


# --- processes ------------------------------------------------------------------------------


def kill_group(pid: int, sig: int) -> bool:
    """Send `sig` to the process group led by `pid`; False if there is none left."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # not ours (any more): leave it alone
        return False
    return True


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


# --- batches ----------------------------------------------------------------------------------


@dataclass
class Batch:
    """One crawl process: the sources it crawls and what became of it."""

    id: int
    sources: list[str]
    timeout: timedelta
    stamp: str = ""
    started_at: str = ""  # ISO UTC, for rows the daemon writes itself
    started: float = 0.0  # monotonic
    first_run_id: int = 0  # rows of this batch have ids above this ...
    pid: int = 0  # ... and this pid
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    killed_for: str | None = None  # 'timeout' | 'shutdown' once the daemon stops it
    exited: threading.Event = field(default_factory=threading.Event)


def crawl_command(batch: Batch, config: DaemonConfig) -> list[str]:
    """The child process: runner.py crawling the batch's sources from the snapshot."""
    return [
        sys.executable,
        str(PROJECT_ROOT / "runner.py"),
        "--db",
        str(config.db.resolve()),
        "--sources",
        str(config.snapshot.resolve()),
        "--log-dir",
        str(config.log_dir.resolve()),
        "--stamp",
        batch.stamp,
        "--log-level",
        config.crawl_log_level,
        *batch.sources,
    ]


class Daemon:
    def __init__(
        self, config: DaemonConfig, *, command: Callable[[Batch, DaemonConfig], list[str]] = crawl_command
    ) -> None:
        self.config = config
        self.command = command
        self.book = RunBook(config.db)
        self.sources: dict[str, Source] = {}
        self.lock = threading.Lock()  # guards queue, batches, elsewhere, stopping
        self.queue: dict[str, float] = {}  # source -> monotonic time it fell due; oldest first
        self.batches: dict[int, Batch] = {}  # running crawl processes
        self.elsewhere: dict[str, dict[str, Any]] = {}  # source -> its run going in a process not ours
        self.taken_over: set[int] = set()  # ids of those runs, whose end is logged (main thread only)
        self.coordinator: Coordinator | None = None  # with a Redis URL (main thread only)
        self.rounds: dict[str, int] = {}  # source -> run id of its open round (shared crawl)
        self.rounds_taken_over = False  # the open rounds were read from Redis once
        self.stopping = False
        self.supervisors: list[threading.Thread] = []
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},  # jobs only queue: quick
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._batch_ids = 0
        self._next_prune = 0.0
        self._saved_schedule: dict[str, tuple[str, str | None]] = {}
        self._lock_fd: int | None = None
        # Set from signal handlers: plain flags and a byte down a pipe (nothing that takes a lock).
        self._stop_requested = False
        self._force_stop = False
        self._reload_requested = False
        self._stop_logged = False
        self._signals: list[int] = []  # received, not logged yet: a handler must not log (_log_signals)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

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
        self.sources = {s.name: s for s in sources}
        if self.config.redis_url:
            self.start_coordinating()
        self.check_elsewhere()  # rows left 'running' by a killed daemon or machine
        now = utc_now()
        last = self.book.last_started()
        for spec in build_jobs([polling.effective(s, self.book.db) for s in sources], last, now):
            self.scheduler.add_job(
                self.due,
                trigger=spec.trigger,
                args=[spec.source],
                id=spec.id,
                name=spec.source,
                next_run_time=spec.next_run_time,
            )
        enabled = sum(s.enabled for s in sources)
        self.book.heartbeat_start(
            pid=os.getpid(),
            tick_s=self.config.tick.total_seconds(),
            sources_file=str(self.config.sources.resolve()),
            sources=enabled,
        )
        self.scheduler.start()
        self.save_schedule()
        if self.coordinator is not None:
            logger.info(
                "daemon started: pid %d, %d sources (%d enabled) from %s, database %s, coordinating "
                "workers through Redis at %s",
                os.getpid(),
                len(sources),
                enabled,
                self.config.sources,
                self.config.db,
                self.coordinator.link.shown,
            )
            return
        logger.info(
            "daemon started: pid %d, %d sources (%d enabled) from %s, database %s, at most %d crawl "
            "processes of up to %d sources",
            os.getpid(),
            len(sources),
            enabled,
            self.config.sources,
            self.config.db,
            self.config.max_parallel,
            self.config.batch_size,
        )

    def serve(self) -> None:
        next_tick = time.monotonic() + self.config.tick.total_seconds()
        while not self._stop_requested:
            self._log_signals()
            if self._reload_requested:
                self._reload_requested = False
                guarded("reloading the sources file", self.reload)
            wait = guarded("starting crawls", self.dispatch, default=1.0)
            if time.monotonic() >= next_tick:
                guarded("housekeeping", self.housekeeping)
                next_tick = time.monotonic() + self.config.tick.total_seconds()
            self._sleep(min(wait, next_tick - time.monotonic()))

    def stop(self) -> None:
        """No new runs; let running crawls finish within the grace period, then stop them."""
        self._log_signals()
        with self.lock:
            self.stopping = True
            never_started, self.queue = list(self.queue), {}
            running = list(self.batches.values())
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for name in never_started:
            guarded(
                "recording a cancelled run",
                self._record,
                name,
                "cancelled",
                "the daemon stopped before the run started",
            )
        if running:
            logger.info(
                "stopping: waiting up to %s for %d crawl processes",
                format_duration(self.config.grace),
                len(running),
            )
        self._wait_for_batches(self.config.grace.total_seconds(), until_forced=True)
        with self.lock:
            running = list(self.batches.values())
        for batch in running:
            logger.info("batch %d: stopping pid %d (%s)", batch.id, batch.pid, ", ".join(batch.sources))
            self._signal_stop(batch, "shutdown")
        self._wait_for_batches(self.config.kill_wait.total_seconds())
        with self.lock:
            running = list(self.batches.values())
        for batch in running:
            logger.warning("batch %d: pid %d still running, killing its process group", batch.id, batch.pid)
            kill_group(batch.pid, signal.SIGKILL)
        for thread in self.supervisors:
            thread.join()
        if self.coordinator is not None:
            if self.rounds:
                logger.info(
                    "%d shared rounds stay open (%s): the workers finish them; the daemon closes them when it is back",
                    len(self.rounds),
                    ", ".join(self.rounds),
                )
            self.coordinator.close()
        guarded("saving the schedule", self.save_schedule)
        guarded("recording the stop", self.book.heartbeat_stop)
        logger.info("daemon stopped")
        self.book.close()
        self._release_lock()
        wake_r, wake_w, self._wake_r, self._wake_w = self._wake_r, self._wake_w, -1, -1
        os.close(wake_r)
        os.close(wake_w)

    def _wait_for_batches(self, seconds: float, *, until_forced: bool = False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until_forced and self._force_stop):
            self._log_signals()
            with self.lock:
                if not self.batches:
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
        tmp = self.config.snapshot.with_name(self.config.snapshot.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.config.snapshot)  # a crawl starting now reads the old or the new file

    # --- due runs --------------------------------------------------------------------------------

    def due(self, name: str) -> None:
        """The APScheduler job of every source: queue the run, or record it as skipped."""
        with self.lock:
            if self.stopping:
                return
            busy = self._busy(name)
            if busy is None:
                self.queue[name] = time.monotonic()
        if busy is None:
            logger.debug("source=%s run=- due, queued", name)
            self._wake()
            return
        self._record(name, "skipped", busy)

    def _record(self, name: str, status: str, reason: str) -> None:
        """Record a run that never had a crawl process, and log it."""
        run_id = self.book.record_run(name, status, reason)
        event(logging.ERROR if status == "failed" else logging.INFO, name, run_id, "%s: %s", status, reason)

    def _busy(self, name: str) -> str | None:
        """Why `name` cannot run now, or None. Called with the lock held."""
        if name in self.queue:
            if self.coordinator is not None:
                return "the previous run is still waiting for Redis to queue its round"
            return "the previous run is still waiting for a free crawl process"
        if name in self.rounds:
            return f"the previous round (run {self.rounds[name]}) is still being crawled by the workers"
        for batch in self.batches.values():
            if name in batch.sources:
                return f"the previous run is still going (crawl process {batch.pid})"
        row = self.elsewhere.get(name)
        if row is not None and process_state(row["pid"]) != "gone":
            return f"run {row['id']} is still going in process {row['pid']}, not started by this daemon"
        self.elsewhere.pop(name, None)  # it ended; a crashed one is recorded at the next tick
        return None

    def dispatch(self) -> float:
        """Start what can start; returns how long the main loop may sleep before looking again."""
        if self.coordinator is not None:
            return self.open_due_rounds()
        window = self.config.batch_window.total_seconds()
        to_start: list[Batch] = []
        wait = 3600.0
        with self.lock:
            while self.queue and len(self.batches) + len(to_start) < self.config.max_parallel:
                waited = time.monotonic() - next(iter(self.queue.values()))
                if len(self.queue) < self.config.batch_size and waited < window:
                    wait = window - waited  # sources due within the window share the process
                    break
                timeouts = {name: self._timeout(name) for name in self.queue}
                names = next_batch(self.queue, timeouts, self.config.batch_size)
                for name in names:
                    del self.queue[name]
                self._batch_ids += 1
                batch = Batch(id=self._batch_ids, sources=names, timeout=timeouts[names[0]])
                self.batches[batch.id] = batch
                to_start.append(batch)
        for batch in to_start:
            self._launch(batch)
        return wait

    def _timeout(self, name: str) -> timedelta:
        source = self.sources.get(name)
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
                self._record(name, "skipped", busy)
            if batch.sources:
                batch.first_run_id = self.book.max_run_id()
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
            for name in batch.sources:
                guarded("recording a failed run", self._record, name, "failed", f"cannot start a crawl process: {exc}")
        if batch.process is None:
            with self.lock:
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
        thread = threading.Thread(target=self._supervise, args=(batch,), name=f"batch-{batch.id}")
        self.supervisors = [t for t in self.supervisors if t.is_alive()]
        self.supervisors.append(thread)
        thread.start()

    def _running_elsewhere(self, names: list[str]) -> dict[str, str]:
        """Sources of `names` with a run going in a process this daemon did not start."""
        with self.lock:
            ours = {b.pid for b in self.batches.values() if b.pid}
        rows = self.book.running_runs_of(names)
        return {
            source: f"run {run_id} is still going in process {pid}, not started by this daemon"
            for run_id, source, pid in rows
            if pid and pid not in ours and process_state(pid) != "gone"
        }

    # --- supervising a crawl process -------------------------------------------------------------

    def _supervise(self, batch: Batch) -> None:
        returncode: int | None = None
        try:
            returncode, usage = self._wait(batch)
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
                self._finish(batch, returncode)
            except Exception:
                logger.exception("batch %d: recording its runs failed", batch.id)
            finally:
                with self.lock:
                    self.batches.pop(batch.id, None)
                self.book.close()
                self._wake()

    def _wait(self, batch: Batch) -> tuple[int, Any]:
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
                    threading.Thread(target=self._terminate, args=(batch, "timeout"), name=f"kill-{batch.id}").start()
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

    def _signal_stop(self, batch: Batch, why: str) -> None:
        """SIGTERM the crawl: Scrapy stops gracefully and stores what it has."""
        if batch.killed_for is None:
            batch.killed_for = why
        with contextlib.suppress(ProcessLookupError):
            if not batch.exited.is_set():
                os.kill(batch.pid, signal.SIGTERM)

    def _terminate(self, batch: Batch, why: str) -> None:
        """SIGTERM the crawl, then SIGKILL its whole group if it is still there after `kill_wait`."""
        self._signal_stop(batch, why)
        if not batch.exited.wait(self.config.kill_wait.total_seconds()):
            kill_group(batch.pid, signal.SIGKILL)

    def _finish(self, batch: Batch, returncode: int | None) -> None:
        """Give every source of the batch a final status, and log it."""
        rows = {row["source"]: row for row in self.book.runs_of(batch.pid, batch.first_run_id)}
        if batch.killed_for == "timeout":
            status = "timed_out"
            reason = f"timed out after {format_duration(batch.timeout)}: the daemon killed the crawl"
            reopen = ("running", "cancelled")  # our SIGTERM made Scrapy record 'cancelled'
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
                run_id = self.book.record_run(
                    name,
                    status,
                    early,
                    started_at=batch.started_at,
                    pid=batch.pid,
                    log_file=str(batch.log_file),
                )
                event(logging.INFO if status == "cancelled" else logging.ERROR, name, run_id, "%s: %s", status, early)
                continue
            if row["status"] in reopen:
                self.book.close_run(row["id"], status, reason, only_if=reopen)
            self._log_run(self.book.run(row["id"]))
        self._adapt(batch.sources)

    def _adapt(self, names: Iterable[str]) -> None:
        """Adaptive sources: decide the next interval from the run just recorded, and reschedule."""
        for name in names:
            source = self.sources.get(name)
            if source is None or not source.enabled or not polling.is_adaptive(source):
                continue
            decision = guarded(f"adaptive polling of {name}", polling.plan, self.book.db, source)
            if decision is None or self.scheduler.get_job(job_id(name)) is None:
                continue
            trigger = make_trigger(replace(source, every=decision.interval))
            self.scheduler.reschedule_job(job_id(name), trigger=trigger)
            event(logging.INFO, name, None, "polling every %s: %s", format_duration(decision.interval), decision.reason)

    def _log_run(self, row: dict[str, Any]) -> None:
        level = logging.INFO if row["status"] in ("ok", "cancelled") else logging.ERROR
        event(
            level,
            row["source"],
            row["id"],
            "%s in %.0fs: %d new, %d updated, %d failures, %d requests (%s; log %s)",
            row["status"],
            row["duration_s"] or 0,
            row["articles_new"] or 0,
            row["articles_updated"] or 0,
            row["failures"] or 0,
            row["requests"] or 0,
            row["finish_reason"],
            row["log_file"],
        )

    # --- coordinating a shared crawl (with a Redis URL) ---------------------------------------------

    def start_coordinating(self) -> None:
        """Connect to Redis and take over the rounds a previous daemon left open."""
        from distributed.coordinator import Coordinator

        self.coordinator = Coordinator(
            self.config.redis_url,
            self.config.db,
            self.config.snapshot,
            grace=self.config.round_grace,
            log_file=str(self.config.log_dir / "daemon.log"),
        )
        self.take_over_rounds()

    def take_over_rounds(self) -> None:
        """Adopt the open rounds' runs (a previous daemon's) and publish the validators; until this
        has worked once (Redis may be down at start), runs whose process is gone are not failed:
        they may be rounds the workers are still crawling."""
        from distributed.redis_link import RedisDown

        assert self.coordinator is not None
        try:
            self.coordinator.publish_validators()
            for run_id in self.coordinator.adopt():
                logger.info("run=%s: a shared round a previous daemon opened; closed when the workers finish", run_id)
        except RedisDown:
            logger.warning("Redis is unavailable: open rounds are taken over once it is back")
            return
        with self.lock:
            self.rounds = {r.source: r.run_id for r in self.coordinator.rounds.values()}
        self.rounds_taken_over = True

    def open_due_rounds(self) -> float:
        """Open a round of each due source: its seeds go to the workers' queue. While Redis is down
        the sources stay queued; returns how long the main loop may sleep."""
        from distributed.redis_link import RedisDown

        assert self.coordinator is not None
        with self.lock:
            due = [name for name in self.queue if name in self.sources]
        for name in due:
            source = self.sources[name]
            try:
                run_id, what = self.coordinator.open_round(source, source.timeout)
            except RedisDown:
                return self.coordinator.link.wait_time()
            except Exception as exc:  # a broken seed (or database): this run fails, the daemon goes on
                logger.exception("source=%s: cannot open a round", name)
                with self.lock:
                    self.queue.pop(name, None)
                self._record(name, "failed", f"cannot open a round: {exc}")
                continue
            with self.lock:
                self.queue.pop(name, None)
                if run_id is not None:
                    self.rounds[name] = run_id
            if run_id is None:
                self._record(name, "skipped", what)
            else:
                event(logging.INFO, name, run_id, "%s", what)
        return 3600.0

    def close_rounds(self) -> None:
        """Close the rounds the workers finished or that ran past their timeout (each tick)."""
        from distributed.redis_link import RedisDown

        assert self.coordinator is not None
        if not self.rounds_taken_over:
            self.take_over_rounds()
            return
        timeouts = {name: source.timeout for name, source in self.sources.items()}
        try:
            closed = self.coordinator.check_rounds(timeouts)
            self.coordinator.publish_validators()  # only if Redis lost them
        except RedisDown:
            return  # logged by the link; rounds are looked at again next tick
        with self.lock:
            self.rounds = {r.source: r.run_id for r in self.coordinator.rounds.values()}
        for done in closed:
            self._log_run(self.book.run(done.run_id))
        self._adapt(done.source for done in closed)

    # --- housekeeping ----------------------------------------------------------------------------

    def housekeeping(self) -> None:
        if self.coordinator is not None:
            self.close_rounds()
        with self.lock:
            # Crawl processes; a coordinator has none, and counts its open rounds instead.
            running, queued = len(self.batches) + len(self.rounds), len(self.queue)
        self.book.heartbeat(running=running, queued=queued, sources=len(self.scheduler.get_jobs()))
        self.check_elsewhere()
        self.save_schedule()
        self.prune_logs()

    def check_elsewhere(self) -> None:
        """Runs left 'running' by processes this daemon did not start.

        Gone (crashed, killed with the daemon or the machine): the run failed. Alive: the source
        is busy until it ends. An orphan crawl of a killed daemon past its source's timeout is
        killed, as its own daemon would have done.
        """
        self._log_taken_over_ends()
        with self.lock:
            ours = {b.pid for b in self.batches.values() if b.pid}
        ours.add(os.getpid())  # shared rounds: the coordinator closes them
        # Until the rounds are taken over (Redis may be down), a run whose process is gone may be a
        # round a previous daemon opened: known once Redis answers.
        rounds_unknown = self.coordinator is not None and not self.rounds_taken_over
        for row, reason in self.book.close_runs_of_gone_processes(
            keep=lambda row: rounds_unknown or row["pid"] in ours
        ):
            event(logging.ERROR, row["source"], row["id"], "failed: %s", reason)
        busy: dict[str, dict[str, Any]] = {}
        for row in self.book.running():
            state = process_state(row["pid"]) if row["pid"] else "gone"
            if row["pid"] in ours or state == "gone":
                continue
            source = self.sources.get(row["source"])
            started = datetime.fromisoformat(row["started_at"])
            if state == "orphan" and source and utc_now() - started > source.timeout:
                kill_group(row["pid"], signal.SIGKILL)
                reason = f"timed out after {format_duration(source.timeout)}: the daemon killed the crawl"
                if self.book.close_run(row["id"], "timed_out", reason, only_if=("running",)):
                    event(logging.ERROR, row["source"], row["id"], "timed_out: %s", reason)
                self.taken_over.discard(row["id"])  # its end is the line just logged
                continue
            busy[row["source"]] = row
        with self.lock:
            for name in busy.keys() - self.elsewhere.keys():
                logger.info(
                    "source=%s run=%s is going in process %s, not started by this daemon",
                    name,
                    busy[name]["id"],
                    busy[name]["pid"],
                )
                self.taken_over.add(busy[name]["id"])
            self.elsewhere = busy

    def _log_taken_over_ends(self) -> None:
        """A crawl found going in a process this daemon did not start (a killed daemon's) that has
        ended: one line with its status and counts, as for the daemon's own crawls. One that died
        without recording its end is closed as failed by check_elsewhere, which logs that instead."""
        for run_id in sorted(self.taken_over):
            row = self.book.run(run_id)
            if row["status"] == "running" and process_state(row["pid"]) != "gone":
                continue
            self.taken_over.discard(run_id)
            if row["status"] != "running":
                self._log_run(row)

    def save_schedule(self) -> None:
        """Write each source's next run to daemon_jobs when it changed (for `status`, Datasette)."""
        jobs = {
            job.name: (
                self.sources[job.name].schedule if job.name in self.sources else "",
                iso(job.next_run_time) if job.next_run_time else None,
            )
            for job in self.scheduler.get_jobs()
        }
        changed = {name: v for name, v in jobs.items() if self._saved_schedule.get(name) != v}
        removed = self._saved_schedule.keys() - jobs.keys()
        if not self._saved_schedule:
            removed = self.book.scheduled_sources() - jobs.keys()
        if changed or removed:
            self.book.save_schedule(changed, removed)
        self._saved_schedule = jobs

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

    # --- reload ----------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the sources file again and update the jobs; a broken file changes nothing."""
        try:
            sources, text = read_sources(self.config.sources)
        except SourceConfigError as exc:
            logger.error("reload failed, keeping the schedule of %d sources: %s", len(self.sources), exc)
            return
        new = {s.name: s for s in sources}
        old = self.sources
        now = utc_now()
        last = self.book.last_started()
        for name in old.keys() - new.keys():
            self._remove_job(name)
            event(logging.INFO, name, None, "removed from the schedule")
        for name, source in new.items():
            before = old.get(name)
            if before is not None and not schedule_changed(before, source):
                if before != source:
                    event(logging.INFO, name, None, "settings changed; they apply from its next run")
                continue
            self._remove_job(name)
            if source.enabled:
                source = polling.effective(source, self.book.db)
                when = next_run_time(source, last.get(name), now)
                self.scheduler.add_job(
                    self.due,
                    trigger=make_trigger(source),
                    args=[name],
                    id=job_id(name),
                    name=name,
                    next_run_time=when,
                )
                what = "added" if before is None else "rescheduled"
                event(logging.INFO, name, None, "%s: %s, next run %s", what, source.schedule, iso(when))
            else:
                event(logging.INFO, name, None, "disabled")
        with self.lock:
            self.sources = new
            for name in [n for n in self.queue if n not in new or not new[n].enabled]:
                del self.queue[name]  # never started: nothing to record
        self._write_snapshot(text)
        self.book.heartbeat(sources=sum(s.enabled for s in sources))
        self.save_schedule()
        logger.info("reloaded %s: %d sources", self.config.sources, len(new))

    def _remove_job(self, name: str) -> None:
        if self.scheduler.get_job(job_id(name)) is not None:
            self.scheduler.remove_job(job_id(name))


def guarded(what: str, function: Callable[..., Any], *args: Any, default: Any = None) -> Any:
    """Call `function`; an error is logged, never allowed to stop the daemon (a locked or full
    disk, say, may well be gone at the next tick)."""
    try:
        return function(*args)
    except Exception:
        logger.exception("%s failed; carrying on", what)
        return default


def install_signal_handlers(daemon: Daemon) -> None:
    """SIGTERM and SIGINT stop the daemon (twice: at once), SIGHUP reloads the sources file."""
    signal.signal(signal.SIGTERM, lambda signum, _: daemon.request_stop(signum))
    signal.signal(signal.SIGINT, lambda signum, _: daemon.request_stop(signum))
    signal.signal(signal.SIGHUP, lambda signum, _: daemon.request_reload(signum))


# --- what `scheduler.py status` reads -----------------------------------------------------------


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
