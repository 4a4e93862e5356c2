"""When a stored article is fetched again: a moved feed/sitemap date, or a due re-visit step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crawl.revisits import announced_change, parse_schedule, revisit_due

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SCHEDULE = parse_schedule("1h,6h,24h")


def ago(**kwargs: float) -> str:
    return (NOW - timedelta(**kwargs)).isoformat()


def test_schedule_parses_and_can_be_turned_off() -> None:
    assert parse_schedule("1h,6h,24h") == (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
    assert parse_schedule("") == ()


def test_each_step_fetches_once_and_then_never_again() -> None:
    first_seen = ago(hours=2)
    assert revisit_due(first_seen, first_seen, SCHEDULE, NOW)  # the 1 h step has passed
    assert not revisit_due(first_seen, ago(minutes=30), SCHEDULE, NOW)  # fetched after it
    assert not revisit_due(ago(minutes=30), ago(minutes=30), SCHEDULE, NOW)  # no step yet
    assert not revisit_due(ago(days=3), ago(hours=40), SCHEDULE, NOW)  # fetched after the last step


def test_a_feed_or_sitemap_date_after_our_fetch_means_a_change() -> None:
    fetched = ago(hours=3)
    assert announced_change({"modified": ago(hours=1)}, fetched)
    assert not announced_change({"modified": ago(hours=5)}, fetched)
    assert announced_change({"published": "Wed, 25 Nov 2026 11:00:00 GMT"}, fetched)  # RFC 822 too
    assert not announced_change({}, fetched)
