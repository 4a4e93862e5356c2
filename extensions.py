"""CrawlRunRecorder: one `crawl_runs` row per crawl, and every failure in the `failures` table.

Components report failures by sending the `failure_recorded` signal (see `report_failure`),
so the spider and the pipelines never talk to the database about runs themselves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DropItem

from archive import Archive

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.spiders import Spider
    from twisted.python.failure import Failure

    from sources import Source

logger = logging.getLogger(__name__)

# Sent with url=, stage= (fetch | parse | extract | store), reason= and optionally http_status=.
failure_recorded = object()

# crawl_runs column -> the stats key it is read from at the end of the run.
RUN_COUNTS = {
    "requests": "downloader/request_count",
    "responses": "downloader/response_count",
    "articles_new": "news/articles/new",
    "articles_updated": "news/articles/updated",
    "articles_unchanged": "news/articles/unchanged",
    "articles_duplicate": "news/articles/duplicate",
    "not_articles": "news/pages/not_article",
    "skipped_stored": "news/requests/skipped_stored",
    "failures": "news/failures",
}


def report_failure(
    crawler: Crawler, *, url: str | None, stage: str, reason: str, http_status: int | None = None
) -> None:
    crawler.signals.send_catch_log(
        signal=failure_recorded, url=url, stage=stage, reason=reason, http_status=http_status
    )


class CrawlRunRecorder:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.run_id: int | None = None
        self.source: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRunRecorder:
        recorder = cls(crawler)
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(recorder.spider_error, signal=signals.spider_error)
        crawler.signals.connect(recorder.item_error, signal=signals.item_error)
        crawler.signals.connect(recorder.failure, signal=failure_recorded)
        return recorder

    @property
    def archive(self) -> Archive:
        return Archive.for_crawler(self.crawler)

    def spider_opened(self, spider: Spider) -> None:
        source: Source | None = getattr(spider, "source", None)
        self.source = source.name if source else spider.name
        if source is not None:
            self.archive.sync_source(source)
        self.run_id = self.archive.start_run(self.source, log_file=self.crawler.settings.get("LOG_FILE"))
        spider.run_id = self.run_id  # type: ignore[attr-defined]
        logger.info("crawl run %s started for source %s", self.run_id, self.source, extra={"spider": spider})

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is None:
            return
        stats = self.crawler.stats
        counts = {column: int(stats.get_value(key, 0)) for column, key in RUN_COUNTS.items()}
        status = "ok" if reason == "finished" else "cancelled" if reason == "shutdown" else "failed"
        self.archive.finish_run(self.run_id, status=status, finish_reason=reason, counts=counts)
        logger.info("crawl run %s %s (%s): %s", self.run_id, status, reason, counts, extra={"spider": spider})

    def failure(self, url: str | None, stage: str, reason: str, http_status: int | None = None) -> None:
        self.crawler.stats.inc_value("news/failures")
        self.crawler.stats.inc_value(f"news/failures/{stage}")
        logger.warning("failure [%s] %s: %s", stage, url, reason)
        self.archive.record_failure(
            run_id=self.run_id,
            source=self.source,
            url=url,
            stage=stage,
            reason=reason,
            http_status=http_status,
        )

    def spider_error(self, failure: Failure, response: Response, spider: Spider) -> None:
        self.failure(response.url, "parse", f"{failure.type.__name__}: {failure.value}", response.status)

    def item_error(self, item: Any, response: Response | None, spider: Spider, failure: Failure) -> None:
        if isinstance(failure.value, DropItem):
            return
        url = getattr(item, "url", None)
        self.failure(
            url, getattr(failure.value, "stage", "store"), f"{failure.type.__name__}: {failure.value}"
        )
