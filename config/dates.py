"""Dates shared by every layer. Tables hold ISO 8601 UTC strings of second precision; code that
computes with time holds aware datetimes. Each helper's name says which of the two it returns."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def utc_now() -> datetime:
    """Now, an aware UTC datetime of second precision (what the tables can store)."""
    return datetime.now(UTC).replace(microsecond=0)


def utc_now_iso() -> str:
    """Now as the tables write it: an ISO 8601 UTC string, second precision."""
    return utc_now().isoformat()


def parse_datetime(value: str) -> datetime | None:
    """ISO 8601 (with or without offset, date only) or RFC 822 -> an aware datetime (naive values
    are taken as UTC), or None."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
