"""`crawl`: crawl sources now, in the foreground, and the summary it and `push` print."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from commands.errors import EXIT_FAILED, EXIT_OK, UsageError
from config.sources import find_source, load_sources
from crawl.process import CrawlRequest, ProgressLine, project_settings, run_crawls
from crawl.urls import http_url_problem

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from archive.queries import Database


def crawl_requests(args: argparse.Namespace) -> list[CrawlRequest]:
    chosen = sum(bool(x) for x in (args.names, args.all, args.url))
    if chosen != 1:
        raise UsageError("crawl: give source names, --all, or --url URL (exactly one of them)")
    if args.url:
        if problem := http_url_problem(args.url):  # before the database exists or Scrapy starts
            raise UsageError(f"crawl --url {args.url!r}: {problem}")
        return [CrawlRequest(url=args.url, allow_private=args.allow_private, max_articles=args.max_articles)]
    sources = load_sources(args.sources)
    if args.all:
        return [CrawlRequest(source=s.name) for s in sources if s.enabled]
    return [CrawlRequest(source=find_source(sources, name, args.sources).name) for name in args.names]


def cmd_crawl(args: argparse.Namespace) -> int:
    requests = crawl_requests(args)
    if not requests:
        print("no enabled sources to crawl", file=sys.stderr)
        return EXIT_OK
    overrides: dict[str, str] = {"LOG_LEVEL": args.log_level}
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        overrides[name] = value
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    progress = ProgressLine(sys.stderr, rewrite=sys.stderr.isatty()) if show_progress else None
    first_run = latest_run_id(args.db)  # also creates or migrates the database before crawlers race to
    from spiders.news import NewsSpider

    settings = project_settings(args.db, args.sources, overrides)
    seconds = run_crawls(requests, settings, spider_class=NewsSpider, progress=progress)
    if progress:
        progress.finish()
    return print_summary(args.db, first_run, seconds)


def latest_run_id(db_path: Path) -> int:
    """The last run recorded before this command's; opening the archive creates or migrates it."""
    from archive.queries import latest_run_id as last_recorded
    from archive.schema import open_db

    db = open_db(db_path)
    try:
        return last_recorded(db)
    finally:
        db.close()


def print_summary(db_path: Path, after_run_id: int, seconds: float) -> int:
    """Print one line per run started by this command; EXIT_FAILED if any run failed or nothing
    came of it, EXIT_OK otherwise."""
    from archive.queries import article_count, runs_of_process
    from archive.schema import open_db

    db = open_db(db_path)
    # This process ran the crawls: a daemon's runs in the meantime are not ours to report.
    runs = runs_of_process(db, after_run_id, os.getpid())
    failed = False
    for run in runs:
        line, ok = summary_line(db, run)
        failed |= not ok
        print(line)
    total = article_count(db)
    print(f"{total} articles in {db_path}; took {seconds:.1f}s")
    db.close()
    return EXIT_FAILED if failed or not runs else EXIT_OK


# What a run can come to besides failures: a page stored, recognised or found unchanged.
OUTCOME_COLUMNS = (
    "articles_new",
    "articles_updated",
    "articles_unchanged",
    "articles_duplicate",
    "articles_revisited",
    "articles_taken_down",
    "not_articles",
    "skipped_stored",
    "not_modified",
)


def summary_line(db: Database, run: dict[str, Any]) -> tuple[str, bool]:
    """A run's line in the summary of `crawl` or `push`, and whether the run counts as ok.

    A run that finished but whose every request failed or was refused (an unreachable host, a
    private address, a robots.txt that cannot be read) is recorded as finished; it is no success:
    the line says "failed" with the first failure's reason, so the reason is not only in a log line.
    """
    counts = f"{run['failures'] or 0} failures ({run['requests'] or 0} requests)"
    fetched = f"{run['requests'] or 0} requests, {run.get('article_pages') or 0} article pages"
    if run["status"] == "ok" and run["failures"] and not any(run.get(c) for c in OUTCOME_COLUMNS):
        from archive.queries import first_failure_reason

        reason = first_failure_reason(db, run["id"]) or "no page came through"
        return f"{run['source']}: failed - nothing came of it: {reason}; {counts}", False
    line = (
        f"{run['source']}: {run['status']} - {run['articles_new'] or 0} new, "
        f"{run['articles_updated'] or 0} updated, {run['articles_duplicate'] or 0} duplicates, "
        f"{run['not_articles'] or 0} not articles, {run['skipped_stored'] or 0} already stored, "
        f"{run['failures'] or 0} failures ({fetched})"
    )
    return line, run["status"] == "ok"
