"""The article URLs a crawl process has requested and not written yet, kept on disk.

Two crawlers (sources) of one process that find the same article fetch it once: the first one
claims its URL, the other sees the claim; once the article is written the archive itself answers.
A sitemap queues all its URLs at once, so at the start of a backfill every URL it lists is
claimed: as a Python set that was some 160 bytes per URL, 8 MB at 50,000 and growing with the
sitemaps. Like the requests waiting in Scrapy's disk queue, the claims wait on disk: a private
temporary SQLite database, which keeps a bounded page cache in memory (SQLite's default, 2 MB)
and whose file SQLite deletes on close, or the system when the process dies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.sqlite import sqlite3

if TYPE_CHECKING:
    from collections.abc import Iterable


class ClaimedUrls:
    def __init__(self) -> None:
        # "" = a temporary on-disk database of this connection alone; autocommit, nothing to recover.
        self.conn = sqlite3.connect("", isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("CREATE TABLE claimed (url TEXT PRIMARY KEY) WITHOUT ROWID")

    def __contains__(self, url: object) -> bool:
        return self.conn.execute("SELECT 1 FROM claimed WHERE url = ?", [url]).fetchone() is not None

    def __len__(self) -> int:
        return self.conn.execute("SELECT count(*) FROM claimed").fetchone()[0]

    def add(self, url: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO claimed (url) VALUES (?)", [url])

    def discard(self, urls: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM claimed WHERE url = ?", [(url,) for url in urls])

    def close(self) -> None:
        self.conn.close()
