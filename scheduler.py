"""The news archive's command line: crawl sources now, list them (the daemon comes next).

    python scheduler.py crawl NAME [NAME ...]     crawl sources from the sources file
    python scheduler.py crawl --all               crawl every enabled source
    python scheduler.py crawl --url URL           try a feed, sitemap or home page before adding it
    python scheduler.py list                      show the configured sources

`--sources PATH` and `--db PATH` point at another sources file or database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner import PROJECT_ROOT, CrawlRequest, project_settings, run_crawls
from sources import SourceConfigError, find_source, format_duration, load_sources

DEFAULT_SOURCES = PROJECT_ROOT / "sources.toml"
DEFAULT_DB = PROJECT_ROOT / "data" / "news.db"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scheduler.py", description="Scheduled news archive: crawl, list.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--sources", type=Path, default=DEFAULT_SOURCES, help="sources file (default: %(default)s)"
    )
    common.add_argument("--db", type=Path, default=DEFAULT_DB, help="SQLite database (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    crawl = commands.add_parser(
        "crawl",
        parents=[common],
        help="crawl sources now, in the foreground",
        description="Crawl sources now, in the foreground, and print a summary.",
    )
    crawl.add_argument("names", nargs="*", metavar="NAME", help="sources to crawl")
    crawl.add_argument("--all", action="store_true", help="crawl every enabled source")
    crawl.add_argument("--url", help="crawl one feed, sitemap or home page as an ad-hoc source")
    crawl.add_argument(
        "--allow-private", action="store_true", help="with --url: allow private and loopback addresses"
    )
    crawl.add_argument("--max-articles", type=int, help="with --url: stop after this many article pages")
    crawl.add_argument("--log-level", default="INFO", help="Scrapy log level (default: %(default)s)")
    crawl.add_argument(
        "-s",
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a Scrapy setting, as with scrapy crawl -s",
    )
    crawl.set_defaults(handler=cmd_crawl)

    listing = commands.add_parser("list", parents=[common], help="list the configured sources")
    listing.set_defaults(handler=cmd_list)
    return parser


def crawl_requests(args: argparse.Namespace) -> list[CrawlRequest]:
    chosen = sum(bool(x) for x in (args.names, args.all, args.url))
    if chosen != 1:
        raise SystemExit("crawl: give source names, --all, or --url URL (exactly one of them)")
    if args.url:
        return [CrawlRequest(url=args.url, allow_private=args.allow_private, max_articles=args.max_articles)]
    sources = load_sources(args.sources)
    if args.all:
        return [CrawlRequest(source=s.name) for s in sources if s.enabled]
    return [CrawlRequest(source=find_source(sources, name, args.sources).name) for name in args.names]


def cmd_crawl(args: argparse.Namespace) -> int:
    requests = crawl_requests(args)
    if not requests:
        print("no enabled sources to crawl", file=sys.stderr)
        return 0
    overrides: dict[str, str] = {"LOG_LEVEL": args.log_level}
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        overrides[name] = value
    first_run = _last_run_id(args.db)  # also creates or migrates the database before crawlers race to
    seconds = run_crawls(requests, project_settings(args.db, args.sources, overrides))
    return print_summary(args.db, first_run, seconds)


def _last_run_id(db_path: Path) -> int:
    from schema import open_db

    db = open_db(db_path)
    try:
        row = db.execute("SELECT coalesce(max(id), 0) FROM crawl_runs").fetchone()
        return int(row[0])
    finally:
        db.close()


def print_summary(db_path: Path, after_run_id: int, seconds: float) -> int:
    """Print one line per run started by this command; exit status 1 if any run failed."""
    from schema import open_db

    db = open_db(db_path)
    runs = list(db["crawl_runs"].rows_where("id > ?", [after_run_id], order_by="id"))
    failed = False
    for run in runs:
        failed |= run["status"] != "ok"
        print(
            f"{run['source']}: {run['status']} - {run['articles_new'] or 0} new, "
            f"{run['articles_updated'] or 0} updated, {run['articles_unchanged'] or 0} unchanged, "
            f"{run['articles_duplicate'] or 0} duplicates, "
            f"{run['not_articles'] or 0} not articles, {run['skipped_stored'] or 0} already stored, "
            f"{run['failures'] or 0} failures ({run['requests'] or 0} requests)"
        )
    total = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    print(f"{total} articles in {db_path}; took {seconds:.1f}s")
    db.close()
    return 1 if failed or not runs else 0


def cmd_list(args: argparse.Namespace) -> int:
    for source in load_sources(args.sources):
        seeds = len(source.seed_urls)
        state = "enabled" if source.enabled else "disabled"
        max_age = format_duration(source.max_age)
        print(f"{source.name:24} {state:8} {source.schedule:16} {seeds} seed URLs  max_age={max_age}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SourceConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
