"""The faceted columns held in memory (archive/facet_columns.py) count a search's facets exactly as
SQL counts them over `articles`, and keep doing so while the archive grows and changes: new
articles, articles whose source, language, date or authors change, deleted ones, a deleted
article's rowid given again, and a copy further behind than the change log keeps."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from datasette.utils import escape_fts
from sqlite_utils import Database

from archive.facet_columns import FACETS, ColumnsUnavailable, FacetColumns
from archive.sqlite import sqlite3
from bench.archive_scale import ArchiveBuilder
from tests.test_query_plans import made_up_texts

MATCH = "escape_fts(:search)"  # as Datasette's search filter writes it
LIMIT = 1_000  # every value


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("facets") / "news.db"
    ArchiveBuilder(path, 800, run_hours=2, texts=made_up_texts()).build()
    return path


@pytest.fixture
def archive(built: Path, tmp_path: Path) -> Path:
    path = tmp_path / "news.db"
    shutil.copy(built, path)
    return path


def reader(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.create_function("escape_fts", 1, escape_fts)
    return conn


def writer(path: Path) -> sqlite3.Connection:
    """A plain connection (foreign keys off: these tests make up sources and orphan an article's
    aliases freely); the archive's triggers are what they exercise."""
    return sqlite3.connect(path)


def expected(
    path: Path, search: str, limit: int = LIMIT, where: str = "1", params: dict[str, Any] | None = None
) -> dict[str, list[tuple[Any, int]]]:
    """Each facet as SQL gives it, counted from `articles` itself (not from article_facet_values)."""
    conn = reader(path)
    rows = conn.execute(
        f"SELECT source, language, date(published_at), authors FROM articles WHERE {where} AND rowid IN"
        f" (SELECT rowid FROM articles_fts WHERE articles_fts MATCH {MATCH})",
        {**(params or {}), "search": search},
    ).fetchall()
    counts = {
        "source": Counter(row[0] for row in rows if row[0] is not None),
        "language": Counter(row[1] for row in rows if row[1] is not None),
        "published_day": Counter(row[2] for row in rows if row[2] is not None),
        "authors": Counter(name for row in rows for name in set(json.loads(row[3] or "[]"))),
    }
    return {facet: sorted(counts[facet].items(), key=lambda vc: (-vc[1], vc[0]))[:limit] for facet in FACETS}


def counted(columns: FacetColumns, path: Path, search: str, limit: int = LIMIT) -> dict[str, list[tuple[Any, int]]]:
    return columns.count(reader(path), MATCH, {"search": search}, limit)


@pytest.mark.parametrize("search", ["harbour", "harbour council", "ferry3", "nothing-matches-this"])
@pytest.mark.parametrize("limit", [LIMIT, 3])
def test_counts_as_sql_does(archive: Path, search: str, limit: int) -> None:
    found = counted(FacetColumns(), archive, search, limit)
    assert found == expected(archive, search, limit)
    if search == "harbour":
        assert all(found[facet] for facet in FACETS)


def test_follows_new_changed_and_deleted_articles(archive: Path) -> None:
    columns = FacetColumns()
    assert counted(columns, archive, "harbour") == expected(archive, "harbour")
    db = writer(archive)
    with db:
        highest = db.execute("SELECT max(rowid) FROM articles").fetchone()[0]
        db.execute(
            "INSERT INTO articles (url, source, title, text, authors, language, published_at, first_seen_at,"
            " last_seen_at) SELECT url || '?new', 'a_new_source', title, text, '[\"Someone New\"]', 'cy',"
            " '2020-02-02T10:00:00+00:00', first_seen_at, last_seen_at FROM articles WHERE rowid % 7 = 0"
        )
        db.execute(
            "UPDATE articles SET source = 'moved', authors = '[\"Other Person\", \"Other Person\"]',"
            " language = NULL, published_at = '2021-01-01T23:30:00-02:00' WHERE rowid % 5 = 0 AND rowid <= ?",
            [highest],
        )
        db.execute("DELETE FROM articles WHERE rowid % 11 = 0 AND rowid <= ?", [highest])
    assert counted(columns, archive, "harbour") == expected(archive, "harbour")
    assert "a_new_source" in dict(counted(columns, archive, "harbour")["source"])

    # New articles, then one of them rewritten before the next count: the log names an id above
    # every id read so far, and the new ones below it must still be read.
    with db:
        db.execute(
            "INSERT INTO articles (url, source, title, text, language, first_seen_at, last_seen_at)"
            " SELECT url || '?later', 'later_source', title, text, 'en', first_seen_at, last_seen_at"
            " FROM articles WHERE rowid % 9 = 0"
        )
        db.execute("UPDATE articles SET source = 'later_rewritten' WHERE rowid = (SELECT max(rowid) FROM articles)")
        db.execute("DELETE FROM articles WHERE source = 'later_source' AND rowid % 4 = 0")
    assert counted(columns, archive, "harbour") == expected(archive, "harbour")
    assert "later_source" in dict(counted(columns, archive, "harbour")["source"])

    # The highest article deleted, and its rowid given to the next one (SQLite reuses it).
    with db:
        top, url = db.execute("SELECT rowid, url FROM articles ORDER BY rowid DESC LIMIT 1").fetchone()
        db.execute("DELETE FROM articles WHERE rowid = ?", [top])
    assert counted(columns, archive, "harbour") == expected(archive, "harbour")
    with db:
        db.execute(
            "INSERT INTO articles (url, source, title, text, language, first_seen_at, last_seen_at)"
            " VALUES (?, 'reused', 'harbour news', 'harbour harbour', 'en', '2026-01-01', '2026-01-01')",
            [url + "#again"],
        )
        assert db.execute("SELECT max(rowid) FROM articles").fetchone()[0] == top
    assert ("reused", 1) in counted(columns, archive, "harbour")["source"]
    assert counted(columns, archive, "harbour") == expected(archive, "harbour")


def test_a_copy_behind_what_the_log_keeps_reads_everything_again(archive: Path) -> None:
    columns = FacetColumns()
    assert counted(columns, archive, "council") == expected(archive, "council")
    db = writer(archive)
    with db:
        db.execute("UPDATE articles SET source = 'first_move' WHERE rowid % 3 = 0")
        db.execute("UPDATE articles SET source = 'second_move' WHERE rowid % 4 = 0")
        # As the log's pruning trigger leaves it once more than it keeps have come: the oldest gone.
        (last,) = db.execute("SELECT max(seq) FROM article_facet_changes").fetchone()
        db.execute("DELETE FROM article_facet_changes WHERE seq < ?", [last])
    assert counted(columns, archive, "council") == expected(archive, "council")
    assert "first_move" in dict(counted(columns, archive, "council")["source"])


def test_the_change_log_keeps_its_last_entries(archive: Path) -> None:
    from archive.migrations.facet_changes import KEPT

    db = writer(archive)
    with db:
        db.execute("UPDATE articles SET language = 'xx' WHERE rowid % 2 = 0")
        (changed,) = db.execute("SELECT count(*) FROM articles WHERE rowid % 2 = 0").fetchone()
        assert db.execute("SELECT count(*) FROM article_facet_changes").fetchone()[0] == changed
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO article_facet_changes (id) SELECT 1 FROM n",
            [KEPT + 5],
        )
    (kept, first, last) = db.execute("SELECT count(*), min(seq), max(seq) FROM article_facet_changes").fetchone()
    assert (kept, first, last) == (KEPT, changed + 6, changed + KEPT + 5)


def test_a_new_article_alone_is_not_logged(archive: Path) -> None:
    """Inserts are found by id; the log holds only rewrites and deletes (it stays small)."""
    db = writer(archive)
    with db:
        db.execute(
            "INSERT INTO articles (url, source, title, text, first_seen_at, last_seen_at)"
            " VALUES ('https://example.org/new', 's', 't', 'x', '2026-01-01', '2026-01-01')"
        )
    assert db.execute("SELECT count(*) FROM article_facet_changes").fetchone()[0] == 0


def test_a_log_made_anew_is_noticed(archive: Path) -> None:
    """The log dropped and made again (its numbers start over): the copy cannot tell what changed
    from it, so it reads everything again."""
    from archive.migrations.facet_changes import add_article_facet_changes

    columns = FacetColumns()
    db = writer(archive)
    with db:
        db.execute("UPDATE articles SET source = 'once' WHERE rowid % 3 = 0")
    assert counted(columns, archive, "council") == expected(archive, "council")
    with db:
        db.execute("DROP TRIGGER article_facet_changes_log")
        db.execute("DROP TABLE article_facet_changes")
        db.execute("DELETE FROM sqlite_sequence WHERE name = 'article_facet_changes'")
    add_article_facet_changes(Database(archive))
    with db:
        db.execute("UPDATE articles SET source = 'again' WHERE rowid % 5 = 0")
    assert counted(columns, archive, "council") == expected(archive, "council")


def test_without_the_log_or_its_trigger_the_columns_say_so(archive: Path) -> None:
    columns = FacetColumns()
    db = writer(archive)
    with db:
        db.execute("DROP TRIGGER article_facet_changes_log")  # rewrites would go unseen
    with pytest.raises(ColumnsUnavailable):
        counted(columns, archive, "harbour")


def test_a_busy_copy_or_a_slow_search_gives_up_in_time(archive: Path) -> None:
    """Datasette's facet time limit bounds the wait for the columns (a first read of a big archive
    takes seconds) and the search itself; the plugin then counts in SQL."""
    columns = FacetColumns()
    conn = reader(archive)
    columns.follow(conn)
    with columns._lock, pytest.raises(ColumnsUnavailable):  # another count, or the first read, holds it
        columns.count(conn, MATCH, {"search": "harbour"}, LIMIT, wait_s=0.05)
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        columns.count(conn, MATCH, {"search": "harbour"}, LIMIT, search_time_s=0)
    assert columns.count(conn, MATCH, {"search": "harbour"}, LIMIT, wait_s=0.05) == expected(archive, "harbour")


def test_counts_with_facet_values_asked_as_sql_does(archive: Path) -> None:
    """A search with the facet filters a reader clicks (source, language, publication day): facets
    and totals as SQL gives them over `articles` with those WHERE clauses."""
    with writer(archive) as db:  # a second language, so that a language filter selects
        db.execute("UPDATE articles SET language = 'cy' WHERE rowid % 3 = 0")
    conn = reader(archive)
    source, day = conn.execute(
        "SELECT source, date(published_at) FROM articles WHERE published_at IS NOT NULL"
        " GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    columns = FacetColumns()
    for equal, where in (
        ({"source": source}, "source = :source"),
        ({"language": "en", "published_day": day}, "language = :language AND date(published_at) = :published_day"),
        ({"language": "cy"}, "language = :language"),
        ({"source": "no-such-source"}, "source = :source"),
        ({"language": None}, "language = NULL"),  # NULL equals nothing, as in SQL
    ):
        want = expected(archive, "harbour", where=where, params=equal)
        assert columns.count(conn, MATCH, {"search": "harbour"}, LIMIT, equal=equal) == want, equal
        (total,) = conn.execute(
            f"SELECT count(*) FROM articles WHERE {where} AND rowid IN"
            f" (SELECT rowid FROM articles_fts WHERE articles_fts MATCH {MATCH})",
            {**equal, "search": "harbour"},
        ).fetchone()
        assert columns.total(conn, MATCH, {"search": "harbour"}, equal=equal) == total, equal
        assert (total > 0) == (equal.get("source") == source or "published_day" in equal or "cy" in equal.values())


def test_a_copy_read_on_one_connection_is_followed_on_another(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Datasette reads the columns at start on a connection of its own and counts on its query
    threads' connections (rows as sqlite3.Row): the count follows the copy, it does not read it all
    again (3.4 s at a million articles, on the first search)."""
    columns = FacetColumns()
    columns.follow(sqlite3.connect(f"file:{archive}?mode=ro", uri=True))
    datasettes = reader(archive)
    datasettes.row_factory = sqlite3.Row

    def read_all_again() -> None:
        raise AssertionError("read everything again")

    monkeypatch.setattr(columns, "_clear_all", read_all_again)
    assert columns.count(datasettes, MATCH, {"search": "harbour"}, LIMIT) == expected(archive, "harbour")
