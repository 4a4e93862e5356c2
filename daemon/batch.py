"""One crawl process of the daemon (a batch of sources): its command line, and stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from config.paths import PROJECT_ROOT
from daemon.processes import kill_group

if TYPE_CHECKING:
    import subprocess
    from datetime import timedelta
    from pathlib import Path

    from daemon.config import DaemonConfig


@dataclass
class Batch:
    """One crawl process: the sources it crawls and what became of it."""

    id: int
    sources: list[str]
    timeout: timedelta
    sources_text: str = ""  # the sources file as it was when the batch was formed
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
    """The child process: runner.py crawling the batch's sources from the batch's own sources file."""
    return [
        sys.executable,
        str(PROJECT_ROOT / "runner.py"),
        "--db",
        str(config.db.resolve()),
        "--sources",
        str(config.batch_sources(batch.id).resolve()),
        "--log-dir",
        str(config.log_dir.resolve()),
        "--stamp",
        batch.stamp,
        "--log-level",
        config.crawl_log_level,
        *batch.sources,
    ]


def signal_stop(batch: Batch, why: str) -> None:
    """SIGTERM the crawl: Scrapy stops gracefully and stores what it has."""
    if batch.killed_for is None:
        batch.killed_for = why
    with contextlib.suppress(ProcessLookupError):
        if not batch.exited.is_set():
            os.kill(batch.pid, signal.SIGTERM)


def terminate(batch: Batch, why: str, kill_wait: timedelta) -> None:
    """SIGTERM the crawl, then SIGKILL its whole group if it is still there after `kill_wait`."""
    signal_stop(batch, why)
    if not batch.exited.wait(kill_wait.total_seconds()):
        kill_group(batch.pid, signal.SIGKILL)
