"""The archive's first migrations: its core tables and how they grew, in the order they were written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations
from archive.summary_triggers import counting_triggers

if TYPE_CHECKING:
    from sqlite_utils import Database


@migrations()
def create_core_tables(db: Database) -> None:
    db.table("sources").create(
        {
            "name": str,
            "enabled": int,
            "schedule": str,
            "feeds": str,
            "sitemaps": str,
            "start_pages": str,
            "allowed_domains": str,
            "updated_at": str,
        },
        pk="name",
        if_not_exists=True,
    )
    db.table("articles").create(
        {
            "url": str,
            "source": str,
            "title": str,
            "authors": str,
            "published_at": str,
            "modified_at": str,
            "language": str,
            "sitename": str,
            "description": str,
            "categories": str,
            "tags": str,
            "image": str,
            "text": str,
            "markdown": str,
            "word_count": int,
            "body_hash": str,
            "discovered_via": str,
            "fetched_at": str,
            "first_seen_at": str,
            "last_seen_at": str,
            "updated_at": str,
            "provenance": str,
        },
        pk="url",
        not_null={"source", "first_seen_at", "last_seen_at"},
        if_not_exists=True,
    )
    db.table("url_aliases").create(
        {"alias": str, "url": str, "reason": str, "source": str, "first_seen_at": str},
        pk="alias",
        foreign_keys=[("url", "articles", "url")],
        if_not_exists=True,
    )
    db.table("raw_pages").create(
        {
            "url": str,
            "fetched_at": str,
            "http_status": int,
            "content_type": str,
            "size": int,
            "html_zlib": bytes,
        },
        pk="url",
        foreign_keys=[("url", "articles", "url")],
        if_not_exists=True,
    )
    db.table("crawl_runs").create(
        {
            "id": int,
            "source": str,
            "started_at": str,
            "finished_at": str,
            "duration_s": float,
            "status": str,
            "finish_reason": str,
            "pid": int,
            "requests": int,
            "responses": int,
            "articles_new": int,
            "articles_updated": int,
            "articles_unchanged": int,
            "articles_duplicate": int,
            "not_articles": int,
            "skipped_stored": int,
            "failures": int,
            "log_file": str,
        },
        pk="id",
        not_null={"source", "started_at", "status"},
        if_not_exists=True,
    )
    db.table("failures").create(
        {
            "id": int,
            "run_id": int,
            "source": str,
            "url": str,
            "stage": str,
            "http_status": int,
            "reason": str,
            "occurred_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "crawl_runs", "id")],
        not_null={"stage", "reason", "occurred_at"},
        if_not_exists=True,
    )
    for table, columns in (
        ("articles", ["published_at"]),
        ("articles", ["source", "published_at"]),
        ("articles", ["language"]),
        ("articles", ["body_hash"]),
        ("articles", ["first_seen_at"]),
        ("url_aliases", ["url"]),
        ("crawl_runs", ["source", "started_at"]),
        ("failures", ["run_id"]),
        ("failures", ["occurred_at"]),
    ):
        db.table(table).create_index(columns, if_not_exists=True)


@migrations()
def add_articles_search(db: Database) -> None:
    # Triggers keep the index in step with every insert, update and delete, including
    # those a user makes by hand, so search is current while the crawler writes.
    if not db.table("articles_fts").exists():
        db.table("articles").enable_fts(
            ["title", "description", "text"], create_triggers=True, tokenize="porter unicode61"
        )


@migrations()
def track_changes_and_copies(db: Database) -> None:
    """Revisions of changed articles, near-duplicate clusters, take-downs and HTTP validators."""
    articles = db.table("articles")
    for column, kind in (("version", int), ("cluster_id", int), ("taken_down_at", str)):
        if column not in articles.columns_dict:
            articles.add_column(column, kind)
    articles.create_index(["cluster_id"], if_not_exists=True)
    db.table("article_revisions").create(
        {
            "id": int,
            "url": str,
            "version": int,
            "replaced_at": str,
            "changed": str,
            "title": str,
            "authors": str,
            "published_at": str,
            "modified_at": str,
            "text": str,
            "body_hash": str,
            "fetched_at": str,
        },
        pk="id",
        foreign_keys=[("url", "articles", "url")],
        not_null={"url", "replaced_at"},
        if_not_exists=True,
    )
    db.table("article_revisions").create_index(["url", "version"], if_not_exists=True)
    # MinHash signatures and their LSH band buckets: a persistent near-duplicate index that
    # answers "which stored articles look like this one?" with indexed lookups, never a scan.
    db.table("article_signatures").create(
        {"url": str, "signature": bytes},
        pk="url",
        foreign_keys=[("url", "articles", "url")],
        if_not_exists=True,
    )
    db.table("signature_bands").create({"band": int, "bucket": int, "url": str}, if_not_exists=True)
    # Only `bucket` is indexed: rows are found by bucket, and deleted by bucket and URL (every
    # index costs time on each insert, and inserts are the hot path here).
    db.table("signature_bands").create_index(["bucket"], if_not_exists=True)
    db.table("http_validators").create(
        {
            "url": str,
            "etag": str,
            "last_modified": str,
            "checked_at": str,
            "children": str,
        },
        pk="url",
        if_not_exists=True,
    )
    # Adaptive polling (daemon/polling.py): each adaptive source's current interval and why.
    db.table("source_polling").create(
        {"source": str, "interval_s": float, "reason": str, "decided_at": str},
        pk="source",
        if_not_exists=True,
    )
    runs = db.table("crawl_runs")
    for column in ("not_modified", "articles_revisited", "articles_taken_down"):
        if column not in runs.columns_dict:
            runs.add_column(column, int)
    # A cluster's original is its earliest article: published first, or seen first when undated.
    db.create_view(
        "article_clusters",
        """
        SELECT cluster_id, count(*) AS articles, count(DISTINCT source) AS sources,
               (SELECT a2.url FROM articles a2 WHERE a2.cluster_id = a.cluster_id
                ORDER BY coalesce(a2.published_at, a2.first_seen_at), a2.first_seen_at LIMIT 1) AS original_url,
               min(coalesce(published_at, first_seen_at)) AS first_published_at,
               group_concat(url, ' ') AS urls
        FROM articles a
        WHERE cluster_id IS NOT NULL
        GROUP BY cluster_id
        """,
        replace=True,
    )


# --- the daemon (scheduler.py run) ---------------------------------------------------------------


@migrations()
def add_daemon_tables(db: Database) -> None:
    # One row (id 1): the daemon's pid and heartbeat, so `status` and Datasette can tell
    # whether it is alive (running, and last_tick_at within a few tick_s).
    db.table("daemon").create(
        {
            "id": int,
            "pid": int,
            "host": str,
            "status": str,  # running | stopped
            "started_at": str,
            "last_tick_at": str,
            "tick_s": float,
            "stopped_at": str,
            "sources_file": str,
            "sources": int,  # enabled sources with a job
            "running": int,  # crawl processes going at the last tick
            "queued": int,  # sources due and waiting for a crawl process
        },
        pk="id",
        if_not_exists=True,
    )
    # Each scheduled source's next run, as the daemon's scheduler has it (jitter included).
    db.table("daemon_jobs").create(
        {"source": str, "schedule": str, "next_run_at": str, "updated_at": str},
        pk="source",
        if_not_exists=True,
    )
    # The daemon looks up runs still going, and a run's rows by the pid of its crawl process.
    db.table("crawl_runs").create_index(["status"], if_not_exists=True)
    db.table("crawl_runs").create_index(["pid"], if_not_exists=True)


# --- raw HTML compressed with zstd ---------------------------------------------------------------


@migrations()
def compress_raw_html_with_zstd(db: Database) -> None:
    # New pages are stored zstd-compressed (a third of zlib's CPU, 12% fewer bytes). Rows written before
    # keep html_zlib and are read as they are (raw_html.raw_html); nothing is rewritten.
    if "html_zstd" not in db.table("raw_pages").columns_dict:
        db.table("raw_pages").add_column("html_zstd", bytes)


# --- the near-duplicate index as a log-structured merge tree --------------------------------------


@migrations()
def index_near_duplicates_in_levels(db: Database) -> None:
    # Band rows become (level, bucket, signature id) in one clustered key (see archive/near_duplicates.py):
    # a URL in each of an article's 37 band rows made the index five times larger, and one
    # random-keyed index made each insert dirty a page of it. Existing rows are rebuilt in the last
    # level, written in key order.
    db.execute("DROP TABLE IF EXISTS signature_bands")
    db.execute("ALTER TABLE article_signatures RENAME TO article_signatures_by_url")
    db.execute(
        """
        CREATE TABLE article_signatures (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE REFERENCES articles(url),
            signature BLOB NOT NULL
        )
        """
    )
    db.execute(
        "INSERT INTO article_signatures (url, signature)"
        " SELECT url, signature FROM article_signatures_by_url WHERE signature IS NOT NULL ORDER BY rowid"
    )
    db.execute("DROP TABLE article_signatures_by_url")
    db.execute(
        """
        CREATE TABLE signature_bands (
            level INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            signature_id INTEGER NOT NULL,
            PRIMARY KEY (level, bucket, signature_id)
        ) WITHOUT ROWID
        """
    )
    _rebuild_signature_bands(db)


def _rebuild_signature_bands(db: Database) -> None:
    """Every article's band rows again, from its stored signature, into the index's last level."""
    from archive.band_rows import band_rows_in_order
    from archive.near_duplicates import LEVELS

    db.execute("DELETE FROM signature_bands")
    (count,) = db.execute("SELECT count(*) FROM article_signatures").fetchone()
    signatures = db.conn.execute("SELECT id, signature FROM article_signatures")
    db.conn.executemany(  # in key order: appends (band_rows.py says why SQLite does not sort them)
        f"INSERT INTO signature_bands (level, bucket, signature_id) VALUES ({LEVELS[-1]}, ?, ?)",
        band_rows_in_order(signatures, count),
    )


@migrations()
def resign_bodies_with_numpy_minhash(db: Database) -> None:
    # near_duplicates.signature() no longer uses datasketch's SHA-1 MinHash (2.5 times slower):
    # stored signatures are computed again from the stored bodies, so old and new compare.
    from archive.near_duplicates import signature

    last = 0
    while rows := db.execute(
        "SELECT s.id, a.text FROM article_signatures s JOIN articles a ON a.url = s.url"
        " WHERE s.id > ? ORDER BY s.id LIMIT 1000",
        [last],
    ).fetchall():
        db.conn.executemany(
            "UPDATE article_signatures SET signature = ? WHERE id = ?",
            [(signature(text), sig_id) for sig_id, text in rows if text],
        )
        db.conn.executemany(
            "DELETE FROM article_signatures WHERE id = ?", [(sig_id,) for sig_id, text in rows if not text]
        )
        last = rows[-1][0]
    _rebuild_signature_bands(db)


# --- raw HTML kept as the gzip bytes it came in ---------------------------------------------------


@migrations()
def keep_raw_html_as_sent(db: Database) -> None:
    # A page that came gzip-compressed is stored as those bytes (html_gzip) with the charset it was
    # decoded with: no CPU spent compressing it again. Other pages stay zstd (archive/raw_html.py).
    columns = db.table("raw_pages").columns_dict
    if "html_gzip" not in columns:
        db.table("raw_pages").add_column("html_gzip", bytes)
    if "charset" not in columns:
        db.table("raw_pages").add_column("charset", str)


# --- ad-hoc sources, and a count for every page a run fetched ------------------------------------


@migrations()
def mark_adhoc_sources_and_count_every_page(db: Database) -> None:
    # `crawl --url` sources are marked as such: no schedule, never enabled (rows written before
    # this said "enabled, every 1h", which no daemon ever ran).
    if "adhoc" not in db.table("sources").columns_dict:
        db.table("sources").add_column("adhoc", int, not_null_default=0)
    db.execute("UPDATE sources SET adhoc = 1, enabled = 0, schedule = NULL WHERE name LIKE 'adhoc\\_%' ESCAPE '\\'")
    # Every page a run fetched lands in exactly one count: the article outcomes and not_modified
    # were there; these are the pages read to find articles (feeds, sitemaps, listings, robots.txt),
    # answers retried or redirected (the page counts where it lands), and error answers or article
    # pages that could not be used (not HTML, extraction failed).
    runs = db.table("crawl_runs")
    for column in ("pages_discovery", "pages_retried_or_redirected", "pages_failed"):
        if column not in runs.columns_dict:
            runs.add_column(column, int)


# --- reads that stay fast at a year of news (a million articles) ----------------------------------

# Datasette's pages, the canned queries and the dashboard read these summaries instead of counting
# the whole articles or crawl_runs table; triggers keep them exact on every insert, update and delete,
# whoever writes (the crawler, reextract, a hand edit).
PUBLISHED_DAY = "date(coalesce({row}.published_at, {row}.first_seen_at))"


@migrations()
def keep_reads_fast_at_a_year(db: Database) -> None:
    # The full-text index is rewritten only when indexed text changes: the trigger sqlite-utils made
    # fired on every UPDATE, and every re-crawl moves last_seen_at (1.05 s per 1,000 re-seen articles
    # against 15 ms at 1M articles).
    db.execute("DROP TRIGGER IF EXISTS articles_au")
    db.execute(
        """
        CREATE TRIGGER articles_au AFTER UPDATE OF title, description, text ON articles BEGIN
          INSERT INTO articles_fts (articles_fts, rowid, title, description, text)
            VALUES ('delete', old.rowid, old.title, old.description, old.text);
          INSERT INTO articles_fts (rowid, title, description, text)
            VALUES (new.rowid, new.title, new.description, new.text);
        END
        """
    )
    # Sorts and filters on "published, or first seen when undated" (the canned queries' order) read an
    # index on that very expression instead of the whole table; the same for crawl_runs by start.
    for name, on in (
        ("idx_articles_published_or_seen", "articles (coalesce(published_at, first_seen_at))"),
        ("idx_articles_source_published_or_seen", "articles (source, coalesce(published_at, first_seen_at))"),
        ("idx_articles_published_day", "articles (date(coalesce(published_at, first_seen_at)))"),
        ("idx_articles_source_first_seen_at", "articles (source, first_seen_at)"),
        ("idx_crawl_runs_started_at", "crawl_runs (started_at)"),
    ):
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")
    # Articles per day (published, or first seen when undated), source and language.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS articles_per_day (
            day TEXT NOT NULL, source TEXT NOT NULL, language TEXT NOT NULL, articles INTEGER NOT NULL,
            PRIMARY KEY (day, source, language)
        ) WITHOUT ROWID
        """
    )
    day = "coalesce(" + PUBLISHED_DAY + ", '')"
    counting_triggers(
        db,
        table="articles",
        summary="articles_per_day",
        key={"day": day, "source": "{row}.source", "language": "coalesce({row}.language, '')"},
        adds={"articles": "1"},
    )
    db.execute("DELETE FROM articles_per_day")
    db.execute(
        f"INSERT INTO articles_per_day SELECT {day.format(row='articles')}, source, coalesce(language, ''),"
        " count(*) FROM articles GROUP BY 1, 2, 3"
    )
    # Crawl runs per day (of their start), source and status, with the time the finished ones took.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS crawl_runs_per_day (
            day TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, runs INTEGER NOT NULL,
            timed_runs INTEGER NOT NULL, duration_s REAL NOT NULL,
            PRIMARY KEY (day, source, status)
        ) WITHOUT ROWID
        """
    )
    run_key = {
        "day": "coalesce(date({row}.started_at), '')",
        "source": "{row}.source",
        "status": "{row}.status",
    }
    counting_triggers(
        db,
        table="crawl_runs",
        summary="crawl_runs_per_day",
        key=run_key,
        adds={
            "runs": "1",
            "timed_runs": "({row}.duration_s IS NOT NULL)",
            "duration_s": "coalesce({row}.duration_s, 0)",
        },
    )
    db.execute("DELETE FROM crawl_runs_per_day")
    db.execute(
        "INSERT INTO crawl_runs_per_day SELECT coalesce(date(started_at), ''), source, status, count(*),"
        " count(duration_s), coalesce(sum(duration_s), 0) FROM crawl_runs GROUP BY 1, 2, 3"
    )
    # The size of every near-duplicate cluster: every article has a cluster (most of them alone in
    # it), so the clusters worth showing, those of two or more, are found here by size.
    db.execute(
        "CREATE TABLE IF NOT EXISTS article_cluster_sizes (cluster_id INTEGER PRIMARY KEY, articles INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS idx_article_cluster_sizes_articles ON article_cluster_sizes (articles)")
    db.execute("DROP TRIGGER IF EXISTS article_cluster_sizes_ai")
    db.execute("DROP TRIGGER IF EXISTS article_cluster_sizes_ad")
    db.execute("DROP TRIGGER IF EXISTS article_cluster_sizes_au")
    grow = (
        "INSERT INTO article_cluster_sizes (cluster_id, articles) SELECT new.cluster_id, 1"
        " WHERE new.cluster_id IS NOT NULL ON CONFLICT (cluster_id) DO UPDATE SET articles = articles + 1;"
    )
    shrink = (
        "UPDATE article_cluster_sizes SET articles = articles - 1 WHERE cluster_id = old.cluster_id;"
        " DELETE FROM article_cluster_sizes WHERE cluster_id = old.cluster_id AND articles <= 0;"
    )
    db.execute(f"CREATE TRIGGER article_cluster_sizes_ai AFTER INSERT ON articles BEGIN {grow} END")
    db.execute(f"CREATE TRIGGER article_cluster_sizes_ad AFTER DELETE ON articles BEGIN {shrink} END")
    db.execute(
        "CREATE TRIGGER article_cluster_sizes_au AFTER UPDATE OF cluster_id ON articles"
        f" WHEN old.cluster_id IS NOT new.cluster_id BEGIN {shrink} {grow} END"
    )
    db.execute("DELETE FROM article_cluster_sizes")
    db.execute(
        "INSERT INTO article_cluster_sizes SELECT cluster_id, count(*) FROM articles"
        " WHERE cluster_id IS NOT NULL GROUP BY cluster_id"
    )
    # One row per cluster, as before; each figure is worked out for the rows shown, so a page of the
    # largest clusters reads those clusters' articles only (through the indexes on cluster_id).
    db.create_view(
        "article_clusters",
        """
        SELECT s.cluster_id, s.articles,
               (SELECT count(DISTINCT a.source) FROM articles a WHERE a.cluster_id = s.cluster_id) AS sources,
               (SELECT a.url FROM articles a WHERE a.cluster_id = s.cluster_id
                ORDER BY coalesce(a.published_at, a.first_seen_at), a.first_seen_at LIMIT 1) AS original_url,
               (SELECT min(coalesce(a.published_at, a.first_seen_at)) FROM articles a
                WHERE a.cluster_id = s.cluster_id) AS first_published_at,
               (SELECT group_concat(a.url, ' ') FROM articles a WHERE a.cluster_id = s.cluster_id) AS urls
        FROM article_cluster_sizes s
        """,
        replace=True,
    )


@migrations()
def count_articles_per_author_and_publication_day(db: Database) -> None:
    # How many articles name each author, and how many were published each day (dated ones only), kept
    # by triggers: the articles page's authors and published_at facets read them when no filter is
    # applied, instead of expanding every article's JSON list or dating every row (plugins/news_archive.py).
    db.execute(
        "CREATE TABLE IF NOT EXISTS articles_per_publication_day (day TEXT PRIMARY KEY, articles INTEGER NOT NULL)"
        " WITHOUT ROWID"
    )
    counting_triggers(
        db,
        table="articles",
        summary="articles_per_publication_day",
        key={"day": "coalesce(date({row}.published_at), '')"},
        adds={"articles": "1"},
    )
    db.execute("DELETE FROM articles_per_publication_day")
    db.execute(
        "INSERT INTO articles_per_publication_day SELECT coalesce(date(published_at), ''), count(*)"
        " FROM articles GROUP BY 1"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS articles_per_author (author TEXT PRIMARY KEY, articles INTEGER NOT NULL)"
        " WITHOUT ROWID"
    )
    # Each distinct name of an article's list counts once, as in Datasette's array facet.
    names = "SELECT DISTINCT value FROM json_each(CASE WHEN json_valid({row}.authors) THEN {row}.authors END)"
    names += " WHERE json_type(CASE WHEN json_valid({row}.authors) THEN {row}.authors END) = 'array'"
    add = (
        "INSERT INTO articles_per_author (author, articles) SELECT value, 1 FROM ("
        + names.format(row="new")
        + ") WHERE value IS NOT NULL ON CONFLICT (author) DO UPDATE SET articles = articles + 1;"
    )
    subtract = (
        "UPDATE articles_per_author SET articles = articles - 1 WHERE author IN (" + names.format(row="old") + ");"
        " DELETE FROM articles_per_author WHERE articles <= 0;"
    )
    for suffix, event, body in (
        ("ai", "INSERT", add),
        ("ad", "DELETE", subtract),
        ("au", "UPDATE OF authors", subtract + " " + add),
    ):
        db.execute(f"DROP TRIGGER IF EXISTS articles_per_author_{suffix}")
        db.execute(f"CREATE TRIGGER articles_per_author_{suffix} AFTER {event} ON articles BEGIN {body} END")
    db.execute("DELETE FROM articles_per_author")
    db.execute(
        "INSERT INTO articles_per_author SELECT value, count(*) FROM (SELECT DISTINCT articles.rowid, j.value"
        " FROM articles, json_each(CASE WHEN json_valid(articles.authors) THEN articles.authors END) j"
        " WHERE json_type(CASE WHEN json_valid(articles.authors) THEN articles.authors END) = 'array'"
        " AND j.value IS NOT NULL) GROUP BY value"
    )


@migrations()
def index_daily_counts_by_source_and_language(db: Database) -> None:
    # The articles page's source and language facets add up articles_per_day (320,000 rows at a
    # year): read in source or language order from a covering index, without sorting the table.
    db.execute("CREATE INDEX IF NOT EXISTS idx_articles_per_day_source ON articles_per_day (source, articles)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_articles_per_day_language ON articles_per_day (language, articles)")
    db.execute("ANALYZE articles_per_day")


@migrations()
def index_articles_by_source_language_authors(db: Database) -> None:
    # An articles page filtered by source counts its language and authors facets from this index
    # alone: the largest source's 41,000 articles (of a million) took 0.5 s read from the table,
    # and Datasette dropped both facets.
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_articles_source_language_authors ON articles (source, language, authors)"
    )


@migrations()
def index_url_aliases_by_first_seen(db: Database) -> None:
    # The url_aliases page is newest first: without an index it sorted 200,000 aliases (1M articles).
    db.execute("CREATE INDEX IF NOT EXISTS idx_url_aliases_first_seen_at ON url_aliases (first_seen_at)")
