"""One-off Datasette plugin for the news archive (loaded with ``--plugins-dir plugins``).

- Cells: JSON lists (authors, tags, categories) read as "A, B"; search snippets show their
  ``<mark>`` highlights, with everything else in the snippet escaped.
- Template filters used by ``templates/``: ``snippet_html``, ``json_list``, ``article_body``,
  ``nice_time``, ``tilde_encode``.
- Read-only: any request but GET, HEAD or OPTIONS is refused with 405 before Datasette sees it
  (there are no writable canned queries, logins or write plugins to serve).
- Atom feeds (datasette-atom): a canned query's feed is titled by its ``feed_title`` in
  metadata.yml, with ``{param}`` filled in ("News archive: articles matching ferry"); a search
  that matches nothing yet answers an empty feed instead of an error (datasette-atom 0.9 takes
  ``max()`` of the rows' dates), so it can be followed before the first match arrives.
- The database page counts only the tables it shows (see ``_count_visible_tables_only``), and the
  facets of an unfiltered articles or crawl_runs page read summary tables (``_facets_from_summaries``).
- ``?_search=`` on the articles table: our filter in place of Datasette's, with a plan chosen by how
  many articles match (``search_filter``); the count and facets of a search, alone or with the facet
  filters a reader clicks, counted over columns held in memory (``_CountedInMemory``,
  archive/facet_columns.py), else over a narrow table in SQL.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import sqlite3
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.utils import tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

# Datasette loads this file by its path (--plugins-dir), outside the project; the project's own
# modules it uses (the storage layer's) are found from the project root, this file's folder's parent.
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from archive.facet_columns import FacetColumns

logger = logging.getLogger(__name__)

# Columns that sqlite-utils writes as JSON arrays (Python lists in the item).
LIST_COLUMNS = {"authors", "tags", "categories"}
MARK_OPEN, MARK_CLOSE = "<mark>", "</mark>"


def json_list(value: Any) -> list[str]:
    """The items of a JSON-array cell; a cell that is not JSON is one item."""
    if value in (None, ""):
        return []
    try:
        items = json.loads(value)
    except (TypeError, ValueError):
        return [str(value)]
    if isinstance(items, list):
        return [str(item) for item in items if item not in (None, "")]
    return [str(items)]


def snippet_html(value: Any) -> Markup:
    """An FTS5 snippet as HTML: escape everything, then restore only the highlight marks."""
    escaped = str(escape("" if value is None else value))
    return Markup(escaped.replace(str(escape(MARK_OPEN)), MARK_OPEN).replace(str(escape(MARK_CLOSE)), MARK_CLOSE))


def article_body(markdown: str | None, title: str | None) -> str:
    """The Markdown body without a leading "# headline" line: the page shows the headline already."""
    text = (markdown or "").lstrip()
    first, _, rest = text.partition("\n")
    if first.startswith("# ") and title and first[2:].strip() == title.strip():
        return rest.lstrip()
    return text


def nice_time(value: Any) -> str:
    """An ISO 8601 timestamp as "2 November 2026, 09:30 UTC"; anything else as it is."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if len(str(value)) <= len("2026-11-02"):
        return f"{moment.day} {moment:%B %Y}"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def short_time(value: Any) -> str | None:
    """An ISO 8601 timestamp as "2026-11-02 09:30 UTC" (None if it is not one)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return f"{moment:%Y-%m-%d %H:%M}" if "T" in str(value) else f"{moment:%Y-%m-%d}"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@hookimpl
def render_cell(value: Any, column: str, table: str | None) -> Markup | str | None:
    if column == "snippet" and table is None and isinstance(value, str):
        return snippet_html(value)
    if column in LIST_COLUMNS and isinstance(value, str) and value.startswith("["):
        # Never "": Datasette's table view treats a falsy rendering as "no opinion".
        return ", ".join(json_list(value)) or Markup("&nbsp;")
    if column.endswith("_at") and isinstance(value, str) and value[:2] in ("19", "20"):
        return short_time(value)  # the JSON keeps the full ISO 8601 value
    return None  # Datasette's own rendering


READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@hookimpl
def asgi_wrapper() -> Any:
    def wrap(app: Any) -> Any:
        async def read_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["method"] not in READ_METHODS:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 405,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"allow", b"GET, HEAD"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"This archive is read-only.\n"})
                return
            await app(scope, receive, send)

        return read_only

    return wrap


@hookimpl
def prepare_jinja2_environment(env: Any) -> None:
    env.filters["json_list"] = json_list
    env.filters["snippet_html"] = snippet_html
    env.filters["article_body"] = article_body
    env.filters["nice_time"] = nice_time
    env.filters["tilde_encode"] = lambda value: tilde_encode(str(value))


class _Blank(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return ""


def feed_title(datasette: Any, request: Any, database: str, query_name: str | None, default: str) -> str:
    """A canned query's feed title: its `feed_title` (with {param} filled from the URL) or title."""
    if request.args.get("_feed_title"):
        return str(request.args.get("_feed_title"))
    if not query_name:
        return default
    queries = (datasette.metadata(database=database) or {}).get("queries") or {}
    query = queries.get(query_name) or {}
    template = query.get("feed_title") or query.get("title") or query_name
    params = _Blank({key: request.args.get(key) for key in request.args})
    return " ".join(str(template).format_map(params).split())


def empty_atom_feed(request: Any, title: str) -> Response:
    """The feed datasette-atom would answer, with no entries (same id, link and title)."""
    from feedgen.feed import FeedGenerator  # datasette-atom's own dependency

    feed = FeedGenerator()
    feed.id(request.url)
    feed.link(href=request.url, rel="self")
    feed.title(title)
    feed.updated(datetime.now(UTC))
    return Response(feed.atom_str(pretty=True), content_type="application/xml; charset=utf-8", status=200)


def _improve_atom_feeds() -> None:
    try:
        import datasette_atom
    except ImportError:
        return
    original = datasette_atom.render_atom
    if getattr(original, "news_archive", False):
        return  # this file is loaded again by every Datasette instance in one process

    # Datasette passes renderer arguments by name, so the wrapper keeps the plugin's signature.
    def render_atom(datasette, request, sql, columns, rows, database, table, query_name, view_name, data):  # type: ignore[no-untyped-def]
        title = feed_title(datasette, request, database, query_name, sql)
        if not rows:
            return empty_atom_feed(request, title)
        # datasette-atom titles the feed with its `sql` argument when there is no canned title;
        # query_name=None keeps its safe HTML cleaning, the only other thing it is used for.
        return original(datasette, request, title, columns, rows, database, table, None, view_name, data)

    render_atom.news_archive = True  # type: ignore[attr-defined]
    # The plugin's register_output_renderer() reads this module global when Datasette starts,
    # which is after the plugins directory is loaded.
    datasette_atom.render_atom = render_atom


def _count_visible_tables_only() -> None:
    """The database page counts the tables it lists; hidden ones (full-text internals, signatures) are
    not counted. A count(*) is one SQLite instruction that Datasette's time limit cannot interrupt:
    counting articles_fts_data alone took most of a second at a million articles."""
    from datasette.database import Database, QueryInterrupted

    original = Database.table_counts
    if getattr(original, "news_archive", False):
        return

    async def table_counts(self: Database, limit: int = 10) -> dict[str, int | None]:
        if not self.is_mutable:
            return await original(self, limit)
        hidden = set(await self.hidden_table_names())
        counts: dict[str, int | None] = {}
        for table in await self.table_names():
            if table in hidden:
                counts[table] = None
                continue
            sql = f"select count(*) from [{table}]"
            try:
                counts[table] = (await self.execute(sql, custom_time_limit=limit)).rows[0][0]
            except (QueryInterrupted, sqlite3.OperationalError, sqlite3.DatabaseError):
                counts[table] = None  # too slow to count within the limit: shown without a count
        return counts

    table_counts.news_archive = True  # type: ignore[attr-defined]
    Database.table_counts = table_counts  # type: ignore[method-assign]


# Facets of an unfiltered page answered from the summary tables the pipeline keeps (archive/schema.py:
# keep_reads_fast_at_a_year, count_articles_per_author_and_publication_day). Datasette's own facet
# queries count every row: at 100,000 articles its array facet (which de-duplicates whole rows, text
# included) timed out and was dropped, and at a million the date facet too. A filtered page (a
# source, a search) keeps Datasette's queries, over its own rows. Keys: (table, facet type, column);
# each query answers (value, count) as Datasette's would, NULL values left out.
SUMMARY_FACETS = {
    ("articles", "column", "source"): "select source as value, sum(articles) as count from articles_per_day"
    " group by source",
    ("articles", "column", "language"): "select language as value, sum(articles) as count from articles_per_day"
    " where language != '' group by language",
    ("articles", "array", "authors"): "select author as value, articles as count from articles_per_author",
    ("articles", "date", "published_at"): "select day as value, articles as count from articles_per_publication_day"
    " where day != ''",
    ("crawl_runs", "column", "source"): "select source as value, sum(runs) as count from crawl_runs_per_day"
    " group by source",
    ("crawl_runs", "column", "status"): "select status as value, sum(runs) as count from crawl_runs_per_day"
    " group by status",
}


SUMMARY_TABLES = {table for table, _, _ in SUMMARY_FACETS}  # rowid tables, all of them


class _SummaryAnswers:
    """Datasette, except that its one facet query is answered by our query instead."""

    def __init__(self, datasette: Any, sql: str, with_params: bool) -> None:
        self._datasette = datasette
        self._sql = sql
        self._with_params = with_params

    def __getattr__(self, name: str) -> Any:
        return getattr(self._datasette, name)

    async def execute(self, database: str, sql: str, params: Any = None, **kwargs: Any) -> Any:
        return await self._datasette.execute(database, self._sql, params if self._with_params else None, **kwargs)


def _facets_from_summaries() -> None:
    from datasette.facets import ArrayFacet, ColumnFacet, DateFacet
    from datasette.utils import escape_sqlite

    for facet_class in (ColumnFacet, ArrayFacet, DateFacet):
        if not getattr(facet_class.facet_results, "news_archive", False):
            facet_class.facet_results = _summary_facet_results(facet_class.facet_results, escape_sqlite)


def _summary_facet_results(original: Any, escape_sqlite: Any) -> Any:
    def unfiltered(facet: Any) -> bool:
        table = re.escape(escape_sqlite(facet.table or ""))
        return not facet.params and re.fullmatch(rf"select .* from {table}\s*", facet.sql, re.S) is not None

    def query_for(facet: Any, column: str) -> tuple[str, bool] | None:
        """Our query for one facet and whether it takes the page's parameters; None: Datasette's."""
        limit = facet.get_facet_size() + 1
        searched = search_facet_query(facet, column, limit)
        if searched is not None:
            return searched, True
        summary = SUMMARY_FACETS.get((facet.table, facet.type, column))
        if unfiltered(facet) and summary is not None:
            return f"select * from ({summary}) order by count desc, value limit {limit}", False
        if facet.type == "array" and facet.table in SUMMARY_TABLES and not unfiltered(facet):
            # Each distinct item of a row's list counts once (its first occurrence), as in
            # Datasette's array facet, which de-duplicates whole rows instead (`distinct j.value,
            # inner.*`), article texts included: 2.5 s for one source's 41,000 articles.
            items = (
                f"json_each(case when json_valid(page.{escape_sqlite(column)}) then page.{escape_sqlite(column)} end)"
            )
            return (
                f"select j.value as value, count(*) as count from ({facet.sql}) as page, {items} as j"
                f" where j.type = 'text' and j.key = (select min(k.key) from {items} as k where k.value = j.value)"
                f" group by j.value order by count desc, value limit {limit}"
            ), True
        return None

    async def facet_results(self: Any) -> tuple[list[dict[str, Any]], list[str]]:
        if not self.table or (self.table not in SUMMARY_TABLES):
            return await original(self)
        results: list[dict[str, Any]] = []
        timed_out: list[str] = []
        for config in self.get_configs():
            column = config["config"].get("column") or config["config"]["simple"]
            facet = copy.copy(self)
            facet.get_configs = lambda config=config: [config]
            ours = query_for(self, column)
            searched_and_filtered = filtered_search(self) if (self.type, column) in FACET_VALUES else None
            selection = page_selection(self)
            on_file = self.ds.get_database(self.database).path is not None
            if selection is not None and (self.type, column) in FACET_COLUMNS and on_file:
                if searched_and_filtered is not None and search_facet_query(self, column, 0) is None:
                    ours = None  # should the columns fail: the four facets in one query, as below
                facet.ds = _CountedInMemory(self.ds, self, *selection, column, ours)
            elif searched_and_filtered is not None and search_facet_query(self, column, 0) is None:
                facet.ds = _SharedFacetAnswers(self.ds, self, searched_and_filtered, column, ours)
            elif ours is not None:
                facet.ds = _SummaryAnswers(self.ds, *ours)
            found, late = await original(facet)
            results += found
            timed_out += late
        return results, timed_out

    facet_results.news_archive = True  # type: ignore[attr-defined]
    return facet_results


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
#   counted over the matches instead (_count_searches_over_matches).
# The count and facets of a page filtered by the search (alone, or with source, language or day
# filters) are counted in memory (_CountedInMemory below); where that cannot answer, in SQL by
# search_facet_query and _SharedFacetAnswers.
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


@hookimpl(wrapper=True)
def filters_from_request(request: Any, database: str, table: str, datasette: Any) -> Any:
    """Put our search filter in place of Datasette's built-in one, for `?_search=` on the articles table.

    A hook wrapper (pluggy's own mechanism) sees the filters every plugin returned, Datasette's
    built-in ones included, and swaps the one result of `search_filters`: without it both would
    apply, and SQLite would still take Datasette's clause to drive the query. Anything else (other
    tables, `_search_<column>=`, `_fts_table=`) keeps Datasette's filter.
    """
    found = yield
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


class _SharedFacetAnswers(_SummaryAnswers):
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


class _CountedInMemory(_SummaryAnswers):
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
                shared = _SharedFacetAnswers(self._datasette, self._facet, where, self._column, None)
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


@hookimpl
def startup(datasette: Any) -> None:
    """Read the archive's faceted columns in the background, so the first search need not wait."""
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


def _count_searches_over_matches() -> None:
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

    original = Database.execute
    if getattr(original, "news_archive", False):
        return
    prefix = f"select count(*) from {SEARCH_TABLE} where "
    # As SQLite's cursor describes the one column (the query page reads it).
    description = (("count(*)", None, None, None, None, None, None),)

    async def execute(self: Database, sql: str, *args: Any, **kwargs: Any) -> Any:
        params = args[0] if args else kwargs.get("params")
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

    execute.news_archive = True  # type: ignore[attr-defined]
    Database.execute = execute  # type: ignore[method-assign]


_improve_atom_feeds()
_count_visible_tables_only()
_count_searches_over_matches()
_facets_from_summaries()
