"""What adaptive polling (daemon/polling.py) reads from the archive, and where it records its decisions.

`source_polling` holds each adaptive source's last decided interval and why (Datasette shows it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.retry_after import RETRY_AFTER_MARKER

if TYPE_CHECKING:
    from sqlite_utils import Database


def new_articles_since(db: Database, source: str, since: str) -> int:
    """Articles of `source` first seen at or after `since` (ISO UTC)."""
    return int(
        db.execute("SELECT count(*) FROM articles WHERE source = ? AND first_seen_at >= ?", [source, since]).fetchone()[
            0
        ]
    )


def last_statuses(db: Database, source: str, limit: int = 10) -> list[str]:
    """The statuses of the source's last finished runs (skipped ones left out), newest first."""
    return [
        row[0]
        for row in db.execute(
            "SELECT status FROM crawl_runs WHERE source = ? AND status NOT IN ('running', 'skipped') "
            "ORDER BY id DESC LIMIT ?",
            [source, limit],
        )
    ]


def last_wait_request(db: Database, source: str) -> tuple[str, str] | None:
    """(reason, occurred_at) of the last failure of the source's last run whose server asked us to
    wait (Retry-After), or None."""
    row = db.execute(
        "SELECT f.reason, f.occurred_at FROM failures f WHERE f.source = ? AND f.reason LIKE ? "
        "AND f.run_id = (SELECT max(id) FROM crawl_runs WHERE source = ? AND status != 'skipped') "
        "ORDER BY f.id DESC LIMIT 1",
        [source, f"%{RETRY_AFTER_MARKER}%", source],
    ).fetchone()
    return (row[0], row[1]) if row else None


def save_decision(db: Database, source: str, *, interval_s: float, reason: str, decided_at: str) -> None:
    db.table("source_polling").upsert(
        {"source": source, "interval_s": interval_s, "reason": reason, "decided_at": decided_at},
        pk="source",
    )


def decided_interval(db: Database, source: str) -> float | None:
    """The source's last decided interval in seconds, or None if none was decided yet."""
    if "source_polling" not in db.table_names():
        return None
    row = db.execute("SELECT interval_s FROM source_polling WHERE source = ?", [source]).fetchone()
    return float(row[0]) if row else None
