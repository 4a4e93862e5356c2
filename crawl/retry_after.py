"""RetryAfterMiddleware: a 429 or 503 with Retry-After is retried after that long, not at once.

The header is read by config/retry_after.py, as adaptive polling reads it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured

from config.retry_after import retry_after_seconds

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


class RetryAfterMiddleware:
    """A 429 or 503 that says when to come back (Retry-After) is retried then, not at once.

    It only waits: Scrapy's RetryMiddleware, next in line, makes the retry and counts it
    against RETRY_TIMES. A wait longer than NEWS_RETRY_AFTER_MAX is not retried in this run at
    all (the failure is recorded), rather than retried against the server's wish.
    """

    CODES = (429, 503)

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler
        self.max_wait = settings.getfloat("NEWS_RETRY_AFTER_MAX")
        self.max_retries = settings.getint("RETRY_TIMES")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Response:
        # Must return a Response: RetryMiddleware turns it into the retry (or gives up).
        if response.status not in self.CODES or request.meta.get("dont_retry"):
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        retries = request.meta.get("max_retry_times", self.max_retries)
        if wait is None or request.meta.get("retry_times", 0) >= retries:
            return response
        if wait > self.max_wait:
            request.meta["dont_retry"] = True
            self.crawler.stats.inc_value("news/retry_after/too_long")
            logger.info("not retrying %s: Retry-After %gs is longer than NEWS_RETRY_AFTER_MAX", request, wait)
            return response
        self.crawler.stats.inc_value("news/retry_after/waited")
        await asyncio.sleep(wait)
        return response
