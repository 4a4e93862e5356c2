"""`open_db()`, which every writer and reader uses: a connection with the archive's migrations
(the archive/migrations package) applied.

Tables (documented column by column in metadata.yml, which Datasette shows, and docs/database.md):

- ``sources``              the configured sources, refreshed from the sources file at each crawl
- ``articles``             one row per article, keyed by its canonical URL, with ``articles_fts`` over it
- ``article_revisions``    earlier texts of articles whose publisher changed them
- ``url_aliases``          other URLs of a stored article (redirects, AMP pages, canonical links, copies
                           on its own site)
- ``not_articles``         pages fetched as articles that were not, and when to look at them again
- ``site_lines``, ``site_pages``  each site's body lines counted over its articles (its template)
- ``raw_page_refs``        where each article's fetched page is kept, for re-extraction: a record in
                           the WARC files beside the archive (archive/warc_files.py)
- ``raw_pages``            the fetched HTML of articles stored before the WARC files (`move-raw`)
- ``article_signatures``, ``signature_bands``  MinHash signatures and their LSH buckets (near-duplicates)
- ``crawl_runs``, ``failures``  one row per crawl of a source with its counts; every failure, with its run
- ``http_validators``      ETag / Last-Modified of feeds, sitemaps and listings, for conditional requests
- ``source_polling``       adaptive polling's interval per source
- ``run_signals``, ``source_health``, ``health_changes``  source health: each run's signals, each source's
  verdict and every change of it (``unhealthy_sources`` is a view of the verdicts that are not ok)
- ``daemon``, ``daemon_jobs``  the daemon's heartbeat and each source's next run
- ``articles_per_day``, ``articles_per_publication_day``, ``articles_per_author``, ``crawl_runs_per_day``,
  ``article_cluster_sizes``  summary tables kept exact by triggers, so Datasette's charts and facets
  never count a year of rows (archive/summary_triggers.py)
- ``article_facet_values``  each article's faceted columns alone, kept by triggers: the facets of a
                           search-filtered articles page count the matches there (plugins/articles_search/search.py)
- ``article_facet_changes``  the ids of article_facet_values rows rewritten or deleted, the last 100,000,
                           so a copy of its columns in memory can follow it (archive/facet_columns.py)
- ``article_clusters``     (a view) each article with its near-duplicate cluster and its size
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from archive.migrations import migrations
from archive.sqlite import sqlite3
from archive.transactions import immediate_transaction

if TYPE_CHECKING:
    import os

BUSY_TIMEOUT_SECONDS = 30


def connect(path: str | os.PathLike[str]) -> Database:
    """A connection with the settings every process needs: WAL and a generous busy timeout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS)
    db = Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    db.enable_wal()  # readers (Datasette) never block the writer, nor it them
    db.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process in WAL mode
    db.execute("PRAGMA foreign_keys = ON")
    return db


def open_db(path: str | os.PathLike[str]) -> Database:
    """Open (creating if needed) the archive at `path` with every migration applied."""
    db = connect(path)
    if migrations.pending(db):
        # Several crawl processes may start at once; IMMEDIATE makes them migrate one at a time,
        # and sqlite-utils nests each migration's own transaction as a savepoint.
        with immediate_transaction(db):
            migrations.apply(db)
    return db
