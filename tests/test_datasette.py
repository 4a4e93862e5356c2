"""Datasette on a crawled archive: metadata.yml, canned queries, templates and the plugins dir.

Every test talks to Datasette's own in-process client, set up as `make serve` runs it, on the
database the real pipeline built from the demo site (`demo_db`). Expected rows are computed
here in Python from the same file, not with the queries under test.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import lxml.html
import pytest
import yaml
from datasette.app import Datasette
from datasette.utils import tilde_encode

from archive.schema import open_db
from archive.sqlite import sqlite3

ROOT = Path(__file__).resolve().parent.parent
METADATA: dict[str, Any] = yaml.safe_load((ROOT / "metadata.yml").read_text(encoding="utf-8"))
NEWS = METADATA["databases"]["news"]
QUERIES: dict[str, dict[str, Any]] = NEWS["queries"]
ATOM = "{http://www.w3.org/2005/Atom}"
# The plugins this instance may run: all of them only read.
READ_ONLY_PLUGINS = {
    "datasette-atom",
    "datasette-dashboards",
    "datasette-leaflet",
    "datasette-render-markdown",
    "news_archive.py",
}

Rows = list[dict[str, Any]]


# The --setting pairs of `make serve` (suggest_facets off, max_returned_rows), typed as Datasette wants.
SERVE_SETTINGS: dict[str, Any] = {
    name: {"on": True, "off": False}.get(value, int(value) if value.isdigit() else value)
    for name, value in re.findall(r"--setting (\w+) (\S+)", (ROOT / "Makefile").read_text(encoding="utf-8"))
}


def make_datasette(db: Path) -> Datasette:
    """Datasette as `make serve` starts it: our metadata, plugins directory, templates and settings."""
    return Datasette(
        files=[str(db)],
        metadata=copy.deepcopy(METADATA),
        plugins_dir=str(ROOT / "plugins"),
        template_dir=str(ROOT / "templates"),
        settings=SERVE_SETTINGS,
    )


def table_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> Rows:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def copy_db(source: Path, target: Path) -> Path:
    """A private copy of the demo archive that a test may change (sqlite backup: WAL-safe)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return target


async def get_json(ds: Datasette, path: str, **params: Any) -> dict[str, Any]:
    response = await ds.client.get(path + ("?" + urlencode(params) if params else ""))
    assert response.status_code == 200, f"{path} {params}: {response.status_code} {response.text[:500]}"
    data = response.json()
    assert data.get("ok", True), data
    return data


async def query_rows(ds: Datasette, name: str, **params: Any) -> Rows:
    data = await get_json(ds, f"/news/{name}.json", _shape="objects", **params)
    return data["rows"]


def moment(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def utc_day(value: str) -> str:
    return moment(value).date().isoformat()


def published(article: dict[str, Any]) -> str:
    return article["published_at"] or article["first_seen_at"]


def row_path(url: str) -> str:
    return f"/news/articles/{tilde_encode(url)}"


@pytest.fixture
def ds(demo_db: Path) -> Datasette:
    return make_datasette(demo_db)


@pytest.fixture(scope="module")
def articles(demo_db: Path) -> Rows:
    return table_rows(demo_db, "SELECT * FROM articles")


def search_word(articles: Rows) -> str:
    """A word in some headlines and in other articles' bodies only: a search that has to rank."""
    scores: list[tuple[int, str]] = []
    titles = {word.lower() for a in articles for word in re.findall(r"[A-Za-z]{5,}", a["title"] or "")}
    for word in sorted(titles):
        pattern = re.compile(rf"\b{word}\b", re.IGNORECASE)
        in_title = sum(bool(pattern.search(a["title"] or "")) for a in articles)
        body_only = sum(
            bool(pattern.search(a["text"] or "")) and not pattern.search(a["title"] or "") for a in articles
        )
        if in_title and body_only and in_title + body_only >= 3:
            scores.append((in_title + body_only, word))
    assert scores, "the demo archive has no word shared by a headline and other articles' bodies"
    return min(scores)[1]  # the rarest such word: a search a reader would make


# --- metadata -------------------------------------------------------------------------------


def test_every_column_of_every_table_is_described(demo_db: Path) -> None:
    tables = table_rows(
        demo_db, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
    )
    described = NEWS["tables"]
    missing: list[str] = []
    for table in (row["name"] for row in tables):
        if not (described.get(table) or {}).get("description"):
            missing.append(f"table {table}")
            continue
        columns = described[table].get("columns") or {}
        for column in table_rows(demo_db, f"PRAGMA table_info([{table}])"):
            if not columns.get(column["name"]):
                missing.append(f"{table}.{column['name']}")
    assert not missing, f"describe these in metadata.yml (databases.news.tables): {missing}"


def test_metadata_has_title_description_and_source_notes() -> None:
    assert METADATA["title"]
    for level in (METADATA, NEWS):
        assert level["description_html"]
        assert level["source"]
        assert level["about"]


def test_no_canned_query_writes() -> None:
    for name, query in QUERIES.items():
        assert not query.get("write"), f"canned query {name} writes"
        assert query["sql"].lstrip().lower().startswith(("select", "with")), name


# --- pages ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_index_and_database_pages_answer(ds: Datasette) -> None:
    index = await ds.client.get("/")
    assert index.status_code == 200
    assert "News archive" in index.text
    database = await ds.client.get("/news")
    assert database.status_code == 200
    links = {a.text_content() for a in lxml.html.fromstring(database.text).cssselect("a")}
    assert {query["title"] for query in QUERIES.values()} <= links


@pytest.mark.asyncio
async def test_articles_table_is_newest_first_with_facets(ds: Datasette, articles: Rows) -> None:
    data = await get_json(ds, "/news/articles.json", _shape="objects", _size="max")
    shown = [row["published_at"] for row in data["rows"]]
    dated = sorted((a["published_at"] for a in articles if a["published_at"]), reverse=True)
    assert shown[: len(dated)] == dated  # undated ones come last
    facets = data["facet_results"]
    assert {name: facet["type"] for name, facet in facets.items()} == {
        "source": "column",
        "language": "column",
        "authors": "array",
        "published_at": "date",
    }
    assert {r["value"]: r["count"] for r in facets["source"]["results"]} == Counter(a["source"] for a in articles)
    authors = Counter(name for a in articles for name in json.loads(a["authors"] or "[]"))
    assert {r["value"]: r["count"] for r in facets["authors"]["results"]} == dict(authors.most_common(10))
    days = Counter(utc_day(a["published_at"]) for a in articles if a["published_at"])
    assert {r["value"]: r["count"] for r in facets["published_at"]["results"]}.items() <= days.items()


@pytest.mark.asyncio
async def test_articles_table_reads_as_headlines_without_bodies(ds: Datasette, articles: Rows) -> None:
    response = await ds.client.get("/news/articles?_size=max")
    assert response.status_code == 200
    page = lxml.html.fromstring(response.text)
    links = {a.text_content(): a.get("href") for a in page.cssselect("td.col-title a.headline")}
    assert links == {a["title"]: row_path(a["url"]) for a in articles}
    assert not page.cssselect(".col-text, .col-markdown"), "article bodies belong on the article page"
    # The search box at the top runs the ranked search.
    assert page.cssselect("form.news-search")[0].get("action") == "/news/search"


@pytest.mark.asyncio
async def test_raw_pages_are_referenced_not_stored(ds: Datasette, demo_db: Path) -> None:
    assert table_rows(demo_db, "SELECT url FROM raw_pages") == [], "raw HTML belongs in the WARC files"
    refs = table_rows(demo_db, "SELECT url, warc_file, size FROM raw_page_refs")
    assert refs, "the pipeline keeps raw HTML"
    for path in ("/news/raw_page_refs?_size=max", f"/news/raw_page_refs/{tilde_encode(refs[0]['url'])}"):
        response = await ds.client.get(path)
        assert response.status_code == 200
        grid = lxml.html.fromstring(response.text).cssselect("table.rows-and-columns")[0]
        assert [th.get("data-column") for th in grid.cssselect("th")][:3] == ["url", "warc_file", "record_offset"]
        assert refs[0]["warc_file"] in {td.text_content().strip() for td in grid.cssselect("td.col-warc_file")}


@pytest.mark.asyncio
async def test_article_page_shows_the_formatted_article(ds: Datasette, articles: Rows) -> None:
    article = max(
        (a for a in articles if a["authors"] != "[]" and "\n## " in (a["markdown"] or "")),
        key=lambda a: len(a["markdown"]),
    )
    response = await ds.client.get(row_path(article["url"]))
    assert response.status_code == 200
    page = lxml.html.fromstring(response.text)
    assert page.cssselect("article h1")[0].text_content() == article["title"]
    byline = page.cssselect("article .byline")[0].text_content()
    for author in json.loads(article["authors"]):
        assert author in byline
    assert page.cssselect("article time.published")[0].get("datetime") == article["published_at"]
    original = page.cssselect("article .original a")[0]
    assert original.get("href") == article["url"]
    body = page.cssselect("article .body")[0]
    headings = [h.text_content() for h in body.cssselect("h2")]
    assert headings == [line[3:].strip() for line in article["markdown"].splitlines() if line.startswith("## ")]
    paragraphs = [p.text_content() for p in body.cssselect("p")]
    assert len(paragraphs) >= 3
    assert all(p.strip() in article["text"] for p in paragraphs[:3])
    assert "## " not in body.text_content(), "the Markdown is rendered, not shown"


# --- search and feeds -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_search_ranks_headline_matches_first_with_snippets(ds: Datasette, articles: Rows) -> None:
    word = search_word(articles)
    pattern = re.compile(rf"\b{word}\b", re.IGNORECASE)
    rows = await query_rows(ds, "search", q=word)
    found = {row["url"] for row in rows}
    containing = {a["url"] for a in articles if pattern.search(f"{a['title']} {a['description']} {a['text']}")}
    assert containing <= found  # stemming may find more forms of the word, never fewer
    stem = word[: max(4, len(word) - 3)]
    by_url = {a["url"]: a for a in articles}
    assert all(stem in f"{by_url[u]['title']} {by_url[u]['text']}".lower() for u in found)
    scores = [row["relevance"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert pattern.search(rows[0]["title"]), "a headline match ranks first"
    assert all("<mark>" in row["snippet"] for row in rows)

    newest = await query_rows(ds, "search", q=word, sort="newest")
    assert {row["url"] for row in newest} == found
    assert [row["published"] for row in newest] == sorted((published(by_url[u]) for u in found), reverse=True)


@pytest.mark.asyncio
async def test_search_page_lists_headlines_with_highlights(ds: Datasette, articles: Rows) -> None:
    word = search_word(articles)
    response = await ds.client.get(f"/news/search?{urlencode({'q': word})}")
    assert response.status_code == 200
    page = lxml.html.fromstring(response.text)
    results = page.cssselect("ol.news-results li")
    rows = await query_rows(ds, "search", q=word)
    assert [li.cssselect("a.headline")[0].get("href") for li in results] == [row_path(r["url"]) for r in rows]
    assert all(li.cssselect(".snippet mark") for li in results)
    feed = page.cssselect("a.atom-feed")[0].get("href")
    assert feed.startswith("/news/search.atom?")


@pytest.mark.asyncio
async def test_a_saved_search_is_an_atom_feed(ds: Datasette, articles: Rows) -> None:
    word = search_word(articles)
    response = await ds.client.get(f"/news/search.atom?{urlencode({'q': word})}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    feed = ET.fromstring(response.content)
    assert feed.findtext(f"{ATOM}title") == f"News archive: articles matching {word}"
    entries = feed.findall(f"{ATOM}entry")
    rows = await query_rows(ds, "search", q=word)
    assert [e.findtext(f"{ATOM}id") for e in entries] == [r["url"] for r in rows]
    assert [e.findtext(f"{ATOM}title") for e in entries] == [r["title"] for r in rows]
    assert all(e.find(f"{ATOM}link").get("href") == e.findtext(f"{ATOM}id") for e in entries)
    assert all("<b>" in e.findtext(f"{ATOM}content") for e in entries), "highlights survive into the feed"


@pytest.mark.asyncio
async def test_a_search_with_no_match_yet_is_an_empty_feed(ds: Datasette) -> None:
    response = await ds.client.get("/news/search.atom?q=zyzzyvaquux")
    assert response.status_code == 200
    feed = ET.fromstring(response.content)
    assert feed.findtext(f"{ATOM}title") == "News archive: articles matching zyzzyvaquux"
    assert feed.findall(f"{ATOM}entry") == []


# --- every canned query -------------------------------------------------------------------------


def check_latest_articles(db: Path, rows: Rows) -> None:
    articles = table_rows(db, "SELECT * FROM articles")
    assert [r["published"] for r in rows] == sorted(map(published, articles), reverse=True)[:100]
    assert {r["url"] for r in rows} <= {a["url"] for a in articles}


def check_articles_per_source_per_day(db: Path, rows: Rows) -> None:
    articles = table_rows(db, "SELECT * FROM articles")
    expected = Counter((utc_day(published(a)), a["source"]) for a in articles)
    assert {(r["day"], r["source"]): r["articles"] for r in rows} == expected
    assert [r["day"] for r in rows] == sorted((r["day"] for r in rows), reverse=True)


def busiest_day(db: Path) -> str:
    days = Counter(utc_day(published(a)) for a in table_rows(db, "SELECT * FROM articles"))
    return max(days, key=lambda day: (days[day], day))


def check_todays_articles(db: Path, rows: Rows) -> None:
    day = busiest_day(db)
    articles = [a for a in table_rows(db, "SELECT * FROM articles") if utc_day(published(a)) == day]
    assert sorted(r["url"] for r in rows) == sorted(a["url"] for a in articles)
    assert [r["source"] for r in rows] == sorted(r["source"] for r in rows)


def check_duplicate_groups(db: Path, rows: Rows) -> None:
    groups: dict[str, set[str]] = defaultdict(set)
    for alias in table_rows(db, "SELECT * FROM url_aliases"):
        groups[alias["url"]].add(alias["alias"])
    assert groups, "the demo site has AMP pages and partner copies"
    assert {r["url"]: set(json.loads(r["aliases"])) for r in rows} == groups
    assert all(r["other_urls"] == len(groups[r["url"]]) for r in rows)


def check_near_duplicate_clusters(db: Path, rows: Rows) -> None:
    clusters: dict[int, set[str]] = defaultdict(set)
    for article in table_rows(db, "SELECT url, cluster_id FROM articles WHERE cluster_id IS NOT NULL"):
        clusters[article["cluster_id"]].add(article["url"])
    expected = {cluster: urls for cluster, urls in clusters.items() if len(urls) > 1}
    assert {r["cluster_id"]: set(json.loads(r["urls"])) for r in rows} == expected


def check_recent_crawl_runs(db: Path, rows: Rows) -> None:
    runs = table_rows(db, "SELECT * FROM crawl_runs ORDER BY started_at DESC, id DESC")
    assert runs
    assert [r["id"] for r in rows] == [run["id"] for run in runs]
    for row, run in zip(rows, runs, strict=True):
        assert row["articles_new"] == run["articles_new"]
        assert row["duration_s"] == run["duration_s"]
        assert row["failures"] == run["failures"]


def check_recent_failures(db: Path, rows: Rows) -> None:
    since = datetime.now(UTC) - timedelta(days=7)
    expected: Counter[tuple[str, str, str]] = Counter()
    for failure in table_rows(db, "SELECT * FROM failures"):
        if moment(failure["occurred_at"]) >= since:
            domain = urlsplit(failure["url"]).netloc.lower() if failure["url"] else "(no URL)"
            expected[(domain, failure["stage"], failure["reason"])] += 1
    assert expected, "the demo site has broken pages"
    assert {(r["domain"], r["stage"], r["reason"]): r["failures"] for r in rows} == expected


def quiet_sources(db: Path, days: int) -> set[str]:
    since = datetime.now(UTC) - timedelta(days=days)
    produced = {
        a["source"]
        for a in table_rows(db, "SELECT source, first_seen_at FROM articles")
        if moment(a["first_seen_at"]) >= since
    }
    return {s["name"] for s in table_rows(db, "SELECT name FROM sources")} - produced


def check_quiet_sources(db: Path, rows: Rows) -> None:
    assert {r["source"] for r in rows} == quiet_sources(db, 7)


def check_daemon_heartbeat(db: Path, rows: Rows) -> None:
    daemons = table_rows(db, "SELECT * FROM daemon")
    if not daemons:
        assert [r["state"] for r in rows] == ["never started"]
    else:
        assert [r["pid"] for r in rows] == [d["pid"] for d in daemons]


def check_next_crawls(db: Path, rows: Rows) -> None:
    jobs = table_rows(db, "SELECT * FROM daemon_jobs ORDER BY next_run_at")
    assert [(r["source"], r["next_run_at"]) for r in rows] == [(j["source"], j["next_run_at"]) for j in jobs]


def check_health_changes_feed(db: Path, rows: Rows) -> None:
    changes = table_rows(db, "SELECT * FROM health_changes ORDER BY id DESC LIMIT 100")
    assert [(r["source"], r["verdict"], r["reason"]) for r in rows] == [
        (c["source"], c["verdict"], c["reason"]) for c in changes
    ]


# Canned query -> (URL parameters, check of its rows against the database).
QUERY_CHECKS: dict[str, tuple[Callable[[Path], dict[str, str]], Callable[[Path, Rows], None]]] = {
    "latest_articles": (lambda db: {}, check_latest_articles),
    "articles_per_source_per_day": (lambda db: {"days": "100000"}, check_articles_per_source_per_day),
    "todays_articles": (lambda db: {"day": busiest_day(db)}, check_todays_articles),
    "duplicate_groups": (lambda db: {}, check_duplicate_groups),
    "near_duplicate_clusters": (lambda db: {}, check_near_duplicate_clusters),
    "recent_crawl_runs": (lambda db: {}, check_recent_crawl_runs),
    "recent_failures": (lambda db: {}, check_recent_failures),
    "quiet_sources": (lambda db: {}, check_quiet_sources),
    "daemon_heartbeat": (lambda db: {}, check_daemon_heartbeat),
    "next_crawls": (lambda db: {}, check_next_crawls),
    "health_changes_feed": (lambda db: {}, check_health_changes_feed),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_every_canned_query_answers_with_the_expected_rows(name: str, ds: Datasette, demo_db: Path) -> None:
    if name == "search":
        return  # tested above, on ranking, snippets and feeds
    assert name in QUERY_CHECKS, f"add a check for the canned query {name}"
    params, check = QUERY_CHECKS[name]
    html = await ds.client.get(f"/news/{name}?{urlencode(params(demo_db))}")
    assert html.status_code == 200
    check(demo_db, await query_rows(ds, name, **params(demo_db)))


@pytest.mark.asyncio
async def test_default_windows_count_back_from_today(ds: Datasette, demo_db: Path) -> None:
    articles = table_rows(demo_db, "SELECT * FROM articles")
    today = datetime.now(UTC).date()
    month = await query_rows(ds, "articles_per_source_per_day")
    recent = [a for a in articles if date.fromisoformat(utc_day(published(a))) >= today - timedelta(days=30)]
    assert sum(r["articles"] for r in month) == len(recent)
    todays = await query_rows(ds, "todays_articles")
    assert {r["url"] for r in todays} == {a["url"] for a in articles if utc_day(published(a)) == str(today)}


@pytest.mark.asyncio
async def test_quiet_sources_lists_a_source_that_stopped_producing(demo_db: Path, tmp_path: Path) -> None:
    db = copy_db(demo_db, tmp_path / "news.db")
    conn = sqlite3.connect(db)
    source = conn.execute("SELECT source FROM articles GROUP BY source ORDER BY count(*) DESC").fetchone()[0]
    old = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0).isoformat()
    with conn:
        conn.execute("UPDATE articles SET first_seen_at = ? WHERE source = ?", [old, source])
    conn.close()
    ds = make_datasette(db)
    assert source in {r["source"] for r in await query_rows(ds, "quiet_sources")}
    assert source not in {r["source"] for r in await query_rows(ds, "quiet_sources", days="30")}
    assert {r["source"] for r in await query_rows(ds, "quiet_sources")} == quiet_sources(db, 7)


@pytest.mark.asyncio
async def test_heartbeat_tells_alive_from_hung_and_stopped(demo_db: Path, tmp_path: Path) -> None:
    db = copy_db(demo_db, tmp_path / "news.db")
    ds = make_datasette(db)
    now = datetime.now(UTC).replace(microsecond=0)
    cases = [
        ("running", now - timedelta(seconds=5), "alive"),
        ("running", now - timedelta(minutes=10), "not ticking: killed or hung"),
        ("stopped", now - timedelta(seconds=5), "stopped"),
    ]
    for status, tick, state in cases:
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(
                "INSERT OR REPLACE INTO daemon (id, pid, host, status, started_at, last_tick_at, tick_s) "
                "VALUES (1, 4242, 'box', ?, ?, ?, 15)",
                [status, (now - timedelta(hours=1)).isoformat(), tick.isoformat()],
            )
        conn.close()
        rows = await query_rows(ds, "daemon_heartbeat")
        assert [(r["state"], r["pid"]) for r in rows] == [(state, 4242)]
        assert abs(rows[0]["seconds_since_tick"] - (datetime.now(UTC) - tick).total_seconds()) < 5


# --- dashboard ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_dashboard_charts_answer_from_the_archive(ds: Datasette, articles: Rows) -> None:
    response = await ds.client.get("/-/dashboards/news")
    assert response.status_code == 200
    charts = METADATA["plugins"]["datasette-dashboards"]["news"]["charts"]
    for name, chart in charts.items():
        assert f"chart-{name}" in response.text
        sql = re.sub(r"\[\[.*?\]\]", "", chart["query"])  # the optional filters, unset
        data = await get_json(ds, "/news.json", sql=sql, _shape="objects")
        assert data["rows"], f"chart {name} has no data"
    per_day = re.sub(r"\[\[.*?\]\]", "", charts["articles-per-day"]["query"])
    rows = (await get_json(ds, "/news.json", sql=per_day, _shape="objects"))["rows"]
    assert sum(row["articles"] for row in rows) == len(articles)
    one = articles[0]["source"]
    filtered = await ds.client.get(f"/-/dashboards/news?{urlencode({'source': one})}")
    assert filtered.status_code == 200


# --- read-only, and readable while the crawler writes ----------------------------------------------


@pytest.mark.asyncio
async def test_visitors_can_only_read(ds: Datasette) -> None:
    plugins = await ds.client.get("/-/plugins.json")
    assert {p["name"] for p in plugins.json()} == READ_ONLY_PLUGINS
    for path in ("/news/search", "/news/articles", "/news"):
        response = await ds.client.post(path, data={"q": "x", "sql": "delete from articles"})
        assert response.status_code == 405
    write = await ds.client.get("/news.json?" + urlencode({"sql": "delete from articles"}))
    assert write.status_code == 400


@pytest.mark.asyncio
async def test_readers_never_see_database_locked_while_the_crawler_writes(demo_db: Path, tmp_path: Path) -> None:
    db = copy_db(demo_db, tmp_path / "news.db")
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        writer_db = open_db(db)  # WAL and busy timeout, as every crawl process opens it
        template = next(iter(writer_db["articles"].rows))
        try:
            for batch in range(60):
                rows = [
                    {
                        **template,
                        "url": f"https://example.test/{batch}/{n}",
                        "title": f"Quarterzap {batch} {n}",
                    }
                    for n in range(20)
                ]
                with writer_db.atomic():
                    writer_db["articles"].upsert_all(rows, pk="url")
                time.sleep(0.005)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            writer_db.close()
            done.set()

    ds = make_datasette(db)
    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    while not done.is_set() or reads < 10:
        for path in (
            "/news/articles.json?_facet=source",
            "/news/search.json?q=quarterzap",
            "/news/latest_articles.json",
        ):
            response = await ds.client.get(path)
            assert response.status_code == 200, response.text[:500]
            assert "locked" not in response.text
            reads += 1
    writer.join()
    assert not errors, errors
    written = await get_json(ds, "/news/articles.json", _search="quarterzap")
    assert written["filtered_table_rows_count"] == 1200


@pytest.mark.asyncio
async def test_a_long_write_transaction_does_not_lock_readers_out(demo_db: Path, tmp_path: Path) -> None:
    # With a rollback journal this read waits out Datasette's busy timeout and fails with
    # "database is locked"; in WAL mode it answers at once from the last committed state.
    db = copy_db(demo_db, tmp_path / "news.db")
    ds = make_datasette(db)
    holding, read_done = threading.Event(), threading.Event()

    def hold_a_write_transaction() -> None:
        conn = open_db(db).conn
        conn.execute("BEGIN EXCLUSIVE")
        # Not rowid 1: when the demo crawl meets an identical copy before its original, the copy's
        # row (sometimes rowid 1) is replaced, so the demo archive's first rowid varies.
        url = conn.execute("SELECT url FROM articles ORDER BY url LIMIT 1").fetchone()[0]
        updated = conn.execute("UPDATE articles SET title = 'Quarterzap headline' WHERE url = ?", [url])
        assert updated.rowcount == 1
        holding.set()
        read_done.wait(timeout=60)
        conn.commit()
        conn.close()

    writer = threading.Thread(target=hold_a_write_transaction)
    writer.start()
    try:
        assert holding.wait(timeout=30)
        during = await get_json(ds, "/news/articles.json", _search="quarterzap")
        assert during["filtered_table_rows_count"] == 0  # not committed yet
    finally:
        read_done.set()
        writer.join()
    after = await get_json(ds, "/news/articles.json", _search="quarterzap")
    assert after["filtered_table_rows_count"] == 1


@pytest.mark.asyncio
async def test_markup_in_stored_text_is_never_rendered_as_html(demo_db: Path, tmp_path: Path) -> None:
    """Stored text is data: a page's script or event handler in the body, title or authors is
    shown as text (escaped) or removed by the Markdown sanitiser, never run."""
    db = copy_db(demo_db, tmp_path / "news.db")  # the file name is the database name in URLs
    conn = sqlite3.connect(db)
    url = conn.execute("SELECT url FROM articles ORDER BY url LIMIT 1").fetchone()[0]
    conn.execute(
        "UPDATE articles SET title = ?, authors = ?, markdown = ? WHERE url = ?",
        [
            "Headline <script>alert('title')</script>",
            json.dumps(["<img src=x onerror=alert('author')>"]),
            "Body text.\n\n<script>alert('body')</script>\n\n<img src=x onerror=alert('img')>\n\n"
            "[link](javascript:alert('link'))",
            url,
        ],
    )
    conn.commit()
    conn.close()
    response = await make_datasette(db).client.get(row_path(url))
    assert response.status_code == 200
    page = lxml.html.fromstring(response.text)
    assert not [s for s in page.iter("script") if "alert(" in (s.text or "")]
    assert not [e for e in page.iter() if any(name.startswith("on") for name in e.attrib)]
    assert not [a for a in page.iter("a") if (a.get("href") or "").strip().lower().startswith("javascript:")]
    assert "Headline <script>alert('title')</script>" in page.text_content()  # shown as text
    assert "Body text." in page.text_content()
