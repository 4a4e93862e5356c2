"""SkipStoredArticlesMiddleware (spider middleware): never download an article the archive
already has, unless its feed or sitemap says it changed or a scheduled re-visit is due."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from crawl.archive_access import crawl_archive
from crawl.revisits import announced_change, parse_schedule, revisit_due

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from archive.interfaces import ArticleLookup


class SkipStoredArticlesMiddleware(BaseSpiderMiddleware):
    """Drops article requests whose canonical URL is stored, as an article or as an alias,
    or already requested by another crawler (source) in this process.

    A stored article is fetched again only when its feed or sitemap entry is dated after our
    last fetch, or when a scheduled re-visit is due (NEWS_REVISIT_AFTER); otherwise only its
    `last_seen_at` moves, so the archive knows it is still published. Only requests marked
    ``meta["news_kind"] == "article"`` are checked: feeds, sitemaps and listings are fetched
    every run (conditionally, where the server supports it).
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.schedule = parse_schedule(crawler.settings.get("NEWS_REVISIT_AFTER", ""))

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        # Must either return the request (to schedule it) or None (to drop it).
        if request.meta.get("news_kind") != "article":
            return request
        archive = crawl_archive(self.crawler)
        stored = archive.stored_url_for(request.url)
        if request.url in archive.claimed:
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            self.crawler.stats.inc_value("news/requests/skipped_claimed")
            return None
        if stored is not None and not (stored == request.url and self._fetch_again(request, archive)):
            archive.pending.seen.add(stored)
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            return None
        archive.claimed.add(request.url)
        return request

    def _fetch_again(self, request: Request, archive: ArticleLookup) -> bool:
        if request.meta.get("news_revisit"):
            return True
        article = archive.stored_article(request.url)
        if article is None or article["taken_down_at"]:
            return False
        hints = request.cb_kwargs.get("hints") or {}
        if announced_change(hints, article["fetched_at"]) or revisit_due(
            article["first_seen_at"], article["fetched_at"], self.schedule
        ):
            request.meta["news_revisit"] = True
            self.crawler.stats.inc_value("news/articles/revisited")
            return True
        return False
