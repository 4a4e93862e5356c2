"""Read-only queries on the archive for `export`, `search` and `status --json`.

The SQL of the commands that only read lives here, beside archive/store.py (the crawl's reads and
writes). Every function takes a connection from `open_read_only()`: these commands can never
write, even by accident, and work on a database they may not write (a copy, a read-only mount).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from archive.schema import BUSY_TIMEOUT_SECONDS, migrations
from archive.sqlite import sqlite3

if TYPE_CHECKING:
    from collections.abc import Iterator

# Article columns a user exports: everything but internal bookkeeping (the near-duplicate index's
# signatures and the raw HTML live in other tables and are never exported).
EXPORT_COLUMNS = (
    "url",
    "source",
    "title",
    "authors",
    "published_at",
    "modified_at",
    "language",
    "sitename",
    "description",
    "categories",
    "tags",
    "image",
    "text",
    "markdown",
    "word_count",
    "body_hash",
    "discovered_via",
    "fetched_at",
    "first_seen_at",
    "last_seen_at",
    "updated_at",
    "version",
    "cluster_id",
    "taken_down_at",
    "provenance",
)
# Columns holding JSON text in SQLite: exported as JSON values in JSON Lines, as text in CSV.
JSON_COLUMNS = frozenset({"authors", "categories", "tags", "provenance"})
# Rows fetched from SQLite at a time: a bounded window whatever the archive's size.
FETCH_ROWS = 500


class NoDatabase(FileNotFoundError):
    """The database file does not exist (a read never creates one)."""


class BadSearch(ValueError):
    """A full-text query SQLite's FTS5 cannot parse; the message says why."""


def open_read_only(path: str | Path) -> Database:
    """The archive opened read-only (SQLite URI mode=ro): no statement on it can write, and it
    works on a database this user may not write (a copy on read-only media, another user's)."""
    path = Path(path)
    if not path.is_file():
        raise NoDatabase(f"no database at {path}")
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if not exc.sqlite_errorname.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
            raise
        # A WAL database in a folder this user cannot write: even a reader needs the -shm file,
        # which SQLite cannot create there. The file is then read as it is, without locks.
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True)
    db = Database(conn)
    if migrations.pending(db):  # its tables may lack columns the queries name; reads cannot migrate
        db.close()
        raise sqlite3.DatabaseError(
            "made by an older version of this archive; the next crawl or `scheduler.py run` upgrades it"
        )
    return db


def source_known(db: Database, name: str) -> bool:
    """Has the archive heard of this source (crawled it once, or stored an article of it)?"""
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM sources WHERE name = ?) OR EXISTS (SELECT 1 FROM articles WHERE source = ?)",
        [name, name],
    ).fetchone()
    return bool(row[0])


def source_recorded(db: Database, name: str) -> bool:
    """Has the archive any trace of this source: a sources row, an article or a crawl run?"""
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM sources WHERE name = ?) OR EXISTS (SELECT 1 FROM articles WHERE source = ?)"
        " OR EXISTS (SELECT 1 FROM crawl_runs WHERE source = ?)",
        [name, name, name],
    ).fetchone()
    return bool(row[0])


def fts_query(db: Database, query: str, *, raw: bool) -> str:
    """The user's words as an FTS5 query: each quoted (so "NOT", "-" or ":" are words), unless
    `raw` asks for FTS5's own syntax (AND, OR, NEAR, "phrases", prefix*)."""
    return query if raw else db.quote_fts(query)


def _filters(source: str | None, since: str | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if source:
        where.append("a.source = ?")
        params.append(source)
    if since:
        where.append("a.first_seen_at >= ?")
        params.append(since)
    return where, params


def _rows(conn: sqlite3.Connection, sql: str, params: list[Any], *, search: bool) -> Iterator[dict[str, Any]]:
    """Rows as dicts, FETCH_ROWS at a time from one cursor (never the whole result at once).

    With `search`, SQLite's complaint about the full-text query (it may come with the first rows,
    not at execute) is a BadSearch: the user's query was wrong, not the archive.
    """
    try:
        cursor = conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(FETCH_ROWS):
            for values in batch:
                yield dict(zip(names, values, strict=True))
    except sqlite3.OperationalError as exc:
        if search and ("fts5" in str(exc) or "no such column" in str(exc)):
            raise BadSearch(f"cannot read the search query: {exc}") from None
        raise


def export_articles(
    db: Database,
    *,
    source: str | None = None,
    since: str | None = None,
    query: str | None = None,
    raw_query: bool = False,
) -> Iterator[dict[str, Any]]:
    """Stored articles, oldest first seen first (with `query`: best match first), one at a time.

    `since` keeps articles first seen at or after it (an ISO 8601 date or timestamp), so that
    `export --since <the last export>` gives what is new; `query` keeps those the full-text
    index finds.
    """
    columns = ", ".join(f"a.{name}" for name in EXPORT_COLUMNS)
    where, params = _filters(source, since)
    if query:
        where.insert(0, "articles_fts MATCH ?")
        params.insert(0, fts_query(db, query, raw=raw_query))
        keys = (
            "SELECT a.rowid AS id FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid"
            f" WHERE {' AND '.join(where)} ORDER BY articles_fts.rank, a.url"
        )
        yield from _ranked_rows(db.conn, keys, params, columns)
        return
    sql = f"SELECT {columns} FROM articles a"  # in index order: no sort but of equal first_seen_at
    if where:
        sql += " WHERE " + " AND ".join(where)
    yield from _rows(db.conn, f"{sql} ORDER BY a.first_seen_at, a.url", params, search=False)


def _ranked_rows(conn: sqlite3.Connection, keys: str, params: list[Any], columns: str) -> Iterator[dict[str, Any]]:
    """A search's articles in the order of `keys` (a query of their rowids), FETCH_ROWS at a time.

    Only the rowids are sorted: the installed SQLite sorts in memory (archive/sqlite.py), and the
    matches of a common word sorted with their texts would be gigabytes at a year's archive."""
    ids = (row["id"] for row in _rows(conn, keys, params, search=True))
    while batch := list(itertools.islice(ids, FETCH_ROWS)):
        marks = ",".join("?" * len(batch))
        cursor = conn.execute(f"SELECT a.rowid, {columns} FROM articles a WHERE a.rowid IN ({marks})", batch)
        names = [d[0] for d in cursor.description][1:]
        found = {values[0]: dict(zip(names, values[1:], strict=True)) for values in cursor}
        yield from (found[rowid] for rowid in batch if rowid in found)  # one deleted since is left out


def decode_json_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its JSON text columns as values (a list of authors, not a string)."""
    for name in JSON_COLUMNS & row.keys():
        value = row[name]
        if isinstance(value, str) and value:
            with contextlib.suppress(ValueError):  # written by hand, not JSON: exported as the text it is
                row[name] = json.loads(value)
    return row


@dataclass(frozen=True)
class SearchHit:
    url: str
    source: str
    title: str | None
    published_at: str | None
    first_seen_at: str
    snippet: str


def search_articles(
    db: Database,
    query: str,
    *,
    source: str | None = None,
    limit: int = 20,
    newest_first: bool = False,
    raw_query: bool = False,
    marks: tuple[str, str] = ("[", "]"),
) -> list[SearchHit]:
    """Articles the full-text index finds for `query`, best match (or newest) first, each with a
    snippet of the column that matched best, its matches between `marks`."""
    where, params = _filters(source, None)
    where.insert(0, "articles_fts MATCH ?")
    params.insert(0, fts_query(db, query, raw=raw_query))
    order = "coalesce(a.published_at, a.first_seen_at) DESC" if newest_first else "articles_fts.rank"
    sql = (
        "SELECT a.url, a.source, a.title, a.published_at, a.first_seen_at,"
        " snippet(articles_fts, -1, ?, ?, '…', 16) AS snippet"
        " FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid"
        f" WHERE {' AND '.join(where)} ORDER BY {order}, a.url LIMIT ?"
    )
    rows = _rows(db.conn, sql, [*marks, *params, limit], search=True)
    return [SearchHit(**row) for row in rows]


# --- status --json ---------------------------------------------------------------------------


def sources_with_runs(db: Database) -> list[str]:
    """Names of the sources with a crawl run recorded, ad-hoc ones (`crawl --url`) left out."""
    rows = db.execute("SELECT DISTINCT source FROM crawl_runs WHERE source NOT LIKE 'adhoc\\_%' ESCAPE '\\'")
    return sorted(name for (name,) in rows.fetchall())


def last_run(db: Database, source: str) -> dict[str, Any] | None:
    """A source's latest run that did not skip (a skip says only that another was going)."""
    cursor = db.execute(
        "SELECT * FROM crawl_runs WHERE source = ? AND status != 'skipped' ORDER BY id DESC LIMIT 1", [source]
    )
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    return dict(zip(names, row, strict=True)) if row else None


def scheduled_runs(db: Database) -> dict[str, str]:
    """Each scheduled source's next run as the daemon last wrote it (meaningful while it is alive)."""
    if not db["daemon_jobs"].exists():
        return {}
    return dict(db.execute("SELECT source, next_run_at FROM daemon_jobs").fetchall())


def problems_since(db: Database, source: str, since: str) -> tuple[int, int]:
    """A source's failed or timed-out runs, and its recorded failures, since `since`."""
    failed_runs, failures = db.execute(
        "SELECT (SELECT count(*) FROM crawl_runs WHERE source = ? AND started_at >= ? "
        "AND status IN ('failed', 'timed_out')), "
        "(SELECT count(*) FROM failures WHERE source = ? AND occurred_at >= ?)",
        [source, since, source, since],
    ).fetchone()
    return int(failed_runs), int(failures)


def article_count(db: Database, source: str | None = None) -> int:
    if source is None:
        return int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    return int(db.execute("SELECT count(*) FROM articles WHERE source = ?", [source]).fetchone()[0])


# --- status ----------------------------------------------------------------------------------

# Every source that has runs, with its last run that was not skipped, in one query that seeks the
# (source, started_at) index once per source: a year of hourly runs is 1.7 million rows, and a
# DISTINCT, or an ORDER BY id per source, read all of them (4.2 s for `status`).
LAST_RUN_OF_EACH_SOURCE = """
WITH RECURSIVE ran(source) AS (
    SELECT min(source) FROM crawl_runs
    UNION ALL
    SELECT (SELECT min(source) FROM crawl_runs WHERE source > ran.source) FROM ran WHERE ran.source IS NOT NULL
)
SELECT source,
       (SELECT id FROM crawl_runs r WHERE r.source = ran.source AND r.status != 'skipped'
        ORDER BY r.started_at DESC, r.id DESC LIMIT 1) AS last_run_id
FROM ran WHERE source IS NOT NULL ORDER BY source
"""


def last_run_of_each_source(db: Database) -> dict[str, dict[str, Any] | None]:
    """Each source with runs (ad-hoc ones too), in name order, with its last run that was not
    skipped (None when all its runs were skips)."""
    last_ids = dict(db.execute(LAST_RUN_OF_EACH_SOURCE).fetchall())
    ids = [run_id for run_id in last_ids.values() if run_id is not None]
    marks = ", ".join("?" * len(ids))
    runs = {row["id"]: row for row in db["crawl_runs"].rows_where(f"id IN ({marks})", ids)}
    return {source: runs.get(run_id) for source, run_id in last_ids.items()}


def recent_failed_runs(db: Database, limit: int) -> list[tuple[int, str, str, str, str | None]]:
    """The last `limit` failed or timed-out runs, newest first: id, source, started_at, status, reason."""
    return db.execute(
        "SELECT id, source, started_at, status, finish_reason FROM crawl_runs "
        "WHERE status IN ('failed', 'timed_out') ORDER BY id DESC LIMIT ?",
        [limit],
    ).fetchall()


# --- the summary of `crawl` and `push` (on the archive as archive.schema.open_db opened it) -----


def latest_run_id(db: Database) -> int:
    """The id of the last run recorded, 0 for none: the runs after it are the ones a command starts."""
    return int(db.execute("SELECT coalesce(max(id), 0) FROM crawl_runs").fetchone()[0])


def runs_of_process(db: Database, after_run_id: int, pid: int) -> list[dict[str, Any]]:
    """The runs after `after_run_id` that process `pid` recorded, in order."""
    return list(db["crawl_runs"].rows_where("id > ? AND pid = ?", [after_run_id, pid], order_by="id"))


def first_failure_reason(db: Database, run_id: int) -> str | None:
    row = db.execute("SELECT reason FROM failures WHERE run_id = ? ORDER BY id LIMIT 1", [run_id]).fetchone()
    return row[0] if row else None
