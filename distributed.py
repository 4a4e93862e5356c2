"""Crawl workers on several machines, one SQLite writer: the parts that talk to Redis.

With NEWS_REDIS_URL set, a crawl process becomes a *worker*: scrapy-redis's scheduler and duplicate
filter replace Scrapy's, so every worker on every machine shares one request queue and one seen-set
per source; the pipeline stops after extraction and canonical URLs, and pushes each item to a Redis
list. One *writer* next to the database drains that list through the same dedupe and store stages
as the single-machine crawl::

    python scheduler.py worker NAME... --redis redis://host:6379/0     # on any machine, any number
    python scheduler.py writer --redis redis://host:6379/0 --db data/news.db   # one per archive

Redis keys (all under ``news:``):

- ``news:<source>:requests``, ``news:<source>:seen``: scrapy-redis's queue and seen-set
- ``news:<source>:round``: held by the worker that pushed this round's seeds (the others join)
- ``news:items``, ``news:items:processing``: finished items; taken by the writer with LMOVE and
  acknowledged (deleted from the processing list) only after the SQLite commit
- ``news:polite:<host>``, ``news:polite:<host>:delay``: the shared per-host limiter
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis
from scrapy_redis.scheduler import Scheduler

from items import ArticleItem

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

ITEMS_KEY = "news:items"
PROCESSING_KEY = "news:items:processing"


def queue_key(source: str) -> str:
    return f"news:{source}:requests"


def seen_key(source: str) -> str:
    return f"news:{source}:seen"


def round_key(source: str) -> str:
    return f"news:{source}:round"


def apply_worker_settings(settings: Any, redis_url: str) -> None:
    """Turn a crawl process's settings into a worker's of the shared crawl."""
    for name, value in {
        "NEWS_REDIS_URL": redis_url,
        "NEWS_REDIS_WORKER": True,
        "REDIS_URL": redis_url,
        "SCHEDULER": "distributed.RedisScheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        # A worker that ends must leave the queue and seen-set to the others: a round ends in
        # SharedRound, when every worker has gone idle.
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
    }.items():
        settings.set(name, value, priority="cmdline")
    pipelines = dict(settings.getdict("ITEM_PIPELINES"))
    # Dedupe and store run in the writer, next to the database.
    pipelines.update({"pipelines.dedupe.DedupePipeline": None, "pipelines.store.StorePipeline": None})
    pipelines["distributed.PushItemPipeline"] = 500
    settings.set("ITEM_PIPELINES", pipelines, priority="cmdline")
    middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
    middlewares["distributed.SharedPolitenessMiddleware"] = 950  # last before the download
    settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="cmdline")


def source_settings(source: str) -> dict[str, Any]:
    """Per-crawler settings: each source has its own queue and seen-set."""
    return {"SCHEDULER_QUEUE_KEY": queue_key(source), "SCHEDULER_DUPEFILTER_KEY": seen_key(source)}


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)


def wait_for_redis(url: str, *, give_up_after: float | None = None) -> redis.Redis:
    """Connect, waiting with back-off while Redis is down, so an outage never becomes a crash loop."""
    delay, started = 0.5, time.monotonic()
    while True:
        client = connect(url)
        try:
            client.ping()
            return client
        except redis.ConnectionError as exc:
            if give_up_after is not None and time.monotonic() - started > give_up_after:
                raise
            logger.warning("Redis at %s unavailable (%s): retrying in %.1fs", url, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


class RedisScheduler(Scheduler):
    """scrapy-redis 0.9.1's scheduler without its `stats.inc_value(..., spider=...)` calls, which
    Scrapy 2.14+ deprecates (a warning per request otherwise)."""

    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        request = self.queue.pop(self.idle_before_close)
        if request and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request


# --- rounds: who seeds, when a worker may stop -----------------------------------------------


class SharedRound:
    """One round of a source's shared crawl. The first worker to start claims it, clears the
    previous round's queue and seen-set and pushes the seeds; later workers join. A worker stops
    only when the shared queue has stayed empty and it has fetched nothing for NEWS_REDIS_IDLE_GRACE
    seconds; the last one out ends the round (deletes its key), so the next run seeds again."""

    def __init__(self, crawler: Crawler, source: str) -> None:
        self.crawler = crawler
        self.source = source
        self.client = connect(crawler.settings.get("NEWS_REDIS_URL"))
        self.grace = crawler.settings.getfloat("NEWS_REDIS_IDLE_GRACE")
        self.ttl = crawler.settings.getint("NEWS_REDIS_ROUND_TTL")
        self.idle_since: float | None = None
        self.dequeued = -1

    def claim(self) -> bool:
        if not self.client.set(round_key(self.source), uuid.uuid4().hex, nx=True, ex=self.ttl):
            logger.info("joining the running round of %s", self.source)
            return False
        # A round is fresh: what a previous, interrupted round left is found again from the seeds.
        self.client.delete(queue_key(self.source), seen_key(self.source))
        logger.info("opened a new round of %s: pushing its seeds", self.source)
        return True

    def spider_idle(self) -> None:
        from scrapy.exceptions import DontCloseSpider

        try:
            waiting = self.client.zcard(queue_key(self.source))
        except redis.ConnectionError as exc:
            logger.warning("Redis unavailable (%s): waiting", exc)
            raise DontCloseSpider from None
        dequeued = self.crawler.stats.get_value("scheduler/dequeued/redis", 0)
        if waiting or dequeued != self.dequeued:
            self.dequeued, self.idle_since = dequeued, time.monotonic()
            raise DontCloseSpider
        if self.idle_since is None:
            self.idle_since = time.monotonic()
        if time.monotonic() - self.idle_since < self.grace:
            raise DontCloseSpider
        self.client.delete(round_key(self.source))


# --- items ------------------------------------------------------------------------------------


def encode_item(item: ArticleItem) -> str:
    row = dataclasses.asdict(item)
    row["signature"] = base64.b64encode(item.signature).decode("ascii")
    return json.dumps(row, ensure_ascii=False)


def decode_item(data: bytes | str) -> ArticleItem:
    row = json.loads(data)
    row["signature"] = base64.b64decode(row["signature"])
    return ArticleItem(**row)


class PushItemPipeline:
    """The worker's last stage: a finished item goes to the writer through Redis."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.client = connect(crawler.settings.get("NEWS_REDIS_URL"))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PushItemPipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        self.client.lpush(ITEMS_KEY, encode_item(item))
        self.crawler.stats.inc_value("news/items/pushed")
        return item


# --- politeness across workers ----------------------------------------------------------------

# KEYS: holders zset, delay key. ARGV: limit, token, lease ms, delay ms.
# Holders are scored by the Redis clock, so a killed worker's slot expires after the lease.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[4])) end
return 1
"""


class SharedPolitenessMiddleware:
    """Per-host concurrency (CONCURRENT_REQUESTS_PER_DOMAIN) and delay (DOWNLOAD_DELAY) across all
    workers: a download starts only with a slot from Redis, released when its response or error
    comes back. Last before the downloader, so robots.txt refusals never take a slot."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.limit = settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
        self.lease_ms = int((settings.getfloat("DOWNLOAD_TIMEOUT") + 30) * 1000)
        self.client = connect(settings.get("NEWS_REDIS_URL"))
        self.acquire = self.client.register_script(_ACQUIRE)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPolitenessMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        # Must either return None (go on to download) or raise: here we only wait for a slot.
        import asyncio

        from scrapy.utils.httpobj import urlparse_cached

        host = urlparse_cached(request).netloc
        token = uuid.uuid4().hex
        delay_ms = int(self.crawler.settings.getfloat("DOWNLOAD_DELAY") * 1000)
        keys = [f"news:polite:{host}", f"news:polite:{host}:delay"]
        while True:
            try:
                if self.acquire(keys=keys, args=[self.limit, token, self.lease_ms, delay_ms]):
                    break
            except redis.ConnectionError as exc:
                logger.warning("politeness limiter: Redis unavailable (%s), waiting", exc)
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(0.05)
        request.meta["news_polite_slot"] = (keys[0], token)

    def process_response(self, request: Request, response: Response) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._release(request)

    def _release(self, request: Request) -> None:
        slot = request.meta.pop("news_polite_slot", None)
        if slot is not None:
            with contextlib.suppress(redis.ConnectionError):  # the lease runs out on its own
                self.client.zrem(*slot)


# --- the writer -------------------------------------------------------------------------------


class _WriterCrawler:
    """What the dedupe and store pipelines read from a crawler: settings, stats, signals."""

    def __init__(self, settings: Any) -> None:
        from scrapy.signalmanager import SignalManager
        from scrapy.statscollectors import MemoryStatsCollector

        self.settings = settings
        self.signals = SignalManager(self)
        self.stats = MemoryStatsCollector(self)  # type: ignore[arg-type]
        self.spider = None


class Writer:
    """Drains finished items into the archive: dedupe, store, commit, then acknowledge.

    Items move from ``news:items`` to ``news:items:processing`` (LMOVE) and leave the processing
    list only after their batch is committed. Items found there at start-up belong to a writer that
    died mid-batch: they go back to the queue, and dedupe recognises any already committed.
    """

    def __init__(self, client: redis.Redis, settings: Any, *, batch_size: int = 50) -> None:
        self.client = client
        self.settings = settings
        self.batch_size = batch_size
        self.stored = 0
        self._open_stages()

    def _open_stages(self) -> None:
        import archive
        from pipelines.dedupe import DedupePipeline
        from pipelines.store import StorePipeline

        # A fresh Archive: its in-memory "decided this run" caches must match what is committed.
        archive._SHARED.clear()
        self.crawler = _WriterCrawler(self.settings)
        self.dedupe = DedupePipeline(self.crawler)  # type: ignore[arg-type]
        self.store = StorePipeline(self.crawler)  # type: ignore[arg-type]
        self.store.batch_size = 1 << 30  # we commit, once per batch, before acknowledging
        self.archive = archive.Archive.for_crawler(self.crawler)  # type: ignore[arg-type]

    def recover(self) -> int:
        """Put a dead writer's unacknowledged items back in the queue; returns how many."""
        moved = 0
        while self.client.lmove(PROCESSING_KEY, ITEMS_KEY, "RIGHT", "RIGHT") is not None:
            moved += 1
        if moved:
            logger.info("requeued %d items a previous writer had not committed", moved)
        return moved

    def take(self, wait: float) -> list[bytes]:
        first = self.client.blmove(ITEMS_KEY, PROCESSING_KEY, wait, "RIGHT", "LEFT")
        if first is None:
            return []
        batch = [first]
        while len(batch) < self.batch_size:
            data = self.client.lmove(ITEMS_KEY, PROCESSING_KEY, "RIGHT", "LEFT")
            if data is None:
                break
            batch.append(data)
        return batch

    def write(self, batch: list[bytes]) -> None:
        from scrapy.exceptions import DropItem

        for data in batch:
            try:
                item = self.dedupe.process_item(decode_item(data))
                self.store.process_item(item)
            except (DropItem, ValueError, TypeError) as exc:
                logger.warning("dropped an item the writer could not read: %s", exc)
        self.stored += self.archive.flush()
        self.client.delete(PROCESSING_KEY)  # acknowledged: the batch is committed

    def run(self, *, idle_exit: float | None = None, wait: float = 1.0) -> int:
        """Drain until stopped (or, with `idle_exit`, until the queue stayed empty that long)."""
        import sqlite3

        self.recover()
        idle_since = time.monotonic()
        while True:
            try:
                batch = self.take(wait)
                if batch:
                    self.write(batch)
                    idle_since = time.monotonic()
                elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                    return self.stored
            except redis.ConnectionError as exc:
                logger.warning("writer: Redis unavailable (%s), retrying", exc)
                time.sleep(1.0)
            except sqlite3.Error as exc:
                # Nothing acknowledged: the batch goes back to the queue and is tried again.
                logger.error("writer: could not commit a batch: %s; retrying", exc)
                time.sleep(1.0)
                self._open_stages()
                self.recover()
