"""Articles as the spider sees them: which discovered URLs are worth a request, and the raw
item an article page becomes (extraction and storage are the pipelines' job)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from archive.raw_html import from_wire
from archive.warc_files import recordable_request_headers
from config.dates import utc_now_iso
from crawl.items import ArticleItem
from crawl.urls import in_domains, is_http_url

if TYPE_CHECKING:
    from scrapy.http import Headers, Response, TextResponse

    from config.sources import Source
    from spiders.discovery import Entry


def wanted(source: Source, url: str) -> bool:
    """An http(s) URL of the source's domains that its article_deny/article_allow patterns let in."""
    if not is_http_url(url) or not in_domains(url, source.allowed_domains):
        return False
    if any(re.search(p, url) for p in source.article_deny):
        return False
    return not source.article_allow or any(re.search(p, url) for p in source.article_allow)


def stale(source: Source, entry: Entry) -> bool:
    """An entry whose newest date is older than the source's max_age."""
    if source.max_age is None:
        return False
    newest = entry.newest_date()
    return newest is not None and datetime.now(UTC) - newest > source.max_age


def content_type(response: Response) -> str:
    return (response.headers.get("Content-Type") or b"").decode("latin-1")


def header_pairs(headers: Headers) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, values in headers.items() for value in values]


def article_item(response: TextResponse, source_name: str, via: str, hints: dict[str, Any]) -> ArticleItem:
    """The fetched article page as it goes to the pipelines, with the URL it was first asked for
    (before redirects) and, when the downloader kept it, the body as it came over the wire."""
    redirects = response.meta.get("redirect_urls") or [response.url]
    wire = response.meta.pop("news_wire_body", None)
    return ArticleItem(
        url=response.url,
        requested_url=redirects[0],
        fetched_url=response.url,
        source=source_name,
        html="",
        body=response.body,
        encoding=response.encoding,
        fetched_at=utc_now_iso(),
        http_status=response.status,
        content_type=content_type(response),
        http_headers=header_pairs(response.headers),
        request_headers=recordable_request_headers(header_pairs(response.request.headers))
        if response.request is not None  # a response always has its request in a crawl
        else [],
        discovered_via=via,
        hints=hints,
        raw_html=from_wire(wire[0], wire[1], response.body, response.encoding) if wire else None,
    )
