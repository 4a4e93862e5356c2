"""SkipStoredArticlesMiddleware (spider middleware): one request per URL and crawl, and none for
an article the archive already has (unless its feed or sitemap says it changed or a scheduled
re-visit is due) or for a page it remembers is no article (until its next check is due)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from config.dates import utc_now_iso
from crawl.archive_access import crawl_archive
from crawl.revisits import announced_change, parse_schedule, revisit_due

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from archive.interfaces import ArticleLookup

# For every crawler (source) of the process, since one source's feed may list what another's home
# page links; kept here, not in the requests' meta, because queued requests wait on disk as copies.
_LISTINGS_IN_FLIGHT: set[str] = set()  # listing URLs requested and not answered yet
_ALSO_ARTICLES: dict[str, dict[str, Any]] = {}  # listing URL -> the via and hints of an article request


def also_article(url: str) -> dict[str, Any] | None:
    """The article request (via, hints) that a listing request for `url` took on, if any."""
    return _ALSO_ARTICLES.get(url)


def take_also_article(url: str) -> dict[str, Any] | None:
    """As `also_article`, once: the listing callback hands the page on as an article too."""
    return _ALSO_ARTICLES.pop(url, None)


def listing_failed(url: str) -> None:
    """A listing request ended without an answer (refused, timed out): forget it, and the article
    request it took on, whose failure is the listing's (recorded with its URL)."""
    _LISTINGS_IN_FLIGHT.discard(url)
    _ALSO_ARTICLES.pop(url, None)


class SkipStoredArticlesMiddleware(BaseSpiderMiddleware):
    """Drops article requests whose canonical URL is stored, as an article or as an alias,
    remembered as no article (the `not_articles` table, until its next check), or already
    requested by another crawler (source) in this process.

    A stored article is fetched again only when its feed or sitemap entry is dated after our
    last fetch, or when a scheduled re-visit is due (NEWS_REVISIT_AFTER); otherwise only its
    `last_seen_at` moves, so the archive knows it is still published.

    A URL found both as a listing link (a home or section page links it) and as an article (a
    feed or sitemap lists it) is requested once: a listing link to a stored article or to an
    article already requested is dropped, and an article whose URL is already queued as a listing
    rides on that request (its page then goes to the pipelines as well as being read for links).
    Feeds, sitemaps and start pages are fetched every run (conditionally, where the server allows).
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.schedule = parse_schedule(crawler.settings.get("NEWS_REVISIT_AFTER", ""))
        crawler.signals.connect(self._response_received, signal=signals.response_received)

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        # Must either return the request (to schedule it) or None (to drop it).
        kind = request.meta.get("news_kind")
        if kind == "listing":
            return self._listing(request)
        if kind != "article":
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
        if stored is None and self._passed_over(request, archive):
            self.crawler.stats.inc_value("news/requests/skipped_not_article")
            return None
        archive.claimed.add(request.url)
        if request.url in _LISTINGS_IN_FLIGHT:
            _LISTINGS_IN_FLIGHT.discard(request.url)
            _ALSO_ARTICLES[request.url] = {"via": request.cb_kwargs.get("via"), "hints": request.cb_kwargs.get("hints")}
            self.crawler.stats.inc_value("news/requests/merged")
            return None
        return request

    def _response_received(self, response: Response, request: Request) -> None:
        # Its answer is in: an article request for the URL from now on is a request of its own.
        # Rare: listing pages are asked for after the articles already queued.
        _LISTINGS_IN_FLIGHT.discard(request.url)

    def _listing(self, request: Request) -> Request | None:
        archive = crawl_archive(self.crawler)
        if request.url in archive.claimed:  # an article page is not read for links
            self.crawler.stats.inc_value("news/requests/skipped_claimed")
            return None
        if (stored := archive.stored_url_for(request.url)) is not None:
            archive.pending.seen.add(stored)
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            return None
        _LISTINGS_IN_FLIGHT.add(request.url)
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

    @staticmethod
    def _passed_over(request: Request, archive: ArticleLookup) -> bool:
        """A page found not to be an article, whose next check is not due and whose feed or
        sitemap entry does not date it after that finding."""
        verdict = archive.not_article(request.url)
        if verdict is None or verdict["next_check_at"] <= utc_now_iso():
            return False
        return not announced_change(request.cb_kwargs.get("hints") or {}, verdict["checked_at"])
