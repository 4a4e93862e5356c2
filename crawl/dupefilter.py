"""DUPEFILTER_CLASS: Scrapy's fingerprint filter, minus the article requests the archive filters.

Scrapy keeps the fingerprint of every request it has scheduled, for the whole crawl: about
0.1 KB per URL, so a crawl's memory grows with the size of the sitemaps it reads. Article
requests are already vetted before they are scheduled, by `SkipStoredArticlesMiddleware`
against the archive (stored URLs and aliases) and the URLs in flight (`Archive.claimed`),
so their fingerprints add nothing but memory. Feeds, sitemaps and listings are few and are
still filtered here, as are redirects, which reach the scheduler without passing the
middleware (two URLs redirecting to one page fetch it once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.dupefilters import RFPDupeFilter

if TYPE_CHECKING:
    from scrapy import Request


class ArticleAwareDupeFilter(RFPDupeFilter):
    def request_seen(self, request: Request) -> bool:
        if request.meta.get("news_kind") == "article" and not request.meta.get("redirect_urls"):
            return False
        return super().request_seen(request)
