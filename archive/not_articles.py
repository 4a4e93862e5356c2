"""Pages remembered as no article: the `not_articles` table and its back-off.

A page fetched as an article that was not one (a menu, a gallery, a cut-off page, a 404) is
looked at again only after a day, then after 2, 4, ... up to 64 days while it stays no article,
or earlier when its feed or sitemap entry dates it after the last look (crawl/skip_stored.py).
Once it is stored as an article its row goes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from config.dates import parse_datetime

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqlite_utils import Database

FIRST_RECHECK = timedelta(days=1)
LONGEST_RECHECK = timedelta(days=64)


def recheck_after(checks: int) -> timedelta:
    """How long after its `checks`-th finding a page is looked at again: 1, 2, 4 ... 64 days."""
    return min(FIRST_RECHECK * 2 ** max(checks - 1, 0), LONGEST_RECHECK)


def lookup(db: Database, url: str) -> dict[str, Any] | None:
    """The remembered finding for a canonical URL: its reason, when it was made and the next check."""
    row = db.execute("SELECT reason, checked_at, next_check_at FROM not_articles WHERE url = ?", [url]).fetchone()
    return dict(zip(("reason", "checked_at", "next_check_at"), row, strict=True)) if row else None


def record(db: Database, findings: Mapping[str, Mapping[str, str]], *, now: str) -> None:
    """Remember each URL -> {source, reason} as no article at `now` (in the caller's transaction)."""
    if not findings:
        return
    urls = sorted(findings)
    marks = ",".join("?" * len(urls))
    checks = dict(db.execute(f"SELECT url, checks FROM not_articles WHERE url IN ({marks})", urls).fetchall())
    when = parse_datetime(now)
    rows = []
    for url in urls:
        count = (checks.get(url) or 0) + 1
        next_check = (when + recheck_after(count)).isoformat() if when else now
        rows.append((url, findings[url]["source"], findings[url]["reason"][:500], now, now, count, next_check))
    db.conn.executemany(
        "INSERT INTO not_articles (url, source, reason, first_seen_at, checked_at, checks, next_check_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET source = excluded.source, "
        "reason = excluded.reason, checked_at = excluded.checked_at, checks = excluded.checks, "
        "next_check_at = excluded.next_check_at",
        rows,
    )


def forget(db: Database, urls: Iterable[str]) -> None:
    """These URLs are articles now (in the caller's transaction)."""
    db.conn.executemany("DELETE FROM not_articles WHERE url = ?", [(url,) for url in urls])
