"""Per-site line counts, from which a site's chrome is learned (archive/site_chrome.py, #19)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations

if TYPE_CHECKING:
    from sqlite_utils import Database


@migrations()
def count_body_lines_per_site(db: Database) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS site_pages (site TEXT PRIMARY KEY, pages INTEGER NOT NULL)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS site_lines (site TEXT NOT NULL, line_key INTEGER NOT NULL, "
        "weight REAL NOT NULL, at_page INTEGER NOT NULL, PRIMARY KEY (site, line_key)) WITHOUT ROWID"
    )
