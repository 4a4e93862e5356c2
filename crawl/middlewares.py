"""Middlewares: what the crawl skips, what it refuses to fetch, and the faults it survives.

Spider middleware:

- SkipStoredArticlesMiddleware: never download an article the archive already has.

Downloader middlewares (their order is set in settings.DOWNLOADER_MIDDLEWARES):

- UrlCredentialsMiddleware: ``user:password@`` in a URL becomes an Authorization header, so
  the URL that is logged and stored carries no password.
- FetchGuardMiddleware: only http and https are fetched, no private or loopback address
  unless the source sets ``allow_private``, and never a link-local, cloud metadata or other
  non-public address, judged on the address the host name resolves to, for every request
  (redirects and robots.txt included).
- StrictRobotsTxtMiddleware: Scrapy's robots.txt middleware, except that a robots.txt that
  cannot be read (a network error, a 5xx or 429 after retries) refuses the host's pages for a
  while instead of allowing them all.
- RetryAfterMiddleware: a 429 or 503 with Retry-After is retried after that long, not at once.
- WireBodyMiddleware: an article page's gzip bytes are kept as they came, before Scrapy
  decompresses them, so raw_pages stores them without compressing the page again.
- BinaryBodyMiddleware: a binary file served as text/html is refused, not parsed.
- CharsetMiddleware: HTML that declares no encoding is decoded by what its text looks like.
- GuardedRedirectMiddleware, GuardedMetaRefreshMiddleware: Scrapy's, except that a redirect
  loop, a redirect off the source's domains and a redirect to another scheme are refused and
  recorded instead of dropped without a trace.

A refusal raises IgnoreRequest with a one-line reason; the spider's errback records it in
``failures`` (stage ``fetch``).
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import logging
import re
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from charset_normalizer import from_bytes
from scrapy import Request
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
    ResponseDataLossError,
)
from scrapy.http import HtmlResponse
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object
from scrapy.utils.response import get_meta_refresh
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom
from w3lib.http import basic_auth_header
from w3lib.url import safe_url_string

from archive.store import Archive
from crawl.revisits import announced_change, parse_schedule, revisit_due
from crawl.urls import canonical_url, host_of, in_domains

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.robotstxt import RobotParser
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


class SkipStoredArticlesMiddleware(BaseSpiderMiddleware):
    """Drops article requests whose canonical URL is stored, as an article or as an alias,
    or already requested by another crawler (source) in this process.

    A stored article is fetched again only when its feed or sitemap entry is dated after our
    last fetch, or when a scheduled re-visit is due (NEWS_REVISIT_AFTER); otherwise only its
    `last_seen_at` moves, so the archive knows it is still published. Only requests marked
    ``meta["news_kind"] == "article"`` are checked: feeds, sitemaps and listings are fetched
    every run (conditionally, where the server supports it).
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.schedule = parse_schedule(crawler.settings.get("NEWS_REVISIT_AFTER", ""))

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        # Must either return the request (to schedule it) or None (to drop it).
        if request.meta.get("news_kind") != "article":
            return request
        archive = Archive.for_crawler(self.crawler)
        stored = archive.stored_url_for(request.url)
        if request.url in archive.claimed:
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            self.crawler.stats.inc_value("news/requests/skipped_claimed")
            return None
        if stored is not None and not (stored == request.url and self._fetch_again(request, archive)):
            archive.pending.seen.add(stored)
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            return None
        archive.claimed.add(request.url)
        return request

    def _fetch_again(self, request: Request, archive: Archive) -> bool:
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


# --- credentials in URLs ----------------------------------------------------------------------


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


# --- only http(s), only public addresses --------------------------------------------------------

NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolve(host: str) -> list[str]:
    """Every address the system resolver gives for `host` (what the download will connect to)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def address_kind(address: str) -> str | None:
    """Why an address is not a public internet address ("loopback", "private", ...), or None.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged by that address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_kind(str(embedded))
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


# Addresses of cloud metadata services outside the link-local ranges (refused as link-local
# anyway): AWS's IPv6 service addresses (fd00:ec2::254, its DNS and NTP next to it) and Alibaba
# Cloud's 100.100.100.200.
CLOUD_METADATA = (ipaddress.ip_network("fd00:ec2::/64"), ipaddress.ip_network("100.100.100.200/32"))
# What allow_private opens: sites on a LAN or on this machine, nothing else that is not public.
OPENED_BY_ALLOW_PRIVATE = frozenset({"loopback", "private"})


def is_cloud_metadata(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return any(ip.version == network.version and ip in network for network in CLOUD_METADATA)


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why a request to `address` is refused ("a loopback address; set allow_private ..."), or None."""
    if is_cloud_metadata(address):
        return "a cloud metadata address, never fetched, whatever allow_private says"
    kind = address_kind(address)
    if kind is None or (allow_private and kind in OPENED_BY_ALLOW_PRIVATE):
        return None
    if kind in OPENED_BY_ALLOW_PRIVATE:
        return f"a {kind} address; set allow_private = true on the source to crawl it"
    if kind == "link-local":
        return "a link-local address (where cloud metadata services answer), never fetched, whatever allow_private says"
    return f"a {kind} address, never fetched (allow_private opens loopback and private addresses only)"


class FetchGuardMiddleware:
    """Refuses what a crawler must never fetch, before anything is sent.

    - Only ``http`` and ``https``: no ``file:``, ``ftp:``, ``data:`` or ``s3:`` URL, whether it
      came from the sources file, a page, a feed, a sitemap, robots.txt or a redirect.
    - No private or loopback address, unless the source sets ``allow_private = true``
      (``--allow-private`` for ``crawl --url``), for sites on a LAN or this machine.
    - Never a link-local address (169.254.0.0/16, fe80::/10: where cloud metadata services
      answer, with the machine's credentials), another cloud metadata address, or any other
      non-public one (multicast, 0.0.0.0, reserved), whatever ``allow_private`` says.

    The host name is resolved and every address it resolves to is checked, so ``localhost``,
    ``127.1``, ``2130706433`` or a public-looking name pointing inward are refused alike.
    Redirects come back through here, so a public page redirecting inward is refused too.

    A host is resolved once per crawl (in a thread; the reactor never waits on DNS). The
    download resolves it again when it connects, so a name whose DNS answer changes in
    between (DNS rebinding) is not fully covered; a proxy that enforces the rule is.
    """

    def __init__(self, crawler: Crawler, resolve: Callable[[str], Sequence[str]] = system_resolve) -> None:
        self.crawler = crawler
        self.resolve = resolve
        self.addresses: dict[str, Sequence[str] | str] = {}  # host -> addresses, or why it failed

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FetchGuardMiddleware:
        return cls(crawler, load_object(crawler.settings.get("NEWS_RESOLVER")))

    async def process_request(self, request: Request) -> None:
        # Must either return None (fetch it) or raise IgnoreRequest (the errback records why).
        reason = await self.refusal(request.url)
        if reason is not None:
            self.crawler.stats.inc_value("news/requests/refused")
            raise IgnoreRequest(reason)

    async def refusal(self, url: str) -> str | None:
        """Why `url` must not be fetched, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"refused: only http and https URLs are fetched, not {parts.scheme or 'relative'}:"
        host = (parts.hostname or "").rstrip(".")
        if not host:
            return "refused: the URL has no host"
        # Resolved with allow_private too: a name pointing at a metadata service is refused
        # before any connection, robots.txt included.
        addresses = await self._addresses(host)
        if isinstance(addresses, str):
            return f"refused: cannot resolve {host} ({addresses})"
        for address in addresses:
            if why := address_refusal(address, allow_private=self.allow_private):
                shown = host if host == address else f"{host} resolves to {address}, which"
                return f"refused: {shown} is {why}"
        return None

    @property
    def allow_private(self) -> bool:
        source = getattr(self.crawler.spider, "source", None)
        return bool(getattr(source, "allow_private", False))

    async def _addresses(self, host: str) -> Sequence[str] | str:
        if host not in self.addresses:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                try:
                    self.addresses[host] = await asyncio.to_thread(self.resolve, host)
                except OSError as exc:
                    self.addresses[host] = str(exc)
            else:
                self.addresses[host] = [host]
        return self.addresses[host]


# --- robots.txt -----------------------------------------------------------------------------------


# How a robots.txt download fails when the network or the site is at fault (Scrapy's RETRY_EXCEPTIONS,
# and a body past DOWNLOAD_MAXSIZE); any other exception is our bug and keeps its traceback.
ROBOTS_FETCH_ERRORS = (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
    ConnectError,
    ConnectionDone,
    ConnectionLost,
    OSError,
)


def without_robots_fetch_error(record: logging.LogRecord) -> bool:
    """A filter for Scrapy's robots.txt logger: it logs a robots.txt that could not be downloaded
    as an error with a 60-line traceback, under the URL of the page that waited for it;
    StrictRobotsTxtMiddleware._unreadable says the same in one line naming the host."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, ROBOTS_FETCH_ERRORS)


@dataclass(frozen=True)
class UnreadableRobots:
    """Stands in for a host's robots.txt parser while its robots.txt cannot be read."""

    reason: str
    until: float  # time.monotonic() after which robots.txt is fetched again


class StrictRobotsTxtMiddleware(RobotsTxtMiddleware):
    """RobotsTxtMiddleware with RFC 9309's rule for a robots.txt that cannot be read.

    Scrapy allows every URL of a host whose robots.txt failed to download (a timeout, a dropped
    connection, a request refused on the way) and reads a 5xx error page as if it were the file,
    so a site that is struggling gets its private pages crawled. RFC 9309 (2.3.1.3 and 2.3.1.4):
    an unreachable robots.txt (network error, 5xx; 429 too, as the big crawlers treat it) means
    complete disallow; an unavailable one (other 4xx) means no rules. Here the host's requests
    are refused, each recorded as a failure with the reason, and robots.txt is fetched again
    NEWS_ROBOTSTXT_RETRY seconds later. Retries (RETRY_TIMES) happen before any of this.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.retry_after = crawler.settings.getfloat("NEWS_ROBOTSTXT_RETRY", 300)
        logging.getLogger(RobotsTxtMiddleware.__module__).addFilter(without_robots_fetch_error)  # once

    async def robot_parser(self, request: Request) -> RobotParser | None:
        netloc = urlparse_cached(request).netloc
        parser = self._parsers.get(netloc)
        if isinstance(parser, UnreadableRobots) and time.monotonic() >= parser.until:
            del self._parsers[netloc]  # so the parent fetches it again
        found = await super().robot_parser(request)
        # Scrapy 2.19 awaits robots.txt through Deferred.asFuture (since scrapy/scrapy#6802), whose
        # callback passes None down the Deferred: of the requests that waited for robots.txt
        # together, only the first gets the parser and the others None, which Scrapy takes as
        # "allowed". What was read is in _parsers by then (never None here: an unreadable
        # robots.txt is UnreadableRobots).
        stored = self._parsers.get(netloc)
        if found is None and stored is not None and not isinstance(stored, Deferred):
            return stored
        return found

    def process_request_2(self, rp: RobotParser | None, request: Request) -> None:
        if isinstance(rp, UnreadableRobots):
            self._stats.inc_value("news/robotstxt/unreadable_refused")
            raise IgnoreRequest(
                f"refused: robots.txt could not be read ({rp.reason}), so nothing on the host is fetched"
            )
        super().process_request_2(rp, request)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        if response.status >= 500 or response.status == 429:
            self._stats.inc_value("robotstxt/response_count")
            self._stats.inc_value(f"robotstxt/response_status_count/{response.status}")
            self._unreadable(netloc, f"HTTP {response.status}")
        elif response.status >= 400:
            await super()._parse_robots(response.replace(body=b""), netloc, request)  # no rules
        else:
            await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        if not isinstance(exc, IgnoreRequest):
            self._stats.inc_value(f"robotstxt/exception_count/{type(exc)}")
        self._unreadable(netloc, str(exc) if isinstance(exc, IgnoreRequest) else f"{type(exc).__name__}: {exc}")

    def _unreadable(self, netloc: str, reason: str) -> None:
        # A warning: the site's fault, not ours; each page it refuses is also a recorded failure.
        logger.warning(
            "robots.txt of %s could not be read (%s): its pages are refused for %.0f s, then it is fetched again",
            netloc,
            reason,
            self.retry_after,
        )
        unreadable = UnreadableRobots(reason, time.monotonic() + self.retry_after)
        waiting = self._parsers[netloc]
        assert isinstance(waiting, Deferred)  # set by the parent while robots.txt is fetched
        self._parsers[netloc] = unreadable  # type: ignore[assignment]
        waiting.callback(unreadable)


# --- Retry-After ----------------------------------------------------------------------------------


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header as seconds to wait: "120" or an HTTP date; None if absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterMiddleware:
    """A 429 or 503 that says when to come back (Retry-After) is retried then, not at once.

    It only waits: Scrapy's RetryMiddleware, next in line, makes the retry and counts it
    against RETRY_TIMES. A wait longer than NEWS_RETRY_AFTER_MAX is not retried in this run at
    all (the failure is recorded), rather than retried against the server's wish.
    """

    CODES = (429, 503)

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler
        self.max_wait = settings.getfloat("NEWS_RETRY_AFTER_MAX")
        self.max_retries = settings.getint("RETRY_TIMES")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Response:
        # Must return a Response: RetryMiddleware turns it into the retry (or gives up).
        if response.status not in self.CODES or request.meta.get("dont_retry"):
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        retries = request.meta.get("max_retry_times", self.max_retries)
        if wait is None or request.meta.get("retry_times", 0) >= retries:
            return response
        if wait > self.max_wait:
            request.meta["dont_retry"] = True
            self.crawler.stats.inc_value("news/retry_after/too_long")
            logger.info("not retrying %s: Retry-After %gs is longer than NEWS_RETRY_AFTER_MAX", request, wait)
            return response
        self.crawler.stats.inc_value("news/retry_after/waited")
        await asyncio.sleep(wait)
        return response


# --- bodies that are not what they claim ------------------------------------------------------------

BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "gzip data",
    b"\x7fELF": "an executable",
    b"OggS": "Ogg media",
    b"ID3": "MP3 audio",
    b"wOFF": "a web font",
    b"wOF2": "a web font",
}
TEXT_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def binary_kind(body: bytes) -> str | None:
    """What a body is if it is not text ("a PNG image", "binary data"), or None for text."""
    head = body[:1024]
    for signature, kind in BINARY_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    if head.startswith(TEXT_BOMS):  # UTF-16 text is full of NUL bytes
        return None
    return "binary data" if b"\x00" in head else None


class WireBodyMiddleware:
    """Keeps the compressed body of an article page in ``meta["news_wire_body"]`` as
    (Content-Encoding, bytes): the spider stores it as raw_pages' copy when it is gzip
    (raw_html.from_wire). It sits just before HttpCompressionMiddleware on the way back.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        coding = response.headers.get(b"Content-Encoding")
        if coding and request.meta.get("news_kind") == "article" and 200 <= response.status < 300:
            request.meta["news_wire_body"] = (coding, response.body)  # a reference: no copy
        return response


class BinaryBodyMiddleware:
    """A page served as text/html that is really an image, an archive or other binary data
    is refused: parsed as HTML it is garbage at best. Feeds and sitemaps (``news_kind`` seed)
    are left alone: a gzipped sitemap served with the wrong type is still read.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        # Must return the Response, or raise IgnoreRequest (the errback records why).
        if (
            not isinstance(response, HtmlResponse)
            or not 200 <= response.status < 300  # an error page stays an HTTP error
            or request.meta.get("news_kind") == "seed"
        ):
            return response
        kind = binary_kind(response.body)
        if kind is not None:
            content_type = response.headers.get(b"Content-Type", b"").decode("latin-1")
            raise IgnoreRequest(f"refused: {kind} served as {content_type or 'HTML'}")
        return response


# --- pages that do not say their encoding -----------------------------------------------------------

MARKUP_RE = re.compile(rb"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL)
DETECT_BYTES = 64 * 1024


def guess_encoding(body: bytes) -> str | None:
    """The encoding of an HTML body that declares none, guessed from its text alone.

    Markup is left out first: tags and scripts are ASCII and dilute the evidence, which is how
    French in ISO-8859-1 comes out as Czech in cp1250. Among equally good guesses windows-1252
    wins, as in browsers (HTML's default for an undeclared Western page; ISO-8859-1 is read as it).
    """
    results = from_bytes(MARKUP_RE.sub(b" ", body[: DETECT_BYTES * 4])[:DETECT_BYTES])
    best = results.best()
    if best is None:
        return None
    ties = {m.encoding for m in results if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    return "cp1252" if "cp1252" in ties else best.encoding


class CharsetMiddleware:
    """Decodes HTML that declares no encoding (no charset in Content-Type, no BOM, no ``<meta>``)
    and is not UTF-8, by guessing from the text; Scrapy's own guess reads the markup too and
    picks the wrong Latin encoding for Western European pages.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        # Must return a Response: this one, or a copy with its encoding set.
        if not isinstance(response, HtmlResponse) or self._declared(response):
            return response
        try:
            response.body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return response  # ASCII or UTF-8: Scrapy reads it right
        encoding = guess_encoding(response.body)
        return response.replace(encoding=encoding) if encoding else response

    @staticmethod
    def _declared(response: HtmlResponse) -> bool:
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1")
        return bool(
            http_content_type_encoding(content_type)
            or read_bom(response.body)[0]
            or html_body_declared_encoding(response.body)
        )


# --- redirects --------------------------------------------------------------------------------------

REDIRECT_STATUSES = {301, 302, 303, 307, 308}


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

    def process_response(self, request: Request, response: Response) -> Request | Response:
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

    def process_response(self, request: Request, response: Response) -> Request | Response:
        # Must return a Response, or a Request (the refresh target), or raise IgnoreRequest.
        result = super().process_response(request, response)
        target = None
        if isinstance(response, HtmlResponse) and not request.meta.get("dont_redirect"):
            _, target = get_meta_refresh(response, ignore_tags=self.ignore_tags)
        return self.check(request, result, target)
