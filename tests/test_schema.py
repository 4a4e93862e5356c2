"""The schema: migrations are idempotent, WAL is on, search follows writes, indexes exist."""

from __future__ import annotations

from pathlib import Path

from archive.schema import migrations, open_db
from archive.sqlite import sqlite3


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    open_db(path).close()
    db = open_db(path)  # a second open applies nothing new
    applied = [row["name"] for row in db["_sqlite_migrations"].rows]
    assert applied == [m.name for m in migrations._migrations]
    assert len(applied) == len(set(applied))
    assert {"articles", "url_aliases", "raw_pages", "crawl_runs", "failures", "sources"} <= set(db.table_names())


def test_wal_and_busy_timeout_are_set(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    assert db.journal_mode == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_search_index_follows_inserts_updates_and_deletes(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    row = {
        "url": "https://a.example/x",
        "source": "a",
        "title": "Lighthouse keeper retires",
        "text": "After forty years the keeper hands over the lamp.",
        "first_seen_at": "t",
        "last_seen_at": "t",
    }
    db["articles"].insert(row)

    def matches(term: str) -> int:
        return db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", [term]).fetchone()[0]

    assert matches("lighthouse") == 1
    assert matches("keepers") == 1  # porter stemming
    db["articles"].update("https://a.example/x", {"title": "Harbour master retires"})
    assert matches("lighthouse") == 0
    assert matches("harbour") == 1
    db["articles"].delete("https://a.example/x")
    assert matches("harbour") == 0


def test_indexes_for_what_datasette_users_sort_and_filter_by(tmp_path: Path) -> None:
    db = open_db(tmp_path / "news.db")
    indexed = {tuple(index.columns) for index in db["articles"].indexes}
    assert {("published_at",), ("source", "published_at"), ("language",), ("body_hash",)} <= indexed


def test_a_reader_is_not_blocked_by_an_open_write_transaction(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    writer = open_db(path)
    writer.conn.execute("BEGIN IMMEDIATE")
    writer.conn.execute("INSERT INTO sources (name) VALUES ('pending')")
    reader = sqlite3.connect(path, timeout=0.1)
    assert reader.execute("SELECT count(*) FROM articles").fetchone() == (0,)
    writer.conn.rollback()
