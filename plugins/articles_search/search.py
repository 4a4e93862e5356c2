"""Datasette's `?_search=` on the articles table at a year of news (issue #25): the filter that
replaces Datasette's own, and the count and facets of a search page, counted over columns held in
memory (archive/facet_columns.py) or, where those cannot answer, over a narrow table in SQL.

Used by plugins/news_archive.py, whose hooks call it; not a plugin itself (Datasette loads only
the ``*.py`` files directly in ``plugins/``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archive.facet_columns import FacetColumns
from archive.sqlite import sqlite3
from articles_search.wrapping import wrap_database_execute

if TYPE_CHECKING:
    from articles_search.wrapping import Execute

logger = logging.getLogger("news_archive")


class SummaryAnswers:
    """Datasette, except that its one facet query is answered by our query instead."""

    def __init__(self, datasette: Any, sql: str, with_params: bool) -> None:
        self._datasette = datasette
        self._sql = sql
        self._with_params = with_params

    def __getattr__(self, name: str) -> Any:
        return getattr(self._datasette, name)

    async def execute(self, database: str, sql: str, params: Any = None, **kwargs: Any) -> Any:
        return await self._datasette.execute(database, self._sql, params if self._with_params else None, **kwargs)


# --- Datasette's ?_search= on the articles table ------------------------------------------------------
#
# Datasette's own search filter (datasette/filters.py, search_filters) adds `rowid in (select rowid
# from articles_fts where articles_fts match ...)` to the page's query, its count and every facet
# query. SQLite then seeks each match in `articles`, whose rows hold whole texts: a word in 42 % of a
# million articles is 420,000 seeks, and the page query sorts those rows, texts included, to keep
# 100 (an HTTP 400 "SQL interrupted" at a million). Here the articles table gets its own filter, the
# same rows by another plan chosen by how many articles match (counted up to a limit, so a common
# word costs no more than a rare one to count):
# - a few (COMMON_MATCHES or fewer): Datasette's own clause, a seek per match and a sort of them;
# - more: `+rowid in (...)`. The `+` keeps SQLite from driving the query by the matches: the page
#   walks the publication-order index and keeps what matches (about 240 index entries for a word in
#   42 % of the texts), with the match set built once. Its count would read the smallest index whole
#   against that set (0.25 s at a million); the count of a page filtered by the search alone is
#   counted over the matches instead (count_searches_over_matches).
# The count and facets of a page filtered by the search (alone, or with source, language or day
# filters) are counted in memory (CountedInMemory below); where that cannot answer, in SQL by
# search_facet_query and SharedFacetAnswers.
SEARCH_TABLE, SEARCH_INDEX = "articles", "articles_fts"
# Sorting 500 whole rows (texts included) takes tens of milliseconds, cold; walking the index for a
# search with 500 matches in a million articles reads 200,000 index entries, about as long.
COMMON_MATCHES = 500
SEARCH_CLAUSE = "{rowid} in (select rowid from articles_fts where articles_fts match {match})"
# Facets (type, column) the narrow table article_facet_values answers (archive/migrations/search_facets.py),
# with their values there: the day is date(published_at) already, the authors each list's distinct names.
FACET_VALUES = {
    ("column", "source"): "v.source",
    ("column", "language"): "v.language",
    ("date", "published_at"): "v.published_day",
    ("array", "authors"): "j.value",
}
SEARCH_MATCH = r"(?P<match>escape_fts\(:search\)|:search)"  # search_match's two answers, as a pattern


def search_match(request: Any, table_metadata: dict[str, Any]) -> str:
    """The MATCH operand Datasette's own filter would use: raw, or escaped (the default)."""
    raw = table_metadata.get("searchmode") == "raw"
    raw = {"raw": True, "escaped": False}.get(request.args.get("_searchmode") or "", raw)
    return ":search" if raw else "escape_fts(:search)"


async def matches_many(db: Any, match: str, search: str) -> bool:
    """Whether more than COMMON_MATCHES articles match (reads at most that many matches)."""
    from datasette.database import QueryInterrupted

    sql = (
        f"select count(*) > {COMMON_MATCHES} from"
        f" (select rowid from articles_fts where articles_fts match {match} limit {COMMON_MATCHES + 1})"
    )
    try:
        return bool((await db.execute(sql, {"search": search})).first()[0])
    except (QueryInterrupted, sqlite3.Error):
        return False  # a malformed raw query: Datasette's own clause, and its own error message


def replace_search_filter(found: list[Any], request: Any, database: str, table: str, datasette: Any) -> list[Any]:
    """The filters every plugin returned (Datasette's built-in ones included), with our search filter
    in place of the one result of Datasette's `search_filters`: with both, SQLite would still take
    Datasette's clause to drive the query. Anything else (other tables, `_fts_table=`) keeps
    Datasette's filter."""
    if table != SEARCH_TABLE or not request.args.get("_search") or {"_fts_table", "_fts_pk"} & set(request.args):
        return found
    builtin = [inner for inner in found if getattr(inner, "__qualname__", "") == "search_filters.<locals>.inner"]
    if len(builtin) != 1 or (datasette.table_metadata(database, table).get("fts_table") != SEARCH_INDEX):
        return found
    return [search_filter(request, database, datasette) if inner is builtin[0] else inner for inner in found]


def search_filter(request: Any, database: str, datasette: Any) -> Any:
    from datasette.filters import FilterArguments

    async def inner() -> FilterArguments:
        search = request.args["_search"]
        match = search_match(request, datasette.table_metadata(database, SEARCH_TABLE))
        common = await matches_many(datasette.get_database(database), match, search)
        clause = SEARCH_CLAUSE.format(rowid="+rowid" if common else "rowid", match=match)
        # Parameters, description and context exactly as Datasette's own filter gives them.
        return FilterArguments(
            [clause],
            {"search": search},
            [f'search matches "{search}"'],
            {"supports_search": True, "search": search},
        )

    return inner


def search_facet_query(facet: Any, column: str, limit: int) -> str | None:
    """A facet of an articles page filtered by a search and nothing else, counted over the matches
    joined to article_facet_values (narrow, in rowid order like the matches) instead of `articles`.
    Same values and counts as Datasette's query; None for any other page or facet."""
    match = searched_alone(facet)
    if match is None or (facet.type, column) not in FACET_VALUES:
        return None
    joined = f"{SEARCH_INDEX} join article_facet_values as v on v.id = {SEARCH_INDEX}.rowid"
    if facet.type == "array":  # a JSON array of names (or '[]')
        joined += f", json_each(v.{column}) as j"
    value = FACET_VALUES[(facet.type, column)]
    return (
        f"select {value} as value, count(*) as count from {joined}"
        f" where {SEARCH_INDEX} match {match} and {value} is not null"
        f" group by {value} order by count desc, value limit {limit}"
    )


def searched_alone(facet: Any) -> str | None:
    """The MATCH operand of an articles page filtered by a search and nothing else, or None."""
    if facet.table != SEARCH_TABLE or set(facet.params or {}) != {"search"}:
        return None
    clause = re.escape(SEARCH_CLAUSE).replace(r"\{rowid\}", r"\+?rowid").replace(r"\{match\}", SEARCH_MATCH)
    only_search = re.fullmatch(rf"select .* from {SEARCH_TABLE} where {clause}\s*", facet.sql, re.S)
    return None if only_search is None else str(only_search["match"])


# Datasette's where clauses for `?source=`, `?language=` and `?published_at__date=`, which the held
# columns answer (source, language, published_day); anything else leaves a page to SQL.
EQUALITY = re.compile(r'(?:"(?P<column>source|language)"|date\("published_at"\)) = :(?P<param>p\d+)')
SEARCH_WHERE = re.compile(
    r"(?P<filters>(?:.+? and )?)"
    + re.escape(SEARCH_CLAUSE).replace(r"\{rowid\}", r"\+?rowid").replace(r"\{match\}", SEARCH_MATCH)
    + r"\s*",
    re.S,
)


def searched_selection(where: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The MATCH operand and the facet values asked (column -> value) of an articles page's WHERE
    when it is a search, alone or with equalities on source, language and publication day; None
    for any other."""
    found = SEARCH_WHERE.fullmatch(where)
    if found is None:
        return None
    equal: dict[str, Any] = {}
    for clause in filter(None, found["filters"].removesuffix(" and ").split(" and ")):
        equality = EQUALITY.fullmatch(clause)
        if equality is None or equality["param"] not in params:
            return None
        column, value = equality["column"] or "published_day", params[equality["param"]]
        if equal.setdefault(column, value) != value:  # `source=a&source=b`: SQL says what that means
            return None
    return str(found["match"]), equal


def page_selection(facet: Any) -> tuple[str, dict[str, Any]] | None:
    """searched_selection() of a facet's articles page."""
    where = re.fullmatch(rf"select .*? from {SEARCH_TABLE} where (?P<where>.*)", facet.sql, re.S)
    if facet.table != SEARCH_TABLE or where is None:
        return None
    return searched_selection(where["where"], dict(facet.params or {}))


def filtered_search(facet: Any) -> str | None:
    """The WHERE of an articles page filtered by a common search and more (a source, a date, a page
    after the first), or None."""
    common = SEARCH_CLAUSE.format(rowid="+rowid", match="")[:-1]  # up to the MATCH operand
    where = re.fullmatch(rf"select .*? from {SEARCH_TABLE} where (?P<where>.*)", facet.sql, re.S)
    if facet.table != SEARCH_TABLE or where is None or common not in where["where"]:
        return None
    return str(where["where"])


# The work the facet queries of one page share, started by the first that asks: (request id, page
# query, its parameters, and what else tells the work apart) -> (request, task).
PAGE_WORK: dict[tuple[Any, ...], tuple[Any, asyncio.Future[Any]]] = {}


def once_per_page(facet: Any, start: Any, *more: Any) -> asyncio.Future[Any]:
    """The task `start()` gives, started once for all the facets of `facet`'s page."""
    key = (id(facet.request), facet.sql, json.dumps(facet.params, sort_keys=True, default=str), *more)
    request, task = PAGE_WORK.get(key, (None, None))
    if task is None or request is not facet.request:  # the same id() may be a later request's
        task = asyncio.ensure_future(start())
        PAGE_WORK[key] = (facet.request, task)
        while len(PAGE_WORK) > 32:  # pages long answered
            PAGE_WORK.pop(next(iter(PAGE_WORK)))
    return task


class SharedFacetAnswers(SummaryAnswers):
    """The four facets of an articles page filtered by a common search and more, in one query.

    Each of Datasette's facet queries would build the search's match set again (420,000 rowids for
    a word in 42 % of a million articles, 50 ms each) to count the few the other filters keep; one
    query builds it once, keeps the page's articles' rows of article_facet_values and counts the
    four facets over them. The facet queries of one page share it (keyed by the request). Should it
    not finish within the facet time limit (on a busy machine), each facet runs its own query after
    all, as it would have (`fallback`, or Datasette's): a facet dropped then is one facet, not four.
    """

    def __init__(self, datasette: Any, facet: Any, where: str, column: str, fallback: tuple[str, bool] | None) -> None:
        super().__init__(datasette, "", with_params=True)
        self._facet, self._where, self._column, self._fallback = facet, where, column, fallback

    def shared_sql(self) -> str:
        kept = f"select rowid from {SEARCH_TABLE} where {self._where}"
        counts = [
            f"select '{column}' as facet, {value.replace('v.', 'page.')} as value, count(*) as count"
            f" from page{', json_each(page.authors) as j' if kind == 'array' else ''}"
            f" where {value.replace('v.', 'page.')} is not null group by 2"
            for (kind, column), value in FACET_VALUES.items()
        ]
        return (
            f"with page as materialized (select * from article_facet_values where id in ({kept})) "
            + " union all ".join(counts)
        )

    async def execute(self, database: str, sql: str, params: Any = None, **kwargs: Any) -> Any:
        from datasette.database import QueryInterrupted, Results

        task = once_per_page(
            self._facet, lambda: self._datasette.execute(database, self.shared_sql(), params, **kwargs)
        )
        try:
            results = await task
        except QueryInterrupted:
            if self._fallback is not None:
                sql, with_params = self._fallback
                params = params if with_params else None
            return await self._datasette.execute(database, sql, params, **kwargs)
        rows = [{"value": row["value"], "count": row["count"]} for row in results.rows if row["facet"] == self._column]
        rows.sort(key=lambda row: (-row["count"], row["value"]))
        return Results(rows[: self._facet.get_facet_size() + 1], False, None)


# --- the facets of a search alone, counted in memory (archive/facet_columns.py) ----------------------
#
# For a word in 42 % of a million articles, each of the four facet queries above (search_facet_query)
# joins 420,000 matches to article_facet_values and sorts them: 157-360 ms each, over Datasette's
# 200 ms facet limit, so some were dropped. The archive's faceted columns held in memory count all
# four from one read of the matches in 30-100 ms. A database without the change log those columns
# follow (an archive no crawl has migrated yet) keeps the SQL.
FACET_COLUMNS = {
    ("column", "source"): "source",
    ("column", "language"): "language",
    ("date", "published_at"): "published_day",
    ("array", "authors"): "authors",
}
HELD_COLUMNS: dict[str, FacetColumns] = {}  # by database file
HELD_COLUMNS_LOCK = threading.Lock()


def held_columns(path: str) -> FacetColumns:
    with HELD_COLUMNS_LOCK:
        return HELD_COLUMNS.setdefault(path, FacetColumns())


class CountedInMemory(SummaryAnswers):
    """Datasette, except that the facet query of a page filtered by a search (and maybe equalities
    on faceted columns) is answered from the held columns: a page's four facets counted once."""

    def __init__(
        self,
        datasette: Any,
        facet: Any,
        match: str,
        equal: dict[str, Any],
        column: str,
        fallback: tuple[str, bool] | None,
    ) -> None:
        super().__init__(datasette, "", with_params=True)
        self._facet, self._match, self._equal, self._column, self._fallback = facet, match, equal, column, fallback

    async def execute(self, database: str, sql: str, params: Any = None, **kwargs: Any) -> Any:
        from datasette.database import Results

        db = self._datasette.get_database(database)
        limit = self._facet.get_facet_size() + 1
        columns = held_columns(db.path)
        bound = time_bound(self._datasette)

        def count(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, int]]]:
            return columns.count(conn, self._match, params, limit, equal=self._equal, wait_s=bound, search_time_s=bound)

        try:
            counts = await once_per_page(self._facet, lambda: db.execute_fn(count), "in memory", limit)
        except Exception as error:  # busy, no change log yet (an archive not migrated), a bad raw search
            if not isinstance(error, sqlite3.Error):  # our bug: said once per page, and SQL answers
                logger.exception("facets of %s counted in SQL: the held columns failed", self._facet.request.path)
            where = filtered_search(self._facet)
            if self._fallback is None and self._equal and where is not None:
                shared = SharedFacetAnswers(self._datasette, self._facet, where, self._column, None)
                return await shared.execute(database, sql, params, **kwargs)
            if self._fallback is not None:
                sql, with_params = self._fallback
                params = params if with_params else None
            return await self._datasette.execute(database, sql, params, **kwargs)
        rows = [
            {"value": value, "count": count} for value, count in counts[FACET_COLUMNS[self._facet.type, self._column]]
        ]
        return Results(rows, False, None)


def time_bound(datasette: Any) -> float:
    """Datasette's facet time limit, in seconds: it bounds both the wait for the held columns (being
    read when the server has just started) and the search; past it, SQL counts as before."""
    return float(datasette.setting("facet_time_limit_ms")) / 1000


def search_answers(facet: Any, column: str, ours: tuple[str, bool] | None) -> Any | None:
    """What answers one facet query of an articles page filtered by a search, in place of Datasette
    (`facet.ds`), or None for any other page: the held columns where they can count it, else one
    query for the page's four facets when the search has other filters. `ours` is the SQL the
    facet takes otherwise (search_facet_query's, for a search alone)."""
    where = filtered_search(facet) if (facet.type, column) in FACET_VALUES else None
    with_filters = where is not None and searched_alone(facet) is None
    selection = page_selection(facet)
    on_file = facet.ds.get_database(facet.database).path is not None
    if selection is not None and (facet.type, column) in FACET_COLUMNS and on_file:
        # Should the columns fail: the four facets in one query when the page has other filters.
        return CountedInMemory(facet.ds, facet, *selection, column, None if with_filters else ours)
    if with_filters:
        return SharedFacetAnswers(facet.ds, facet, str(where), column, ours)
    return None


def read_columns_at_start(datasette: Any) -> None:
    """Read each archive's faceted columns in the background, so the first search need not wait."""
    for db in datasette.databases.values():
        if db.path and not db.is_memory:
            threading.Thread(target=_read_columns, args=(db.path,), daemon=True, name="facet-columns").start()


def _read_columns(path: str) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            held_columns(path).follow(conn)
        finally:
            conn.close()
    except sqlite3.Error as error:  # not an archive, or not migrated yet: searches count in SQL
        logger.info("facet columns of %s not read: %s", path, error)
    except Exception:  # our bug; the searches' facets are counted in SQL meanwhile
        logger.exception("facet columns of %s not read", path)


def count_searches_over_matches() -> None:
    """The count of an articles page filtered by a search (and maybe equalities on source, language
    or publication day), counted over the matches.

    Datasette's count query (`select count(*) from articles where +rowid in (...)`) reads the
    smallest index of `articles` whole against the match set: 0.25 s at a million articles. The
    held columns (archive/facet_columns.py) count the same articles from one read of the matches;
    where they cannot (busy, an archive not migrated), a search alone is counted over the matches
    joined to article_facet_values (one row per article, kept by triggers), in a third of that, and
    a filtered one by Datasette's query. Datasette has no hook for a table page's count, so this
    wraps Database.execute: only those queries, recognised by their whole text, are replaced.
    """
    from datasette.database import Database, Results

    prefix = f"select count(*) from {SEARCH_TABLE} where "
    # As SQLite's cursor describes the one column (the query page reads it).
    description = (("count(*)", None, None, None, None, None, None),)

    def wrap(original: Execute) -> Execute:
        async def execute(self: Database, sql: str, *args: Any, **kwargs: Any) -> Any:
            params: Any = args[0] if args else kwargs.get("params")
            # Only the table page's count of a common search (our filter's `+rowid`), with named
            # parameters; a rare search's count is a few seeks in SQL anyway.
            selection = (
                searched_selection(sql.removeprefix(prefix), dict(params))
                if sql.startswith(prefix) and "+rowid in" in sql and isinstance(params, Mapping)
                else None
            )
            if selection is None or self.path is None:
                return await original(self, sql, *args, **kwargs)
            match, equal = selection
            columns = held_columns(self.path)
            wait, limit = time_bound(self.ds), float(self.ds.setting("sql_time_limit_ms")) / 1000

            def total(conn: sqlite3.Connection) -> int:
                return columns.total(conn, match, dict(params), equal=equal, wait_s=wait, search_time_s=limit)

            try:
                return Results([(await self.execute_fn(total),)], False, description)
            except Exception as error:  # busy, not migrated, a bad raw search: SQL counts
                if not isinstance(error, sqlite3.Error):
                    logger.exception("a search's count made in SQL: the held columns failed")
            if not equal and "+rowid" in sql:
                sql = (
                    f"select count(*) from {SEARCH_INDEX} join article_facet_values as v on v.id = {SEARCH_INDEX}.rowid"
                    f" where {SEARCH_INDEX} match {match}"
                )
            return await original(self, sql, *args, **kwargs)

        return execute

    wrap_database_execute("news_archive", wrap)
