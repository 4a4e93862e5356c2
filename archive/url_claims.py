"""The article URLs a crawl process has requested and not written yet, kept on disk.

Two crawlers (sources) of one process that find the same article fetch it once: the first one
claims its URL, the other sees the claim; once the article is written the archive itself answers.
A sitemap queues all its URLs at once, so at the start of a backfill every URL it lists is
claimed: as a Python set that was some 160 bytes per URL, 8 MB at 50,000 and growing with the
sitemaps. Like the requests waiting in Scrapy's disk queue, the claims wait on disk: a private
SQLite file, which keeps a bounded page cache in memory (SQLite's default, 2 MB). Not SQLite's own
temporary database (`connect("")`): the SQLite the project installs (archive/sqlite.py) is built
to keep temporary databases in memory. The file is unlinked as soon as it is open, so it goes
when the connection closes or the process dies, however it dies.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from archive.sqlite import sqlite3

if TYPE_CHECKING:
    from collections.abc import Iterable


class ClaimedUrls:
    def __init__(self) -> None:
        fd, path = tempfile.mkstemp(prefix="news-claimed-urls-", suffix=".db")
        os.close(fd)
        try:
            # Autocommit and no journal: nothing to recover, and no second file to leave behind.
            self.conn = sqlite3.connect(path, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode = OFF")
            self.conn.execute("PRAGMA synchronous = OFF")
        finally:
            Path(path).unlink()  # the open connection keeps the file until it closes
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
