"""The archive as a shared crawl's writer (distributed/writer.py) uses it: each batch also carries the
workers' run records, and what was stored is read back for the workers to see in Redis."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from archive.store import Archive

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Iterable, Iterator

    from sqlite_utils import Database


class WriterArchive(Archive):
    """The writer's archive: each batch also carries the workers' run records (failures, counts),
    written in the batch's own transaction, so a batch is stored whole or not at all."""

    def __init__(self, db: Database, *, run_columns: Iterable[str] = ()) -> None:
        super().__init__(db)
        self.run_columns = frozenset(run_columns)  # the crawl_runs counts a worker may add to
        self.failures: list[dict[str, Any]] = []
        self.counts: dict[int, Counter[str]] = {}

    @contextmanager
    def immediate_transaction(self) -> Iterator[None]:
        with super().immediate_transaction():
            yield
            self._write_run_records()

    def flush(self) -> int:
        records = len(self.failures) + len(self.counts)
        if records and not len(self.pending):
            with self.immediate_transaction():
                pass
            return records
        return super().flush() + records

    def _write_run_records(self) -> None:
        wanted = json.dumps([*self.counts, *(row["run_id"] for row in self.failures)])
        runs = {
            row[0]
            for row in self.db.execute(
                "SELECT id FROM crawl_runs WHERE id IN (SELECT value FROM json_each(?))", [wanted]
            )
        }
        for row in self.failures:
            if row["run_id"] not in runs:  # a run this archive does not have (another database)
                row["run_id"] = None
        if self.failures:
            self.db.table("failures").insert_all(self.failures)
        for run_id, counts in self.counts.items():
            columns = [c for c in counts if c in self.run_columns]
            if run_id in runs and columns:
                sets = ", ".join(f"{c} = coalesce({c}, 0) + ?" for c in columns)
                self.db.execute(f"UPDATE crawl_runs SET {sets} WHERE id = ?", [*(counts[c] for c in columns), run_id])
        self.failures, self.counts = [], {}


def stored_records(db: Database, urls: set[str]) -> dict[str, dict[str, Any]]:
    """How the workers should see each URL: a stored article (with its fetch times), an alias, or a
    page remembered as no article (with its finding and next check)."""
    records: dict[str, dict[str, Any]] = {}
    chunk = sorted(urls)
    for start in range(0, len(chunk), 500):
        part = json.dumps(chunk[start : start + 500])
        for url, fetched, first_seen, taken_down in db.execute(
            "SELECT url, fetched_at, first_seen_at, taken_down_at FROM articles "
            "WHERE url IN (SELECT value FROM json_each(?))",
            [part],
        ):
            records[url] = {"url": url, "fetched_at": fetched, "first_seen_at": first_seen, "taken_down_at": taken_down}
        for alias, url in db.execute(
            "SELECT alias, url FROM url_aliases WHERE alias IN (SELECT value FROM json_each(?))", [part]
        ):
            records.setdefault(alias, {"url": url})
        for url, reason, checked, next_check in db.execute(
            "SELECT url, reason, checked_at, next_check_at FROM not_articles "
            "WHERE url IN (SELECT value FROM json_each(?))",
            [part],
        ):
            records.setdefault(
                url, {"not_article": {"reason": reason, "checked_at": checked, "next_check_at": next_check}}
            )
    return records


def records_seen_since(db: Database, since: str) -> Iterator[dict[str, dict[str, Any]]]:
    """The articles seen since `since` and their aliases, as `stored_records` gives them, a thousand
    articles at a time."""
    rows = db.execute(
        "SELECT url, fetched_at, first_seen_at, taken_down_at FROM articles WHERE last_seen_at >= ?", [since]
    )
    while batch := rows.fetchmany(1000):
        records = {u: {"url": u, "fetched_at": f, "first_seen_at": s, "taken_down_at": t} for u, f, s, t in batch}
        aliases = db.execute(
            "SELECT alias, url FROM url_aliases WHERE url IN (SELECT value FROM json_each(?))",
            [json.dumps(list(records))],
        ).fetchall()
        records.update({alias: {"url": url} for alias, url in aliases if alias not in records})
        yield records
