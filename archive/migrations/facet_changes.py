"""A log of the article_facet_values rows that changed or went, for readers that keep a copy (issue #25).

The Datasette plugin counts a search's facets against the faceted columns held in memory
(archive/facet_columns.py), read once from ``article_facet_values`` and then kept in step. New
rows it finds by id (above the highest it read); a row rewritten (an article's source, language,
publication time or authors changed) or deleted leaves no such trace, so a trigger logs its id
here. Every write of the table is a delete first (search_facets.py: an article's row is deleted and
inserted again), so one trigger on delete sees both. The log keeps its last ``KEPT`` entries: a
reader further behind than that reads the table again whole (it cannot tell what it missed).
AUTOINCREMENT keeps sequence numbers rising even if the log is ever emptied, so "after the last
one I read" always means what it says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations

if TYPE_CHECKING:
    from sqlite_utils import Database

# About 16 bytes an entry; a year of revisions is some tens of thousands.
KEPT = 100_000


@migrations()
def add_article_facet_changes(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS article_facet_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id INTEGER NOT NULL  -- the article_facet_values row (the article's rowid) that changed or went
        )
        """
    )
    db.execute("DROP TRIGGER IF EXISTS article_facet_changes_log")
    db.execute(
        "CREATE TRIGGER article_facet_changes_log AFTER DELETE ON article_facet_values"
        " BEGIN INSERT INTO article_facet_changes (id) VALUES (old.id); END"
    )
    db.execute("DROP TRIGGER IF EXISTS article_facet_changes_prune")
    db.execute(
        "CREATE TRIGGER article_facet_changes_prune AFTER INSERT ON article_facet_changes"
        f" BEGIN DELETE FROM article_facet_changes WHERE seq <= new.seq - {KEPT}; END"
    )
