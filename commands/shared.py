"""`worker`, `writer` and `push`: the processes of a crawl shared through Redis (distributed/)."""

from __future__ import annotations

import functools
import logging
import signal
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from commands.crawl import latest_run_id, print_summary
from commands.errors import EXIT_FAILED, EXIT_OK, UsageError
from config.sources import find_source, load_sources
from crawl.process import CrawlRequest, project_settings

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from distributed.redis_link import RedisLink

    RedisHandler = Callable[[argparse.Namespace, "SharedRedis"], int]

# The command line's log lines keep the name they always had: operators' filters match it.
logger = logging.getLogger("scheduler")


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


def chosen_sources(args: argparse.Namespace, *, default_all: bool) -> list[Any]:
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
    from crawl.process import build_process
    from distributed.worker import apply_worker_settings, source_settings, worker_spider_class

    sources = chosen_sources(args, default_all=True)
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
    process, _ = build_process(requests, settings, per_source, spider_class=worker_spider_class())
    process.start()
    return EXIT_FAILED if process.bootstrap_failed else EXIT_OK


@redis_command()
def cmd_writer(args: argparse.Namespace, redis: SharedRedis) -> int:
    from distributed.writer import Writer

    latest_run_id(args.db)
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

    sources = chosen_sources(args, default_all=False)
    started = time.monotonic()
    first_run = latest_run_id(args.db)
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
