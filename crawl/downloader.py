"""StoppingDownloader: a crawl told to stop fetches nothing more.

Scrapy's engine hands up to CONCURRENT_REQUESTS requests to the downloader, which queues them per
site and sends them one DOWNLOAD_DELAY (or AutoThrottle delay, up to 30 s) apart. When the crawl
is told to stop (SIGTERM from the daemon at a timeout, Ctrl-C, a storage error), the engine waits
for every request it handed over, so the queued ones were still fetched one delay apart: a crawl
stopped at its timeout logged a 404 seven seconds later, until the daemon killed it. Here the
requests still waiting in the queues are dropped as soon as the crawl is closing; those being
downloaded finish. A dropped request is counted as ``news/requests/not_fetched`` (and no longer in
``downloader/request_count``) and reaches its errback as NotFetched: no failure, nothing went wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.core.downloader import Downloader
from scrapy.exceptions import IgnoreRequest
from twisted.internet import task

if TYPE_CHECKING:
    from scrapy.core.downloader import Slot
    from scrapy.crawler import Crawler

# How often (seconds) the queues are looked at while a delay holds them back.
CHECK_EVERY = 0.2


def crawl_is_stopping(crawler: Crawler) -> bool:
    """Whether the crawl was told to stop or its spider is closing: nothing more should be fetched."""
    engine = crawler.engine
    if engine is None:
        return False
    # The engine is `_stopping` once the crawl is stopped (SIGTERM, Ctrl-C); its slot is
    # `closing` when the spider closes for any reason (a storage error, CLOSESPIDER_*).
    # Both are Scrapy internals: tests/test_run_records.py notices if they change.
    slot = getattr(engine, "_slot", None)
    closing = slot is not None and getattr(slot, "closing", None) is not None
    return closing or bool(getattr(engine, "_stopping", False))


class NotFetched(IgnoreRequest):
    """A request dropped because the crawl was stopping before its turn came."""


class StoppingDownloader(Downloader):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._watch = task.LoopingCall(self._drop_if_stopping)
        self._watch.start(CHECK_EVERY, now=False)

    def _drop_if_stopping(self) -> None:
        if not crawl_is_stopping(self.crawler):
            return
        for slot in list(self.slots.values()):
            self._drop_queue(slot)

    def _drop_queue(self, slot: Slot) -> None:
        stats = self.crawler.stats
        while slot.queue:
            request, queued = slot.queue.popleft()
            # Scrapy counted it as it entered the downloader (DownloaderStats): it was never sent.
            stats.inc_value("downloader/request_count", -1)
            stats.inc_value("news/requests/not_fetched")
            queued.errback(NotFetched(f"not fetched: the crawl was stopping ({request.url})"))

    def _process_queue(self, slot: Slot) -> None:
        if crawl_is_stopping(self.crawler):
            self._drop_queue(slot)
            return
        super()._process_queue(slot)

    def close(self) -> None:
        if self._watch.running:
            self._watch.stop()
        super().close()
