"""The search page's best match, ranked in two halves of the table at once
(plugins/articles_search/best_match.py), is what the canned query `search` gives run as written:
the same rows in the same order, ties included; Datasette's time limit still holds.

The archive is a small one built by the benchmark's builder through the project's storage code, as
in tests/test_query_plans.py; its made-up texts repeat, so many matches score alike.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette
from datasette.tracer import capture_traces
from datasette.utils import escape_fts

from archive.sqlite import sqlite3
from bench.archive_scale import ArchiveBuilder
from tests.test_datasette import METADATA, ROOT, SERVE_SETTINGS, make_datasette
from tests.test_query_plans import ARTICLES, QUERIES, connect, made_up_texts

SEARCH_SQL: str = QUERIES["search"]["sql"]
RANKED_IN_HALVES = "json_each(:news_ranked)"  # the `best` part, once the halves have ranked it


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("best_match") / "news.db"
    ArchiveBuilder(path, ARTICLES, run_hours=2, texts=made_up_texts()).build()
    return path


def as_written(db: Path, params: dict[str, str]) -> list[dict[str, Any]]:
    """The canned query's rows, run by SQLite as metadata.yml writes it (one ranking of all matches)."""
    conn = connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(SEARCH_SQL, params)]
    finally:
        conn.close()


async def search_page(ds: Datasette, params: dict[str, str]) -> tuple[Any, list[str]]:
    traces: list[dict[str, Any]] = []
    with capture_traces(traces):
        response = await ds.client.get("/news/search.json", params={**params, "_shape": "objects"})
    return response, [trace["sql"] for trace in traces if trace["type"] == "sql"]


def assert_ranked_in_halves(response: Any, queries: list[str], expected: list[dict[str, Any]]) -> None:
    """The page answered `expected`, from the halves' ranking."""
    assert response.status_code == 200, response.text[:500]
    assert response.json()["rows"] == expected
    assert any(RANKED_IN_HALVES in sql for sql in queries)


def common_word(db: Path) -> str:
    """A word in most of the archive's articles: many matches, many of them scored alike."""
    conn = connect(db)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, articles_fts, 'row')")
        (word,) = conn.execute("SELECT term FROM temp.vocab WHERE length(term) > 4 ORDER BY doc DESC").fetchone()
        return str(word)
    finally:
        conn.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("words", ["common", "common council", "harbour", '"harbour council"', "nosuchwordanywhere"])
async def test_best_match_in_halves_is_the_canned_querys_answer(archive: Path, words: str) -> None:
    q = words.replace("common", common_word(archive))
    expected = as_written(archive, {"q": q, "sort": ""})
    response, queries = await search_page(make_datasette(archive), {"q": q})
    assert_ranked_in_halves(response, queries, expected)
    if words.startswith("common"):
        assert len(expected) == 100  # more matches than shown: the halves' first 100 had to be merged
        relevances = [row["relevance"] for row in expected]
        assert len(set(relevances)) < len(relevances)  # ties, which both orders break by rowid


@pytest.mark.asyncio
async def test_the_whole_table_is_ranked_whatever_the_rowids(archive: Path, tmp_path: Path) -> None:
    """Rows below rowid 1, and far above the others (halves of the rowids, not of the rows), are
    ranked too."""
    db = tmp_path / "news.db"
    source, target = sqlite3.connect(f"file:{archive}?mode=ro", uri=True), sqlite3.connect(db)
    source.backup(target)
    source.close()
    word = common_word(archive)
    with target:  # two articles made the best matches, one moved to rowid -5, one far above the rest
        for rowid, moved in ((-5, 7), (10**12, 8)):
            target.execute("UPDATE articles SET rowid = ?, title = ? WHERE rowid = ?", [rowid, f"{word} " * 3, moved])
        target.execute("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")
        moved_urls = {url for (url,) in target.execute("SELECT url FROM articles WHERE rowid IN (-5, 1000000000000)")}
    target.close()
    expected = as_written(db, {"q": word, "sort": ""})
    assert {row["url"] for row in expected[:2]} == moved_urls
    response, queries = await search_page(make_datasette(db), {"q": word})
    assert_ranked_in_halves(response, queries, expected)


@pytest.mark.asyncio
async def test_articles_stored_after_the_halves_were_cut_are_ranked(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The highest rowid is read before the halves rank: articles stored meanwhile (here, as if the
    highest read were a third of the real one) fall in the last half, not outside both."""
    from articles_search.best_match import CannedSearch

    rank = CannedSearch.rank

    async def rank_before_the_last_writes(
        self: CannedSearch, path: str, params: Any, highest: int, limit: float
    ) -> str:
        return await rank(self, path, params, highest // 3, limit)

    monkeypatch.setattr(CannedSearch, "rank", rank_before_the_last_writes)
    params = {"q": common_word(archive), "sort": ""}
    response, queries = await search_page(make_datasette(archive), params)
    assert_ranked_in_halves(response, queries, as_written(archive, params))


@pytest.mark.asyncio
async def test_newest_first_and_an_empty_search_run_as_written(archive: Path) -> None:
    ds = make_datasette(archive)
    for params in ({"q": common_word(archive), "sort": "newest"}, {"q": "  ", "sort": ""}):
        response, queries = await search_page(ds, params)
        assert response.status_code == 200
        assert response.json()["rows"] == as_written(archive, params)
        assert not any(RANKED_IN_HALVES in sql for sql in queries)


@pytest.mark.asyncio
async def test_the_ranking_keeps_datasettes_time_limit(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past sql_time_limit_ms the halves stop, and the page says the query took too long, as
    Datasette's own would."""
    from articles_search import best_match

    class Clock:  # every look at the clock finds another second gone
        now = 0.0

        @classmethod
        def monotonic(cls) -> float:
            cls.now += 1.0
            return cls.now

    monkeypatch.setattr(best_match, "time", Clock)
    ds = Datasette(
        files=[str(archive)],
        metadata=copy.deepcopy(METADATA),
        plugins_dir=str(ROOT / "plugins"),
        template_dir=str(ROOT / "templates"),
        settings={**SERVE_SETTINGS, "sql_time_limit_ms": 500},
    )
    response, _ = await search_page(ds, {"q": common_word(archive)})
    assert response.status_code == 400
    assert "SQL query took too long" in response.text


def served_with(db: Path, **options: Any) -> Datasette:
    settings = {**SERVE_SETTINGS, **options.pop("settings", {})}
    files = {} if options.get("immutables") else {"files": [str(db)]}
    return Datasette(
        **files,
        **options,
        metadata=copy.deepcopy(METADATA),
        plugins_dir=str(ROOT / "plugins"),
        template_dir=str(ROOT / "templates"),
        settings=settings,
    )


@pytest.mark.asyncio
async def test_both_halves_rank_and_waiting_for_a_thread_is_not_ranking_time(archive: Path) -> None:
    """Each half gets its own rows to rank; a half that waits for a busy thread (other searches
    ranking) still has the whole time limit once it starts, as a query waiting for Datasette's
    threads has."""
    import threading

    from articles_search import best_match

    ranked: list[int] = []
    rank_half = best_match.CannedSearch._rank_half

    def counted(self: Any, *args: Any) -> list[tuple[int, float]]:
        rows = rank_half(self, *args)
        ranked.append(len(rows))
        return rows

    release = threading.Event()
    busy = [best_match._halves.submit(release.wait, 5) for _ in range(best_match.HALVES)]
    try:
        params = {"q": common_word(archive), "sort": ""}
        ds = served_with(archive, settings={"sql_time_limit_ms": 300})
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(best_match.CannedSearch, "_rank_half", counted)
            page = asyncio.ensure_future(search_page(ds, params))
            await asyncio.sleep(0.6)  # twice the time limit spent waiting for the threads
            release.set()
            response, _ = await page
    finally:
        release.set()
        for future in busy:
            future.result()
    assert response.status_code == 200, response.text[:300]
    assert response.json()["rows"] == as_written(archive, params)
    assert len(ranked) == best_match.HALVES
    assert all(ranked), ranked


@pytest.mark.asyncio
async def test_a_commit_while_ranking_gives_the_answer_after_it(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crawl that writes between the ranking and the page's query: the page answers as the
    canned query run after that write would, not with a ranking of the archive before it."""
    from articles_search.best_match import CannedSearch

    db = tmp_path / "news.db"
    source, target = sqlite3.connect(f"file:{archive}?mode=ro", uri=True), sqlite3.connect(db)
    source.backup(target)
    source.close()
    target.close()
    params = {"q": common_word(archive), "sort": ""}
    top = as_written(db, params)[0]["url"]
    rank = CannedSearch.rank

    async def rank_then_a_crawl_writes(self: CannedSearch, *args: Any) -> str:
        ranked = await rank(self, *args)
        with sqlite3.connect(db) as writer:  # the top match no longer matches
            writer.execute("UPDATE articles SET title = 'Gone', description = '', text = 'Gone.' WHERE url = ?", [top])
        return ranked

    monkeypatch.setattr(CannedSearch, "rank", rank_then_a_crawl_writes)
    response, _ = await search_page(make_datasette(db), {"q": params["q"]})
    rows = response.json()["rows"]
    assert rows == as_written(db, params)
    assert len(rows) == 100
    assert top not in {row["url"] for row in rows}


@pytest.mark.asyncio
async def test_an_immutable_archive_is_ranked_as_datasette_reads_it(archive: Path, tmp_path: Path) -> None:
    """Datasette reads an immutable file without its write-ahead log; so do the halves."""
    db = tmp_path / "news.db"
    source, target = sqlite3.connect(f"file:{archive}?mode=ro", uri=True), sqlite3.connect(db)
    source.backup(target)
    source.close()
    target.execute("PRAGMA journal_mode = wal")
    target.execute("PRAGMA wal_autocheckpoint = 0")
    word = common_word(archive)
    with target:  # in the log only, never checkpointed while this connection is open
        target.execute("UPDATE articles SET title = ? WHERE rowid = 11", [f"{word} " * 3])
    params = {"q": word, "sort": ""}
    conn = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
    conn.create_function("escape_fts", 1, escape_fts)
    conn.row_factory = sqlite3.Row
    expected = [dict(row) for row in conn.execute(SEARCH_SQL, params)]
    conn.close()
    assert expected != as_written(db, params)  # the log changes the answer
    try:
        response, queries = await search_page(served_with(db, immutables=[str(db)]), {"q": word})
    finally:
        target.close()
    assert_ranked_in_halves(response, queries, expected)


@pytest.mark.asyncio
async def test_an_archive_locked_at_the_second_look_is_answered_as_written(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look for other connections' commits never waits for a lock (a rollback-journal archive
    being written): a locked archive counts as changed, and the canned query runs as written."""
    from articles_search.best_match import Commits

    def locked(self: Commits) -> bool:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Commits, "seen", locked)
    params = {"q": common_word(archive), "sort": ""}
    response, queries = await search_page(make_datasette(archive), {"q": params["q"]})
    assert response.status_code == 200
    assert response.json()["rows"] == as_written(archive, params)
    assert [RANKED_IN_HALVES in sql for sql in queries if sql.startswith("with best")] == [True, False]
