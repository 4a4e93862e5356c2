"""GuardedRedirectMiddleware, GuardedMetaRefreshMiddleware: Scrapy's, except that a redirect
loop, a redirect off the source's domains and a redirect to another scheme are refused and
recorded (IgnoreRequest with a one-line reason) instead of dropped without a trace."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.response import get_meta_refresh
from w3lib.url import safe_url_string

from crawl.urls import canonical_url, host_of, in_domains

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings


REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# Scrapy looks for a refresh in a page's first 4,096 characters, which are at most this many bytes.
REFRESH_HEAD_BYTES = 4096 * 4


def may_hold_meta_refresh(body: bytes) -> bool:
    """Whether the part of a page where Scrapy looks for ``<meta http-equiv="refresh">`` can hold
    one. Scrapy decodes the whole page to find out (`get_meta_refresh` reads `response.text`), in
    the crawl process, and the response then keeps the text: on real pages that was 1.4 MB a
    page, 44 MB for 32 pages in flight (bench/RESULTS.md). Pages are decoded once, in the extraction workers;
    here the bytes are read. A page in UTF-16 or UTF-32 (NUL bytes) is left to Scrapy."""
    head = body[:REFRESH_HEAD_BYTES]
    return b"\x00" in head or b"refresh" in head.lower()


def redirect_refusal(request: Request, redirected: Request, allowed_domains: Sequence[str]) -> str | None:
    """Why a redirect Scrapy is about to follow must not be followed, or None."""
    chain = [*request.meta.get("redirect_urls", []), request.url]
    if canonical_url(redirected.url) in {canonical_url(url) for url in chain}:
        hops = " -> ".join([*chain, redirected.url])
        return f"redirect loop: {hops}"
    # Unlike Scrapy's offsite filter, dont_filter is no pass: every retried request has it.
    if (
        allowed_domains
        and not redirected.meta.get("allow_offsite")
        and not in_domains(redirected.url, tuple(allowed_domains))
    ):
        return f"redirect to {host_of(redirected.url)}, outside the source's domains"
    return None


class _RedirectGuard:
    """What both redirect middlewares add to Scrapy's. Scrapy drops a looping or off-site
    redirect without a trace (its duplicate and offsite filters eat the new request) and hands
    a redirect to ``file:`` back as a plain 3xx; here each is refused with a reason that the
    errback records.
    """

    crawler: Crawler

    def check(self, request: Request, result: Request | Response, target: str | None) -> Request | Response:
        """`result` is what Scrapy made of a redirect to `target` (None: nothing to follow)."""
        if target is None:
            return result
        if isinstance(result, Request):
            domains = getattr(self.crawler.spider, "allowed_domains", None) or ()
            if reason := redirect_refusal(request, result, domains):
                raise IgnoreRequest(reason)
            return result
        scheme = urlsplit(target).scheme
        if scheme not in ("http", "https"):  # Scrapy declined to follow it
            raise IgnoreRequest(f"refused: redirect to a {scheme or 'relative'}: URL")
        return result


class GuardedRedirectMiddleware(_RedirectGuard, RedirectMiddleware):
    """Scrapy's RedirectMiddleware (3xx + Location), with loops, off-site targets and other
    schemes refused and recorded."""

    # Scrapy's signature keeps `spider`, deprecated since 2.13 and never passed to a method that
    # does not require it: dropping it is Scrapy's advice, which mypy reads as an incompatible override.
    def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        # Must return a Response, or a Request (the redirect), or raise IgnoreRequest.
        result = super().process_response(request, response)
        location = response.headers.get(b"Location")
        target = None
        if location and response.status in REDIRECT_STATUSES and not self._not_ours(request, response):
            target = urljoin(request.url, safe_url_string(location))
        return self.check(request, result, target)

    def _not_ours(self, request: Request, response: Response) -> bool:
        """The same exemptions as Scrapy's: the request or the spider handles this status itself."""
        handled = getattr(self.crawler.spider, "handle_httpstatus_list", ())
        return bool(
            request.meta.get("dont_redirect")
            or request.meta.get("handle_httpstatus_all")
            or response.status in request.meta.get("handle_httpstatus_list", ())
            or response.status in handled
        )


class GuardedMetaRefreshMiddleware(_RedirectGuard, MetaRefreshMiddleware):
    """Scrapy's MetaRefreshMiddleware (``<meta http-equiv="refresh">``), guarded the same way."""

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.ignore_tags = settings.getlist("METAREFRESH_IGNORE_TAGS")

    # Scrapy's signature keeps `spider`, deprecated since 2.13 and never passed to a method that
    # does not require it: dropping it is Scrapy's advice, which mypy reads as an incompatible override.
    def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        # Must return a Response, or a Request (the refresh target), or raise IgnoreRequest.
        if isinstance(response, HtmlResponse) and not may_hold_meta_refresh(response.body):
            return response
        result = super().process_response(request, response)
        target = None
        if isinstance(response, HtmlResponse) and not request.meta.get("dont_redirect"):
            _, target = get_meta_refresh(response, ignore_tags=self.ignore_tags)
        return self.check(request, result, target)
