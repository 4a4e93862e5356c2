"""The one interface the daemon's loop calls to run due sources: local crawl processes
(daemon/local.py) or rounds of a crawl shared through Redis (daemon/rounds.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable


class Waiter(Protocol):
    def __call__(self, done: Callable[[], bool], seconds: float, *, until_forced: bool = False) -> None:
        """Wait until `done()`, `seconds` pass, or (with `until_forced`) a second stop signal."""


class Dispatcher(Protocol):
    queued_reason: str  # why a due source still in the queue cannot run again yet

    def start(self) -> None:
        """Before the first dispatch (a coordinator connects and takes over open rounds)."""

    def started_line(self) -> str:
        """How the daemon's start line ends: what runs the due sources."""

    def dispatch(self) -> float:
        """Start what can start; returns how long the main loop may sleep before looking again."""

    def busy(self, name: str) -> str | None:
        """Why `name` cannot run now because of this dispatcher's own work, or None. Lock held."""

    def tick(self) -> None:
        """Housekeeping at each tick (a coordinator closes the rounds that are done)."""

    def running(self) -> int:
        """Crawl processes, or open rounds. Lock held."""

    def own_pids(self) -> set[int]:
        """Processes whose runs are this daemon's to end, not runs going elsewhere."""

    def runs_known(self) -> bool:
        """False while runs whose process is gone may still be alive elsewhere (rounds not read yet)."""

    def stop(self, wait: Waiter) -> None:
        """Let the running work end (or stay) as the daemon stops; after the queue was emptied."""
