"""CanonicalUrlPipeline: one URL per article, and every other URL it was reached by as an alias."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawl.urls import canonical_url, in_domains, is_http_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem


def resolve_canonical(item: ArticleItem, allowed_domains: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """The article's canonical URL and its aliases (URL -> reason).

    The page's own `<link rel=canonical>` (or og:url) wins when it stays inside the source's
    domains: publishers use it to point AMP pages, print views and tracking variants at the
    article. A canonical link to another site is ignored rather than trusted.
    """
    fetched = canonical_url(item.url)
    requested = canonical_url(item.requested_url or item.url)
    declared = item.page_canonical
    url = fetched
    if declared and is_http_url(declared) and in_domains(declared, allowed_domains):
        url = canonical_url(declared)
    aliases: dict[str, str] = {}
    if fetched != url:
        aliases[fetched] = "amp" if item.is_amp else "canonical"
    if requested not in (fetched, url):
        aliases[requested] = "redirect"
    return url, aliases


class CanonicalUrlPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CanonicalUrlPipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        spider = self.crawler.spider
        domains = tuple(getattr(spider, "allowed_domains", None) or ())
        item.url, item.aliases = resolve_canonical(item, domains)
        if item.page_canonical and canonical_url(item.page_canonical) == item.url:
            # The page names itself canonical: of two same-site copies published at once, the one
            # that does is the original (archive/dedupe.py).
            item.provenance["url"] = "canonical link"
        return item
