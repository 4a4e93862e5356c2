"""The faceted columns of every article, narrow and keyed by the article's rowid (issue #25).

The articles page filtered by a full-text search counts its four facets (source, language,
authors, publication day) over the matching articles. Read from `articles`, every match costs a
seek into a table whose rows hold whole texts (two rows a page): a word in 42 % of a million
articles is 420,000 scattered pages, seconds. ``article_facet_values`` holds only those four
values (about 60 bytes a row; the day already as date() gives it, each author once), so the
full-text index's matches, which come in rowid order, join it page after page: the plugin
(plugins/articles_search/search.py) counts a search's facets there. Triggers keep it equal to `articles` on
every insert, update and delete, by hand included. Its ids are the articles' rowids, as the
full-text index's are: both assume rowids that stay (no VACUUM renumbering a table without an
INTEGER PRIMARY KEY, which would break the full-text index first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations

if TYPE_CHECKING:
    from sqlite_utils import Database

COLUMNS = ("source", "language", "published_at", "authors")


def values_of(row: str) -> str:
    """The table's values for an article written as `row` (new, or the articles table itself)."""
    authors = (
        f"CASE WHEN json_type(CASE WHEN json_valid({row}.authors) THEN {row}.authors END) = 'array'"
        f" THEN {row}.authors END"
    )
    # Each name once, as the authors facet counts them: json_each then counts no article twice.
    distinct = f"(SELECT json_group_array(DISTINCT value) FROM json_each({authors}) WHERE type = 'text')"
    # The day as the published_at facet groups it (date() also turns an offset into UTC).
    return f"{row}.rowid, {row}.source, {row}.language, date({row}.published_at), {distinct}"


@migrations()
def add_article_facet_values(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS article_facet_values (
            id INTEGER PRIMARY KEY,  -- the article's rowid (articles_fts uses the same)
            source TEXT,
            language TEXT,
            published_day TEXT,
            authors TEXT  -- the distinct names of the article's author list, a JSON array
        )
        """
    )
    columns = ", ".join(COLUMNS)
    # Delete, then insert: not INSERT OR REPLACE, whose conflict clause an outer statement with its
    # own (the store's upsert, INSERT ... ON CONFLICT DO UPDATE) overrides, and the update failed.
    write = (
        "DELETE FROM article_facet_values WHERE id = new.rowid;"
        f" INSERT INTO article_facet_values VALUES ({values_of('new')});"
    )
    for name, body in (
        ("ai", f"AFTER INSERT ON articles BEGIN {write} END"),
        ("ad", "AFTER DELETE ON articles BEGIN DELETE FROM article_facet_values WHERE id = old.rowid; END"),
        ("au", f"AFTER UPDATE OF {columns} ON articles BEGIN {write} END"),
    ):
        db.execute(f"DROP TRIGGER IF EXISTS article_facet_values_{name}")
        db.execute(f"CREATE TRIGGER article_facet_values_{name} {body}")
    db.execute("DELETE FROM article_facet_values")
    db.execute(f"INSERT INTO article_facet_values SELECT {values_of('articles')} FROM articles ORDER BY rowid")
