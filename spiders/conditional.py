"""Conditional requests for feeds and sitemaps: asked for only if they changed since last time.

The validators a server sent (ETag, Last-Modified) are kept per URL in the archive; the next
run sends them back (If-None-Match, If-Modified-Since) and an unchanged feed answers 304.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy.http import Response


def conditional_headers(known: Mapping[str, Any] | None) -> dict[str, str]:
    """The headers that ask for a feed or sitemap only if it changed, from its stored validators."""
    headers: dict[str, str] = {}
    if known and known["etag"]:
        headers["If-None-Match"] = known["etag"]
    if known and known["last_modified"]:
        headers["If-Modified-Since"] = known["last_modified"]
    return headers


def fresh_validators(response: Response) -> dict[str, Any] | None:
    """The ETag and Last-Modified a response carries, or None when it carries neither."""
    etag = response.headers.get("ETag")
    modified = response.headers.get("Last-Modified")
    if not (etag or modified):
        return None
    return {
        "etag": etag.decode("latin-1") if etag else None,
        "last_modified": modified.decode("latin-1") if modified else None,
    }
