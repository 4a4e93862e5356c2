"""Adaptive polling: how often to crawl a source, from how often it publishes and how it answers.

A source with `min_every` and `max_every` in the sources file is polled adaptively:

- publishing rate: the articles it gave us over the last week (by first-seen time); the interval
  is the mean gap between them, so a poll finds about one new article, within the bounds;
- nothing new in a week: the upper bound;
- failing runs back off: the interval doubles with each failed or timed-out run in a row;
- a server that asked us to wait (429/503 with Retry-After) is not polled before that.

The decision and its reason are recorded in `source_polling` (a table Datasette shows) and in
the daemon's log, so a user can see why a source is crawled as often as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from archive.polling import decided_interval, last_statuses, last_wait_request, new_articles_since, save_decision
from config.durations import format_duration
from config.retry_after import retry_after_in_reason, retry_after_seconds

if TYPE_CHECKING:
    from archive.runs import Database
    from config.sources import Source

WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class PollingDecision:
    source: str
    interval: timedelta
    reason: str


def is_adaptive(source: Source) -> bool:
    return source.min_every is not None and source.max_every is not None


def choose_interval(
    source: Source,
    *,
    new_articles: int,
    failed_in_a_row: int,
    retry_after: timedelta | None,
    window: timedelta = WINDOW,
) -> PollingDecision:
    """The interval for an adaptive source (pure: the inputs are read by `plan`)."""
    low, high = source.min_every, source.max_every
    if low is None or high is None:
        raise ValueError(f"source {source.name} is not adaptive (no min_every/max_every)")
    bounds = f"within {format_duration(low)}..{format_duration(high)}"
    if new_articles:
        gap = window / new_articles
        interval = min(max(gap, low), high)
        reason = (
            f"{new_articles} new articles in {format_duration(window)} (one every "
            f"{format_duration(gap)}): every {format_duration(interval)} {bounds}"
        )
    else:
        interval = high
        reason = f"nothing new in {format_duration(window)}: every {format_duration(interval)} {bounds}"
    if failed_in_a_row:
        interval = min(interval * 2**failed_in_a_row, high)
        reason += f"; backing off after {failed_in_a_row} failed runs in a row"
    if retry_after is not None and retry_after > interval:
        interval = retry_after
        reason += f"; the server asked to wait {format_duration(retry_after)} (Retry-After)"
    return PollingDecision(source.name, interval, reason)


def plan(db: Database, source: Source, now: datetime | None = None) -> PollingDecision:
    """Read the source's recent history, decide its interval, and record the decision."""
    now = now or datetime.now(UTC)
    since = (now - WINDOW).replace(microsecond=0).isoformat()
    decision = choose_interval(
        source,
        new_articles=new_articles_since(db, source.name, since),
        failed_in_a_row=_failed_in_a_row(db, source.name),
        retry_after=_retry_after(db, source.name, now),
    )
    save_decision(
        db,
        source.name,
        interval_s=decision.interval.total_seconds(),
        reason=decision.reason,
        decided_at=now.replace(microsecond=0).isoformat(),
    )
    return decision


def effective(source: Source, db: Database) -> Source:
    """The source as the daemon schedules it: an adaptive source at its last decided interval."""
    if not is_adaptive(source):
        return source
    interval_s = decided_interval(db, source.name)
    return replace(source, every=timedelta(seconds=interval_s)) if interval_s is not None else source


def _failed_in_a_row(db: Database, source: str) -> int:
    count = 0
    for status in last_statuses(db, source):
        if status not in ("failed", "timed_out"):
            break
        count += 1
    return count


def _retry_after(db: Database, source: str, now: datetime) -> timedelta | None:
    """How much longer the server asked us to wait, from the last run's failures."""
    found = last_wait_request(db, source)
    if found is None or (value := retry_after_in_reason(found[0])) is None:
        return None
    occurred = datetime.fromisoformat(found[1])
    seconds = retry_after_seconds(value, now=occurred)
    if seconds is None:
        return None
    remaining = occurred + timedelta(seconds=seconds) - now
    return remaining if remaining > timedelta(0) else None
