"""StorePipeline: batched, transactional writes of articles, aliases and raw HTML to SQLite."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from twisted.internet import task

from archive.raw_html import raw_page_row
from archive.store import Archive
from config.dates import utc_now_iso
from crawl.extensions import report_failure

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem

logger = logging.getLogger(__name__)


REVISION_COLUMNS = (
    "url",
    "title",
    "authors",
    "published_at",
    "modified_at",
    "text",
    "body_hash",
    "fetched_at",
)


def revision_row(previous: dict[str, Any], *, replaced_at: str) -> dict[str, Any]:
    """The replaced version of an article, with what the new version changed."""
    row = {name: previous[name] for name in REVISION_COLUMNS}
    row.update(version=previous["version"] or 1, replaced_at=replaced_at, changed=previous["changed"])
    return row


class StorePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.batch_size = crawler.settings.getint("NEWS_STORE_BATCH_SIZE")
        self.max_wait = crawler.settings.getfloat("NEWS_STORE_MAX_WAIT")
        self.keep_raw = crawler.settings.getbool("NEWS_KEEP_RAW_HTML")
        self.pending_urls: list[str] = []
        self.oldest_pending: float | None = None  # monotonic time the batch's first item came
        self.timer: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    @property
    def archive(self) -> Archive:
        return Archive.for_crawler(self.crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        if item.replaces and any(row["url"] == item.replaces for row in self.archive.pending.new):
            self.flush()  # the copy being replaced must be in the database before the swap
        now = utc_now_iso()
        pending = self.archive.pending
        if item.replaces:
            pending.replaced[item.replaces] = item.url
        target = item.url if item.status in ("new", "updated", "unchanged") else item.duplicate_of
        if item.status in ("new", "updated"):
            row = item.article_row()
            row.update(first_seen_at=item.first_seen_at or now, last_seen_at=now)
            row["updated_at"] = now if item.status == "updated" else None
            (pending.new if item.status == "new" else pending.updated).append(row)
            if item.previous is not None:
                pending.revisions.append(revision_row(item.previous, replaced_at=now))
            if self.keep_raw:
                pending.raw_pages.append(
                    raw_page_row(
                        item.url,
                        item.html,
                        fetched_at=item.fetched_at,
                        http_status=item.http_status,
                        content_type=item.content_type,
                        compressed=item.raw_html,
                    )
                )
        elif target:
            pending.seen.add(target)
            if item.status == "unchanged":  # fetched again: the re-visit clock moves on
                pending.refetched[target] = item.fetched_at
        for alias, reason in item.aliases.items():
            if alias != target:
                pending.aliases.append(
                    {
                        "alias": alias,
                        "url": target,
                        "reason": reason,
                        "source": item.source,
                        "first_seen_at": now,
                    }
                )
        self.pending_urls.append(item.url)
        if self.oldest_pending is None:
            self.oldest_pending = time.monotonic()
        if len(pending) >= self.batch_size:
            self.flush()
        return item

    def open_spider(self) -> None:
        # A slow, polite crawl fills a batch in minutes: what it found is written within
        # max_wait seconds all the same, so Datasette shows it while the crawl goes on.
        if self.max_wait > 0:
            self.timer = task.LoopingCall(self.flush_if_waited)
            self.timer.start(self.max_wait / 2, now=False)

    def close_spider(self) -> None:
        if self.timer is not None and self.timer.running:
            self.timer.stop()
        self.flush()

    def flush_if_waited(self) -> None:
        if self.oldest_pending is not None and time.monotonic() - self.oldest_pending >= self.max_wait:
            self.flush()

    def flush(self) -> None:
        try:
            written = self.archive.flush()
        except sqlite3.Error as exc:
            logger.error("could not store %d articles: %s", len(self.pending_urls), exc)
            for url in self.pending_urls:
                report_failure(self.crawler, url=url, stage="store", reason=f"{type(exc).__name__}: {exc}")
        else:
            if written:
                logger.debug("stored a batch of %d writes", written)
        self.pending_urls.clear()
        self.oldest_pending = None
