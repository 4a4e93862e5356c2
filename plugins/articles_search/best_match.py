"""The search page's best match at a year of news (issue #25): the canned query `search` ranks every
match of the words by bm25 and keeps the first 100. FTS5 computes the score of each match in turn
(the row's size, its position lists): for a word in half of a million articles, about 450 ms of
one core, 770 ms for a word in four fifths of them. The ranking has no exact shortcut (bm25
saturates, so no bound lets a subset decide the first 100), but it splits: a match's score does
not depend on the other matches (the words' document frequencies and the average length are the
whole table's), so two halves of the table by rowid, ranked at once on two connections, give the
same first 100 as the whole. On two cores: 'an' (70 % of a million) 573 -> 368 ms, in process.

Datasette runs a canned query's SQL as written, so this wraps Database.execute, as
count_searches_over_matches (search.py) does for a count: the canned query, recognised by its
whole text, has its `best` part (read from metadata.yml, the one place its weights and limit are
written) ranked here in two halves, and then runs with those 100 given as a JSON list in place of
`best`. The halves open the file as Datasette does (read-only, or immutable), and the answer is
one moment's: when another connection commits between the ranking and the page's query (a crawl
writing), the canned query runs as written instead. So does anything else, and any error here: the
same answer, only slower.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datasette.utils import escape_fts

from archive.sqlite import sqlite3
from articles_search.wrapping import wrap_database_execute

if TYPE_CHECKING:
    from articles_search.wrapping import Execute

logger = logging.getLogger("news_archive")

# The canned query's `best` part: `with best as ( <ranking> ),` up to the next part, `newest`.
BEST_PART = re.compile(r"with best as \((?P<ranking>.*?)\),\s*newest as \(", re.DOTALL)
# Where the ranking's full-text condition is, so that each half can be bounded by rowid after it.
FULL_TEXT_MATCH = "articles_fts match escape_fts(:q)"
# The ranked matches, as the `best` part's columns, from the JSON list the halves made.
RANKED = "select value ->> 0 as article_rowid, value ->> 1 as score from json_each(:news_ranked)"
HALVES = 2  # the machine's two cores
HELD_ARCHIVES = 4  # connections a thread keeps open (tests open many archives; a server one)

_halves = ThreadPoolExecutor(max_workers=HALVES, thread_name_prefix="best-match")
_connections = threading.local()
_CANNED: dict[str, CannedSearch] = {}  # by their SQL: the canned query `search` of each Datasette


@dataclass(frozen=True)
class ArchiveFile:
    """The archive a Datasette database serves, opened as Datasette opens it (and, like Datasette's
    own connections, kept open for the life of the server)."""

    uri: str

    @classmethod
    def of(cls, database: Any) -> ArchiveFile:
        if database.is_mutable:
            return cls(f"file:{database.path}?mode=ro" + ("&nolock=1" if database.ds.nolock else ""))
        return cls(f"file:{database.path}?immutable=1")  # no WAL: what Datasette reads of it

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the archive."""
        held: dict[str, sqlite3.Connection] = _connections.__dict__.setdefault("held", {})
        if self.uri not in held:
            while len(held) >= HELD_ARCHIVES:
                held.pop(next(iter(held))).close()
            conn = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
            conn.create_function("escape_fts", 1, escape_fts, deterministic=True)
            held[self.uri] = conn
        return held[self.uri]


class CannedSearch:
    """The canned query `search` (its SQL as Datasette runs it), ranked in halves."""

    def __init__(self, sql: str) -> None:
        found = BEST_PART.search(sql)
        limit = re.search(r"\blimit\s+(\d+)\s*$", found["ranking"]) if found else None
        if found is None or limit is None or FULL_TEXT_MATCH not in found["ranking"]:
            raise ValueError("the canned query `search` has no `best` part to rank")
        self.sql = sql
        self.limit = int(limit[1])
        bounded = f"{FULL_TEXT_MATCH} and rowid between :news_low and :news_high"
        self.half = found["ranking"].strip().replace(FULL_TEXT_MATCH, bounded)
        self.ranked_sql = sql[: found.start("ranking")] + "\n" + RANKED + "\n" + sql[found.end("ranking") :]

    def wanted(self, params: Any) -> bool:
        """Asked for the best match of a search."""
        return (
            isinstance(params, Mapping) and params.get("sort") != "newest" and bool(str(params.get("q") or "").strip())
        )

    async def rank(self, archive: ArchiveFile, params: Mapping[str, Any], highest: int, time_limit_s: float) -> str:
        """The `best` part's rows, as the JSON list RANKED reads: the halves of the table up to
        rowid `highest` (and past it, for rows added since) ranked at once, then merged. Each half
        has `time_limit_s` from when a thread takes it up, as Datasette's queries have."""
        cuts = [highest * part // HALVES for part in range(1, HALVES)]
        bounds = list(zip([-(2**63), *(cut + 1 for cut in cuts)], [*cuts, 2**63 - 1], strict=True))
        halves = [
            asyncio.wrap_future(
                _halves.submit(self._rank_half, archive, {**params, "news_low": lo, "news_high": hi}, time_limit_s)
            )
            for lo, hi in bounds
        ]
        rows = [row for half in await asyncio.gather(*halves) for row in half]
        rows.sort(key=lambda row: (row[1], -row[0]))  # the `best` part's order: score, then newest
        return json.dumps(rows[: self.limit])

    def _rank_half(self, archive: ArchiveFile, params: dict[str, Any], time_limit_s: float) -> list[tuple[int, float]]:
        conn = archive.connection()
        deadline = time.monotonic() + time_limit_s
        conn.set_progress_handler(lambda: int(time.monotonic() >= deadline), 1000 if time_limit_s > 0.02 else 1)
        try:
            return [(row[0], row[1]) for row in conn.execute(self.half, params)]
        finally:
            conn.set_progress_handler(None, 0)


class Commits:
    """Whether another connection commits to an archive while one page is answered: PRAGMA
    data_version read twice on one connection of the page's own (two connections' values do not
    compare). It never waits for a lock: a locked archive is a change, and the page runs as written."""

    def __init__(self, archive: ArchiveFile) -> None:
        self._conn = sqlite3.connect(archive.uri, uri=True, check_same_thread=False, timeout=0)
        self._first = self._version()

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def seen(self) -> bool:
        """Some other connection committed since this was made (the connection is closed then)."""
        try:
            return self._version() != self._first
        finally:
            self._conn.close()


def register_canned_search(sql: str) -> None:
    """Rank the canned query `sql` (a Datasette's `search`) in halves from now on."""
    try:
        _CANNED.setdefault(sql, CannedSearch(sql))
    except ValueError as error:
        logger.warning("the search page ranks on one core: %s", error)


def highest_rowid(conn: sqlite3.Connection) -> int:
    """Where the upper half ends: the highest rowid the page's own connection sees."""
    return int(conn.execute("SELECT max(rowid) FROM articles").fetchone()[0] or 0)


def time_limit_ms(database: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The time limit Datasette gives this query (Database.execute's sql_operation_in_thread)."""
    custom = kwargs.get("custom_time_limit", args[2] if len(args) > 2 else None)  # after params, truncate
    limit = int(database.ds.sql_time_limit_ms)
    return int(custom) if custom and custom < limit else limit


def rank_best_matches_in_halves() -> None:
    """Wrap Database.execute so that the registered canned queries rank their best matches in halves."""
    from datasette.database import Database, QueryInterrupted

    def wrap(original: Execute) -> Execute:
        async def execute(self: Database, sql: str, *args: Any, **kwargs: Any) -> Any:
            params: Any = args[0] if args else kwargs.get("params")
            canned = _CANNED.get(sql)
            if canned is None or self.path is None or self.is_memory or not canned.wanted(params):
                return await original(self, sql, *args, **kwargs)
            try:
                archive = ArchiveFile.of(self)
                commits = await asyncio.to_thread(Commits, archive) if self.is_mutable else None
                highest = await self.execute_fn(highest_rowid)
                ranked = await canned.rank(archive, params, highest, time_limit_ms(self, args, kwargs) / 1000)
            except sqlite3.OperationalError as error:
                if error.args == ("interrupted",):
                    raise QueryInterrupted(error, sql, params) from None
                return await original(self, sql, *args, **kwargs)  # a search FTS5 refuses: Datasette's error
            except Exception:  # our bug: the page ranks on one core
                logger.exception("the search page ranked on one core: ranking in halves failed")
                return await original(self, sql, *args, **kwargs)
            rest = {name: value for name, value in kwargs.items() if name != "params"}
            results = await original(self, canned.ranked_sql, {**params, "news_ranked": ranked}, *args[1:], **rest)
            try:
                moved = commits is not None and await asyncio.to_thread(commits.seen)
            except sqlite3.Error:  # locked by a writer (a rollback-journal archive): as if it had moved
                moved = True
            # The halves and the page may have read two moments of the archive: one query reads one.
            return await original(self, sql, *args, **kwargs) if moved else results

        return execute

    wrap_database_execute("news_archive_best_match", wrap)
