"""Spider middleware: never download an article the archive already has."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from archive import Archive

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response


class SkipStoredArticlesMiddleware(BaseSpiderMiddleware):
    """Drops article requests whose canonical URL is stored, as an article or as an alias,
    or already requested by another crawler (source) in this process.

    A stored article's `last_seen_at` still moves, so the archive knows it is still published.
    Only requests marked ``meta["news_kind"] == "article"`` are checked: feeds, sitemaps and
    listing pages are fetched every run.
    """

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        # Must either return the request (to schedule it) or None (to drop it).
        if request.meta.get("news_kind") != "article":
            return request
        archive = Archive.for_crawler(self.crawler)
        stored = archive.stored_url_for(request.url)
        if stored is not None:
            archive.pending.seen.add(stored)
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            return None
        if request.url in archive.claimed:
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            self.crawler.stats.inc_value("news/requests/skipped_claimed")
            return None
        archive.claimed.add(request.url)
        return request
