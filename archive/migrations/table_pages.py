"""Indexes for Datasette's pages of the tables that grow with the archive besides articles and
crawl_runs: their default order and their facets (issue #25).

At a year of news (200,000 URL aliases, 20,000 revisions with their whole texts) their pages
sorted or counted whole tables: the revisions page sorted every revision, texts included, by
replacement time (167 ms warm; with the file not in the page cache 0.7 s, and Datasette's 1 s limit
interrupted the page), and each facet of the aliases page read all 200,000 rows (60-90 ms each).
With these, the page reads its 101 rows in index order and each facet counts over an index alone;
the failures and not_articles pages' facets likewise (tens of thousands of rows at a year).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations

if TYPE_CHECKING:
    from sqlite_utils import Database


@migrations()
def index_table_pages(db: Database) -> None:
    for name, on in (
        ("idx_article_revisions_replaced_at", "article_revisions (replaced_at)"),  # the page's order
        ("idx_article_revisions_changed", "article_revisions (changed)"),  # its facet
        ("idx_url_aliases_reason", "url_aliases (reason)"),  # the page's two facets
        ("idx_url_aliases_source", "url_aliases (source)"),
        ("idx_not_articles_reason", "not_articles (reason)"),  # its facets (source: by source, checked_at)
        ("idx_failures_source", "failures (source)"),  # the failures page's three facets
        ("idx_failures_stage", "failures (stage)"),
        ("idx_failures_http_status", "failures (http_status)"),
    ):
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")
