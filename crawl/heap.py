"""HeapSettings: the crawl process's malloc, set as the crawler is built and trimmed while it runs.

The settings (crawl/memory.py) are made before any page is fetched, for `scrapy crawl` and
scheduler.py alike. The trim is why this is an extension and not only settings: glibc gives back
the top of a heap by itself, but free chunks between live ones stay resident, and in the crawl
process those grew over a crawl (a page's buffers freed around what is kept: 25-35 MB of its heap
free and kept, mallinfo2 in a 10,000-page run, bench/RESULTS.md). crawl/memory.py itself stays free
of Scrapy: the extraction workers import it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scrapy import signals
from twisted.internet import task

from crawl.memory import keep_heap_small, release_free_heap

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.internet.interfaces import IReactorTime

logger = logging.getLogger(__name__)

TRIM_EVERY = 10.0  # seconds


class HeapTrimmer:
    """Trims the process's heap every TRIM_EVERY seconds while at least one crawl runs: one loop
    for the process, however many crawlers it runs at once (the daemon runs a crawler a source)."""

    def __init__(self, clock: IReactorTime | None = None) -> None:
        self.clock = clock  # the reactor's, unless a test gives its own
        self.crawls = 0
        self.loop: task.LoopingCall | None = None
        self.trims = 0
        self.cpu_s = 0.0

    def crawl_opened(self) -> None:
        self.crawls += 1
        if self.loop is None:
            self.loop = task.LoopingCall(self.trim)
            if self.clock is not None:
                self.loop.clock = self.clock
            # A trim costs 2-15 ms of CPU (more when there is more to give back): every 10 s it
            # is a fraction of a percent of the crawl process's time.
            self.loop.start(TRIM_EVERY, now=False)

    def crawl_closed(self) -> None:
        self.crawls = max(0, self.crawls - 1)
        if self.crawls == 0 and self.loop is not None:
            if self.loop.running:
                self.loop.stop()
            self.loop = None
            logger.debug("heap trimmed %d times, %.3f s of CPU", self.trims, self.cpu_s)

    def trim(self) -> None:
        started = time.thread_time()
        release_free_heap()
        self.trims += 1
        self.cpu_s += time.thread_time() - started


PROCESS_HEAP = HeapTrimmer()


class HeapSettings:
    """Scrapy extension: the crawl process's malloc settings, made as the crawler is built (before
    any page is fetched), for `scrapy crawl` and scheduler.py alike, and its heap trimmed while the
    crawl runs."""

    def __init__(self, trimmer: HeapTrimmer = PROCESS_HEAP) -> None:
        self.trimmer = trimmer

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HeapSettings:
        keep_heap_small()
        extension = cls()
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self) -> None:
        self.trimmer.crawl_opened()

    def spider_closed(self) -> None:
        self.trimmer.crawl_closed()
