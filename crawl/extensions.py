"""CrawlRunRecorder: one `crawl_runs` row per crawl, and every failure in the `failures` table.

Components report failures by sending the `failure_recorded` signal (see `report_failure`),
so the spider and the pipelines never talk to the database about runs themselves.

Two guarantees live here too, because every crawl passes through this extension first:

- A database that cannot be written (read-only, disk full, not a database) stops the crawl
  with one clear line, never a traceback per page: at start the crawl does not begin
  (StorageError, exit status 1); mid-crawl it closes as ``storage_error`` (run status failed).
- Credentials never reach a log line or the `failures` table: ``user:password@`` in URLs and
  the passwords the process knows (HTTPAUTH_PASS, proxies from the environment) are masked.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import DropItem
from scrapy.logformatter import LogFormatter
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from archive.store import Archive
from config.redaction import install_log_redaction, known_secrets, redact
from crawl.archive_access import crawl_archive

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response
    from scrapy.logformatter import LogFormatterResult
    from scrapy.spiders import Spider
    from twisted.python.failure import Failure

    from config.sources import Source

logger = logging.getLogger(__name__)

# Sent with url=, stage= (fetch | parse | extract | store), reason= and optionally http_status=.
failure_recorded = object()

# crawl_runs column -> the stats key it is read from at the end of the run.
RUN_COUNTS = {
    "requests": "downloader/request_count",
    "responses": "downloader/response_count",
    "articles_new": "news/articles/new",
    "articles_updated": "news/articles/updated",
    "articles_unchanged": "news/articles/unchanged",
    "articles_duplicate": "news/articles/duplicate",
    "not_articles": "news/pages/not_article",
    "skipped_stored": "news/requests/skipped_stored",
    "failures": "news/failures",
    "not_modified": "news/http/not_modified",
    "articles_revisited": "news/articles/revisited",
    "articles_taken_down": "news/articles/taken_down",
    "pages_discovery": "news/pages/discovery",
    "pages_retried_or_redirected": "news/pages/retried_or_redirected",
    "pages_failed": "news/pages/failed",
}
# Every answer a run fetched lands in exactly one of these counts (see PageCounter).
PAGE_COUNTS = (
    "articles_new",
    "articles_updated",
    "articles_unchanged",
    "articles_duplicate",
    "not_articles",
    "not_modified",
    "pages_discovery",
    "pages_retried_or_redirected",
    "pages_failed",
)
# How often a running crawl saves its counts (seconds): a crawl killed outright keeps them.
RUN_COUNTS_EVERY = 5.0


# SQLite errors after which no write can succeed, by their error name (Python 3.11+) ...
FATAL_SQLITE_ERRORS = (
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_PERM",
)
# ... and by their message, which is all StorePipeline passes on when a batch cannot be written.
FATAL_STORAGE_MESSAGES = (
    "database or disk is full",
    "readonly database",
    "disk I/O error",
    "unable to open database file",
    "database disk image is malformed",
    "file is not a database",
)


_CHECKED_FOR_DEAD_CRAWLS: set[str] = set()


class StorageError(RuntimeError):
    """The archive database cannot be written; the message is one line naming the file and why."""


def is_fatal_storage_error(error: BaseException | str) -> bool:
    """True for an error after which the archive cannot be written at all (disk full, read-only)."""
    if isinstance(error, OSError):
        return True
    name = getattr(error, "sqlite_errorname", "") or ""
    return name.startswith(FATAL_SQLITE_ERRORS) or any(m in str(error) for m in FATAL_STORAGE_MESSAGES)


def report_failure(
    crawler: Crawler, *, url: str | None, stage: str, reason: str, http_status: int | None = None
) -> None:
    crawler.signals.send_catch_log(
        signal=failure_recorded, url=url, stage=stage, reason=reason, http_status=http_status
    )


def count_failed_page(crawler: Crawler) -> None:
    """An article page fetched and not used: an error answer, not HTML, extraction failed."""
    crawler.stats.inc_value("news/pages/failed")


class PageCounter:
    """Counts each answer a crawl fetched in exactly one place, so that a run's counts add up to
    its responses (``downloader/response_count``):

    - answers a downloader middleware acted on (retried, redirected, a redirect refused) never
      reach the engine: ``news/pages/retried_or_redirected`` goes up as each answer is downloaded
      and down as the engine receives one (it holds the answers in flight until the crawl ends);
    - a 304 to a conditional request is ``not_modified``; any other error status the request did
      not ask to handle is a failed page; robots.txt, feeds, sitemaps and listings are discovery;
    - an article page is counted by what becomes of it: not HTML or extraction failed (failed),
      not an article (ArticleFilterPipeline), new, updated, unchanged or a copy (DedupePipeline).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats
        self.crawler = crawler

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        self.stats.inc_value("news/pages/retried_or_redirected")

    def response_received(self, response: Response, request: Request, spider: Spider) -> None:
        self.stats.inc_value("news/pages/retried_or_redirected", -1)
        status = response.status
        if status == 304:
            self.stats.inc_value("news/http/not_modified")
        elif not 200 <= status < 300 and not self._handled(request, status):
            count_failed_page(self.crawler)
        elif request.meta.get("news_kind") != "article":
            self.stats.inc_value("news/pages/discovery")

    @staticmethod
    def _handled(request: Request, status: int) -> bool:
        """The request takes this status to its callback (HttpErrorMiddleware lets it through);
        Scrapy's robots.txt requests take any (a 4xx robots.txt means no rules)."""
        meta = request.meta
        return (
            bool(meta.get("dont_obey_robotstxt") and "news_kind" not in meta)
            or status in meta.get("handle_httpstatus_list", ())
            or bool(meta.get("handle_httpstatus_all"))
        )


class FailureRecorder:
    """What every run recorder does with a failure: the `failure_recorded` signal, and the errors
    Scrapy reports from a spider callback (stage parse) or an item pipeline (stage store, or the
    exception's own `stage`; dropped items are no failures). Each is counted (``news/failures``,
    ``news/failures/<stage>``), logged with its credentials masked, and kept by `keep_failure`:
    in the `failures` table (CrawlRunRecorder), or sent to the writer from a worker of a shared
    crawl (distributed.worker.WorkerRunRecorder)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        install_log_redaction(known_secrets(crawler.settings))
        recorder = cls(crawler)
        recorder.listen_for_failures()
        return recorder

    def listen_for_failures(self) -> None:
        self.crawler.signals.connect(self.spider_error, signal=signals.spider_error)
        self.crawler.signals.connect(self.item_error, signal=signals.item_error)
        self.crawler.signals.connect(self.failure, signal=failure_recorded)
        self.pages = PageCounter(self.crawler)  # kept: signals hold their receivers weakly
        self.crawler.signals.connect(self.pages.response_downloaded, signal=signals.response_downloaded)
        self.crawler.signals.connect(self.pages.response_received, signal=signals.response_received)

    def failure(self, url: str | None, stage: str, reason: str, http_status: int | None = None) -> None:
        url, reason = (redact(url) if url else url), redact(reason)
        self.crawler.stats.inc_value("news/failures")
        self.crawler.stats.inc_value(f"news/failures/{stage}")
        logger.warning("failure [%s] %s: %s", stage, url, reason)
        self.keep_failure(url, stage, reason, http_status)

    def keep_failure(self, url: str | None, stage: str, reason: str, http_status: int | None) -> None:
        """Keep a failure, counted and masked already."""
        raise NotImplementedError

    def spider_error(self, failure: Failure, response: Response, spider: Spider) -> None:
        if response.meta.get("news_kind") == "article":  # a page read to find articles is counted already
            count_failed_page(self.crawler)
        self.failure(response.url, "parse", f"{failure.type.__name__}: {failure.value}", response.status)

    def item_error(self, item: Any, response: Response | None, spider: Spider, failure: Failure) -> None:
        if isinstance(failure.value, DropItem):
            return
        if not getattr(item, "status", None):  # not counted as new, updated, ... by DedupePipeline yet
            count_failed_page(self.crawler)
        url = getattr(item, "url", None)
        self.failure(url, getattr(failure.value, "stage", "store"), f"{failure.type.__name__}: {failure.value}")


class CrawlRunRecorder(FailureRecorder):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.run_id: int | None = None
        self.source: str | None = None
        self.storage_failed = False
        self._closing: Any = None  # the Deferred closing the spider after a storage error
        # After a storage error SQLite can keep refusing writes on the connection that failed,
        # even small ones that would fit: the run's own rows then go through a fresh one.
        self._fresh: Archive | None = None
        self._reopened = False
        # Failures after a storage error: written with the run's end, in one transaction, so
        # what little room is left goes to one commit instead of one per page.
        self._unwritten: list[dict[str, Any]] = []
        self._saving: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRunRecorder:
        install_log_redaction(known_secrets(crawler.settings))
        recorder = cls(crawler)
        # The run row is written now, before the engine starts: a database that cannot be
        # written ends the crawl here (exit status 1) instead of failing on every page.
        recorder.start_run(crawler.spider)
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        recorder.listen_for_failures()
        return recorder

    @property
    def archive(self) -> Archive:
        return self._fresh or crawl_archive(self.crawler)

    def start_run(self, spider: Spider | None) -> None:
        source: Source | None = getattr(spider, "source", None)
        self.source = source.name if source else getattr(spider, "name", None) or "unknown"
        try:
            self.close_runs_of_dead_crawls()
            if source is not None:
                self.archive.sync_source(source, adhoc=bool(getattr(spider, "adhoc_url", None)))
            self.run_id = self.archive.start_run(self.source, log_file=self.crawler.settings.get("LOG_FILE"))
        except (sqlite3.Error, OSError) as exc:
            message = self._storage_message(exc)
            logger.error("%s; the crawl of %s does not start", message, self.source)
            raise StorageError(message) from None

    def close_runs_of_dead_crawls(self) -> None:
        """Once per process and database: runs a crawl killed outright left 'running' are closed."""
        path = self.crawler.settings.get("NEWS_DB_PATH")
        if path not in _CHECKED_FOR_DEAD_CRAWLS:
            _CHECKED_FOR_DEAD_CRAWLS.add(path)
            self.archive.close_runs_of_dead_crawls()

    def spider_opened(self, spider: Spider) -> None:
        spider.run_id = self.run_id  # type: ignore[attr-defined]
        logger.info("crawl run %s started for source %s", self.run_id, self.source, extra={"spider": spider})
        every = self.crawler.settings.getfloat("NEWS_RUN_COUNTS_EVERY", RUN_COUNTS_EVERY)
        if every > 0:
            self._saving = task.LoopingCall(self.save_counts)
            self._saving.start(every, now=False)

    def counts(self) -> dict[str, int]:
        stats = self.crawler.stats
        return {column: int(stats.get_value(key, 0) or 0) for column, key in RUN_COUNTS.items()}

    def save_counts(self) -> None:
        """The counts so far, into the run's row (still running): what a killed crawl leaves."""
        if self.run_id is None or self.storage_failed:
            return
        run_id, counts = self.run_id, self.counts()
        self._write(lambda archive: archive.save_counts(run_id, counts))

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._saving is not None and self._saving.running:
            self._saving.stop()
        if self.run_id is None:
            return
        counts = self.counts()
        status = "ok" if reason == "finished" else "cancelled" if reason == "shutdown" else "failed"
        run_id, unwritten, self._unwritten = self.run_id, self._unwritten, []

        def finish(archive: Archive, failures: list[dict[str, Any]]) -> None:
            # IMMEDIATE: a deferred transaction that reads first fails at once ("database is
            # locked") when another process commits in between, instead of waiting its turn.
            with archive.immediate_transaction():
                for row in failures:
                    archive.record_failure(**row)
                archive.finish_run(run_id, status=status, finish_reason=reason, counts=counts)

        if self._write(lambda archive: finish(archive, unwritten)) or (
            unwritten and self._write(lambda archive: finish(archive, []))
        ):
            logger.info("crawl run %s %s (%s): %s", run_id, status, reason, counts, extra={"spider": spider})
        else:
            logger.error("crawl run %s (%s) could not be recorded: it stays marked running", run_id, reason)
        if self._fresh is not None:
            self._fresh.close()
            self._fresh = None

    def keep_failure(self, url: str | None, stage: str, reason: str, http_status: int | None) -> None:
        """Into the `failures` table; a fatal storage error (disk full, read-only) also stops the crawl."""
        if stage == "store" and is_fatal_storage_error(reason):
            self.stop_for_storage(reason)
        row = {
            "run_id": self.run_id,
            "source": self.source,
            "url": url,
            "stage": stage,
            "reason": reason,
            "http_status": http_status,
        }
        if self.storage_failed or not self._write(lambda archive: archive.record_failure(**row)):
            self._unwritten.append(row)
        else:
            self.save_counts()  # the run's failure count moves with its failures

    def _write(self, write: Callable[[Archive], object]) -> bool:
        """Run one of the recorder's writes; after a storage error, retry once on a fresh connection."""
        for attempt in (1, 2):
            try:
                write(self.archive)
            except (sqlite3.Error, OSError) as exc:
                self.stop_for_storage(exc)
                if attempt == 2 or not self._reopen():
                    return False
            else:
                return True
        return False

    def _reopen(self) -> bool:
        if self._reopened:
            return False
        self._reopened = True
        try:
            self._fresh = Archive.open(self.crawler.settings.get("NEWS_DB_PATH"))
        except (sqlite3.Error, OSError):
            return False
        return True

    def stop_for_storage(self, error: BaseException | str) -> None:
        """The archive cannot be written: stop fetching pages that could not be kept (once)."""
        if self.storage_failed:
            return
        self.storage_failed = True
        logger.error("%s; stopping the crawl", self._storage_message(error))
        self.crawler.stats.set_value("news/storage_error", redact(str(error)))
        if self.crawler.engine.spider is not None:  # not when the close itself is what failed
            self._closing = deferred_from_coro(self.crawler.engine.close_spider_async(reason="storage_error"))

    def _storage_message(self, error: BaseException | str) -> str:
        path = self.crawler.settings.get("NEWS_DB_PATH")
        return f"cannot write the archive database {path}: {redact(str(error))}"


class DiskRequestQueue:
    """Keeps a crawl's pending requests on disk (Scrapy's JOBDIR queues) instead of in memory.

    A 50,000-URL sitemap otherwise leaves 50,000 Request objects in the scheduler's memory queue
    until they are fetched: the crawl process grows with the sitemap (bench/throughput.py measured
    361 MB against 223 MB with this). Each crawl gets a fresh directory, removed when it closes, so
    nothing is ever resumed by accident. A JOBDIR the user sets is left alone. A crawl killed
    outright (the daemon's timeout, kill -9) cannot remove its directory: the next crawl removes
    those older than STALE_AFTER, which no crawl lives that long (timeouts are hours at most).
    """

    PREFIX = "news-queue-"
    STALE_AFTER = 24 * 3600  # seconds

    def __init__(self, crawler: Crawler) -> None:
        self.path: str | None = None
        if not crawler.settings.get("JOBDIR"):
            self.remove_stale(Path(tempfile.gettempdir()))
            self.path = tempfile.mkdtemp(prefix=self.PREFIX)
            crawler.settings.set("JOBDIR", self.path, priority="spider")

    @classmethod
    def remove_stale(cls, folder: Path, now: float | None = None) -> list[Path]:
        """Remove queue directories left by killed crawls; returns what was removed."""
        now = now or time.time()
        removed = []
        for path in folder.glob(cls.PREFIX + "*"):
            try:
                stale = now - path.stat().st_mtime > cls.STALE_AFTER
            except FileNotFoundError:  # another crawl removed it meanwhile
                continue
            if stale and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DiskRequestQueue:
        queue = cls(crawler)
        crawler.signals.connect(queue.spider_closed, signal=signals.spider_closed)
        return queue

    def spider_closed(self, spider: Spider) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


# --- log lines about items: the URL and the reason, never the page --------------------------------

# A reason longer than this is cut: an exception's message can quote the page it choked on.
LOG_REASON_CHARS = 300


def item_url(item: Any, response: Response | Failure | None = None) -> str:
    """The URL an item stands for: its own, else the response it came from."""
    url = getattr(item, "url", None) or (item.get("url") if isinstance(item, dict) else None)
    if not url:
        url = getattr(response, "url", None) or type(item).__name__
    return str(url)


def one_line_reason(exception: BaseException, url: str) -> str:
    """An exception's message on one short line, without the URL the line names already."""
    reason = " ".join(str(exception).split()) or type(exception).__name__
    reason = reason.removesuffix(f": {url}")  # "not an article: too short (...): <url>"
    if len(reason) > LOG_REASON_CHARS:
        reason = reason[: LOG_REASON_CHARS - 3] + "..."
    return reason


class ItemLogFormatter(LogFormatter):
    """Scrapy's lines about items name the item's URL and the reason, never the item itself.

    Scrapy logs the whole item, and an ArticleItem carries the page's HTML: one dropped 10 MB page
    was a 10 MB log line. Tracebacks stay where Scrapy attaches them: an item error (an exception
    in a pipeline) and a download error (a request without an errback to record its failure) are
    our bugs. Set as LOG_FORMATTER in crawl/settings.py.
    """

    def scraped(self, item: Any, response: Response | Failure | None, spider: Spider) -> LogFormatterResult:
        return {"level": logging.DEBUG, "msg": "Scraped %(url)s", "args": {"url": item_url(item, response)}}

    def dropped(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        url = item_url(item, response)
        line = super().dropped(item, exception, response, spider)  # keeps Scrapy's choice of level
        return {
            "level": line["level"],
            "msg": "Dropped %(url)s: %(reason)s",
            "args": {"url": url, "reason": one_line_reason(exception, url)},
        }

    def item_error(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        url = item_url(item, response)
        return {
            "level": logging.ERROR,
            "msg": "Error processing %(url)s: %(reason)s",
            "args": {"url": url, "reason": one_line_reason(exception, url)},
        }

    def download_error(
        self, failure: Failure, request: Request, spider: Spider, errmsg: str | None = None
    ) -> LogFormatterResult:
        reason = " ".join((errmsg or failure.getErrorMessage()).split())
        return {
            "level": logging.ERROR,
            "msg": "Error downloading %(url)s: %(reason)s",
            "args": {"url": request.url, "reason": reason[:LOG_REASON_CHARS]},
        }
