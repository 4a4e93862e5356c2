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
  many articles match; the count and facets of a search, alone or with the facet filters a reader
  clicks, counted over columns held in memory (archive/facet_columns.py), else over a narrow table
  in SQL: plugins/articles_search/search.py.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.utils import tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

# Datasette loads this file by its path (--plugins-dir), outside the project. The modules it uses are
# found first on the path, before any others of the same names: the storage layer's (archive, config)
# in the project root, and articles_search in this folder (plugins/ itself cannot be a package:
# Datasette would load an __init__.py here as one more plugin).
if sys.path[:2] != [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from articles_search.best_match import rank_best_matches_in_halves, register_canned_search
from articles_search.search import (
    SummaryAnswers,
    count_searches_over_matches,
    read_columns_at_start,
    replace_search_filter,
    search_answers,
    search_facet_query,
)

from archive.sqlite import sqlite3

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


class _Blank(dict[str, str]):
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
    def render_atom(datasette, request, sql, columns, rows, database, table, query_name, view_name, data):
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
    Database.table_counts = table_counts


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
            searched = search_answers(self, column, ours)
            if searched is not None:
                facet.ds = searched
            elif ours is not None:
                facet.ds = SummaryAnswers(self.ds, *ours)
            found, late = await original(facet)
            results += found
            timed_out += late
        return results, timed_out

    facet_results.news_archive = True  # type: ignore[attr-defined]
    return facet_results


@hookimpl(wrapper=True)
def filters_from_request(request: Any, database: str, table: str, datasette: Any) -> Any:
    """Put our search filter in place of Datasette's built-in one, for `?_search=` on the articles table.

    A hook wrapper (pluggy's own mechanism) sees the filters every plugin returned, Datasette's
    built-in ones included, and swaps the one result of `search_filters`: without it both would
    apply, and SQLite would still take Datasette's clause to drive the query. Anything else (other
    tables, `_search_<column>=`, `_fts_table=`) keeps Datasette's filter.
    """
    found = yield
    return replace_search_filter(found, request, database, table, datasette)


@hookimpl
def startup(datasette: Any) -> None:
    """Read the archive's faceted columns in the background, so the first search need not wait, and
    have the canned query `search` rank its best matches in halves (articles_search/best_match.py)."""
    read_columns_at_start(datasette)
    for database in datasette.databases:
        search = (datasette.metadata("queries", database=database) or {}).get("search")
        if search:
            register_canned_search(search["sql"] if isinstance(search, dict) else search)


_improve_atom_feeds()
_count_visible_tables_only()
count_searches_over_matches()
rank_best_matches_in_halves()
_facets_from_summaries()
