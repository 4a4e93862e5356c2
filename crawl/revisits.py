"""When to fetch a stored article again: its feed or sitemap date moved, or a scheduled re-visit
of recent articles is due (by default 1 h, 6 h and 24 h after it was first seen, then never)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from config.dates import parse_datetime
from config.durations import parse_duration


def parse_schedule(value: str | list[str] | tuple[str, ...]) -> tuple[timedelta, ...]:
    """NEWS_REVISIT_AFTER: "1h,6h,24h" (or a list) -> sorted durations; "" disables re-visits."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(sorted(parse_duration(p.strip()) for p in parts if p.strip()))


def _time(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def revisit_due(
    first_seen_at: str, fetched_at: str | None, schedule: tuple[timedelta, ...], now: datetime | None = None
) -> bool:
    """True when a re-visit step has passed since the article was last fetched."""
    now = now or datetime.now(UTC)
    first_seen, fetched = _time(first_seen_at), _time(fetched_at) or _time(first_seen_at)
    if first_seen is None or fetched is None:
        return False
    passed = [first_seen + step for step in schedule if first_seen + step <= now]
    return bool(passed) and fetched < passed[-1]


def announced_change(hints: dict[str, object], fetched_at: str | None) -> bool:
    """True when a feed or sitemap dates the article after our last fetch of it."""
    fetched = _time(fetched_at)
    if fetched is None:
        return False
    for key in ("modified", "published"):
        value = hints.get(key)
        if isinstance(value, str) and (when := _time(value)) is not None:
            return when > fetched
    return False


def oldest_relevant(schedule: tuple[timedelta, ...], now: datetime | None = None) -> str:
    """First-seen cut-off: articles older than the last re-visit step are never re-visited."""
    now = now or datetime.now(UTC)
    return (now - (schedule[-1] if schedule else timedelta(0)) - timedelta(days=1)).replace(microsecond=0).isoformat()
