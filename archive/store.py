"""Reads and writes on the archive database for the crawl: the one place that knows the SQL.

One `Archive` per crawl process and database file: every crawler in the process (one per
source), its middleware, pipelines and run recorder share its connection and its pending
batch, so writes from one process never wait on each other, and two sources that reach the
same article in one process fetch and store it once. crawl/archive_access.py opens and hands
it to the crawlers; a shared crawl's writer opens its own.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from archive import not_articles
from archive.near_duplicates import NearDuplicateIndex
from archive.raw_pages import RawPageFiles, save_refs
from archive.run_closing import close_runs_of_gone_processes, daemon_alive
from archive.schema import open_db
from archive.site_chrome import SiteChrome
from archive.sqlite import sqlite3
from archive.transactions import immediate_transaction
from archive.url_claims import ClaimedUrls
from config.dates import utc_now_iso

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlite_utils import Database

    from config.sources import Source

logger = logging.getLogger(__name__)


@dataclass
class PendingWrites:
    """Writes collected by the store pipeline, committed together in one transaction."""

    new: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # stored URLs seen again: only last_seen_at moves
    aliases: list[dict[str, Any]] = field(default_factory=list)
    raw_pages: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    taken_down: set[str] = field(default_factory=set)
    replaced: dict[str, str] = field(default_factory=dict)  # later identical copy -> earlier article
    refetched: dict[str, str] = field(default_factory=dict)  # unchanged articles fetched again: url -> when
    not_articles: dict[str, dict[str, str]] = field(default_factory=dict)  # url -> {source, reason}

    def __len__(self) -> int:
        return (
            len(self.new)
            + len(self.updated)
            + len(self.seen)
            + len(self.aliases)
            + len(self.taken_down)
            + len(self.not_articles)
        )


# What a failed write raises: the layers above catch it without speaking SQLite themselves.
StorageError = sqlite3.Error


class Archive:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending = PendingWrites()  # filled by the middleware and the pipelines, written by flush()
        # Article URLs requested by any crawler of this process and not written yet: the first
        # crawler fetches it. Once written, the database answers (`stored_url_for`).
        self.claimed = ClaimedUrls()
        # Articles decided in this process and not written yet: url -> body hash, hash -> url.
        self.recent_urls: dict[str, str] = {}
        self.recent_bodies: dict[str, str] = {}
        self.recent_clusters: dict[str, int] = {}
        self.recent_published: dict[str, str | None] = {}
        self.near = NearDuplicateIndex(db)
        self.chrome = SiteChrome(db)  # each site's recurring body lines (archive/site_chrome.py)
        self.raw_files: RawPageFiles | None = None  # the WARC files, opened at the first raw page kept

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Archive:
        return cls(open_db(path))

    def close(self) -> None:
        if self.raw_files is not None:
            self.raw_files.close()
        self.db.close()
        self.claimed.close()

    # --- lookups --------------------------------------------------------------------------

    def stored_url_for(self, url: str) -> str | None:
        """The stored article a (canonical) URL belongs to, directly or as an alias."""
        row = self.db.execute(
            "SELECT url FROM articles WHERE url = ? UNION ALL SELECT url FROM url_aliases WHERE alias = ? LIMIT 1",
            [url, url],
        ).fetchone()
        return row[0] if row else None

    def article(self, url: str) -> dict[str, Any] | None:
        """The stored article's row, every column. Asked for every page the crawl decides on: a
        plain query, since sqlite-utils' `table().rows_where` first asks the schema whether
        `articles` is a view (10 % of the dedupe step's CPU in a profile at 10,000 real pages)."""
        cursor = self.db.execute("SELECT * FROM articles WHERE url = ?", [url])
        row = cursor.fetchone()
        return dict(zip((column[0] for column in cursor.description), row, strict=True)) if row else None

    def stored_article(self, url: str) -> dict[str, Any] | None:
        """When a canonical URL is a stored article: its fetch and first-seen times."""
        row = self.db.execute(
            "SELECT url, fetched_at, first_seen_at, taken_down_at FROM articles WHERE url = ?", [url]
        ).fetchone()
        return dict(zip(("url", "fetched_at", "first_seen_at", "taken_down_at"), row, strict=True)) if row else None

    def not_article(self, url: str) -> dict[str, Any] | None:
        """When a canonical URL was found to be no article, and when to look again (archive/not_articles.py)."""
        return not_articles.lookup(self.db, url)

    def recent_articles(self, source: str, since: str) -> list[dict[str, Any]]:
        """A source's articles first seen after `since` and still published (revisit candidates)."""
        rows = self.db.execute(
            "SELECT url, fetched_at, first_seen_at FROM articles "
            "WHERE source = ? AND first_seen_at >= ? AND taken_down_at IS NULL",
            [source, since],
        ).fetchall()
        return [dict(zip(("url", "fetched_at", "first_seen_at"), row, strict=True)) for row in rows]

    # --- HTTP validators (conditional requests for feeds and sitemaps) ---------------------

    def validators(self, url: str) -> dict[str, Any] | None:
        rows = list(self.db.table("http_validators").rows_where("url = ?", [url], limit=1))
        return rows[0] if rows else None

    def save_validators(
        self, url: str, *, etag: str | None, last_modified: str | None, children: list[str] | None = None
    ) -> None:
        self.db.table("http_validators").upsert(
            {
                "url": url,
                "etag": etag,
                "last_modified": last_modified,
                "checked_at": utc_now_iso(),
                "children": children,
            },
            pk="url",
        )

    def published_at(self, url: str) -> str | None:
        if url in self.recent_published:
            return self.recent_published[url]
        row = self.db.execute("SELECT published_at FROM articles WHERE url = ?", [url]).fetchone()
        return row[0] if row else None

    def names_itself_canonical(self, url: str) -> bool:
        """Whether the stored (or pending) article's page named its own URL canonical."""
        for row in self.pending.new:
            if row["url"] == url:
                return self.json_dict(row["provenance"]).get("url") == "canonical link"
        found = self.db.execute(
            "SELECT json_extract(provenance, '$.url') FROM articles WHERE url = ?", [url]
        ).fetchone()
        return bool(found and found[0] == "canonical link")

    def forget(self, url: str) -> None:
        """Drop what this process remembers of an article that is being replaced."""
        body = self.recent_urls.pop(url, None)
        if body is not None and self.recent_bodies.get(body) == url:
            del self.recent_bodies[body]
        self.recent_clusters.pop(url, None)
        self.recent_published.pop(url, None)

    def cluster_of(self, url: str) -> int | None:
        if url in self.recent_clusters:
            return self.recent_clusters[url]
        row = self.db.execute("SELECT cluster_id FROM articles WHERE url = ?", [url]).fetchone()
        return row[0] if row else None

    @staticmethod
    def json_dict(value: Any) -> dict[str, Any]:
        if value in (None, ""):
            return {}
        return json.loads(value) if isinstance(value, str) else dict(value)

    @staticmethod
    def json_list(value: Any) -> list[Any]:
        """Columns holding lists are JSON text in SQLite."""
        if value in (None, ""):
            return []
        return json.loads(value) if isinstance(value, str) else list(value)

    def urls_with_body(self, body_hash: str, limit: int = 100) -> list[str]:
        """Stored articles with this body, first seen first."""
        rows = self.db.execute(
            "SELECT url FROM articles WHERE body_hash = ? ORDER BY first_seen_at LIMIT ?", [body_hash, limit]
        ).fetchall()
        return [row[0] for row in rows]

    # --- runs and failures ----------------------------------------------------------------

    def sync_source(self, source: Source, *, adhoc: bool = False) -> None:
        """Refresh a source's row. An ad-hoc source (`crawl --url`) is marked as one: it has no
        schedule and is never enabled, so nothing reading the table takes it for a scheduled one."""
        row = source.summary()
        row["updated_at"] = utc_now_iso()
        row["adhoc"] = int(adhoc)
        if adhoc:
            row.update(enabled=0, schedule=None)
        self.db.table("sources").upsert(row, pk="name")

    def close_runs_of_dead_crawls(self) -> list[tuple[dict[str, Any], str]]:
        """Runs left 'running' by a crawl killed outright (kill -9 of a foreground crawl, a machine
        restart) are closed by the next process that writes the archive, since cron users never
        start the daemon; while a daemon runs, they are its to close (it knows its own children)."""
        if daemon_alive(self.db):
            return []
        closed = close_runs_of_gone_processes(self.db)
        for row, reason in closed:
            logger.warning("source=%s run=%s failed: %s", row["source"], row["id"], reason)
        return closed

    def save_counts(self, run_id: int, counts: dict[str, int]) -> None:
        """A running run's counts so far: a crawl killed outright keeps what it had counted."""
        sets = ", ".join(f"{column} = ?" for column in counts)
        with self.immediate_transaction():
            self.db.execute(
                f"UPDATE crawl_runs SET {sets} WHERE id = ? AND status = 'running'", [*counts.values(), run_id]
            )

    def start_run(self, source: str, *, log_file: str | None = None) -> int:
        table = self.db.table("crawl_runs")
        table.insert(
            {
                "source": source,
                "started_at": utc_now_iso(),
                "status": "running",
                "pid": os.getpid(),
                "log_file": log_file,
            }
        )
        run_id = table.last_pk
        if run_id is None:  # sqlite-utils sets last_pk on every insert: None would be its bug, not ours
            raise RuntimeError("sqlite-utils gave no id for the new crawl_runs row")
        return int(run_id)

    def finish_run(self, run_id: int, *, status: str, finish_reason: str, counts: dict[str, int]) -> None:
        finished = datetime.now(UTC).replace(microsecond=0)
        started = self.db.table("crawl_runs").get(run_id)["started_at"]
        duration = (finished - datetime.fromisoformat(started)).total_seconds()
        self.db.table("crawl_runs").update(
            run_id,
            {
                "finished_at": finished.isoformat(),
                "duration_s": duration,
                "status": status,
                "finish_reason": finish_reason,
                **counts,
            },
        )

    def record_failure(
        self,
        *,
        run_id: int | None,
        source: str | None,
        url: str | None,
        stage: str,
        reason: str,
        http_status: int | None = None,
    ) -> None:
        self.db.table("failures").insert(
            {
                "run_id": run_id,
                "source": source,
                "url": url,
                "stage": stage,
                "http_status": http_status,
                "reason": reason[:2000],
                "occurred_at": utc_now_iso(),
            }
        )

    # --- article writes -------------------------------------------------------------------

    def _replace(self, old: str, new: str) -> None:
        """Make stored article `old` an alias of `new` (both rows exist; `new` was just written)."""
        for sql in (
            "UPDATE url_aliases SET url = ? WHERE url = ?",
            "UPDATE article_revisions SET url = ? WHERE url = ?",
        ):
            self.db.execute(sql, [new, old])
        self.near.delete_stored([old])
        for table in ("raw_page_refs", "raw_pages", "articles"):
            self.db.execute(f"DELETE FROM {table} WHERE url = ?", [old])

    @contextmanager
    def immediate_transaction(self) -> Iterator[None]:
        """A write transaction on the archive (archive/transactions.py); the writer of a shared
        crawl adds its run records to each one."""
        with immediate_transaction(self.db):
            yield

    def flush(self) -> int:
        """Write what is pending in one transaction; returns how many writes it held."""
        batch, self.pending = self.pending, PendingWrites()
        if len(batch):
            self.write(batch)
            # Written: the database answers for these articles now. Remembering them too would
            # grow the crawl process by about 1 KB per article for the whole crawl.
            for row in batch.new + batch.updated:
                self.forget(row["url"])
            self.claimed.discard([row["url"] for row in batch.new + batch.updated])
            self.claimed.discard([alias["alias"] for alias in batch.aliases])
        return len(batch)

    def write(self, batch: PendingWrites) -> None:
        """Commit a batch in one transaction: articles first, then what refers to them."""
        now = utc_now_iso()
        if batch.raw_pages and self.raw_files is None:
            self.raw_files = RawPageFiles(self.db)
        # On disk before the transaction that references them (archive/warc_files.py).
        raw_refs = self.raw_files.write(batch.raw_pages) if self.raw_files else []
        with self.immediate_transaction():
            if batch.new:
                self.db.table("articles").upsert_all(batch.new, pk="url")
            for old, new in batch.replaced.items():
                self._replace(old, new)
            if batch.revisions:
                self.db.table("article_revisions").insert_all(batch.revisions, pk="id")
            if batch.updated:
                self.db.table("articles").upsert_all(batch.updated, pk="url")
            self.near.write({row["url"] for row in batch.new + batch.updated})
            if batch.refetched:
                self.db.conn.executemany(
                    "UPDATE articles SET fetched_at = ? WHERE url = ?",
                    [(when, url) for url, when in sorted(batch.refetched.items())],
                )
            if batch.taken_down:
                self.db.conn.executemany(
                    "UPDATE articles SET taken_down_at = ? WHERE url = ? AND taken_down_at IS NULL",
                    [(now, url) for url in sorted(batch.taken_down)],
                )
            if batch.seen:
                self.db.conn.executemany(
                    "UPDATE articles SET last_seen_at = ? WHERE url = ?",
                    [(now, url) for url in sorted(batch.seen)],
                )
            if batch.aliases:
                for alias in batch.aliases:  # copies of a replaced article now point at its successor
                    alias["url"] = batch.replaced.get(alias["url"], alias["url"])
                self.db.table("url_aliases").insert_all(batch.aliases, pk="alias", ignore=True)
            save_refs(self.db, raw_refs)
            not_articles.record(self.db, batch.not_articles, now=now)
            not_articles.forget(self.db, [row["url"] for row in batch.new + batch.updated])
            self.chrome.write()
