"""Child sitemaps take turns: one is fetched and read at a time, per crawl.

A sitemap index of a large archive lists tens or hundreds of sitemaps of up to 50,000 URLs
(some 10 MB each). Scheduled like any request they are all downloaded side by side, as many as
the per-domain concurrency allows, and every body waits in memory for its turn to be parsed: a
crawl's peak memory would grow with the archive it backfills. Taking turns bounds it by the
largest single sitemap, which the protocol caps, while articles found in one sitemap are
fetched as the next one downloads.

The sitemaps a source lists itself are its seeds and start together as before; the turns are
for the sitemaps found while crawling (an index's children, robots.txt's, an unchanged index's
remembered children). A request taking a turn is marked in its meta; the callback or errback
that ends it hands the turn on. Should a turn never end (a request dropped without its
errback), the spider's idle signal hands it on, so no waiting sitemap is ever lost.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from scrapy.exceptions import DontCloseSpider

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from scrapy import Request
    from scrapy.crawler import Crawler

TURN = "news_sitemap_turn"


class SitemapTurns:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.waiting: deque[Request] = deque()
        self.current: str | None = None
        # Turns skip Scrapy's duplicate filter (a request it dropped would never hand its turn
        # on), so sitemaps are deduplicated here: an index listing itself, or a seed, again.
        self.seen: set[str] = set()

    def seed(self, url: str) -> None:
        """A sitemap the source lists: fetched as a seed, never again as a child."""
        self.seen.add(url)

    def offer(self, requests: Iterable[Request]) -> Iterator[Request]:
        """Queue child sitemaps; yields the one whose turn it is, if none is being read."""
        for request in requests:
            if request.url in self.seen:
                continue
            self.seen.add(request.url)
            request.meta[TURN] = True
            self.waiting.append(request.replace(dont_filter=True))
        yield from self._next()

    def done(self, request: Request | None) -> Iterator[Request]:
        """The sitemap of `request` was read (or failed): the next one's turn."""
        if request is not None and request.meta.get(TURN):
            self.current = None
            yield from self._next()

    def spider_idle(self) -> None:
        if not self.waiting:
            return
        self.current = None  # its turn never ended: nothing else is left to end it
        for request in self._next():
            self.crawler.engine.crawl(request)
        raise DontCloseSpider

    def _next(self) -> Iterator[Request]:
        if self.current is None and self.waiting:
            request = self.waiting.popleft()
            self.current = request.url
            self.crawler.stats.inc_value("news/discovery/sitemap_turns")
            yield request
