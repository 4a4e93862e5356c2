"""DiskRequestQueue: a crawl's pending requests on disk, not in memory."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.spiders import Spider


class DiskRequestQueue:
    """Keeps a crawl's pending requests on disk (Scrapy's JOBDIR queues) instead of in memory.

    A 50,000-URL sitemap otherwise leaves 50,000 Request objects in the scheduler's memory queue
    until they are fetched: the crawl process grows with the sitemap (bench/throughput.py measured
    361 MB against 223 MB with this). Each crawl gets a fresh directory, removed when it closes, so
    nothing is ever resumed by accident. A JOBDIR the user sets is left alone. A crawl killed
    outright (the daemon's timeout, kill -9) cannot remove its directory: the next crawl removes
    those older than STALE_AFTER, which no crawl lives that long (timeouts are hours at most).
    """

    PREFIX = "news-queue-"
    STALE_AFTER = 24 * 3600  # seconds

    def __init__(self, crawler: Crawler) -> None:
        self.path: str | None = None
        if not crawler.settings.get("JOBDIR"):
            self.remove_stale(Path(tempfile.gettempdir()))
            self.path = tempfile.mkdtemp(prefix=self.PREFIX)
            crawler.settings.set("JOBDIR", self.path, priority="spider")

    @classmethod
    def remove_stale(cls, folder: Path, now: float | None = None) -> list[Path]:
        """Remove queue directories left by killed crawls; returns what was removed."""
        now = now or time.time()
        removed = []
        for path in folder.glob(cls.PREFIX + "*"):
            try:
                stale = now - path.stat().st_mtime > cls.STALE_AFTER
            except FileNotFoundError:  # another crawl removed it meanwhile
                continue
            if stale and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DiskRequestQueue:
        queue = cls(crawler)
        crawler.signals.connect(queue.spider_closed, signal=signals.spider_closed)
        return queue

    def spider_closed(self, spider: Spider) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
