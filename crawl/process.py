"""A Scrapy process of several crawlers: the crawl requests, the project's settings pointed at a
database and sources file, the CrawlerProcess with one crawler per request, and the progress line
of `scheduler.py crawl`.

`scheduler.py` (crawl, worker), `runner.py` (the daemon's child processes) and the probe of
`scheduler.py add` build their processes here: the entry points are imported by no package, so
what they share lives in one.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from scrapy import Spider
    from scrapy.crawler import Crawler


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
    *,
    spider_class: type[Spider],
) -> tuple[Any, list[Crawler]]:
    """A CrawlerProcess with one crawler per request, not started yet.

    `crawler_settings` maps a source name to settings for that source's crawler only;
    `spider_class` is the spider each crawler runs: the news spider, a shared crawl's subclass of
    it, or the probe's (given by the caller: this layer is below spiders/).
    """
    from scrapy.crawler import CrawlerProcess

    from crawl.extraction_pool import use_short_socket_dir

    if settings.getint("NEWS_EXTRACT_WORKERS") > 0:
        use_short_socket_dir()  # ExtractionPoolError now, in one line, rather than from every crawler
    process = CrawlerProcess(settings)
    crawlers = []
    for request in requests:
        crawler = process.create_crawler(spider_class)
        for name, value in (crawler_settings or {}).get(request.source or "", {}).items():
            crawler.settings.set(name, value, priority="cmdline")
        crawlers.append(crawler)
        process.crawl(crawler, **request.spider_kwargs())
    return process, crawlers


def run_crawls(
    requests: Sequence[CrawlRequest],
    settings: Any,
    *,
    spider_class: type[Spider],
    progress: Callable[[Sequence[Crawler]], None] | None = None,
    progress_every: float = 0.5,
) -> float:
    """Crawl every request side by side and block until all are done; returns seconds taken.

    `progress` is called from a helper thread every `progress_every` seconds, and once at the end,
    with the crawlers (their stats are read, never written, from that thread).
    """
    started = time.monotonic()
    process, crawlers = build_process(requests, settings, spider_class=spider_class)
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
