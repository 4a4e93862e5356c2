"""What a listing page (a home or section page) links to: feeds, articles and further listings.

The spider turns each link into a request; deciding which link is which is this module's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from crawl.urls import canonical_url, in_domains, is_http_url, url_kind
from spiders.discovery import is_feed_link

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.http import TextResponse

    from config.sources import Source


class ListingLink(NamedTuple):
    """A link worth following from a listing page, and what it leads to."""

    kind: Literal["feed", "article", "listing"]
    url: str


def listing_links(response: TextResponse, source: Source, depth: int) -> Iterator[ListingLink]:
    """The page's links in page order: its <link rel="alternate"> feeds first (on a start page,
    when the source discovers feeds), then its article links and, while `depth` is below the
    source's `follow_depth`, its links to further listing pages (canonical URLs)."""
    if depth == 0 and source.discover_feeds:
        for link in response.xpath("//link[@href]"):
            if is_feed_link(link.attrib.get("rel", ""), link.attrib.get("type", "")):
                yield ListingLink("feed", response.urljoin(link.attrib["href"]))
    for href in response.css("a::attr(href)").getall():
        url = response.urljoin(href.strip())
        if not is_http_url(url) or not in_domains(url, source.allowed_domains):
            continue
        kind = url_kind(url)
        if kind == "article":
            yield ListingLink("article", url)
        elif kind == "listing" and depth < source.follow_depth:
            yield ListingLink("listing", canonical_url(url))
