"""`open_db()`, which every writer and reader uses: a connection with the archive's migrations
(archive/migrations.py) applied.

Tables (documented column by column in metadata.yml and the README):

- ``sources``      the configured sources, refreshed from the sources file at each crawl
- ``articles``     one row per article, keyed by its canonical URL, with ``articles_fts`` over it
- ``url_aliases``  other URLs of a stored article (redirects, AMP pages, canonical links, copies)
- ``raw_pages``    the fetched HTML of each article, compressed (gzip as sent, or zstd), for re-extraction
- ``crawl_runs``   one row per crawl of a source, with its status and counts
- ``failures``     every fetch, parse, extract or store failure, with the run it happened in
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from archive.migrations import migrations
from archive.transactions import immediate_transaction

BUSY_TIMEOUT_SECONDS = 30


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
        with immediate_transaction(db):
            migrations.apply(db)
    return db
