"""The writer of a shared crawl (`scheduler.py writer`): the one process that writes what the
workers push to Redis into the archive, next to the database.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from archive.dedupe import decide
from archive.schema import open_db
from archive.shared_writes import WriterArchive, records_seen_since, stored_records
from archive.site_chrome import strip_site_chrome
from archive.staging import must_flush_first, stage
from archive.store import StorageError
from config.dates import utc_now_iso
from crawl.run_records import RUN_COUNTS
from distributed.messages import decode_item
from distributed.redis_link import (
    HEARTBEAT,
    ITEMS_KEY,
    PROCESSING_KEY,
    STORED_MARKER,
    WORKER_ID,
    WORKER_TTL,
    WRITER_KEY,
    RedisDown,
    RedisLink,
    stored_key,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import redis

logger = logging.getLogger(__name__)

STATUS_COLUMNS = {
    "new": "articles_new",
    "updated": "articles_updated",
    "unchanged": "articles_unchanged",
    "duplicate": "articles_duplicate",
    "alias": "articles_duplicate",
}


class Writer:
    """Drains what the workers push into the archive: items through dedupe and store, and run
    records (failures, counts, URLs seen again, pages taken down), one transaction per batch.

    Messages move from ``news:items`` to ``news:items:processing`` (LMOVE) and leave the processing
    list only after their batch is committed. Messages found there at start-up belong to a writer
    that died mid-batch: they go back to the queue, and dedupe recognises any article already
    committed. After each commit the writer publishes what it stored to ``news:stored:<url>``,
    where the workers look before downloading an article.
    """

    def __init__(self, link: RedisLink, settings: Any, *, batch_size: int = 50) -> None:
        self.link = link
        self.settings = settings
        self.batch_size = batch_size
        self.ttl = settings.getint("NEWS_REDIS_STORED_TTL")
        self.stored = 0
        self.unacknowledged: set[str] | None = None  # committed; published and acknowledged next
        self.needs_recovery = True
        self.recoveries_seen = -1
        self.stopping = False  # set by request_stop(): the batch in hand is finished first
        self.last_beat = 0.0
        self._open_stages()

    def _open_stages(self) -> None:
        # A fresh archive: its in-memory "decided this run" caches must match what is committed.
        old: WriterArchive | None = getattr(self, "archive", None)
        if old is not None:
            old.close()
        self.archive: WriterArchive = WriterArchive(open_db(self.settings.get("NEWS_DB_PATH")), run_columns=RUN_COUNTS)
        self.keep_raw = self.settings.getbool("NEWS_KEEP_RAW_HTML")

    def request_stop(self) -> None:
        self.stopping = True

    def beat(self) -> None:
        """Tell the coordinator a writer is draining the queue (`push` waits for it to finish)."""
        if time.monotonic() - self.last_beat >= HEARTBEAT:
            self.link.call("beating", lambda client: client.set(WRITER_KEY, WORKER_ID, ex=WORKER_TTL))
            self.last_beat = time.monotonic()

    # --- the queue ------------------------------------------------------------------------

    def recover(self) -> int:
        """Put a dead writer's unacknowledged messages back in the queue; returns how many."""

        def move(client: redis.Redis) -> int:
            moved = 0
            while client.lmove(PROCESSING_KEY, ITEMS_KEY, "RIGHT", "RIGHT") is not None:
                moved += 1
            return moved

        moved = self.link.call("recovering unacknowledged items", move)
        if moved:
            logger.info("requeued %d items a previous writer had not committed", moved)
        self.needs_recovery = False
        return moved

    def take(self, wait: float) -> list[bytes]:
        def take(client: redis.Redis) -> list[bytes]:
            # BLMOVE's timeout is a double (Redis 6+) and redis-py sends it as given, but types it int:
            # rounding would turn a short wait into 0, which blocks forever.
            first = client.blmove(ITEMS_KEY, PROCESSING_KEY, wait, "RIGHT", "LEFT")  # type: ignore[arg-type]
            if first is None:
                return []
            batch = [first]
            while len(batch) < self.batch_size:
                data = client.lmove(ITEMS_KEY, PROCESSING_KEY, "RIGHT", "LEFT")
                if data is None:
                    break
                batch.append(data)
            # connect() leaves decode_responses off, so replies are bytes; redis-py's types also allow str.
            return cast("list[bytes]", batch)

        return self.link.call("taking items", take)

    # --- a batch --------------------------------------------------------------------------

    def write(self, batch: list[bytes]) -> None:
        touched: set[str] = set()
        for data in batch:
            try:
                touched |= self.apply(json.loads(data))
            except (ValueError, TypeError, KeyError) as exc:
                self.archive.failures.append(self._failure_row(None, None, f"unreadable message dropped: {exc!r}"))
                logger.error("writer: dropped a message it could not read: %r", exc)
        self.stored += self.archive.flush()  # we commit, once per batch, before acknowledging
        self.unacknowledged = touched
        self.acknowledge()

    def apply(self, message: dict[str, Any]) -> set[str]:
        """Take one message into the pending batch; returns the URLs whose stored state it changes."""
        kind = message.get("kind", "item")
        pending = self.archive.pending
        if kind == "item":
            item = decode_item(message)
            strip_site_chrome(self.archive.chrome, item)
            decide(self.archive, item)  # the dedupe and store steps of a crawl's pipelines
            if must_flush_first(self.archive, item):
                self.archive.flush()  # a StorageError: nothing of the batch is acknowledged
            stage(self.archive, item, keep_raw=self.keep_raw)
            self._count(message.get("run_id"), {STATUS_COLUMNS[item.status]: 1})
            return {item.url, *(u for u in (item.duplicate_of, item.replaces) if u), *item.aliases}
        if kind == "failure":
            row = {
                k: message.get(k) for k in ("run_id", "source", "url", "stage", "http_status", "reason", "occurred_at")
            }
            row["reason"] = (row["reason"] or "")[:2000]
            self.archive.failures.append(row)
            return set()
        if kind == "counts":
            self._count(message.get("run_id"), message["counts"])
            return set()
        if kind == "seen":
            pending.seen.update(message["urls"])
            return set(message["urls"])
        if kind == "taken_down":
            pending.taken_down.update(message["urls"])
            return set(message["urls"])
        if kind == "not_articles":
            pending.not_articles.update(message["pages"])
            return set(message["pages"])
        raise ValueError(f"unknown message kind {kind!r}")

    def _count(self, run_id: int | None, counts: Mapping[str, int]) -> None:
        if run_id is not None:
            self.archive.counts.setdefault(int(run_id), Counter()).update(counts)

    @staticmethod
    def _failure_row(run_id: int | None, url: str | None, reason: str) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "source": None,
            "url": url,
            "stage": "store",
            "http_status": None,
            "reason": reason,
            "occurred_at": utc_now_iso(),
        }

    def acknowledge(self) -> None:
        """Publish what the committed batch changed, and clear the processing list, atomically."""
        touched = self.unacknowledged or set()
        records = self._stored_records(touched)

        def publish(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            for url, record in records.items():
                pipe.set(stored_key(url), json.dumps(record), ex=self.ttl)
            pipe.delete(PROCESSING_KEY)
            pipe.execute()

        self.link.call("acknowledging a batch", publish)
        self.unacknowledged = None

    def _stored_records(self, urls: set[str]) -> dict[str, dict[str, Any]]:
        """How the workers should see each URL: a stored article (with its fetch times) or an alias."""
        return stored_records(self.archive.db, urls)

    def publish_stored(self) -> int:
        """Publish every article seen within NEWS_REDIS_STORED_TTL (and its aliases) to Redis, when
        Redis does not have them: on a first start, or after a restart that lost its data."""
        if self.link.call("checking stored URLs", lambda client: client.exists(STORED_MARKER)):
            return 0
        since = (datetime.now(UTC) - timedelta(seconds=self.ttl)).replace(microsecond=0).isoformat()
        published = 0
        for records in records_seen_since(self.archive.db, since):
            self._set_records(records)
            published += len(records)
        self.link.call("publishing stored URLs", lambda client: client.set(STORED_MARKER, utc_now_iso()))
        logger.info("published %d stored URLs to Redis for the workers", published)
        return published

    def _set_records(self, records: Mapping[str, dict[str, Any]]) -> None:
        def publish(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            for url, record in records.items():
                pipe.set(stored_key(url), json.dumps(record), ex=self.ttl)
            pipe.execute()

        self.link.call("publishing stored URLs", publish)

    # --- the loop -------------------------------------------------------------------------

    def run(self, *, idle_exit: float | None = None, wait: float = 1.0) -> int:
        """Drain until stopped (or, with `idle_exit`, until the queue stayed empty that long).

        Redis down: wait and retry (logged with back-off by the link). SQLite failing: nothing is
        acknowledged, so the batch goes back to the queue and is tried again after a pause.
        """
        idle_since = time.monotonic()
        sqlite_delay = 1.0
        while not self.stopping:
            try:
                self.beat()
                if self.needs_recovery:
                    self.recover()
                if self.unacknowledged is not None:
                    self.acknowledge()
                if self.link.recoveries != self.recoveries_seen:  # first pass, or Redis came back
                    self.publish_stored()
                    self.recoveries_seen = self.link.recoveries
                batch = self.take(wait)
                if batch:
                    self.write(batch)
                    idle_since = time.monotonic()
                    sqlite_delay = 1.0
                elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    return self.stored
            except RedisDown:
                idle_since = time.monotonic()  # an outage is not idleness
                if self.unacknowledged is None:
                    # A take cut short leaves what it had moved in the processing list, which the
                    # next acknowledgement would delete uncommitted: put it back in the queue first.
                    self.needs_recovery = True
                time.sleep(min(1.0, self.link.wait_time()))  # short naps: a stop request is noticed
            except StorageError as exc:
                logger.error("writer: could not commit a batch: %s; retrying in %.0fs", exc, sqlite_delay)
                time.sleep(sqlite_delay)
                sqlite_delay = min(sqlite_delay * 2, 60.0)
                self._open_stages()
                self.needs_recovery = True
        logger.info("writer: stopping")
        return self.stored
