"""Run crawls in this process: what `scheduler.py crawl` does, and what the daemon's children run.

Several sources crawl side by side in one Scrapy process (one crawler each, one `crawl_runs`
row each), so starting a process is paid once per batch, not once per source.

The daemon starts each batch as a child process of its own::

    python runner.py --db data/news.db --sources SNAPSHOT --log-dir data/logs --stamp STAMP NAME...

Each source's Scrapy log goes to ``<log dir>/<source>/<stamp>.log`` (its path is recorded in
``crawl_runs.log_file``). The child's stderr is the batch's log, kept by the daemon.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from config.paths import STAMP_FORMAT, crawl_log_path

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from scrapy import Spider
    from scrapy.crawler import Crawler


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlRequest:
    """One crawl to run: a configured source by name, or an ad-hoc URL."""

    source: str | None = None
    url: str | None = None
    allow_private: bool = False
    max_articles: int | None = None

    def spider_kwargs(self) -> dict[str, Any]:
        if self.url:
            kwargs: dict[str, Any] = {"url": self.url, "allow_private": "1" if self.allow_private else "0"}
            if self.max_articles:
                kwargs["max_articles"] = str(self.max_articles)
            return kwargs
        return {"source": self.source}


def project_settings(
    db_path: str | os.PathLike[str],
    sources_file: str | os.PathLike[str],
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Scrapy settings from crawl/settings.py, pointed at this database and sources file."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawl.settings")
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    settings.set("NEWS_DB_PATH", str(db_path), priority="cmdline")
    settings.set("NEWS_SOURCES_FILE", str(sources_file), priority="cmdline")
    for name, value in (overrides or {}).items():
        settings.set(name, value, priority="cmdline")
    return settings


def build_process(
    requests: Sequence[CrawlRequest],
    settings: Any,
    crawler_settings: Mapping[str, dict[str, Any]] | None = None,
    spider_class: type[Spider] | None = None,
) -> tuple[Any, list[Crawler]]:
    """A CrawlerProcess with one crawler per request, not started yet.

    `crawler_settings` maps a source name to settings for that source's crawler only;
    `spider_class` replaces the news spider (a shared crawl's workers run a subclass of it).
    """
    from scrapy.crawler import CrawlerProcess

    from spiders.news import NewsSpider

    process = CrawlerProcess(settings)
    crawlers = []
    for request in requests:
        crawler = process.create_crawler(spider_class or NewsSpider)
        for name, value in (crawler_settings or {}).get(request.source or "", {}).items():
            crawler.settings.set(name, value, priority="cmdline")
        crawlers.append(crawler)
        process.crawl(crawler, **request.spider_kwargs())
    return process, crawlers


def run_crawls(
    requests: Sequence[CrawlRequest],
    settings: Any,
    *,
    progress: Callable[[Sequence[Crawler]], None] | None = None,
    progress_every: float = 0.5,
) -> float:
    """Crawl every request side by side and block until all are done; returns seconds taken.

    `progress` is called from a helper thread every `progress_every` seconds, and once at the end,
    with the crawlers (their stats are read, never written, from that thread).
    """
    started = time.monotonic()
    process, crawlers = build_process(requests, settings)
    reporter = _ProgressThread(crawlers, progress, progress_every) if progress else None
    if reporter:
        reporter.start()
    try:
        process.start()
    finally:
        if reporter:
            reporter.stop()
    return time.monotonic() - started


class _ProgressThread(threading.Thread):
    def __init__(self, crawlers: Sequence[Crawler], callback: Callable[..., None], every: float) -> None:
        super().__init__(name="crawl-progress", daemon=True)
        self.crawlers = crawlers
        self.callback = callback
        self.every = every
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.callback(self.crawlers)

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.callback(self.crawlers)


# --- the progress line of `scheduler.py crawl` ------------------------------------------------

# Label -> the stats key summed over all crawlers.
PROGRESS_COUNTS = {
    "requests": "downloader/request_count",
    "new": "news/articles/new",
    "updated": "news/articles/updated",
    "stored already": "news/requests/skipped_stored",
    "failures": "news/failures",
}


def crawl_totals(crawlers: Sequence[Crawler]) -> dict[str, int]:
    """Sum the progress counts over the crawlers; 'done' counts the crawlers that have finished."""
    totals = dict.fromkeys(PROGRESS_COUNTS, 0)
    done = 0
    for crawler in crawlers:
        try:
            stats = crawler.stats
        except RuntimeError:  # the crawl has not started yet: no stats collector so far
            continue
        for label, key in PROGRESS_COUNTS.items():
            totals[label] += int(stats.get_value(key, 0) or 0)
        done += stats.get_value("finish_reason") is not None  # set by CoreStats when it closes
    totals["done"] = done
    return totals


class ProgressLine:
    """One status line on a terminal, rewritten in place; on anything else (a pipe, a file), a whole
    line when the counts changed, at most every `every` seconds, so logs stay readable."""

    def __init__(self, stream: TextIO, *, rewrite: bool, every: float = 5.0) -> None:
        self.stream = stream
        self.rewrite = rewrite
        self.every = every
        self.started = time.monotonic()
        self.line = ""
        self.counts = ""
        self.printed_counts = ""
        self.printed_at = float("-inf")

    def __call__(self, crawlers: Sequence[Crawler]) -> None:
        totals = crawl_totals(crawlers)
        self.counts = f"{totals['done']}/{len(crawlers)} sources done: " + ", ".join(
            f"{totals[label]} {label}" for label in PROGRESS_COUNTS
        )
        self.line = f"[{time.monotonic() - self.started:5.1f}s] {self.counts}"
        if self.rewrite:
            self._write("\r\x1b[K" + self.line)
        elif self.counts != self.printed_counts and time.monotonic() - self.printed_at >= self.every:
            self._write(self.line + "\n")

    def finish(self) -> None:
        """End the line; off a terminal, print the final counts if they were not printed yet."""
        if self.rewrite and self.line:
            self.stream.write("\n")
        elif self.counts != self.printed_counts:
            self._write(self.line + "\n")
        self.stream.flush()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
        self.printed_counts = self.counts
        self.printed_at = time.monotonic()


# --- the daemon's child process ---------------------------------------------------------------


class _SourceFilter(logging.Filter):
    """Passes the records Scrapy tags with a spider of one source (``extra={"spider": ...}``)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(getattr(record, "spider", None), "source_name", None) == self.source


def _child_logging(settings: Any, names: Sequence[str], log_dir: Path, stamp: str) -> None:
    """Everything to stderr (the batch log the daemon opened); in a batch of several sources,
    each source also gets a file of its own with the records that name its spider.

    Scrapy's own root handler is off in the child: each crawler would re-point it at its own
    LOG_FILE when it starts, so the last source to start would get every source's lines.
    """
    level = settings.get("LOG_LEVEL")
    formatter = logging.Formatter(settings.get("LOG_FORMAT"), settings.get("LOG_DATEFORMAT"))
    root = logging.getLogger()
    root.setLevel(level)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    for name in names if len(names) > 1 else ():
        path = crawl_log_path(log_dir, name, stamp)
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.addFilter(_SourceFilter(name))
        handlers.append(handler)
    for handler in handlers:
        handler.setLevel(level)
        handler.setFormatter(formatter)
        root.addHandler(handler)


def child_main(argv: list[str] | None = None) -> int:
    """Entry point of the daemon's crawl processes: crawl the named sources, side by side."""
    parser = argparse.ArgumentParser(
        prog="runner.py", description="Crawl sources in one process (started by `scheduler.py run`)."
    )
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sources", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--stamp", default=time.strftime(STAMP_FORMAT, time.gmtime()))
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    overrides = {
        "LOG_LEVEL": args.log_level,
        "LOG_INSTALL_ROOT_HANDLER": False,  # see _child_logging
        # The daemon enforces each source's timeout by killing this process group and records
        # the run as timed out; an in-process close at a fixed hour would only race it.
        "CLOSESPIDER_TIMEOUT": 0,
        # Scrapy 2.19's code-running HTTP console, one per crawler: nobody attaches to a batch.
        "REMOTE_CONTROL_ENABLED": False,
    }
    settings = project_settings(args.db, args.sources, overrides)
    # LOG_FILE per crawler only names the file in crawl_runs.log_file (CrawlRunRecorder reads it).
    per_crawler = {name: {"LOG_FILE": str(crawl_log_path(args.log_dir, name, args.stamp))} for name in args.names}
    process, _ = build_process([CrawlRequest(source=name) for name in args.names], settings, per_crawler)
    _child_logging(settings, args.names, args.log_dir, args.stamp)
    process.start()
    return 1 if process.bootstrap_failed else 0


if __name__ == "__main__":
    sys.exit(child_main())
