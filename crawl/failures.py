"""Failures of a crawl: components report them with the `failure_recorded` signal (see
`report_failure`), so the spider and the pipelines never talk to the database about them; every
run recorder (`FailureRecorder`) counts, logs (credentials masked) and keeps them. `PageCounter`
puts each answer a crawl fetched in exactly one count."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import DropItem

from config.redaction import install_log_redaction, known_secrets, redact
from crawl.skip_stored import also_article

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response
    from scrapy.spiders import Spider
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

# Sent with url=, stage= (fetch | parse | extract | store), reason= and optionally http_status=.
failure_recorded = object()


def report_failure(
    crawler: Crawler, *, url: str | None, stage: str, reason: str, http_status: int | None = None
) -> None:
    crawler.signals.send_catch_log(
        signal=failure_recorded, url=url, stage=stage, reason=reason, http_status=http_status
    )


def count_failed_page(crawler: Crawler) -> None:
    """An article page fetched and not used: an error answer, not HTML, extraction failed."""
    crawler.stats.inc_value("news/pages/failed")


class PageCounter:
    """Counts each answer a crawl fetched in exactly one place, so that a run's counts add up to
    its responses (``downloader/response_count``):

    - answers a downloader middleware acted on (retried, redirected, a redirect refused) never
      reach the engine: ``news/pages/retried_or_redirected`` goes up as each answer is downloaded
      and down as the engine receives one (it holds the answers in flight until the crawl ends);
    - a 304 to a conditional request is ``not_modified``; any other error status the request did
      not ask to handle is a failed page; robots.txt, feeds, sitemaps and listings are discovery;
    - an article page is counted by what becomes of it: not HTML or extraction failed (failed),
      not an article (ArticleFilterPipeline), new, updated, unchanged or a copy (DedupePipeline).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats
        self.crawler = crawler

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        self.stats.inc_value("news/pages/retried_or_redirected")

    def response_received(self, response: Response, request: Request, spider: Spider) -> None:
        self.stats.inc_value("news/pages/retried_or_redirected", -1)
        status = response.status
        if status == 304:
            self.stats.inc_value("news/http/not_modified")
        elif not 200 <= status < 300 and not self._handled(request, status):
            count_failed_page(self.crawler)
        elif request.meta.get("news_kind") != "article" and also_article(request.url) is None:
            self.stats.inc_value("news/pages/discovery")  # (a listing that is also an article counts as one)
        else:
            self.stats.inc_value("news/pages/article")  # on top: what becomes of it is counted later

    @staticmethod
    def _handled(request: Request, status: int) -> bool:
        """The request takes this status to its callback (HttpErrorMiddleware lets it through);
        Scrapy's robots.txt requests take any (a 4xx robots.txt means no rules)."""
        meta = request.meta
        return (
            bool(meta.get("dont_obey_robotstxt") and "news_kind" not in meta)
            or status in meta.get("handle_httpstatus_list", ())
            or bool(meta.get("handle_httpstatus_all"))
        )


class FailureRecorder:
    """What every run recorder does with a failure: the `failure_recorded` signal, and the errors
    Scrapy reports from a spider callback (stage parse) or an item pipeline (stage store, or the
    exception's own `stage`; dropped items are no failures). Each is counted (``news/failures``,
    ``news/failures/<stage>``), logged with its credentials masked, and kept by `keep_failure`:
    in the `failures` table (CrawlRunRecorder), or sent to the writer from a worker of a shared
    crawl (distributed.worker.WorkerRunRecorder)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        install_log_redaction(known_secrets(crawler.settings))
        recorder = cls(crawler)
        recorder.listen_for_failures()
        return recorder

    def listen_for_failures(self) -> None:
        self.crawler.signals.connect(self.spider_error, signal=signals.spider_error)
        self.crawler.signals.connect(self.item_error, signal=signals.item_error)
        self.crawler.signals.connect(self.failure, signal=failure_recorded)
        self.pages = PageCounter(self.crawler)  # kept: signals hold their receivers weakly
        self.crawler.signals.connect(self.pages.response_downloaded, signal=signals.response_downloaded)
        self.crawler.signals.connect(self.pages.response_received, signal=signals.response_received)

    def failure(self, url: str | None, stage: str, reason: str, http_status: int | None = None) -> None:
        url, reason = (redact(url) if url else url), redact(reason)
        self.crawler.stats.inc_value("news/failures")
        self.crawler.stats.inc_value(f"news/failures/{stage}")
        logger.warning("failure [%s] %s: %s", stage, url, reason)
        self.keep_failure(url, stage, reason, http_status)

    def keep_failure(self, url: str | None, stage: str, reason: str, http_status: int | None) -> None:
        """Keep a failure, counted and masked already."""
        raise NotImplementedError

    def spider_error(self, failure: Failure, response: Response, spider: Spider) -> None:
        if response.meta.get("news_kind") == "article":  # a page read to find articles is counted already
            count_failed_page(self.crawler)
        self.failure(response.url, "parse", f"{failure.type.__name__}: {failure.value}", response.status)

    def item_error(self, item: Any, response: Response | None, spider: Spider, failure: Failure) -> None:
        if isinstance(failure.value, DropItem):
            return
        if not getattr(item, "status", None):  # not counted as new, updated, ... by DedupePipeline yet
            count_failed_page(self.crawler)
        url = getattr(item, "url", None)
        self.failure(url, getattr(failure.value, "stage", "store"), f"{failure.type.__name__}: {failure.value}")
