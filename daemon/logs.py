"""The daemon's log: one line per event, to stderr and <log dir>/daemon.log; errors in its own
housekeeping are logged, never allowed to stop it."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

logger = logging.getLogger("daemon")

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


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


def log_run(row: dict[str, Any]) -> None:
    """The line that ends a run: its status, counts and log file."""
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


def guarded(what: str, function: Callable[..., Any], *args: Any, default: Any = None) -> Any:
    """Call `function`; an error is logged, never allowed to stop the daemon (a locked or full
    disk, say, may well be gone at the next tick)."""
    try:
        return function(*args)
    except Exception:
        logger.exception("%s failed; carrying on", what)
        return default
