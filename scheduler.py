"""The news archive's command line: the daemon, crawls now, and what they did.

    python scheduler.py run                       the daemon: every source on its schedule
    python scheduler.py status                    last and next run of each source; is the daemon alive?
    python scheduler.py crawl NAME [NAME ...]     crawl sources from the sources file, now
    python scheduler.py crawl --all               crawl every enabled source, now
    python scheduler.py crawl --url URL           try a feed, sitemap or home page before adding it
    python scheduler.py list                      show the configured sources
    python scheduler.py reextract [--source NAME] [--since DATE]   re-run extraction on stored HTML
    python scheduler.py run --redis URL           the daemon as the coordinator of a crawl shared by workers
    python scheduler.py worker [NAME...] --redis URL   a crawl worker: serves the rounds the coordinator queues
    python scheduler.py writer --redis URL        the one process storing the workers' items and run records
    python scheduler.py push NAME... --redis URL  one round now, without the daemon: queue it, wait for it

`--sources PATH` and `--db PATH` point at another sources file or database.

This module is the parser and the dispatch; each command's work is in commands/.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commands.errors import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, EXIT_USAGE, UsageError
from commands.raw import add_raw_commands
from commands.reextract import add_reextract_command
from config.durations import format_duration, parse_duration
from config.paths import PROJECT_ROOT
from config.sources import SourceConfigError
from crawl.extraction_pool import ExtractionPoolError
from daemon.config import DaemonConfig

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta

# The exit statuses are the command line's: scripts and tests read them here.
__all__ = ["EXIT_BROKEN_PIPE", "EXIT_FAILED", "EXIT_NOT_RUNNING", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

DEFAULT_SOURCES = PROJECT_ROOT / "sources.toml"
DEFAULT_DB = PROJECT_ROOT / "data" / "news.db"
# --log-level takes these names in any case ("warning" is WARNING).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def handler(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A command's function, imported when that command runs: `status` (run by monitoring every
    minute) then loads neither the crawler nor the daemon, a third of its time when imported whole."""

    def run(args: argparse.Namespace) -> int:
        command: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return command(args)

    return run


def duration(*, allow_zero: bool = False) -> Callable[[str], timedelta]:
    def parse(text: str) -> timedelta:
        try:
            return parse_duration(text, allow_zero=allow_zero)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_log_level_option(
    parser: argparse.ArgumentParser, flag: str = "--log-level", what: str = "log level", *, default: str = "INFO"
) -> None:
    """A log level option: any case is taken, an unknown level is a usage error before anything runs."""
    parser.add_argument(
        flag, type=str.upper, choices=LOG_LEVELS, default=default, help=f"{what}, in any case (default: %(default)s)"
    )


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scheduler.py", description="Scheduled news archive: run the daemon, crawl, status, list."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--sources", type=Path, default=DEFAULT_SOURCES, help="sources file (default: %(default)s)")
    common.add_argument("--db", type=Path, default=DEFAULT_DB, help="SQLite database (default: %(default)s)")
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_command(commands, common)
    add_crawl_command(commands, common)
    add_reextract_command(commands, common)
    add_raw_commands(commands, common)
    add_shared_commands(commands, common)
    add_archive_commands(commands, common)

    status = commands.add_parser(
        "status",
        parents=[common],
        help="each source's last and next run, recent failures; is the daemon alive?",
        description="Show whether the daemon is alive and, for each source, its last run and its "
        "counts, its next run and its failures in the last 24 hours. Exit status 0 when the daemon "
        f"is alive, {EXIT_NOT_RUNNING} when it is not.",
    )
    status.add_argument("--failures", type=int, default=10, help="recent problems to show (default: 10)")
    status.add_argument("--json", action="store_true", help="the same as one JSON document, for scripts and monitoring")
    status.set_defaults(handler=handler("commands.status", "cmd_status"))

    listing = commands.add_parser(
        "list",
        parents=[common],
        help="list the configured sources",
        description="List the sources in the sources file, checking it on the way.",
    )
    listing.set_defaults(handler=handler("commands.status", "cmd_list"))
    return parser


def add_run_command(commands: Any, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser(
        "run",
        parents=[common],
        help="run the daemon: every enabled source on its schedule",
        description="Run every enabled source on its schedule until SIGTERM or Ctrl-C. Crawls run in "
        "child processes; sources due together share one. SIGHUP re-reads the sources file. Logs go "
        "to stderr and to <db dir>/logs/daemon.log; each crawl's log to <db dir>/logs/<source>/.",
    )
    # The defaults are the daemon's own (DaemonConfig): written once, shown in --help as durations.
    defaults = DaemonConfig
    run.add_argument(
        "--max-parallel",
        type=positive_int,
        default=defaults.max_parallel,
        help=f"crawl processes at once (default: {defaults.max_parallel})",
    )
    run.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults.batch_size,
        help=f"sources per crawl process, at most (default: {defaults.batch_size})",
    )
    run.add_argument(
        "--batch-window",
        type=duration(allow_zero=True),
        default=defaults.batch_window,
        help="how long a due source waits for others to share its process "
        f"(default: {format_duration(defaults.batch_window)})",
    )
    run.add_argument(
        "--grace",
        type=duration(allow_zero=True),
        default=defaults.grace,
        help="at shutdown, how long running crawls get to finish before they are stopped "
        f"(default: {format_duration(defaults.grace)})",
    )
    run.add_argument(
        "--kill-wait",
        type=duration(allow_zero=True),
        default=defaults.kill_wait,
        help=f"how long a crawl told to stop gets before it is killed (default: {format_duration(defaults.kill_wait)})",
    )
    run.add_argument(
        "--tick",
        type=duration(),
        default=defaults.tick,
        help=f"heartbeat interval (default: {format_duration(defaults.tick)})",
    )
    run.add_argument(
        "--keep-logs",
        type=duration(),
        default=defaults.keep_logs,
        help=f"keep crawl logs this long (default: {format_duration(defaults.keep_logs)})",
    )
    add_log_level_option(run, what="the daemon's log level")
    add_log_level_option(run, "--crawl-log-level", "the crawls' Scrapy log level", default=defaults.crawl_log_level)
    add_redis_option(run)
    add_round_grace_option(run)
    run.set_defaults(handler=handler("commands.daemon", "cmd_run"))


def add_crawl_command(commands: Any, common: argparse.ArgumentParser) -> None:
    crawl = commands.add_parser(
        "crawl",
        parents=[common],
        help="crawl sources now, in the foreground",
        description="Crawl sources now, in the foreground, with a progress line, and print a summary.",
    )
    crawl.add_argument("names", nargs="*", metavar="NAME", help="sources to crawl")
    crawl.add_argument("--all", action="store_true", help="crawl every enabled source")
    crawl.add_argument("--url", help="crawl one feed, sitemap or home page as an ad-hoc source")
    crawl.add_argument(
        "--allow-private",
        action="store_true",
        help="with --url: allow private and loopback addresses (never link-local or cloud metadata ones)",
    )
    crawl.add_argument("--max-articles", type=int, help="with --url: stop after this many article pages")
    add_log_level_option(crawl, what="Scrapy log level")
    crawl.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress line on stderr (default: when stderr is a terminal)",
    )
    crawl.add_argument(
        "-s",
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a Scrapy setting, as with scrapy crawl -s",
    )
    crawl.set_defaults(handler=handler("commands.crawl", "cmd_crawl"))


def add_redis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        default=os.environ.get("NEWS_REDIS_URL", ""),
        metavar="URL",
        help="Redis of a crawl shared by workers on several machines (default: $NEWS_REDIS_URL; "
        "none: crawl on this machine)",
    )


def add_round_grace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--round-grace",
        type=duration(),
        default=DaemonConfig.round_grace,
        help="with --redis: a round ends once its queue has been empty and no worker has worked on it "
        f"for this long (default: {format_duration(DaemonConfig.round_grace)}, at least 3s)",
    )


def add_shared_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    shared = argparse.ArgumentParser(add_help=False)
    add_redis_option(shared)
    add_log_level_option(shared)
    worker = commands.add_parser(
        "worker",
        parents=[common, shared],
        help="crawl, as one of several workers, the rounds queued in Redis",
        description="Serve a crawl shared through Redis: take the requests of the rounds the "
        "coordinator (scheduler.py run --redis, or push) queues, fetch and extract them, and push "
        "items and run records to Redis for `scheduler.py writer`. Serves the named sources, or "
        "every enabled one in the sources file. Needs no database (--db is not used). "
        "Example: scheduler.py worker --redis redis://10.0.0.5:6379/0",
    )
    worker.add_argument("names", nargs="*", metavar="NAME", help="sources to serve (default: every enabled one)")
    worker.add_argument("--all", action="store_true", help="every enabled source (the default)")
    worker.add_argument(
        "--exit-when-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stop once no round has had work for this long (default: serve until stopped)",
    )
    worker.add_argument(
        "-s", "--set", action="append", default=[], metavar="NAME=VALUE", help="override a Scrapy setting"
    )
    worker.set_defaults(handler=handler("commands.shared", "cmd_worker"))
    writer = commands.add_parser(
        "writer",
        parents=[common, shared],
        help="store the items and run records the workers push to Redis (one writer per database)",
        description="Drain the workers' items from Redis through deduplication and storage into the "
        "database, with their run records (counts, failures). "
        "Example: scheduler.py writer --redis redis://10.0.0.5:6379/0 --db data/news.db",
    )
    writer.add_argument(
        "--batch-size", type=positive_int, help="items per commit (default: NEWS_STORE_BATCH_SIZE, as a crawl)"
    )
    writer.add_argument("--exit-when-idle", type=float, metavar="SECONDS", help="stop once no item came for this long")
    writer.set_defaults(handler=handler("commands.shared", "cmd_writer"))
    push = commands.add_parser(
        "push",
        parents=[common, shared],
        help="queue one round of sources for the workers now, and wait until it is crawled",
        description="Without the daemon: open a round of each source (its seeds to the shared queue, "
        "a crawl_runs row), wait until the workers have crawled it and the writer has stored it, and "
        "print a summary. Example: scheduler.py push --all --redis redis://10.0.0.5:6379/0",
    )
    push.add_argument("names", nargs="*", metavar="NAME", help="sources to crawl")
    push.add_argument("--all", action="store_true", help="every enabled source")
    add_round_grace_option(push)
    push.set_defaults(handler=handler("commands.shared", "cmd_push"))


class VersionAction(argparse.Action):
    """--version: the project's version, read from pyproject.toml only when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"{parser.prog} {project_version()}")  # on stdout, as argparse's own "version" action
        parser.exit()


@functools.cache
def project_version() -> str:
    """[project] version in pyproject.toml, the one place it is written."""
    import tomllib

    with open(PROJECT_ROOT / "pyproject.toml", "rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def add_archive_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """`export`, `search` and `add`; `status --json` is an option of `status`."""
    from commands.reextract import iso_date

    export = commands.add_parser(
        "export",
        parents=[common],
        help="write stored articles as JSON Lines or CSV",
        description="Write the stored articles, one row at a time (constant memory whatever the archive's "
        "size), as JSON Lines or CSV, to a file or stdout. The database is opened read-only. "
        "Example: scheduler.py export --source bbc_world --since 2024-05-01 --output bbc.jsonl",
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="(default: %(default)s)")
    export.add_argument("--source", metavar="NAME", help="only this source's articles")
    export.add_argument(
        "--since", type=iso_date, metavar="DATE", help="only articles first seen on or after DATE (ISO 8601)"
    )
    export.add_argument("--query", metavar="TEXT", help="only articles the full-text search finds (best first)")
    add_raw_query_option(export)
    export.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write to FILE, complete or not at all (default: stdout)"
    )
    export.set_defaults(handler=handler("commands.export", "cmd_export"))

    search = commands.add_parser(
        "search",
        parents=[common],
        help="full-text search of the stored articles, with snippets",
        description="Search the titles, descriptions and texts of the stored articles; show each match "
        "with a snippet, best match first. The database is opened read-only.",
    )
    search.add_argument("query", metavar="QUERY", help="words to find (all of them, any order)")
    search.add_argument("--source", metavar="NAME", help="only this source's articles")
    search.add_argument("--limit", type=positive_int, default=20, help="matches to show (default: %(default)s)")
    search.add_argument("--newest", action="store_true", help="newest first, instead of best match first")
    add_raw_query_option(search)
    search.set_defaults(handler=handler("commands.export", "cmd_search"))

    add = commands.add_parser(
        "add",
        parents=[common],
        help="look at a site's URL and add it to the sources file",
        description="Fetch URL as `crawl --url` would (a feed, a sitemap, or a page announcing feeds and, "
        "through robots.txt, sitemaps), show what it found, and append a [[source]] table for it to the "
        "sources file, leaving the rest of the file as it is. A running daemon reads it on SIGHUP.",
    )
    add.add_argument("url", metavar="URL", help="a feed, sitemap or home page")
    add.add_argument("--name", help="the source's name (default: from the URL's host name)")
    add.add_argument("--every", type=duration(), help='its schedule (default: the file\'s [defaults], else "1h")')
    add.add_argument("--allow-private", action="store_true", help="the site is on a private or loopback address")
    add.set_defaults(handler=handler("commands.add", "cmd_add"))


def add_raw_query_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw-query",
        action="store_true",
        help='the query is in SQLite FTS5 syntax (OR, NOT, NEAR, "a phrase", prefix*)',
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a reader gone (`status | head -1`) shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        return stdout_closed()
    except (UsageError, SourceConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ExtractionPoolError as exc:  # a crawl or worker that could not start its extraction pool
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a database's error (e.g. in a folder that cannot be created), or our bug
        # Loaded by whatever opened the database; at start-up it would cost every command 0.1 s.
        from archive.sqlite import sqlite3

        if not isinstance(exc, sqlite3.Error | OSError):
            raise
        print(f"error: {getattr(args, 'db', '')}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def stdout_closed() -> int:
    """Whoever read our output stopped reading (`status | head -1`): stop quietly, as the Python
    docs advise (signal.SIGPIPE): stdout goes to /dev/null so that the flush at exit does not
    fail again with "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
