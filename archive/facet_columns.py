"""The faceted columns of every article in memory, to count a full-text search's facets (issue #25).

Datasette's articles page filtered by a search counts four facets (source, language, publication
day, authors) over the matching articles. In SQLite each facet is a join of the matches to
``article_facet_values`` and a sort to group them: for a word in 42 % of a million articles that is
420,000 matches and 157-360 ms a facet, over Datasette's 200 ms facet limit. Here the matches are
read once, as one string of rowids (``group_concat``: about 40 ms for those 420,000), and each
facet is a ``numpy.bincount`` of the matches' codes in a column held in memory: the column holds, at
index ``rowid``, the code of that article's value. Memory: four int32 columns as long as the
highest rowid (16 MB at a million articles), and each distinct value once.

The columns follow ``article_facet_values``: before each count, the rows with an id above the
highest read are read, and the rows logged in ``article_facet_changes`` since the last entry read
(archive/migrations/facet_changes.py) are read again (a deleted article's codes stay, unread: its
rowid matches no search any more, and is read again if SQLite gives it to a new article). That and the search
run in one read transaction, so the counts are of one state of the archive, as SQL's would be.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from archive.sqlite import sqlite3

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

FACETS = ("source", "language", "published_day", "authors")  # article_facet_values' columns
NO_VALUE = 0  # the code of NULL, and of an id no article has: never counted
SEARCH_INDEX = "articles_fts"
ID_CHUNK = 500  # ids a query reads at once (SQLite allows 32,766 parameters; any fraction is as fast)
ROWS = f"SELECT {', '.join(FACETS)}, id FROM article_facet_values"
READ_CHUNK = 20_000  # rows turned into codes at once: a million at once would be a million tuples held


class ColumnsUnavailable(sqlite3.Error):
    """The columns cannot answer now (busy being read) or for this archive (no change log)."""


@contextmanager
def time_limit(conn: sqlite3.Connection, seconds: float | None) -> Iterator[None]:
    """SQLite interrupts a statement of `conn` running longer than `seconds` (OperationalError)."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1_000)
    try:
        yield
    finally:
        conn.set_progress_handler(None, 0)


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Every read inside sees one state of the database (a connection not already in a transaction)."""
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        yield
    finally:
        if began:
            conn.execute("COMMIT")  # nothing written: ends the read transaction


class Dictionary:
    """A column's values as small integer codes, and back. Append-only: a value no article holds any
    more keeps its code and counts zero."""

    def __init__(self) -> None:
        self.values: list[Any] = [None]
        self._codes: dict[Any, int] = {}

    def known(self, value: Any) -> int | None:
        """The code of a value some article holds or held; None for NULL or a value never seen."""
        return None if value is None else self._codes.get(value)

    def code(self, value: Any) -> int:
        if value is None:
            return NO_VALUE
        found = self._codes.get(value)
        if found is None:
            found = self._codes[value] = len(self.values)
            self.values.append(value)
        return found


class AuthorLists:
    """The distinct author lists (article_facet_values.authors, JSON arrays of distinct names), each
    a code, with the names of each: an article's authors column holds its list's code, and a name's
    count is the sum of the counts of the lists it is in."""

    def __init__(self) -> None:
        self.lists = Dictionary()
        self.names = Dictionary()
        self._members: tuple[list[int], list[int]] = ([], [])  # (list code, name code) per membership
        self._arrays: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None

    def code(self, authors: str | None) -> int:
        known = len(self.lists.values)
        code = self.lists.code(authors)
        if code == known:  # a list not seen before
            for name in json.loads(authors or "[]"):
                self._members[0].append(code)
                self._members[1].append(self.names.code(name))
            self._arrays = None
        return code

    def name_counts(self, list_counts: NDArray[np.int64]) -> NDArray[np.int64]:
        if self._arrays is None:
            self._arrays = (np.array(self._members[0], dtype=np.int64), np.array(self._members[1], dtype=np.int64))
        lists, names = self._arrays
        counted = np.bincount(names, weights=list_counts[lists], minlength=len(self.names.values))
        return counted.astype(np.int64)


class FacetColumns:
    """The four faceted columns of one archive, followed as it grows and changes. Thread-safe: Datasette
    runs queries in several threads, and one count must not see another's half-read rows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dictionaries = {facet: Dictionary() for facet in FACETS if facet != "authors"}
        self._authors = AuthorLists()
        self._columns = {facet: np.zeros(0, dtype=np.int32) for facet in FACETS}
        self._highest = 0  # every row up to this id has been read
        self._change = -1  # the last article_facet_changes entry read; -1: nothing read yet
        self._tables_read: tuple[tuple[str, int], ...] = ()

    def count(
        self,
        conn: sqlite3.Connection,
        match: str,
        params: dict[str, Any],
        limit: int,
        *,
        equal: dict[str, Any] | None = None,
        wait_s: float = -1,
        search_time_s: float | None = None,
    ) -> dict[str, list[tuple[Any, int]]]:
        """Each facet's `limit` most frequent values among the articles whose full text matches
        (`match` is the MATCH operand, `:search` or `escape_fts(:search)`, with `params`) and whose
        faceted columns hold the values in `equal` (facet -> value), as (value, count) by count,
        then value, as SQL's `order by count desc, value` gives them.

        Raises ColumnsUnavailable when another count or a first read holds the columns longer than
        `wait_s`, or the archive has no change log to follow (the caller counts in SQL then), and
        sqlite3.OperationalError when the search itself takes longer than `search_time_s`."""
        with self._selected(conn, match, params, equal, wait_s, search_time_s) as selected:
            return {facet: self._top(facet, selected, limit) for facet in FACETS}

    def total(
        self,
        conn: sqlite3.Connection,
        match: str,
        params: dict[str, Any],
        *,
        equal: dict[str, Any] | None = None,
        wait_s: float = -1,
        search_time_s: float | None = None,
    ) -> int:
        """How many articles match, as count() selects them."""
        with self._selected(conn, match, params, equal, wait_s, search_time_s) as selected:
            return len(selected)

    @contextmanager
    def _selected(
        self,
        conn: sqlite3.Connection,
        match: str,
        params: dict[str, Any],
        equal: dict[str, Any] | None,
        wait_s: float,
        search_time_s: float | None,
    ) -> Iterator[NDArray[np.int64]]:
        """The rowids of the articles selected, while this thread holds the columns."""
        if not self._lock.acquire(timeout=wait_s):
            raise ColumnsUnavailable("the facet columns are busy (being read)")
        try:
            with read_transaction(conn):  # one snapshot for the rows followed and the search
                self._follow(conn)
                with time_limit(conn, search_time_s):
                    matches = self._matches(conn, match, params)
            # An article has a source (articles.source is NOT NULL): a match without one has no row.
            kept = self._columns["source"][matches] != NO_VALUE
            for facet, value in (equal or {}).items():
                wanted = self._dictionaries[facet].known(value)  # None: no article holds it (nor NULL)
                kept &= self._columns[facet][matches] == wanted if wanted is not None else False
            yield matches[kept]
        finally:
            self._lock.release()

    def follow(self, conn: sqlite3.Connection) -> None:
        """Read what changed in article_facet_values since the last read (all of it, the first time)."""
        with self._lock, read_transaction(conn):
            self._follow(conn)

    def _matches(self, conn: sqlite3.Connection, match: str, params: dict[str, Any]) -> NDArray[np.int64]:
        sql = f"SELECT group_concat(rowid) FROM {SEARCH_INDEX} WHERE {SEARCH_INDEX} MATCH {match}"
        (listed,) = conn.execute(sql, params).fetchone()
        if not listed:
            return np.zeros(0, dtype=np.int64)
        # numpy's text parser, no Python int per match; rowids are plain integers, comma-separated.
        rowids = np.fromstring(listed, dtype=np.int64, sep=",")
        return rowids[(rowids >= 0) & (rowids < len(self._columns["source"]))]

    def _top(self, facet: str, matches: NDArray[np.int64], limit: int) -> list[tuple[Any, int]]:
        dictionary = self._authors.lists if facet == "authors" else self._dictionaries[facet]
        counts = np.bincount(self._columns[facet][matches], minlength=len(dictionary.values))
        if facet == "authors":
            counts[NO_VALUE] = 0
            counts, dictionary = self._authors.name_counts(counts), self._authors.names
        counts[NO_VALUE] = 0
        found = np.flatnonzero(counts)
        if len(found) > limit:  # only those that can be among the first `limit`, ties included
            least = np.partition(counts[found], len(found) - limit)[len(found) - limit]
            found = found[counts[found] >= least]
        ranked = sorted(
            ((dictionary.values[code], int(counts[code])) for code in found), key=lambda vc: (-vc[1], vc[0])
        )
        return ranked[:limit]

    # --- following article_facet_values ---------------------------------------------------------------

    def _follow(self, conn: sqlite3.Connection) -> None:
        tables = self._tables(conn)
        (first,) = conn.execute("SELECT min(seq) FROM article_facet_changes").fetchone()
        # The last sequence number given (AUTOINCREMENT's), even when its entry is gone.
        (last,) = conn.execute(
            "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'article_facet_changes'"
        ).fetchone()
        # Entries gone before this copy read them, a log made anew (its numbers started again) or
        # tables rebuilt (VACUUM, a restored file): it cannot tell what changed, so it reads all.
        missed = (last > self._change and (first is None or first > self._change + 1)) or last < self._change
        (held,) = conn.execute("SELECT coalesce(max(id), 0) FROM article_facet_values").fetchone()
        if self._change < 0 or missed or tables != self._tables_read:
            self._clear_all()
            self._tables_read = tables
        # Rows up to `floor` were read before: those logged since are read again (one deleted is not
        # there to read, and matches no search either). Every row above it is read as new: SQLite
        # gives the highest rowid again once its row is deleted, so `floor` is at most the highest
        # id the table holds now.
        floor = min(self._highest, held)
        if 0 <= self._change < last and not missed:
            changed = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT id FROM article_facet_changes WHERE seq > ? AND id <= ?", (self._change, floor)
                )
            ]
            for start in range(0, len(changed), ID_CHUNK):
                chunk = changed[start : start + ID_CHUNK]
                self._read(conn.execute(f"{ROWS} WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
        self._read(conn.execute(f"{ROWS} WHERE id > ?", (floor,)))
        self._change, self._highest = last, held

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> tuple[tuple[str, int], ...]:
        """The tables and the trigger the copy relies on, with their root pages (new when a table is
        made anew). Without the log or its trigger, rewrites would go unseen: ColumnsUnavailable."""
        found = tuple(
            (str(name), int(rootpage))  # plain tuples: Datasette's connections give sqlite3.Row
            for name, rootpage in conn.execute(
                "SELECT name, rootpage FROM sqlite_master WHERE name IN"
                " ('article_facet_values', 'article_facet_changes', 'article_facet_changes_log') ORDER BY name"
            )
        )
        if len(found) < 3:
            raise ColumnsUnavailable("this archive has no log of article_facet_values' changes yet")
        return found

    def _clear_all(self) -> None:
        """Forget every row: the next rows read are all of them (again, should this read stop)."""
        for facet in FACETS:
            self._columns[facet][:] = NO_VALUE
        self._highest, self._change = 0, -1

    def _read(self, cursor: sqlite3.Cursor) -> None:
        source, language, day = (self._dictionaries[facet] for facet in FACETS[:3])
        while rows := cursor.fetchmany(READ_CHUNK):
            coded = np.array(
                [
                    (row[4], source.code(row[0]), language.code(row[1]), day.code(row[2]), self._authors.code(row[3]))
                    for row in rows
                    if row[4] > 0  # SQLite's own rowids start at 1; one set by hand below is never counted
                ],
                dtype=np.int64,
            ).reshape(-1, len(FACETS) + 1)
            if not len(coded):
                continue
            ids = coded[:, 0]
            self._make_room(int(ids.max()))
            for index, facet in enumerate(FACETS, start=1):
                self._columns[facet][ids] = coded[:, index]

    def _make_room(self, highest_id: int) -> None:
        size = len(self._columns["source"])
        if highest_id < size:
            return
        grown = max(highest_id + 1, size + size // 2, 1024)
        for facet in FACETS:
            column = np.zeros(grown, dtype=np.int32)
            column[:size] = self._columns[facet]
            self._columns[facet] = column
