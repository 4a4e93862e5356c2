"""StrictRobotsTxtMiddleware: Scrapy's robots.txt middleware, except that a robots.txt that
cannot be read (a network error, a 5xx or 429 after retries) refuses the host's pages for a while
instead of allowing them all."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.robotstxt import RobotParser
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


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
class UnreadableRobots(RobotParser):
    """Stands in for a host's robots.txt parser while its robots.txt cannot be read: it allows
    nothing (RFC 9309's complete disallow). A RobotParser, so it is what the parent middleware keeps
    for the host and hands to the requests that waited for robots.txt."""

    reason: str
    until: float  # time.monotonic() after which robots.txt is fetched again

    @classmethod
    def from_crawler(cls, crawler: Crawler, robotstxt_body: bytes) -> Self:
        # Never parsed from a body: StrictRobotsTxtMiddleware makes one when robots.txt cannot be read.
        raise TypeError("UnreadableRobots is made when robots.txt cannot be read, never parsed from one")

    def allowed(self, url: str | bytes, user_agent: str | bytes) -> bool:
        return False


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
        self._parsers[netloc] = unreadable
        waiting.callback(unreadable)
