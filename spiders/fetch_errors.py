"""What a failed request records: the reason and HTTP status an operator reads in the failures.

Not every failure is a fault: a crawl told to stop drops its requests, and robots.txt's refusal
is the site's wish. Both are left unrecorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError

from config.retry_after import retry_after_note
from crawl.downloader import NotFetched

if TYPE_CHECKING:
    from twisted.python.failure import Failure

ROBOTS_REFUSAL = "Forbidden by robots.txt"


@dataclass(frozen=True, slots=True)
class FetchError:
    """A failed request as recorded: `reason` None records nothing."""

    reason: str | None
    status: int | None = None
    # Refused (scheme, private address, redirect), too big, or disallowed by robots.txt: counted
    # as an ignored request.
    refused: bool = False


def fetch_error(failure: Failure, max_size: int) -> FetchError:
    """What `failure` records; `max_size` is DOWNLOAD_MAXSIZE, named when a body outgrew it."""
    if failure.check(NotFetched):  # the crawl was told to stop first: nothing went wrong
        return FetchError(reason=None)
    if failure.check(IgnoreRequest) and not failure.check(HttpError):
        message = str(failure.value)
        return FetchError(reason=None if message == ROBOTS_REFUSAL else message or "request ignored", refused=True)
    error = failure.value
    answer = error.response if isinstance(error, HttpError) else None  # the server's error response
    status = answer.status if answer is not None else None
    reason = f"HTTP {status}" if status else f"{type(error).__name__}: {error}"
    if isinstance(error, DownloadCancelledError) and not str(error):
        # Scrapy cancels without a message only when a body grows past the size cap.
        reason += f"body larger than DOWNLOAD_MAXSIZE ({max_size} bytes)"
    if answer is not None and status and (retry_after := answer.headers.get("Retry-After")):
        reason += retry_after_note(retry_after)
    return FetchError(reason=reason, status=status)
