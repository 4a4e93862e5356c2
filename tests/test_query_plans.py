"""Every canned query and dashboard chart reads through an index, so a year of news stays fast.

The archive is a small one built by the benchmark's builder (bench/archive_scale.py) through the
project's own storage code (schema.open_db, Archive.write), then ANALYZEd as the benchmark does:
the planner decides with real statistics. A query whose plan reads the whole articles or crawl_runs
table (`SCAN articles`, with no index) would take seconds at a million articles (issue #25).
The summary tables the plans rely on are checked against counts over the real tables, after
inserts, updates and deletes, and after migrating an archive written before they existed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from datasette.utils import escape_fts

from archive.schema import migrations, open_db
from archive.sqlite import sqlite3
from bench.archive_scale import ArchiveBuilder

ROOT = Path(__file__).resolve().parent.parent
METADATA: dict[str, Any] = yaml.safe_load((ROOT / "metadata.yml").read_text(encoding="utf-8"))
QUERIES: dict[str, dict[str, Any]] = METADATA["databases"]["news"]["queries"]
CHARTS: dict[str, dict[str, Any]] = METADATA["plugins"]["datasette-dashboards"]["news"]["charts"]
BIG_TABLES = ("articles", "crawl_runs")
ARTICLES = 3_000


def made_up_texts(count: int = 40) -> list[dict[str, Any]]:
    """Article texts of our own (the benchmark's real pages are not on a user's machine): paragraphs
    of words drawn from a vocabulary, so the full-text index has common and rare words."""
    import random

    rng = random.Random(7)
    common = ["harbour", "council", "minister", "weather", "market", "school", "railway", "election"]
    rare = [f"{stem}{n}" for stem in ("quay", "ferry", "tram", "dock") for n in range(30)]
    texts = []
    for i in range(count):
        paragraphs = [
            " ".join(rng.choice(common if rng.random() < 0.6 else rare) for _ in range(25)).capitalize() + "."
            for _ in range(6)
        ]
        texts.append(
            {
                "title": f"Story {i} about the {rng.choice(common)}",
                "body": "\n".join(paragraphs),
                "authors": [f"Reporter {i % 7}"],
                "language": "en",
            }
        )
    return texts


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "news.db"
    # ANALYZE included, as in the benchmark
    ArchiveBuilder(path, ARTICLES, run_hours=48, texts=made_up_texts()).build()
    return path


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.create_function("escape_fts", 1, escape_fts)  # Datasette registers it for the search query
    return conn


def full_scans(conn: sqlite3.Connection, sql: str, params: dict[str, str]) -> list[str]:
    """The plan's steps that read a whole big table, not through an index."""
    aliases = {alias for table in BIG_TABLES for alias in re.findall(rf"\b{table}\s+(?:as\s+)?(\w+)", sql, re.I)}
    names = {*BIG_TABLES, *aliases} - {"where", "on", "join", "order", "group", "limit", "indexed"}
    steps = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    pattern = re.compile(rf"^SCAN ({'|'.join(map(re.escape, names))})( AS \w+)?$")
    return [step for step in steps if pattern.match(step)]


def parameter_sets(sql: str, source: str, word: str) -> Iterator[dict[str, str]]:
    """Each way a reader fills the query's parameters: left empty, or set."""
    names = set(re.findall(r"(?<!:):(\w+)", sql))
    empty = dict.fromkeys(names, "")
    yield empty | ({"q": word} if "q" in names else {})
    filled = {"source": source, "q": word, "sort": "newest", "days": "7", "day": "2026-01-01", "since": "2026-01-01"}
    yield {name: filled.get(name, "") for name in names}


def chart_variants(query: str) -> Iterator[str]:
    yield re.sub(r"\[\[.*?\]\]", "", query, flags=re.S)  # no filter set
    yield re.sub(r"\[\[(.*?)\]\]", r"\1", query, flags=re.S)  # every filter set


def some_source_and_word(conn: sqlite3.Connection) -> tuple[str, str]:
    (source,) = conn.execute("SELECT source FROM articles GROUP BY source ORDER BY count(*) DESC").fetchone()
    (title,) = conn.execute("SELECT title FROM articles LIMIT 1").fetchone()
    return source, max(re.findall(r"\w+", title), key=len)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_canned_query_reads_no_big_table_whole(archive: Path, name: str) -> None:
    conn = connect(archive)
    source, word = some_source_and_word(conn)
    sql = QUERIES[name]["sql"]
    for params in parameter_sets(sql, source, word):
        assert not full_scans(conn, sql, params), f"{name} with {params}: a full table scan"
        conn.execute(sql, params).fetchall()  # and it runs


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_query_reads_no_big_table_whole(archive: Path, name: str) -> None:
    conn = connect(archive)
    source, word = some_source_and_word(conn)
    for sql in chart_variants(CHARTS[name]["query"]):
        for params in parameter_sets(sql, source, word):
            assert not full_scans(conn, sql, params), f"chart {name} with {params}: a full table scan"
            conn.execute(sql, params).fetchall()


def test_the_check_sees_a_full_scan(archive: Path) -> None:
    conn = connect(archive)
    assert full_scans(conn, "select count(*) from articles where word_count > :words", {"words": 5})
    assert full_scans(conn, "select * from crawl_runs r where r.duration_s > 5", {})
    assert not full_scans(conn, "select * from articles order by coalesce(published_at, first_seen_at) limit 5", {})


# --- the summary tables add up ------------------------------------------------------------------


def summaries_match(conn: sqlite3.Connection) -> None:
    per_day = conn.execute(
        "SELECT coalesce(date(coalesce(published_at, first_seen_at)), ''), source, coalesce(language, ''), count(*)"
        " FROM articles GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    assert conn.execute("SELECT * FROM articles_per_day ORDER BY 1, 2, 3").fetchall() == per_day
    runs = conn.execute(
        "SELECT coalesce(date(started_at), ''), source, status, count(*), count(duration_s),"
        " round(coalesce(sum(duration_s), 0), 3) FROM crawl_runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    summary = conn.execute(
        "SELECT day, source, status, runs, timed_runs, round(duration_s, 3) FROM crawl_runs_per_day ORDER BY 1, 2, 3"
    ).fetchall()
    assert summary == runs
    clusters = conn.execute(
        "SELECT cluster_id, count(*) FROM articles WHERE cluster_id IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert conn.execute("SELECT * FROM article_cluster_sizes ORDER BY 1").fetchall() == clusters
    authors = conn.execute(
        "SELECT value, count(*) FROM (SELECT DISTINCT articles.rowid, j.value FROM articles, json_each(authors) j)"
        " GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert conn.execute("SELECT * FROM articles_per_author ORDER BY 1").fetchall() == authors
    days = conn.execute("SELECT coalesce(date(published_at), ''), count(*) FROM articles GROUP BY 1 ORDER BY 1")
    assert conn.execute("SELECT * FROM articles_per_publication_day ORDER BY 1").fetchall() == days.fetchall()
    # The faceted columns of each article (search-filtered facets), its author list's names once each.
    facet_values = [
        (*row[:4], sorted({name for name in json.loads(row[4] or "[]") if isinstance(name, str)}))
        for row in conn.execute(
            "SELECT rowid, source, language, date(published_at), authors FROM articles ORDER BY rowid"
        )
    ]
    kept = conn.execute("SELECT id, source, language, published_day, authors FROM article_facet_values ORDER BY id")
    assert [(*row[:4], sorted(json.loads(row[4]))) for row in kept] == facet_values


def test_summaries_follow_inserts_updates_and_deletes(archive: Path, tmp_path: Path) -> None:
    copy = tmp_path / "news.db"
    source = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    conn = target
    summaries_match(conn)
    with conn:
        conn.execute("UPDATE articles SET published_at = '2020-02-02T10:00:00+00:00' WHERE rowid % 7 = 0")
        conn.execute("UPDATE articles SET published_at = NULL, language = NULL WHERE rowid % 11 = 0")
        conn.execute("UPDATE articles SET cluster_id = 42 WHERE rowid % 13 = 0")
        conn.execute("""UPDATE articles SET authors = '["Ann Example", "Ann Example", "Bo"]' WHERE rowid % 19 = 0""")
        # The store's own update of a changed article: an upsert (INSERT ... ON CONFLICT DO UPDATE),
        # whose conflict clause overrides one inside a trigger.
        conn.execute(
            "INSERT INTO articles SELECT * FROM articles WHERE rowid % 23 = 0"
            " ON CONFLICT (url) DO UPDATE SET source = 'upserted', language = 'xx'"
        )
        conn.execute("DELETE FROM url_aliases WHERE url IN (SELECT url FROM articles WHERE rowid % 17 = 0)")
        conn.execute("DELETE FROM article_revisions WHERE url IN (SELECT url FROM articles WHERE rowid % 17 = 0)")
        conn.execute("DELETE FROM article_signatures WHERE url IN (SELECT url FROM articles WHERE rowid % 17 = 0)")
        conn.execute("DELETE FROM articles WHERE rowid % 17 = 0")
        conn.execute("UPDATE crawl_runs SET status = 'cancelled', duration_s = NULL WHERE id % 5 = 0")
        conn.execute("UPDATE crawl_runs SET started_at = '2020-01-01T00:00:00+00:00' WHERE id % 9 = 0")
        conn.execute("DELETE FROM failures WHERE run_id % 3 = 0")
        conn.execute("DELETE FROM crawl_runs WHERE id % 3 = 0")
        conn.execute(
            "INSERT INTO crawl_runs (source, started_at, status)"
            " VALUES ('new_source', '2026-05-05T05:05:05+00:00', 'running')"
        )
    summaries_match(conn)
    assert conn.execute("SELECT articles FROM article_cluster_sizes WHERE cluster_id = 42").fetchone()[0] > 1
    conn.close()


def test_an_archive_written_before_the_summaries_migrates(archive: Path, tmp_path: Path) -> None:
    copy = tmp_path / "news.db"
    source = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    # Undo the migration, as an archive from before it is, then write as that code did.
    with target:
        summaries = (
            "articles_per_day",
            "crawl_runs_per_day",
            "article_cluster_sizes",
            "articles_per_author",
            "articles_per_publication_day",
        )
        for table in summaries:
            target.execute(f"DROP TABLE {table}")
        for (trigger,) in target.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            if trigger.startswith(summaries):
                target.execute(f"DROP TRIGGER {trigger}")
        target.execute(
            "DELETE FROM _sqlite_migrations WHERE name IN"
            " ('keep_reads_fast_at_a_year', 'count_articles_per_author_and_publication_day')"
        )
        target.execute("UPDATE articles SET language = 'xx', authors = '[\"Cy\"]' WHERE rowid % 4 = 0")
        target.execute("DELETE FROM crawl_runs WHERE id % 4 = 0 AND id NOT IN (SELECT run_id FROM failures)")
    target.close()
    db = open_db(copy)
    assert not migrations.pending(db)
    summaries_match(db.conn)
    db.close()


def test_only_indexed_text_rewrites_the_full_text_index(archive: Path, tmp_path: Path) -> None:
    copy = tmp_path / "news.db"
    source = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    conn = sqlite3.connect(copy)
    source.backup(conn)
    source.close()

    def index_state() -> tuple[Any, ...]:
        return conn.execute("SELECT count(*), sum(length(block)) FROM articles_fts_data").fetchone()

    before = index_state()
    with conn:  # a re-crawl: every article seen again
        conn.execute("UPDATE articles SET last_seen_at = '2030-01-01T00:00:00+00:00', fetched_at = last_seen_at")
    assert index_state() == before
    url = conn.execute("SELECT url FROM articles LIMIT 1").fetchone()[0]
    with conn:
        conn.execute("UPDATE articles SET title = 'Zyzzyvaquux headline' WHERE url = ?", [url])
    assert index_state() != before
    found = conn.execute(
        "SELECT articles.url FROM articles_fts JOIN articles ON articles.rowid = articles_fts.rowid"
        " WHERE articles_fts MATCH 'zyzzyvaquux'"
    ).fetchall()
    assert found == [(url,)]
    conn.close()


# --- facets: from the summaries when unfiltered, from the rows when filtered -----------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("filtered", [False, True])
async def test_articles_facets_count_what_the_rows_hold(archive: Path, filtered: bool) -> None:
    from collections import Counter

    from tests.test_datasette import make_datasette

    conn = connect(archive)
    source, _ = some_source_and_word(conn)
    where, params = ("WHERE source = ?", [source]) if filtered else ("", [])
    rows = conn.execute(f"SELECT source, language, published_at, authors FROM articles {where}", params).fetchall()
    expected = {
        "source": Counter(row[0] for row in rows),
        "language": Counter(row[1] for row in rows if row[1] is not None),
        "published_at": Counter(row[2][:10] for row in rows if row[2]),
        "authors": Counter(name for row in rows for name in set(json.loads(row[3] or "[]"))),
    }
    ds = make_datasette(archive)
    query = f"?source={source}&_size=1" if filtered else "?_size=1"
    data = (await ds.client.get(f"/news/articles.json{query}")).json()
    assert not data.get("facets_timed_out")
    for name, counts in expected.items():
        shown = {str(r["value"]): r["count"] for r in data["facet_results"][name]["results"]}
        assert shown, name
        assert all(counts[value] == count for value, count in shown.items()), name
        assert min(shown.values()) >= sorted(counts.values(), reverse=True)[len(shown) - 1], f"{name}: not the largest"


# --- Datasette's ?_search= on the articles table (plugins/articles_search/search.py) ------------------

RARE_WORD = "zyzzyva"  # put in 6 of the 3,000 articles below: under 1 %, Datasette's own plan


@pytest.fixture(scope="module")
def searched(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive, with a word in a few headlines (every made-up word is in many articles), and a
    third of the articles in a second language (a language filter must select)."""
    path = tmp_path_factory.mktemp("searched") / "news.db"
    source = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
    target = sqlite3.connect(path)
    source.backup(target)
    source.close()
    with target:
        target.execute(f"UPDATE articles SET title = title || ' {RARE_WORD}' WHERE rowid % 500 = 0")
        target.execute("UPDATE articles SET language = 'cy' WHERE rowid % 3 = 0")
    target.close()
    return path


def searches(conn: sqlite3.Connection) -> list[dict[str, str]]:
    """A common word, a rare one, two words, and a common word within one source."""
    source, _ = some_source_and_word(conn)
    return [
        {"_search": "harbour"},
        {"_search": RARE_WORD},
        {"_search": "harbour council"},
        {"_search": "council", "source": source},
    ]


def filtered_searches(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """A search with the facet filters a reader clicks (language, a day, both with a source), one
    with a value no article holds, and ones the held columns leave to SQL: a filter they do not
    answer, a filter given twice, a `_where`; and a column search beside the search (Datasette 0.65
    ignores `_search_<column>=` when `_search=` is given: so must we)."""
    source, _ = some_source_and_word(conn)
    (day,) = conn.execute(
        "SELECT date(published_at) FROM articles WHERE source = ? AND published_at IS NOT NULL"
        " GROUP BY 1 ORDER BY count(*) DESC",
        [source],
    ).fetchone()
    return [
        {"_search": "harbour", "language": "en"},
        {"_search": "harbour", "published_at__date": day, "source": source},
        {"_search": "harbour", "source": "no-such-source"},
        {"_search": "harbour", "word_count__gt": "100", "source": source},
        {"_search": "harbour", "source": [source, "source_001"]},  # both at once: none
        {"_search": "harbour", "_where": "\"language\" = 'cy'", "source": source},
        {"_search": "harbour", "_search_title": "council"},
    ]


async def traced_queries(db: Path, args: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """The SQL a search-filtered articles page runs (Datasette's tracer), with its parameters."""
    from datasette.tracer import capture_traces

    from tests.test_datasette import make_datasette

    traces: list[dict[str, Any]] = []
    with capture_traces(traces):
        response = await make_datasette(db).client.get("/news/articles.json", params=args)
    assert response.status_code == 200, response.text[:500]
    return [(trace["sql"], trace.get("params") or {}) for trace in traces if trace["type"] == "sql"]


@pytest.mark.asyncio
@pytest.mark.parametrize("which", range(7))
async def test_search_filtered_articles_page_reads_no_big_table_whole(searched: Path, which: int) -> None:
    conn = connect(searched)
    args = [*searches(conn), *filtered_searches(conn)[:3]][which]
    queries = [(sql, params) for sql, params in await traced_queries(searched, args) if "articles" in sql]
    for sql, params in queries:
        assert not full_scans(conn, sql, params), f"{args}: a full table scan in {sql}"
    facets = [sql for sql, _ in queries if "group by" in sql]
    common = args["_search"] != RARE_WORD
    # The facets of a search, alone or with a source, are counted in memory (archive/facet_columns.py),
    # and so is the count of a common one: no SQL groups or counts its matches (a rare one's count is
    # Datasette's, a few seeks).
    assert facets == [], facets
    counts = [sql for sql, _ in queries if sql.startswith("select count(*) from articles")]
    assert (counts == []) == common, counts
    (page,) = [sql for sql, _ in queries if "limit 101" in sql]
    # A common word walks the publication-order index; a rare one seeks its few matches.
    assert ("+rowid in" in page) == common, page


@pytest.mark.asyncio
@pytest.mark.parametrize("which", range(11))
async def test_search_filtered_page_answers_as_datasettes_own_queries(searched: Path, which: int) -> None:
    """Rows, count and facet counts as a Datasette without our plugin gives them (its own search filter
    and facet queries), served by `datasette serve` in a process of its own."""
    from tests.test_datasette import make_datasette

    conn = connect(searched)
    args = {**[*searches(conn), *filtered_searches(conn)][which], "_size": "20"}
    query = urlencode(args, doseq=True)
    ours = (await make_datasette(searched).client.get(f"/news/articles.json?{query}")).json()
    with plain_datasette(searched) as base:
        theirs = json.loads(urllib.request.urlopen(f"{base}/news/articles.json?{query}", timeout=60).read())
    assert ours["rows"] or args.get("source") in ("no-such-source", [args["source"][0], "source_001"])
    assert ours["rows"] == theirs["rows"]
    assert ours["next"] == theirs["next"]
    assert ours["filtered_table_rows_count"] == theirs["filtered_table_rows_count"]
    assert not ours.get("facets_timed_out")
    assert not theirs.get("facets_timed_out")

    def facets(data: dict[str, Any]) -> dict[str, list[tuple[Any, int]]]:
        return {
            name: [(r["value"], r["count"]) for r in facet["results"]] for name, facet in data["facet_results"].items()
        }

    assert facets(ours) == facets(theirs)
    assert set(facets(ours)) == {"source", "language", "authors", "published_at"}


@contextmanager
def plain_datasette(db: Path) -> Iterator[str]:
    """`datasette serve` on our metadata and settings, without plugins/ (so with Datasette's own search)."""
    from bench.archive_scale import free_port

    port = free_port()
    command = [str(Path(sys.executable).parent / "datasette"), "serve", str(db), "--port", str(port)]
    command += ["-m", str(ROOT / "metadata.yml"), "--setting", "suggest_facets", "off"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/versions.json", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.asyncio
async def test_an_archive_without_the_change_log_counts_search_facets_in_sql(searched: Path, tmp_path: Path) -> None:
    """An archive served before any crawl migrated it has no article_facet_changes: the facets of a
    search alone are then Datasette's queries over article_facet_values, and count the same."""
    from tests.test_datasette import make_datasette

    old = tmp_path / "news.db"
    source = sqlite3.connect(f"file:{searched}?mode=ro", uri=True)
    target = sqlite3.connect(old)
    source.backup(target)
    with target:
        target.execute("DROP TRIGGER article_facet_changes_log")
        target.execute("DROP TABLE article_facet_changes")  # its pruning trigger goes with it
    target.close()
    alone, filtered = searches(connect(searched))[0], searches(connect(searched))[3]
    for args, facet_queries in ((alone, 4), (filtered, 1)):  # a search alone: a query a facet
        args = {**args, "_size": "5"}
        traced = [sql for sql, _ in await traced_queries(old, args) if "group by" in sql]
        assert len(traced) == facet_queries
        assert all("article_facet_values" in sql for sql in traced), traced
        ours = (await make_datasette(searched).client.get("/news/articles.json", params=args)).json()
        without = (await make_datasette(old).client.get("/news/articles.json", params=args)).json()
        assert not without.get("facets_timed_out")
        assert without["facet_results"] == ours["facet_results"]
        assert without["rows"] == ours["rows"]
        assert without["filtered_table_rows_count"] == ours["filtered_table_rows_count"]


# --- every table page ---------------------------------------------------------------------------------

# Tables that gain rows with every article or every crawl run: at a year, hundreds of thousands to
# millions. (sources, daemon and the like hold a row per source, or one.)
GROWING_TABLES = (
    "articles",
    "crawl_runs",
    "url_aliases",
    "article_revisions",
    "failures",
    "not_articles",
    "run_signals",
    "health_changes",
    "raw_page_refs",
    "raw_pages",
    "site_lines",
    "site_pages",
)
TABLE_PAGES = [
    name
    for name, table in METADATA["databases"]["news"]["tables"].items()
    if name in GROWING_TABLES and not table.get("hidden")
]


@pytest.mark.asyncio
@pytest.mark.parametrize("table", TABLE_PAGES)
async def test_table_page_reads_no_growing_table_whole(archive: Path, table: str) -> None:
    """A table page as Datasette serves it (rows in the metadata's order, count, every facet) reads its
    table through indexes: a sort or a count of a whole growing table is what made pages slow at a year."""
    from datasette.tracer import capture_traces

    from tests.test_datasette import make_datasette

    traces: list[dict[str, Any]] = []
    with capture_traces(traces):
        response = await make_datasette(archive).client.get(f"/news/{table}.json")
    assert response.status_code == 200, response.text[:300]
    conn = connect(archive)
    queries = [t["sql"] for t in traces if t["type"] == "sql" and re.search(rf"\b{table}\b", t["sql"])]
    assert queries
    for sql in queries:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", {})]
        if "limit 101" in sql:  # the page's rows, in index (or rowid) order: the scan stops after 101
            assert "USE TEMP B-TREE FOR ORDER BY" not in plan, f"{table}: {sql} sorts the table: {plan}"
        else:  # its count and facets: over an index alone (a covering one), not the rows
            whole = [step for step in plan if re.fullmatch(rf"SCAN {table}( AS \w+)?( USING INDEX \w+)?", step)]
            assert not whole, f"{table}: {sql} reads the table whole: {plan}"


@pytest.mark.asyncio
async def test_a_count_written_by_hand_on_the_query_page_is_answered(searched: Path) -> None:
    """The count the plugin answers from the held columns has the text of a table page's count; the
    same text typed on the SQL page gets an ordinary answer, its column described."""
    from tests.test_datasette import make_datasette

    sql = (
        "select count(*) from articles where +rowid in"
        " (select rowid from articles_fts where articles_fts match escape_fts(:search))"
    )
    response = await make_datasette(searched).client.get(
        f"/news.json?{urlencode({'sql': sql, 'search': 'harbour', '_shape': 'array'})}"
    )
    assert response.status_code == 200, response.text[:300]
    (expected,) = connect(searched).execute(sql, {"search": "harbour"}).fetchone()
    assert response.json() == [{"count(*)": expected}]
