"""The news spider's sitemap callbacks: an index's children, robots.txt's sitemaps and the article
URLs a sitemap lists. A mixin of NewsSpider (spiders/news.py), so that its callbacks stay spider
methods, which requests kept in Scrapy's disk queue need."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from scrapy.utils.sitemap import sitemap_urls_from_robots

from archive.store import Archive
from spiders.articles import stale
from spiders.discovery import DiscoveryError, Entry, SitemapLink, iter_sitemap, sitemap_xml

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from archive.interfaces import ArticleLookup
    from config.sources import Source
    from spiders.sitemap_turns import SitemapTurns


class SitemapSpider(Protocol):
    """What the sitemap callbacks use of the spider they are part of."""

    crawler: Crawler
    source: Source
    sitemap_turns: SitemapTurns | None
    fresh_validators: dict[str, dict[str, Any]]

    @property
    def archive(self) -> ArticleLookup: ...

    def _seed(self, url: str, callback: Callable[..., Any], *, conditional: bool = False, **kwargs: Any) -> Request: ...

    def _not_modified(self, response: Response) -> bool: ...

    def _parse_failure(self, response: Response, reason: str) -> None: ...

    def _article_request(self, url: str, *, via: str, entry: Entry | None = None) -> Iterator[Request]: ...

    def parse_sitemap(self, response: Response) -> Iterator[Any]: ...

    def _read_sitemap(self, response: Response) -> Iterator[Any]: ...

    def _sitemap_request(self, link: SitemapLink, response: Response) -> Iterator[Request]: ...

    def _child_sitemaps(self, requests: Iterable[Request]) -> Iterator[Request]: ...

    def _sitemap_read(self, request: Request | None) -> Iterator[Request]: ...


class SitemapCallbacks:
    def parse_sitemap(self: SitemapSpider, response: Response) -> Iterator[Any]:
        yield from self._read_sitemap(response)
        yield from self._sitemap_read(response.request)

    def _read_sitemap(self: SitemapSpider, response: Response) -> Iterator[Any]:
        if self._not_modified(response):
            # An unchanged index says nothing about its children: ask each of them again.
            known = self.archive.validators(response.url)
            remembered = Archive.json_list(known["children"] if known else None)
            yield from self._child_sitemaps(self._seed(c, self.parse_sitemap, conditional=True) for c in remembered)
            return
        try:
            body = sitemap_xml(response.body, self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
        except DiscoveryError as exc:
            self._parse_failure(response, str(exc))
            return
        self.crawler.stats.inc_value("news/discovery/sitemaps")
        children: list[str] = []
        try:
            for found in iter_sitemap(body):
                if isinstance(found, SitemapLink):
                    for request in self._sitemap_request(found, response):
                        children.append(request.url)
                        yield from self._child_sitemaps([request])
                else:
                    yield from self._article_request(found.url, via="sitemap", entry=found)
        except DiscoveryError as exc:
            self._parse_failure(response, str(exc))
        if children and response.url in self.fresh_validators:
            self.fresh_validators[response.url]["children"] = children

    def parse_robots(self: SitemapSpider, response: Response) -> Iterator[Any]:
        if response.status >= 400:
            return
        urls = sitemap_urls_from_robots(response.body, base_url=response.url)
        yield from self._child_sitemaps(self._seed(url, self.parse_sitemap, conditional=True) for url in urls)

    def _child_sitemaps(self: SitemapSpider, requests: Iterable[Request]) -> Iterator[Request]:
        """Sitemaps found while crawling: fetched one at a time (spiders/sitemap_turns.py)."""
        if self.sitemap_turns is None:
            yield from requests
        else:
            yield from self.sitemap_turns.offer(requests)

    def _sitemap_read(self: SitemapSpider, request: Request | None) -> Iterator[Request]:
        if self.sitemap_turns is not None:
            yield from self.sitemap_turns.done(request)

    def _sitemap_request(self: SitemapSpider, link: SitemapLink, response: Response) -> Iterator[Request]:
        if stale(self.source, Entry(url=link.url, modified=link.modified)):
            self.crawler.stats.inc_value("news/discovery/stale_sitemaps")
            return
        url = response.urljoin(link.url)
        if url == response.url:
            self._parse_failure(response, "sitemap index lists itself")
            return
        # An index that points back to itself further down is fetched once: the turns (or, in a
        # shared crawl, Scrapy's duplicate filter) see the repeat.
        yield self._seed(url, self.parse_sitemap, conditional=True)
