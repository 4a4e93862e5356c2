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
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.paths import PROJECT_ROOT
from config.sources import SourceConfigError, find_source, format_duration, load_sources, parse_duration
from crawl.urls import http_url_problem
from pipelines.reextract import add_reextract_command
from runner import CrawlRequest, ProgressLine, project_settings, run_crawls

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TextIO

    from sqlite_utils import Database

    from distributed.redis_link import RedisLink

    RedisHandler = Callable[[argparse.Namespace, "SharedRedis"], int]

logger = logging.getLogger(__name__)

DEFAULT_SOURCES = PROJECT_ROOT / "sources.toml"
DEFAULT_DB = PROJECT_ROOT / "data" / "news.db"
# Exit statuses of every command (docs/exit-codes.md is the table; tests/test_cli_errors.py checks it).
EXIT_OK = 0
EXIT_FAILED = 1  # some sources failed (or fetched nothing), or the archive could not be read or written
EXIT_USAGE = 2  # a wrong option or argument, or a broken sources file: nothing was done (argparse's code)
EXIT_NOT_RUNNING = 3  # `status` when the daemon is not alive (the LSB init-script convention)
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # stdout closed early (`status | head -1`), as a shell reports it
# --log-level takes these names in any case ("warning" is WARNING).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class UsageError(Exception):
    """A command given what it cannot work with: one line on stderr, exit status EXIT_USAGE."""


def duration(*, allow_zero: bool = False) -> Callable[[str], timedelta]:
    def parse(text: str) -> timedelta:
        try:
            return parse_duration(text, allow_zero=allow_zero)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_log_level_option(parser: argparse.ArgumentParser, flag: str = "--log-level", what: str = "log level") -> None:
    """A log level option: any case is taken, an unknown level is a usage error before anything runs."""
    parser.add_argument(
        flag, type=str.upper, choices=LOG_LEVELS, default="INFO", help=f"{what}, in any case (default: %(default)s)"
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
    status.set_defaults(handler=cmd_status)

    listing = commands.add_parser(
        "list",
        parents=[common],
        help="list the configured sources",
        description="List the sources in the sources file, checking it on the way.",
    )
    listing.set_defaults(handler=cmd_list)
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
    run.add_argument("--max-parallel", type=positive_int, default=2, help="crawl processes at once (default: 2)")
    run.add_argument(
        "--batch-size", type=positive_int, default=25, help="sources per crawl process, at most (default: 25)"
    )
    run.add_argument(
        "--batch-window",
        type=duration(allow_zero=True),
        default=timedelta(seconds=10),
        help="how long a due source waits for others to share its process (default: 10s)",
    )
    run.add_argument(
        "--grace",
        type=duration(allow_zero=True),
        default=timedelta(seconds=30),
        help="at shutdown, how long running crawls get to finish before they are stopped (default: 30s)",
    )
    run.add_argument(
        "--kill-wait",
        type=duration(allow_zero=True),
        default=timedelta(seconds=10),
        help="how long a crawl told to stop gets before it is killed (default: 10s)",
    )
    run.add_argument("--tick", type=duration(), default=timedelta(seconds=15), help="heartbeat interval (default: 15s)")
    run.add_argument(
        "--keep-logs",
        type=duration(),
        default=timedelta(days=14),
        help="keep crawl logs this long (default: 14d)",
    )
    add_log_level_option(run, what="the daemon's log level")
    add_log_level_option(run, "--crawl-log-level", "the crawls' Scrapy log level")
    add_redis_option(run)
    add_round_grace_option(run)
    run.set_defaults(handler=cmd_run)


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
    crawl.set_defaults(handler=cmd_crawl)


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
        default=timedelta(seconds=10),
        help="with --redis: a round ends once its queue has been empty and no worker has worked on it "
        "for this long (default: 10s, at least 3s)",
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
    worker.set_defaults(handler=cmd_worker)
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
    writer.set_defaults(handler=cmd_writer)
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
    push.set_defaults(handler=cmd_push)


# --- the shared crawl (distributed/) ----------------------------------------------------------


@dataclass(frozen=True)
class SharedRedis:
    """The Redis of a shared crawl, as a command was given it (--redis URL, or $NEWS_REDIS_URL)."""

    url: str

    def wait(self) -> RedisLink:
        """Wait, with back-off, until Redis answers (an outage at start-up is waited out, not a crash
        loop); returns this process's link to it."""
        from distributed.redis_link import RedisLink, wait_for_redis

        wait_for_redis(self.url)
        return RedisLink.for_url(self.url)


def redis_command(*, log: bool = True) -> Callable[[RedisHandler], Callable[[argparse.Namespace], int]]:
    """The handler of `worker`, `writer` or `push`: it does not start without a Redis URL, logs to
    stderr at --log-level (with `log`; a worker's crawl process sets up Scrapy's logging instead),
    and gets its SharedRedis, to wait for once its own arguments are checked."""

    def decorate(handler: RedisHandler) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            if log:
                logging.basicConfig(level=args.log_level, format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
            if not args.redis:
                raise UsageError(f"{args.command}: give --redis URL or set NEWS_REDIS_URL")
            return handler(args, SharedRedis(args.redis))

        return run

    return decorate


def _chosen_sources(args: argparse.Namespace, *, default_all: bool) -> list[Any]:
    if args.names and args.all:
        raise UsageError(f"{args.command}: give source names or --all, not both")
    sources = load_sources(args.sources)
    if args.names:
        return [find_source(sources, name, args.sources) for name in args.names]
    if not (args.all or default_all):
        raise UsageError(f"{args.command}: give source names or --all")
    return [s for s in sources if s.enabled]


@redis_command(log=False)
def cmd_worker(args: argparse.Namespace, redis: SharedRedis) -> int:
    from distributed.worker import apply_worker_settings, source_settings, worker_spider_class
    from runner import build_process

    sources = _chosen_sources(args, default_all=True)
    if not sources:
        print("no enabled sources to serve", file=sys.stderr)
        return EXIT_OK
    overrides: dict[str, str] = {"LOG_LEVEL": args.log_level}
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        overrides[name] = value
    settings = project_settings(args.db, args.sources, overrides)
    apply_worker_settings(settings, redis.url, exit_when_idle=args.exit_when_idle)
    redis.wait()
    requests = [CrawlRequest(source=s.name) for s in sources]
    per_source = {s.name: source_settings(s.name) for s in sources}
    process, _ = build_process(requests, settings, per_source, worker_spider_class())
    process.start()
    return EXIT_FAILED if process.bootstrap_failed else EXIT_OK


@redis_command()
def cmd_writer(args: argparse.Namespace, redis: SharedRedis) -> int:
    from distributed.writer import Writer

    _last_run_id(args.db)
    settings = project_settings(args.db, args.sources)
    link = redis.wait()
    batch_size = args.batch_size or settings.getint("NEWS_STORE_BATCH_SIZE")
    writer = Writer(link, settings, batch_size=batch_size)
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the batch in hand, then stop
        signal.signal(sig, lambda *_: writer.request_stop())
    stored = writer.run(idle_exit=args.exit_when_idle)
    logger.info("writer: %d writes committed", stored)
    return EXIT_OK


@redis_command()
def cmd_push(args: argparse.Namespace, redis: SharedRedis) -> int:
    from distributed.coordinator import Coordinator
    from distributed.redis_link import RedisDown

    sources = _chosen_sources(args, default_all=False)
    started = time.monotonic()
    first_run = _last_run_id(args.db)
    redis.wait()
    coordinator = Coordinator(redis.url, args.db, args.sources, grace=args.round_grace)
    try:
        waiting = open_rounds_now(coordinator, sources)
        timeouts = {s.name: s.timeout for s in sources}
        while waiting:
            try:
                for closed in coordinator.check_rounds(timeouts, only=waiting):
                    waiting.discard(closed.run_id)
                    logger.info("source=%s run=%s %s: %s", closed.source, closed.run_id, closed.status, closed.reason)
            except RedisDown:
                pass  # logged by the link; wait and try again
            time.sleep(max(0.5, coordinator.link.wait_time()))
        wait_for_the_writer(coordinator)
    finally:
        coordinator.close()
    return print_summary(args.db, first_run, time.monotonic() - started)


def open_rounds_now(coordinator: Any, sources: list[Any]) -> set[int]:
    """Open a round of each source, waiting out a Redis outage; returns the runs opened."""
    from distributed.redis_link import RedisDown

    opened: set[int] = set()
    for source in sources:
        while True:
            try:
                run_id, what = coordinator.open_round(source, source.timeout)
                break
            except RedisDown:
                time.sleep(coordinator.link.wait_time())
        if run_id is None:
            coordinator.record_skipped(source.name, what)
            print(f"{source.name}: skipped - {what}")
            continue
        logger.info("source=%s run=%s %s", source.name, run_id, what)
        opened.add(run_id)
    return opened


def wait_for_the_writer(coordinator: Any) -> None:
    """Wait until the writer has stored everything the workers pushed, so that the runs' counts
    are complete; without a live writer, say so and do not wait."""
    from distributed.redis_link import ITEMS_KEY, PROCESSING_KEY, WRITER_KEY, RedisDown

    def left(client: Any) -> tuple[int, bool]:
        return client.llen(ITEMS_KEY) + client.llen(PROCESSING_KEY), bool(client.exists(WRITER_KEY))

    while True:
        try:
            waiting, writer = coordinator.link.call("waiting for the writer", left)
        except RedisDown:
            time.sleep(max(0.2, coordinator.link.wait_time()))
            continue
        if not waiting:
            return
        if not writer:
            logger.warning("%d items wait for a writer (none is running): the runs' counts are partial", waiting)
            return
        time.sleep(0.2)


# --- run --------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from daemon.service import Daemon, DaemonConfig, DaemonError, install_signal_handlers, setup_logging

    config = DaemonConfig(
        db=args.db,
        sources=args.sources,
        max_parallel=args.max_parallel,
        batch_size=args.batch_size,
        batch_window=args.batch_window,
        grace=args.grace,
        kill_wait=args.kill_wait,
        tick=args.tick,
        crawl_log_level=args.crawl_log_level,
        keep_logs=args.keep_logs,
        redis_url=args.redis,
        round_grace=args.round_grace,
    )
    setup_logging(config.log_dir, args.log_level)
    daemon = Daemon(config)
    install_signal_handlers(daemon)  # before it starts: a signal during start-up is not lost
    try:
        return daemon.run()
    except DaemonError as exc:
        logger.error("%s", exc)
        return EXIT_FAILED


# --- crawl ------------------------------------------------------------------------------------


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
    first_run = _last_run_id(args.db)  # also creates or migrates the database before crawlers race to
    seconds = run_crawls(requests, project_settings(args.db, args.sources, overrides), progress=progress)
    if progress:
        progress.finish()
    return print_summary(args.db, first_run, seconds)


def _last_run_id(db_path: Path) -> int:
    from archive.schema import open_db

    db = open_db(db_path)
    try:
        row = db.execute("SELECT coalesce(max(id), 0) FROM crawl_runs").fetchone()
        return int(row[0])
    finally:
        db.close()


def print_summary(db_path: Path, after_run_id: int, seconds: float) -> int:
    """Print one line per run started by this command; EXIT_FAILED if any run failed or nothing
    came of it, EXIT_OK otherwise."""
    from archive.schema import open_db

    db = open_db(db_path)
    # This process ran the crawls: a daemon's runs in the meantime are not ours to report.
    runs = list(db["crawl_runs"].rows_where("id > ? AND pid = ?", [after_run_id, os.getpid()], order_by="id"))
    failed = False
    for run in runs:
        line, ok = summary_line(db, run)
        failed |= not ok
        print(line)
    total = db.execute("SELECT count(*) FROM articles").fetchone()[0]
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
    if run["status"] == "ok" and run["failures"] and not any(run.get(c) for c in OUTCOME_COLUMNS):
        first = db.execute("SELECT reason FROM failures WHERE run_id = ? ORDER BY id LIMIT 1", [run["id"]]).fetchone()
        reason = first[0] if first else "no page came through"
        return f"{run['source']}: failed - nothing came of it: {reason}; {counts}", False
    line = (
        f"{run['source']}: {run['status']} - {run['articles_new'] or 0} new, "
        f"{run['articles_updated'] or 0} updated, {run['articles_duplicate'] or 0} duplicates, "
        f"{run['not_articles'] or 0} not articles, {run['skipped_stored'] or 0} already stored, {counts}"
    )
    return line, run["status"] == "ok"


# --- status -----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from daemon.service import daemon_state

    if args.json:
        return cmd_status_json(args)
    if not args.db.exists():
        print(f"no database at {args.db}: nothing has run yet")
        return EXIT_NOT_RUNNING
    db = open_read_only(args.db)
    now = datetime.now(UTC).replace(microsecond=0)
    state = daemon_state(db, now)
    print(describe_daemon(state, now))
    try:
        sources = load_sources(args.sources)
    except SourceConfigError as exc:
        print(f"warning: {exc}")
        sources = []
    print()
    print_source_table(db, sources, state, now)
    print_problems(db, args.failures, now)
    db.close()
    return EXIT_OK if state and state["alive"] else EXIT_NOT_RUNNING


def open_read_only(path: Path) -> Database:
    """The archive, opened so that nothing can be written: `status` works on a database it may
    not write (a copy on read-only media, another user's), and never changes one it may."""
    from sqlite_utils import Database

    from archive.schema import BUSY_TIMEOUT_SECONDS, migrations

    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if not exc.sqlite_errorname.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
            raise
        # A WAL database in a folder we cannot write: even a reader needs its -shm file, which
        # SQLite cannot create there. The file is then read as it is, without locks: should
        # another user's daemon be writing it at that moment, a status line may be off, which
        # is better than no status at all.
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True)
    db = Database(conn)
    if migrations.pending(db):
        db.close()
        raise sqlite3.DatabaseError(
            "made by an older version of this archive; the next crawl or `scheduler.py run` upgrades it"
        )
    return db


def ago(moment: str | None, now: datetime) -> str:
    """'13:45:31Z, 5m ago' (the date too when it is not today), 'in 10m' for the future."""
    if not moment:
        return "-"
    when = datetime.fromisoformat(moment).astimezone(UTC)
    delta = now - when
    stamp = when.strftime("%H:%M:%SZ") if when.date() == now.date() else when.strftime("%Y-%m-%d %H:%MZ")
    if delta >= timedelta(0):
        return f"{stamp}, {format_duration(delta)} ago" if delta else f"{stamp}, now"
    return f"{stamp}, in {format_duration(-delta)}"


def describe_daemon(state: dict[str, Any] | None, now: datetime) -> str:
    if state is None:
        return "daemon: never run on this database (start it with: python scheduler.py run)"
    if state["alive"]:
        up = format_duration(now - datetime.fromisoformat(state["started_at"]))
        if state["coordinating"]:  # run --redis: it opens rounds for the workers, runs no crawl
            rounds = state["running"]
            running = f"{rounds} round{'' if rounds == 1 else 's'} open for the workers"
        else:
            running = f"{state['running']} crawl processes running"
        return (
            f"daemon: running, pid {state['pid']} on {state['host']}, up {up}, last tick "
            f"{format_duration(timedelta(seconds=int(state['since_tick_s'])))} ago; "
            f"{state['sources']} sources scheduled, {running}, {state['queued']} sources queued"
        )
    if state["status"] == "running":
        return (
            f"daemon: NOT RESPONDING - pid {state['pid']} on {state['host']} last ticked "
            f"{ago(state['last_tick_at'], now)}; it was killed or hangs"
        )
    return f"daemon: stopped ({ago(state['stopped_at'], now)})"


# Every source that has runs, with its last run that was not skipped, in one query that seeks the
# (source, started_at) index once per source: a year of hourly runs is 1.7 million rows, and a
# DISTINCT, or an ORDER BY id per source, read all of them (4.2 s for `status`).
LAST_RUN_OF_EACH_SOURCE = """
WITH RECURSIVE ran(source) AS (
    SELECT min(source) FROM crawl_runs
    UNION ALL
    SELECT (SELECT min(source) FROM crawl_runs WHERE source > ran.source) FROM ran WHERE ran.source IS NOT NULL
)
SELECT source,
       (SELECT id FROM crawl_runs r WHERE r.source = ran.source AND r.status != 'skipped'
        ORDER BY r.started_at DESC, r.id DESC LIMIT 1) AS last_run_id
FROM ran WHERE source IS NOT NULL ORDER BY source
"""


def print_source_table(db: Database, sources: list[Any], state: dict[str, Any] | None, now: datetime) -> None:
    from daemon.jobs import next_run_time

    names = [s.name for s in sources]
    last_ids = dict(db.execute(LAST_RUN_OF_EACH_SOURCE).fetchall())
    ran = [(source,) for source in last_ids]
    ids = [run_id for run_id in last_ids.values() if run_id is not None]
    marks = ", ".join("?" * len(ids))
    last_runs = {row["source"]: row for row in db["crawl_runs"].rows_where(f"id IN ({marks})", ids)}
    names += [name for (name,) in ran if name not in names and not name.startswith("adhoc_")]
    by_name = {s.name: s for s in sources}
    alive = bool(state and state["alive"])
    next_runs = dict(db.execute("SELECT source, next_run_at FROM daemon_jobs").fetchall()) if alive else {}
    since = (now - timedelta(days=1)).isoformat()
    header = f"{'SOURCE':24} {'SCHEDULE':14} {'LAST RUN':30} {'STATUS':10} {'NEW':>4} {'UPD':>4} {'FAIL':>4}"
    print(f"{header}  {'NEXT RUN':26} {'FAILED RUNS 24H':>15} {'FAILURES 24H':>12}")
    for name in names:
        last_row: dict[str, Any] = last_runs.get(name, {})
        source = by_name.get(name)
        schedule = source.schedule if source else "(not in file)"
        if source is not None and not source.enabled:
            next_run = "disabled"
        elif alive:
            next_run = ago(next_runs.get(name), now) if name in next_runs else "-"
        elif source is not None:
            started = datetime.fromisoformat(last_row["started_at"]) if last_row else None
            due = next_run_time(source, started, now)
            next_run = "at daemon start" if due <= now else ago(due.isoformat(), now)
        else:
            next_run = "-"
        failed_runs, failures = db.execute(
            "SELECT (SELECT count(*) FROM crawl_runs WHERE source = ? AND started_at >= ? "
            "AND status IN ('failed', 'timed_out')), "
            "(SELECT count(*) FROM failures WHERE source = ? AND occurred_at >= ?)",
            [name, since, name, since],
        ).fetchone()
        print(
            f"{name:24} {schedule:14} {ago(last_row.get('started_at'), now):30} "
            f"{last_row.get('status', 'never'):10} {last_row.get('articles_new') or 0:>4} "
            f"{last_row.get('articles_updated') or 0:>4} {last_row.get('failures') or 0:>4}  "
            f"{next_run:26} {failed_runs:>15} {failures:>12}"
        )


def print_problems(db: Database, limit: int, now: datetime) -> None:
    rows = db.execute(
        "SELECT id, source, started_at, status, finish_reason FROM crawl_runs "
        "WHERE status IN ('failed', 'timed_out') ORDER BY id DESC LIMIT ?",
        [limit],
    ).fetchall()
    if not rows:
        return
    print("\nrecent failed runs:")
    for run_id, source, started_at, status, reason in rows:
        print(f"  {ago(started_at, now):30} {source} run {run_id}: {status}: {reason}")


# --- list -------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    for source in load_sources(args.sources):
        seeds = len(source.seed_urls)
        state = "enabled" if source.enabled else "disabled"
        max_age = format_duration(source.max_age)
        print(f"{source.name:24} {state:8} {source.schedule:16} {seeds} seed URLs  max_age={max_age}")
    return EXIT_OK


# --- export, search, status --json, --version, add (the archive for its users) -----------------


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
    from pipelines.reextract import iso_date

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
    export.set_defaults(handler=cmd_export)

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
    search.set_defaults(handler=cmd_search)

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
    add.set_defaults(handler=cmd_add)


def add_raw_query_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw-query",
        action="store_true",
        help='the query is in SQLite FTS5 syntax (OR, NOT, NEAR, "a phrase", prefix*)',
    )


def read_only_archive(db_path: Path) -> Database:
    """The archive for a command that only reads; no database is a one-line error."""
    from archive.queries import NoDatabase, open_read_only

    try:
        return open_read_only(db_path)
    except NoDatabase as exc:
        raise ReadError(f"{exc}: nothing has been crawled into it yet") from None


class ReadError(Exception):
    """A read command that has nothing to read: one line on stderr, exit status EXIT_FAILED."""


def read_command(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the expected failures of a read command into one line each: no database (EXIT_FAILED),
    a search query SQLite cannot parse (EXIT_USAGE)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from archive.queries import BadSearch

        try:
            return handler(args)
        except ReadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except BadSearch as exc:
            print(f"error: {args.command}: {exc} (without --raw-query, words are searched as typed)", file=sys.stderr)
            return EXIT_USAGE

    return run


def check_source_known(db: Database, name: str | None, sources_file: Path) -> None:
    """--source of a read command: a source the archive or the sources file knows, or an error
    (a typo would otherwise look like a source with nothing stored)."""
    from archive.queries import source_known

    if name is None or source_known(db, name):
        return
    try:
        configured = {s.name for s in load_sources(sources_file)}
    except SourceConfigError:
        configured = set()
    if name not in configured:
        raise UsageError(f'--source: no source named "{name}" in the archive or in {sources_file}')


@read_command
def cmd_export(args: argparse.Namespace) -> int:
    from archive.queries import export_articles

    db = read_only_archive(args.db)
    try:
        check_source_known(db, args.source, args.sources)
        rows = export_articles(db, source=args.source, since=args.since, query=args.query, raw_query=args.raw_query)
        if args.output is None:
            count = write_export(rows, sys.stdout, args.format)
            sys.stdout.flush()
        else:
            count = export_to_file(rows, args.output, args.format)
    finally:
        db.close()
    where = args.output or "stdout"
    print(f"exported {count} article{'' if count == 1 else 's'} to {where}", file=sys.stderr)
    return EXIT_OK


def export_to_file(rows: Iterator[dict[str, Any]], path: Path, fmt: str) -> int:
    """Write beside `path`, then rename: a failed export never leaves half a file under its name."""
    import tempfile

    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with open(handle, "w", encoding="utf-8", newline="") as out:
            count = write_export(rows, out, fmt)
        Path(partial).chmod(0o666 & ~current_umask())  # mkstemp's 0600 is for the file in the making
        Path(partial).replace(path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return count


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_export(rows: Iterator[dict[str, Any]], out: TextIO, fmt: str) -> int:
    """Write rows as they come (JSON Lines, or CSV with a header row); returns how many."""
    import csv
    import json

    from archive.queries import decode_json_columns

    count = 0
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        if fmt == "jsonl":
            out.write(json.dumps(decode_json_columns(row), ensure_ascii=False) + "\n")
        else:
            if writer is None:  # the header once the first row is in: a query error writes nothing
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        count += 1
    return count


@read_command
def cmd_search(args: argparse.Namespace) -> int:
    from archive.queries import search_articles

    db = read_only_archive(args.db)
    try:
        check_source_known(db, args.source, args.sources)
        color = sys.stdout.isatty()
        hits = search_articles(
            db,
            args.query,
            source=args.source,
            limit=args.limit,
            newest_first=args.newest,
            raw_query=args.raw_query,
            marks=("\x1b[1m", "\x1b[0m") if color else ("[", "]"),
        )
    finally:
        db.close()
    if not hits:
        print(f"no articles match {args.query!r}", file=sys.stderr)
    for number, hit in enumerate(hits, 1):
        when = (hit.published_at or hit.first_seen_at or "")[:10]
        print(f"{number:>3}. {hit.title or '(no title)'}  ({hit.source}, {when or 'undated'})")
        print(f"     {hit.url}")
        print(f"     {' '.join(hit.snippet.split())}")
    return EXIT_OK


def cmd_status_json(args: argparse.Namespace) -> int:
    """`status --json`: the daemon and each source as one JSON document, from a read-only database."""
    import json

    from archive.queries import NoDatabase, open_read_only
    from daemon.service import daemon_state

    now = datetime.now(UTC).replace(microsecond=0)
    report: dict[str, Any] = {"checked_at": now.isoformat(), "database": str(args.db), "sources_file_error": None}
    try:
        sources = load_sources(args.sources)
    except SourceConfigError as exc:
        report["sources_file_error"] = str(exc)
        sources = []
    try:
        db = open_read_only(args.db)
    except NoDatabase:
        report.update(daemon=None, sources=[source_status(None, s.name, s, None, now) for s in sources])
        print(json.dumps(report, indent=2))
        return EXIT_NOT_RUNNING
    try:
        state = daemon_state(db, now)
        report["daemon"] = state
        report["sources"] = source_statuses(db, sources, state, now)
    finally:
        db.close()
    print(json.dumps(report, indent=2))
    return EXIT_OK if state and state["alive"] else EXIT_NOT_RUNNING


def source_statuses(db: Database, sources: list[Any], state: dict[str, Any] | None, now: datetime) -> list[dict]:
    """Each configured source, then each other source with runs (removed from the file since)."""
    from archive.queries import scheduled_runs, sources_with_runs

    by_name = {s.name: s for s in sources}
    names = [*by_name, *(name for name in sources_with_runs(db) if name not in by_name)]
    alive = bool(state and state["alive"])
    next_runs = scheduled_runs(db) if alive else None
    return [source_status(db, name, by_name.get(name), next_runs, now) for name in names]


def source_status(
    db: Database | None, name: str, source: Any, next_runs: dict[str, str] | None, now: datetime
) -> dict[str, Any]:
    """One source as `status` shows it: configuration, last run, next run, problems in 24 hours.

    `next_runs` is the live daemon's schedule; without one, the next run is when a daemon started
    now would run it (overdue ones at once)."""
    from archive.queries import article_count, last_run, problems_since
    from daemon.jobs import next_run_time

    last = last_run(db, name) if db is not None else None
    if source is not None and not source.enabled:
        next_run = None
    elif next_runs is not None:
        next_run = next_runs.get(name)
    elif source is not None:
        started = datetime.fromisoformat(last["started_at"]) if last else None
        next_run = next_run_time(source, started, now).isoformat()
    else:
        next_run = None
    failed_runs, failures = problems_since(db, name, (now - timedelta(days=1)).isoformat()) if db else (0, 0)
    return {
        "name": name,
        "in_sources_file": source is not None,
        "enabled": source.enabled if source is not None else None,
        "schedule": source.schedule if source is not None else None,
        "articles": article_count(db, name) if db is not None else 0,
        "last_run": last,
        "next_run_at": next_run,
        "failed_runs_24h": failed_runs,
        "failures_24h": failures,
    }


# --- add --------------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    from config.sources import adhoc_source, redact_credentials
    from spiders.probe import probe

    url = args.url.strip()
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise UsageError(f"add: expected an http(s) URL, got {args.url!r}")
    adhoc = adhoc_source(url)  # an http(s) URL with a host, or SourceConfigError (exit EXIT_USAGE)
    text = args.sources.read_text(encoding="utf-8") if args.sources.exists() else ""
    existing = load_sources(args.sources) if text.strip() else []
    name = args.name or adhoc.name.removeprefix("adhoc_")
    refuse_taken(existing, name, [url], args.sources)

    defaults = file_defaults(text)
    # A file whose [defaults] allow private addresses (a LAN's sites) lets the probe reach them too.
    allow_private = args.allow_private or defaults.get("allow_private") is True
    found = probe(url, allow_private=allow_private)
    print(describe_probe(found))
    if found.kind is None:
        hint = "; give --allow-private" if not allow_private and "allow_private" in str(found.problems) else ""
        print(f"error: add: could not read {redact_credentials(url)}: nothing added{hint}", file=sys.stderr)
        return EXIT_FAILED
    refuse_taken(existing, name, found.seeds, args.sources)
    # No schedule of its own when the file's [defaults] give one and --every does not.
    every = args.every or (None if defaults.keys() & {"every", "cron"} else timedelta(hours=1))
    own_allow_private = allow_private and defaults.get("allow_private") is not True
    block = source_table(name, url, found, every=every, allow_private=own_allow_private)
    append_source(args.sources, text, block, name)
    print(f'added source "{name}" to {args.sources}; a running daemon reads it on SIGHUP (kill -HUP <pid>)')
    return EXIT_OK


def refuse_taken(existing: list[Any], name: str, urls: list[str], sources_file: Path) -> None:
    """A name or URL another source has already: one line, nothing written."""
    from config.sources import NAME_RE, redact_credentials

    if not NAME_RE.match(name):
        raise UsageError(f'add: --name: expected a lowercase slug like "guardian_world", got {name!r}')
    for source in existing:
        if source.name == name:
            raise UsageError(f'add: {sources_file} has a source named "{name}" already (choose another --name)')
        for url in urls:
            if url in source.seed_urls:
                shown = redact_credentials(url)
                raise UsageError(f'add: source "{source.name}" in {sources_file} reads {shown} already')


def describe_probe(found: Any) -> str:
    from config.sources import redact_credentials

    lines = [f"{redact_credentials(found.url)}: {found.kind or 'not fetched'}"]
    for kind, items in (("feed", found.feeds), ("sitemap", found.sitemaps)):
        for item in items:
            what = f"{item.articles} articles" if item.articles or not item.sitemaps else ""
            if item.sitemaps:
                what = ", ".join(filter(None, [what, f"index of {item.sitemaps} sitemaps"]))
            lines.append(f"  {kind:8} {redact_credentials(item.url)} ({what})")
    if found.kind == "html" and not found.seeds:
        lines.append("  no feeds or sitemaps announced: the page is added as a start page")
    lines += [f"  problem: {redact_credentials(problem)}" for problem in found.problems]
    return "\n".join(lines)


def file_defaults(text: str) -> dict[str, Any]:
    """The sources file's [defaults] table as written (the file was checked by load_sources)."""
    import tomllib

    defaults = tomllib.loads(text).get("defaults", {}) if text.strip() else {}
    return defaults if isinstance(defaults, dict) else {}


def source_table(name: str, url: str, found: Any, *, every: timedelta | None, allow_private: bool) -> str:
    """The [[source]] table for what the probe found, as TOML text with a comment saying whence."""
    import json

    def strings(values: list[str]) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"  # JSON strings are TOML strings

    from config.sources import redact_credentials

    today = datetime.now(UTC).date().isoformat()
    kind = {"feed": "a feed", "sitemap": "a sitemap"}.get(found.kind, "an HTML page")
    lines = [  # the URL has no line break in it (cmd_add refuses any whitespace)
        f"# Added on {today} by `scheduler.py add {redact_credentials(url)}` ({kind})",
        "[[source]]",
        f"name = {json.dumps(name)}",
    ]
    if found.feeds:
        lines.append(f"feeds = {strings([f.url for f in found.feeds])}")
    if found.sitemaps:
        lines.append(f"sitemaps = {strings([s.url for s in found.sitemaps])}")
    if not found.seeds:
        lines.append(f"start_pages = {strings([url])}")
    elif found.kind == "html":
        lines.append(f"# start_pages = {strings([url])}  # also follow the page's own links")
    if every is not None:
        lines.append(f'every = "{format_duration(every)}"')
    if allow_private:
        lines.append("allow_private = true")
    return "\n".join(lines) + "\n"


def append_source(path: Path, text: str, block: str, name: str) -> None:
    """Append `block` to the file's text, check the whole with the loader the daemon uses, and
    replace the file in one rename: the daemon never reads half an edit, nor a broken one."""
    import tempfile

    new_text = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text.strip() else "") + block
    handle, staged = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".adding", dir=path.parent)
    try:
        with open(handle, "w", encoding="utf-8") as out:
            out.write(new_text)
        find_source(load_sources(staged), name, path)
        if path.exists():
            Path(staged).chmod(path.stat().st_mode & 0o7777)
        Path(staged).replace(path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


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
    except (sqlite3.Error, OSError) as exc:  # e.g. a database in a folder that cannot be created
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
