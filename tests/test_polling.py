"""Adaptive polling: the interval follows the publishing rate, backs off on failures and honours
Retry-After, within the bounds of the sources file; the decision and its reason are recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.schema import open_db
from config.sources import SourceConfigError, load_sources
from daemon.polling import choose_interval, is_adaptive, plan

SOURCES = """
[[source]]
name = "busy"
feeds = ["https://busy.example/rss"]
every = "30m"
min_every = "5m"
max_every = "6h"

[[source]]
name = "fixed"
feeds = ["https://fixed.example/rss"]
every = "30m"
"""
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def sources(tmp_path: Path):
    path = tmp_path / "sources.toml"
    path.write_text(SOURCES, encoding="utf-8")
    return {s.name: s for s in load_sources(path)}


def test_only_sources_with_both_bounds_are_adaptive(sources, tmp_path: Path) -> None:
    assert is_adaptive(sources["busy"])
    assert not is_adaptive(sources["fixed"])
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[source]]\nname = "x"\nfeeds = ["https://x.example/f"]\nevery = "1h"\nmin_every = "2h"\nmax_every = "1h"\n',
        encoding="utf-8",
    )
    with pytest.raises(SourceConfigError, match='source "x": field "min_every": 2h is longer than max_every'):
        load_sources(bad)
    bad.write_text(
        '[[source]]\nname = "x"\nfeeds = ["https://x.example/f"]\nevery = "1h"\nmax_every = "1h"\n',
        encoding="utf-8",
    )
    with pytest.raises(SourceConfigError, match='field "min_every": adaptive polling needs both'):
        load_sources(bad)


def test_a_source_that_publishes_often_is_polled_often(sources) -> None:
    often = choose_interval(sources["busy"], new_articles=7 * 24 * 30, failed_in_a_row=0, retry_after=None)
    daily = choose_interval(sources["busy"], new_articles=7, failed_in_a_row=0, retry_after=None)
    assert often.interval == timedelta(minutes=5)  # one every 2 minutes: held at the lower bound
    assert daily.interval == timedelta(hours=6)  # one a day: held at the upper bound
    middle = choose_interval(sources["busy"], new_articles=7 * 24, failed_in_a_row=0, retry_after=None)
    assert middle.interval == timedelta(hours=1)
    assert middle.reason == "168 new articles in 7d (one every 1h): every 1h within 5m..6h"


def test_failures_back_off_and_retry_after_is_honoured(sources) -> None:
    backed = choose_interval(sources["busy"], new_articles=7 * 24, failed_in_a_row=2, retry_after=None)
    assert backed.interval == timedelta(hours=4)
    assert "backing off after 2 failed runs" in backed.reason
    capped = choose_interval(sources["busy"], new_articles=7 * 24, failed_in_a_row=5, retry_after=None)
    assert capped.interval == timedelta(hours=6)
    waited = choose_interval(sources["busy"], new_articles=7 * 24, failed_in_a_row=0, retry_after=timedelta(hours=3))
    assert waited.interval == timedelta(hours=3)
    assert "Retry-After" in waited.reason


def test_plan_reads_the_archive_and_records_its_decision(sources, tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    for n in range(14):  # two a day over the last week
        seen = (NOW - timedelta(hours=12 * n + 1)).isoformat()
        db["articles"].insert(
            {
                "url": f"https://busy.example/{n}",
                "source": "busy",
                "first_seen_at": seen,
                "last_seen_at": seen,
            }
        )
    db["articles"].insert(
        {
            "url": "https://busy.example/old",
            "source": "busy",
            "first_seen_at": (NOW - timedelta(days=30)).isoformat(),
            "last_seen_at": "x",
        }
    )
    for status in ("ok", "failed", "timed_out"):
        db["crawl_runs"].insert({"source": "busy", "started_at": NOW.isoformat(), "status": status})
    db["failures"].insert(
        {
            "run_id": 3,
            "source": "busy",
            "url": "https://busy.example/rss",
            "stage": "fetch",
            "http_status": 429,
            "reason": "HTTP 429 (Retry-After: 36000)",
            "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
        }
    )
    decision = plan(db, sources["busy"], now=NOW)
    # 14 in a week = one every 12h -> 6h (the bound); 2 failures -> still 6h; Retry-After 10h, 1h ago -> 9h
    assert decision.interval == timedelta(hours=9)
    row = db["source_polling"].get("busy")
    assert row["interval_s"] == 9 * 3600
    assert "14 new articles in 7d" in row["reason"]
    assert "backing off after 2 failed runs" in row["reason"]
    assert "Retry-After" in row["reason"]
