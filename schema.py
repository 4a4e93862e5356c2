"""The SQLite schema, as sqlite-utils migrations, and `open_db()` which every writer and reader uses.

Tables (documented column by column in metadata.yml and the README):

- ``sources``      the configured sources, refreshed from the sources file at each crawl
- ``articles``     one row per article, keyed by its canonical URL, with ``articles_fts`` over it
- ``url_aliases``  other URLs of a stored article (redirects, AMP pages, canonical links, copies)
- ``raw_pages``    the fetched HTML of each article, zlib-compressed, for re-extraction
- ``crawl_runs``   one row per crawl of a source, with its status and counts
- ``failures``     every fetch, parse, extract or store failure, with the run it happened in
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT_SECONDS = 30

migrations = Migrations("news")


@migrations()
def create_core_tables(db: Database) -> None:
    db["sources"].create(
        {
            "name": str,
            "enabled": int,
            "schedule": str,
            "feeds": str,
            "sitemaps": str,
            "start_pages": str,
            "allowed_domains": str,
            "updated_at": str,
        },
        pk="name",
        if_not_exists=True,
    )
    db["articles"].create(
        {
            "url": str,
            "source": str,
            "title": str,
            "authors": str,
            "published_at": str,
            "modified_at": str,
            "language": str,
            "sitename": str,
            "description": str,
            "categories": str,
            "tags": str,
            "image": str,
            "text": str,
            "markdown": str,
            "word_count": int,
            "body_hash": str,
            "discovered_via": str,
            "fetched_at": str,
            "first_seen_at": str,
            "last_seen_at": str,
            "updated_at": str,
            "provenance": str,
        },
        pk="url",
        not_null={"source", "first_seen_at", "last_seen_at"},
        if_not_exists=True,
    )
    db["url_aliases"].create(
        {"alias": str, "url": str, "reason": str, "source": str, "first_seen_at": str},
        pk="alias",
        foreign_keys=[("url", "articles", "url")],
        if_not_exists=True,
    )
    db["raw_pages"].create(
        {
            "url": str,
            "fetched_at": str,
            "http_status": int,
            "content_type": str,
            "size": int,
            "html_zlib": bytes,
        },
        pk="url",
        foreign_keys=[("url", "articles", "url")],
        if_not_exists=True,
    )
    db["crawl_runs"].create(
        {
            "id": int,
            "source": str,
            "started_at": str,
            "finished_at": str,
            "duration_s": float,
            "status": str,
            "finish_reason": str,
            "pid": int,
            "requests": int,
            "responses": int,
            "articles_new": int,
            "articles_updated": int,
            "articles_unchanged": int,
            "articles_duplicate": int,
            "not_articles": int,
            "skipped_stored": int,
            "failures": int,
            "log_file": str,
        },
        pk="id",
        not_null={"source", "started_at", "status"},
        if_not_exists=True,
    )
    db["failures"].create(
        {
            "id": int,
            "run_id": int,
            "source": str,
            "url": str,
            "stage": str,
            "http_status": int,
            "reason": str,
            "occurred_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "crawl_runs", "id")],
        not_null={"stage", "reason", "occurred_at"},
        if_not_exists=True,
    )
    for table, columns in (
        ("articles", ["published_at"]),
        ("articles", ["source", "published_at"]),
        ("articles", ["language"]),
        ("articles", ["body_hash"]),
        ("articles", ["first_seen_at"]),
        ("url_aliases", ["url"]),
        ("crawl_runs", ["source", "started_at"]),
        ("failures", ["run_id"]),
        ("failures", ["occurred_at"]),
    ):
        db[table].create_index(columns, if_not_exists=True)


@migrations()
def add_articles_search(db: Database) -> None:
    # Triggers keep the index in step with every insert, update and delete, including
    # those a user makes by hand, so search is current while the crawler writes.
    if not db["articles_fts"].exists():
        db["articles"].enable_fts(
            ["title", "description", "text"], create_triggers=True, tokenize="porter unicode61"
        )


def connect(path: str | Path) -> Database:
    """A connection with the settings every process needs: WAL and a generous busy timeout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS)
    db = Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    db.enable_wal()  # readers (Datasette) never block the writer, nor it them
    db.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process in WAL mode
    db.execute("PRAGMA foreign_keys = ON")
    return db


def open_db(path: str | Path) -> Database:
    """Open (creating if needed) the archive at `path` with every migration applied."""
    db = connect(path)
    if migrations.pending(db):
        # Several crawl processes may start at once; IMMEDIATE makes them migrate one at a time,
        # and sqlite-utils nests each migration's own transaction as a savepoint.
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            migrations.apply(db)
        except BaseException:
            db.conn.rollback()
            raise
        db.conn.commit()
    return db
