"""Extraction workers that are replaced once a page has grown them past a limit.

A worker's heap rises to the largest pages it has parsed (an lxml tree of a 2 MB page and its
copies) and, even trimmed (crawl/memory.py), does not always come back down: bench/RESULTS.md
measured 150 MB a worker on real pages against 63-94 MB on generated ones. A fresh worker, forked
from the forkserver, shares the forkserver's memory and starts small, so a worker that has grown
more than `growth_limit_mb` is replaced after the page that grew it.

Why not ProcessPoolExecutor(max_tasks_per_child=...): it replaces workers after a count of pages,
not after the page that grew them, and on Python 3.11 a pool using it can hang when a worker exits
while pages are still queued (CPython gh-115634, fixed in 3.12.x). So each worker is a pool of one
process here, and this class hands pages to the least busy one, two at a time (one being worked
on, one waiting in its pipe); a worker to replace gets no more pages, finishes those it has, and
exits, and then its replacement starts. Every page handed in is answered once: with its result,
or with the exception that stopped it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from crawl.memory import private_memory_mb, release_free_heap

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

PAGES_PER_WORKER = 2  # one being extracted, one waiting in the worker's pipe: no idle gap between pages
TRIM_EVERY_MB = 16.0  # a worker trims its heap when it has grown this much since it last did


# --- in the worker -------------------------------------------------------------------------

_started_at_mb = 0.0  # the worker's private memory just after it was forked
_trimmed_at_mb = 0.0  # its growth when it last trimmed


def note_start() -> None:
    """Called as the worker starts: its size then is what its growth is measured from."""
    global _started_at_mb, _trimmed_at_mb
    _started_at_mb, _trimmed_at_mb = private_memory_mb(), 0.0


def call_and_measure(growth_limit_mb: float, function: Callable[..., Any], *args: Any) -> tuple[Any, float | None]:
    """`function(*args)` and, when the worker has outgrown `growth_limit_mb` (trimmed first), its
    growth in MB: the sign for the pool to replace it. None while it is within the limit."""
    global _trimmed_at_mb
    result = function(*args)
    grown = private_memory_mb() - _started_at_mb
    if grown > _trimmed_at_mb + TRIM_EVERY_MB:
        release_free_heap()
        grown = private_memory_mb() - _started_at_mb
        _trimmed_at_mb = grown
    return result, (grown if grown > growth_limit_mb else None)


# --- in the crawl process ------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    executor: ProcessPoolExecutor
    pages: int = 0  # handed to it and not answered yet
    retiring: bool = False


@dataclass(eq=False)
class _Page:
    future: Future[Any]
    function: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(eq=False)
class RecyclingPool:
    """A pool of `workers` processes, each started by `start_worker()` (a ProcessPoolExecutor of one
    process); `submit()` answers with a Future, as ProcessPoolExecutor's does."""

    workers: int
    start_worker: Callable[[], ProcessPoolExecutor]
    growth_limit_mb: float
    replaced: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _active: list[_Worker] = field(default_factory=list)
    _waiting: deque[_Page] = field(default_factory=deque)
    _closed: bool = False

    def __post_init__(self) -> None:
        self._active = [_Worker(self.start_worker()) for _ in range(self.workers)]

    def submit(self, function: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot hand a page to an extraction pool that is shut down")
            self._waiting.append(_Page(future, function, args))
            self._hand_out()
        return future

    def _hand_out(self) -> None:
        while self._waiting:
            taking = [w for w in self._active if not w.retiring]
            if not taking:
                return  # every worker is finishing its last pages; their successors take the rest
            worker = min(taking, key=lambda w: w.pages)
            if worker.pages >= PAGES_PER_WORKER:
                return
            page = self._waiting.popleft()
            if not page.future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            worker.pages += 1
            inner = worker.executor.submit(call_and_measure, self.growth_limit_mb, page.function, *page.args)
            inner.add_done_callback(partial(self._answered, worker, page.future))

    def _answered(self, worker: _Worker, future: Future[Any], inner: Future[Any]) -> None:
        """Runs in the worker's pool thread (or at once, in submit's, if it was quick)."""
        grown: float | None = None
        try:
            result, grown = inner.result()
        except BaseException as exc:  # handed on as it is to whoever waits for the page
            future.set_exception(exc)
        else:
            future.set_result(result)
        with self._lock:
            worker.pages -= 1
            if grown is not None and not worker.retiring and not self._closed:
                self._retire(worker, grown)
            gone = worker.retiring and worker.pages == 0
            if gone and not self._closed:
                # Its successor starts once it has answered its last page, not before: a fresh
                # worker beside the one it replaces would be a third worker's memory at the peak.
                self._active[self._active.index(worker)] = _Worker(self.start_worker())
            self._hand_out()
        # Shut down outside the lock, without waiting: this may be the retired pool's own thread.
        if gone:
            worker.executor.shutdown(wait=False)

    def _retire(self, worker: _Worker, grown: float) -> None:
        """No more pages for `worker`: it answers the one queued behind, then is replaced."""
        worker.retiring = True
        self.replaced += 1
        logger.info(
            "extraction worker replaced: a page grew it by %.0f MB (limit %.0f MB, NEWS_EXTRACT_WORKER_GROWTH_MB)",
            grown,
            self.growth_limit_mb,
        )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As ProcessPoolExecutor.shutdown: no page is taken after it; the pages waiting are
        cancelled (cancel_futures) or still extracted, and waited for (wait)."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft().future.cancel()
            still_to_do = [page.future for page in self._waiting]
        if wait and still_to_do:
            concurrent.futures.wait(still_to_do)
        with self._lock:
            workers = list(self._active)
        for worker in workers:
            worker.executor.shutdown(wait=wait, cancel_futures=cancel_futures)
