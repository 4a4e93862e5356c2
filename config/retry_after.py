"""Retry-After: reading the header, and how a failure's reason carries it.

The crawl honours the header (crawl/, RetryAfterMiddleware) and writes it into a recorded failure's
reason (`retry_after_note`); adaptive polling (daemon/polling.py) reads it back from there
(`retry_after_in_reason`). Both ends use this one module, so the format is defined once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_AFTER_MARKER = "Retry-After:"  # what a failure's reason holds when the server said to wait
_RETRY_AFTER_RE = re.compile(r"\(Retry-After: ([^)]+)\)")


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


def retry_after_note(value: bytes | str) -> str:
    """The part of a failure's reason that keeps the header's value: `` (Retry-After: 120)``."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return f" ({RETRY_AFTER_MARKER} {text})"


def retry_after_in_reason(reason: str) -> str | None:
    """The header's value a failure's reason carries (`retry_after_note`), or None."""
    match = _RETRY_AFTER_RE.search(reason)
    return match.group(1) if match else None
