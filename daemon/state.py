"""What the daemon's parts share: the sources, the due queue and the runs going elsewhere, under
one lock, with the run book and a way to wake the main loop."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archive.runs import RunBook
from daemon.logs import event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from config.sources import Source
    from daemon.config import DaemonConfig


def _nothing(_: Iterable[str]) -> None:
    return None


@dataclass
class DaemonState:
    """Shared by the main loop, the scheduler's jobs and the supervisor threads.

    `lock` guards queue, elsewhere, stopping and each dispatcher's own running work.
    """

    config: DaemonConfig
    wake: Callable[[], None]
    book: RunBook = field(init=False)
    sources: dict[str, Source] = field(default_factory=dict)
    sources_text: str = ""  # the file `sources` was read from: each crawl process gets a copy
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: dict[str, float] = field(default_factory=dict)  # source -> monotonic time it fell due; oldest first
    elsewhere: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> its run in a process not ours
    stopping: bool = False
    # Runs of these sources just ended: adaptive polling decides their next interval (the schedule's).
    runs_ended: Callable[[Iterable[str]], None] = _nothing

    def __post_init__(self) -> None:
        self.book = RunBook(self.config.db)

    def record(self, name: str, status: str, reason: str) -> None:
        """Record a run that never had a crawl process, and log it."""
        run_id = self.book.record_run(name, status, reason)
        event(logging.ERROR if status == "failed" else logging.INFO, name, run_id, "%s: %s", status, reason)
