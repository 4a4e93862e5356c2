"""StorePipeline: batched, transactional writes of articles and aliases to SQLite (their raw pages to WARC files).

The Scrapy adapter of the store step (archive/staging.py): it decides when a batch is written.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from twisted.internet import task

from archive.staging import must_flush_first, stage
from archive.store import Archive, StorageError
from crawl.archive_access import crawl_archive
from crawl.failures import report_failure

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem

logger = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.batch_size = crawler.settings.getint("NEWS_STORE_BATCH_SIZE")
        self.max_wait = crawler.settings.getfloat("NEWS_STORE_MAX_WAIT")
        self.keep_raw = crawler.settings.getbool("NEWS_KEEP_RAW_HTML")
        self.pending_urls: list[str] = []
        self.oldest_pending: float | None = None  # monotonic time the batch's first item came
        self.timer: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    @property
    def archive(self) -> Archive:
        return crawl_archive(self.crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        if must_flush_first(self.archive, item):
            self.flush()
        stage(self.archive, item, keep_raw=self.keep_raw)
        self.pending_urls.append(item.url)
        if self.oldest_pending is None:
            self.oldest_pending = time.monotonic()
        if len(self.archive.pending) >= self.batch_size:
            self.flush()
        return item

    def open_spider(self) -> None:
        # A slow, polite crawl fills a batch in minutes: what it found is written within
        # max_wait seconds all the same, so Datasette shows it while the crawl goes on.
        if self.max_wait > 0:
            self.timer = task.LoopingCall(self.flush_if_waited)
            self.timer.start(self.max_wait / 2, now=False)

    def close_spider(self) -> None:
        if self.timer is not None and self.timer.running:
            self.timer.stop()
        self.flush()

    def flush_if_waited(self) -> None:
        if self.oldest_pending is not None and time.monotonic() - self.oldest_pending >= self.max_wait:
            self.flush()

    def flush(self) -> None:
        try:
            written = self.archive.flush()
        except StorageError as exc:
            logger.error("could not store %d articles: %s", len(self.pending_urls), exc)
            for url in self.pending_urls:
                report_failure(self.crawler, url=url, stage="store", reason=f"{type(exc).__name__}: {exc}")
        else:
            if written:
                logger.debug("stored a batch of %d writes", written)
        self.pending_urls.clear()
        self.oldest_pending = None
