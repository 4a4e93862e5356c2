"""The archive of a crawl process, as its crawlers reach it: the one place it is opened and installed.

Every crawler of a crawl process (one per source) shares one `Archive` per database file: its
connection, its pending batch and its claimed URLs. So writes from one process never wait on each
other, and two sources that reach the same article in one process fetch and store it once
(tests/test_url_claims.py). A shared crawl's worker installs its own archive instead (a
`RedisArchive`, through its shared round: distributed/worker.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from archive.store import Archive

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from archive.interfaces import ArticleLookup

# Crawlers are made one per source, but the process shares one Archive per database file (see
# above): nothing in Scrapy outlives a crawler but the process, hence a module-level map.
_PROCESS_ARCHIVES: dict[str, Archive] = {}

_INSTALLED = "news_archive"  # the crawler attribute holding what its components read
_SQLITE = "news_sqlite_archive"  # the crawler attribute holding its process's SQLite archive


def install_archive(crawler: Crawler, archive: ArticleLookup) -> None:
    """Make `archive` what the crawler's spider and middleware read (a worker's RedisArchive)."""
    setattr(crawler, _INSTALLED, archive)


def article_lookup(crawler: Crawler) -> ArticleLookup:
    """What the crawler's spider and middleware read: the installed archive, or the process's."""
    installed: ArticleLookup | None = getattr(crawler, _INSTALLED, None)
    return installed if installed is not None else crawl_archive(crawler)


def crawl_archive(crawler: Crawler) -> Archive:
    """The process's archive for the crawler's NEWS_DB_PATH, opened on first use.

    Kept on the crawler too: looked up for every item by several stages, resolving the path each
    time (lstat of every directory in it) cost 2% of the crawl process's CPU.
    """
    archive: Archive | None = getattr(crawler, _SQLITE, None)
    if archive is None:
        path = str(Path(crawler.settings.get("NEWS_DB_PATH")).resolve())
        if path not in _PROCESS_ARCHIVES:
            _PROCESS_ARCHIVES[path] = Archive.open(path)
        archive = _PROCESS_ARCHIVES[path]
        setattr(crawler, _SQLITE, archive)
    return archive
