"""UrlCredentialsMiddleware: ``user:password@`` in a URL becomes an Authorization header, so the
URL that is logged and stored carries no password."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from w3lib.http import basic_auth_header

if TYPE_CHECKING:
    from scrapy import Request


def strip_credentials(url: str) -> str:
    """`url` without its ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class UrlCredentialsMiddleware:
    """An authenticated source's ``https://user:password@host/feed`` is fetched with an
    Authorization header and a URL without the credentials: Scrapy logs request URLs, and the
    archive stores them, so the password must leave the URL before anything else sees it.
    Scrapy drops the header again on a redirect to another host.
    """

    def process_request(self, request: Request) -> Request | None:
        # Must either return None (carry on) or a Request (scheduled instead of this one).
        parts = urlsplit(request.url)
        if parts.username is None and parts.password is None:
            return None
        if b"Authorization" not in request.headers:
            request.headers[b"Authorization"] = basic_auth_header(
                unquote(parts.username or ""), unquote(parts.password or "")
            )
        return request.replace(url=strip_credentials(request.url))
