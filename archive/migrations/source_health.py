"""Source health (archive/health.py): each run's signals, each source's verdict, and the verdict changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations

if TYPE_CHECKING:
    from sqlite_utils import Database


@migrations()
def add_source_health(db: Database) -> None:
    runs = db.table("crawl_runs")
    # Challenge pages served in place of articles, and requests robots.txt refused (run counts).
    for column in ("pages_challenge", "robots_refused"):
        if column not in runs.columns_dict:
            runs.add_column(column, int)
    # One row per ended run of a daemon's source, written when the daemon learns the run ended; the
    # verdict reads a source's last rows through (source, run_id), never the articles of old runs.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS run_signals (
            run_id INTEGER PRIMARY KEY REFERENCES crawl_runs(id),
            source TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            finish_reason TEXT,
            articles_new INTEGER NOT NULL,
            articles_copied INTEGER NOT NULL,
            pages_fetched INTEGER NOT NULL,
            article_pages INTEGER NOT NULL,
            skipped_stored INTEGER NOT NULL,
            not_modified INTEGER NOT NULL,
            failed_pages INTEGER NOT NULL,
            not_article_share REAL,
            median_words REAL,
            no_title_share REAL,
            no_date_share REAL,
            no_author_share REAL,
            chrome_share REAL,
            repeat_share REAL,
            same_title_share REAL,
            disagree_share REAL,
            ok_share REAL,
            not_modified_share REAL,
            blocked_share REAL,
            server_error_share REAL,
            timeout_share REAL,
            robots_share REAL,
            blocked_answers INTEGER NOT NULL,
            challenge_pages INTEGER NOT NULL,
            hours_since_new_article REAL,
            sample_articles TEXT,
            sample_failures TEXT,
            top_failure TEXT,
            verdict TEXT
        )
        """
    )
    db.execute("CREATE INDEX IF NOT EXISTS idx_run_signals_source_run ON run_signals (source, run_id)")
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS source_health (
            source TEXT PRIMARY KEY,
            verdict TEXT NOT NULL,
            reason TEXT NOT NULL,
            evidence TEXT,
            since TEXT NOT NULL,
            judged_at TEXT NOT NULL,
            run_id INTEGER
        )
        """
    )
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS health_changes (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            verdict TEXT NOT NULL,
            previous TEXT,
            reason TEXT NOT NULL,
            evidence TEXT,
            changed_at TEXT NOT NULL,
            run_id INTEGER
        )
        """
    )
    db.execute("CREATE INDEX IF NOT EXISTS idx_health_changes_changed_at ON health_changes (changed_at)")
    # The sources that need a look, worst first.
    db.create_view(
        "unhealthy_sources",
        """
        SELECT source, verdict, reason, evidence, since, judged_at, run_id FROM source_health
        WHERE verdict != 'ok'
        ORDER BY CASE verdict WHEN 'failing' THEN 0 WHEN 'blocked' THEN 1 WHEN 'degraded' THEN 2 ELSE 3 END, since
        """,
        replace=True,
    )
