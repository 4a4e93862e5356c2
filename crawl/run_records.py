"""CrawlRunRecorder: one `crawl_runs` row per crawl, and every failure in the `failures` table.

Components report failures by sending the `failure_recorded` signal (crawl/failures.py), so the
spider and the pipelines never talk to the database about runs themselves.

Two guarantees live here too, because every crawl passes through this extension first:

- A database that cannot be written (read-only, disk full, not a database) stops the crawl
  with one clear line, never a traceback per page: at start the crawl does not begin
  (ArchiveUnwritable, exit status 1); mid-crawl it closes as ``storage_error`` (run status failed).
- Credentials never reach a log line or the `failures` table: ``user:password@`` in URLs and
  the passwords the process knows (HTTPAUTH_PASS, proxies from the environment) are masked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypedDict

from scrapy import signals
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from archive.store import Archive, StorageError
from config.redaction import install_log_redaction, known_secrets, redact
from crawl.archive_access import crawl_archive
from crawl.failures import FailureRecorder
from crawl.storage_errors import ArchiveUnwritable, is_fatal_storage_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler
    from scrapy.spiders import Spider

    from config.sources import Source

logger = logging.getLogger(__name__)


class FailureRow(TypedDict):
    """A failure kept for the `failures` table: Archive.record_failure's keyword arguments, so a row
    that could not be written yet is written later as it is."""

    run_id: int | None
    source: str | None
    url: str | None
    stage: str
    reason: str
    http_status: int | None


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
    "article_pages": "news/pages/article",
    # Not page counts of their own (a challenge page is also a not-article): source health reads them.
    "pages_challenge": "news/pages/challenge",
    "robots_refused": "robotstxt/forbidden",
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


_CHECKED_FOR_DEAD_CRAWLS: set[str] = set()


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
        self._unwritten: list[FailureRow] = []
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
        except (StorageError, OSError) as exc:
            message = self._storage_message(exc)
            logger.error("%s; the crawl of %s does not start", message, self.source)
            raise ArchiveUnwritable(message) from None

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

        def finish(archive: Archive, failures: list[FailureRow]) -> None:
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
        row: FailureRow = {
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
            except (StorageError, OSError) as exc:
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
        except (StorageError, OSError):
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
