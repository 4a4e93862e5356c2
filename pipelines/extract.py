"""ExtractPipeline: trafilatura + structured data, in worker processes so the crawl never stalls."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from archive.warc_files import HttpResponse
from crawl.extraction_pool import make_pool
from crawl.extraction_worker import extract_page
from crawl.failures import count_failed_page, report_failure

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem
    from crawl.worker_pool import RecyclingPool

logger = logging.getLogger(__name__)


class SharedPool:
    """One pool of extraction workers per crawl process, shared by all its crawlers (sources):
    a batch of 25 sources must not start 25 pools. Shut down when the last crawler closes."""

    def __init__(self) -> None:
        self.pool: RecyclingPool | None = None
        self.users = 0

    def acquire(self, workers: int, growth_limit_mb: float) -> RecyclingPool:
        if self.pool is None:
            self.pool = make_pool(workers, growth_limit_mb)  # forkserver-based; its processes die with this one
        self.users += 1
        return self.pool

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


_shared_pool = SharedPool()


class ExtractPipeline:
    def __init__(self, crawler: Crawler, workers: int, growth_limit_mb: float) -> None:
        self.crawler = crawler
        self.workers = workers
        self.growth_limit_mb = growth_limit_mb
        self.keep_raw = crawler.settings.getbool("NEWS_KEEP_RAW_HTML")
        self.pool: RecyclingPool | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractPipeline:
        settings = crawler.settings
        return cls(crawler, settings.getint("NEWS_EXTRACT_WORKERS"), settings.getfloat("NEWS_EXTRACT_WORKER_GROWTH_MB"))

    def open_spider(self) -> None:
        if self.workers > 0:
            self.pool = _shared_pool.acquire(self.workers, self.growth_limit_mb)

    def close_spider(self) -> None:
        if self.pool is not None:
            _shared_pool.release()
            self.pool = None

    async def process_item(self, item: ArticleItem) -> ArticleItem:
        try:
            fields = await self._extract(item)
        except BrokenProcessPool:
            raise  # a worker died: every later page would fail too, so let Scrapy log it loudly
        except Exception as exc:  # a broken page must not stop the crawl: record it, drop it
            count_failed_page(self.crawler)
            report_failure(
                self.crawler,
                url=item.url,
                stage="extract",
                reason=f"{type(exc).__name__}: {exc}",
                http_status=item.http_status,
            )
            raise DropItem(f"extraction failed: {exc}", log_level="INFO") from exc
        for name, value in fields.items():
            setattr(item, name, value)
        self.crawler.stats.inc_value("news/extract/pages")
        return item

    async def _extract(self, item: ArticleItem) -> dict:
        page, encoding = item.html or item.body, item.encoding
        if self.pool is None:
            return extract_page(page, item.url, item.hints, None, encoding)
        response = None
        if self.keep_raw and item.raw_html is None:  # not when the page came gzipped: kept as it came
            response = HttpResponse(
                item.fetched_url or item.url,
                item.fetched_at,
                item.http_status,
                list(item.http_headers),
                b"",  # the worker records the HTML it is given
                request_headers=list(item.request_headers),
            )
        future = self.pool.submit(extract_page, page, item.url, item.hints, response, encoding)
        return await asyncio.wrap_future(future)
