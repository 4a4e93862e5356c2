"""A worker of a shared crawl: `scheduler.py worker`, a Scrapy process whose queue, archive and
per-host limits are in Redis, and which needs no database.

apply_worker_settings() turns a crawl process's settings into a worker's: the scheduler takes its
requests from the shared queue (shared_queue.RedisScheduler), and in place of the parts that
write to SQLite come the ones here, which hand everything to the writer through Redis:

- SharedRound: a crawler's part in the rounds of its source (beats, run records, idleness)
- RedisArchive, WorkerSpider: the news spider reading stored articles and validators from Redis
  (RedisArchive is an archive.interfaces.ArticleLookup)
- SharedSkipStoredMiddleware: stored articles are not downloaded again
- WorkerRunRecorder: failures counted and sent to the writer
- PushItemPipeline: finished items sent to the writer
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider

from config.dates import utc_now_iso
from crawl.archive_access import article_lookup, install_archive
from crawl.failures import FailureRecorder
from crawl.run_records import RUN_COUNTS
from crawl.skip_stored import SkipStoredArticlesMiddleware
from distributed.leases import Leases
from distributed.messages import encode_item
from distributed.redis_link import (
    HEARTBEAT,
    ITEMS_KEY,
    VALIDATORS_KEY,
    WORKER_ID,
    WORKER_TTL,
    RedisDown,
    RedisLink,
    busy_key,
    queue_key,
    round_validators_key,
    seen_key,
    stored_key,
    worker_key,
)
from spiders.news import NewsSpider

if TYPE_CHECKING:
    import redis
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from crawl.items import ArticleItem
    from distributed.shared_queue import RedisScheduler

logger = logging.getLogger(__name__)

POLL_EVERY = 0.2  # seconds between an idle worker's looks at its queue (one Redis call each)


# --- a worker's settings ----------------------------------------------------------------------


def apply_worker_settings(settings: Any, redis_url: str, *, exit_when_idle: float = 0.0) -> None:
    """Turn a crawl process's settings into a worker's of the shared crawl."""
    for name, value in {
        "NEWS_REDIS_URL": redis_url,
        "NEWS_REDIS_WORKER": True,
        "NEWS_SHARED_ROUND": "distributed.worker.SharedRound",  # made by NewsSpider.from_crawler
        "NEWS_REDIS_EXIT_WHEN_IDLE": exit_when_idle,
        "REDIS_URL": redis_url,
        "SCHEDULER": "distributed.shared_queue.RedisScheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        # The queue and seen-set belong to the round, which the coordinator opens and closes.
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        # A worker serves round after round; the coordinator enforces each round's timeout.
        "CLOSESPIDER_TIMEOUT": 0,
    }.items():
        settings.set(name, value, priority="cmdline")
    _replace(
        settings,
        "ITEM_PIPELINES",
        # Dedupe and store run in the writer, next to the database.
        {"pipelines.dedupe.DedupePipeline": None, "pipelines.store.StorePipeline": None},
        {"distributed.worker.PushItemPipeline": 500},
    )
    _replace(
        settings,
        "SPIDER_MIDDLEWARES",
        {"crawl.skip_stored.SkipStoredArticlesMiddleware": None},
        {"distributed.worker.SharedSkipStoredMiddleware": 950},
    )
    _replace(settings, "DOWNLOADER_MIDDLEWARES", {}, {"distributed.politeness.SharedPolitenessMiddleware": 950})
    _replace(
        settings,
        "EXTENSIONS",
        # No database on a worker: run records go to the writer; the queue lives in Redis.
        {"crawl.run_records.CrawlRunRecorder": None, "crawl.disk_queue.DiskRequestQueue": None},
        {"distributed.worker.WorkerRunRecorder": 100},
    )


def _replace(settings: Any, name: str, removed: dict[str, None], added: dict[str, int]) -> None:
    components = dict(settings.getdict(name))
    components.update(removed)
    components.update(added)
    settings.set(name, components, priority="cmdline")


def source_settings(source: str) -> dict[str, Any]:
    """Per-crawler settings: each source has its own queue and seen-set."""
    return {"SCHEDULER_QUEUE_KEY": queue_key(source), "SCHEDULER_DUPEFILTER_KEY": seen_key(source)}


# --- a worker's part in the rounds of one source ---------------------------------------------


# KEYS: busy. ARGV: worker id. The mark a pop leaves too (shared_queue._POP).
_BUSY = """
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], t[1] * 1000 + math.floor(t[2] / 1000))
return 1
"""


class SharedRound:
    """One crawler's part in the shared rounds of its source (created by NewsSpider.from_crawler,
    which NEWS_SHARED_ROUND tells to). It installs the crawler's archive: a RedisArchive.

    Workers never seed: the coordinator opens each round with the source's seeds, so `claim()` is
    always False and the spider's `start()` yields nothing. The crawler learns which round (run)
    it works for from each request it pops, and meanwhile:

    - every HEARTBEAT it marks itself busy while it has work in progress (the coordinator ends a
      round only when no worker has been busy for the grace period) and sends what it has for the
      writer: the run's counts (requests, responses, ...), failures, stored URLs seen again and
      pages gone (404/410 on a re-visit);
    - when it goes idle it also hands over the validators (ETag, Last-Modified) of the feeds and
      sitemaps it fetched, for the coordinator to keep if the round ends cleanly;
    - with NEWS_REDIS_EXIT_WHEN_IDLE it closes after that many idle seconds; otherwise it waits for
      the next round. While Redis is down nothing is lost: events wait in memory.
    """

    def __init__(self, crawler: Crawler, source: str) -> None:
        self.crawler = crawler
        self.source = source
        self.link = RedisLink.for_url(crawler.settings.get("NEWS_REDIS_URL"))
        self.exit_when_idle = crawler.settings.getfloat("NEWS_REDIS_EXIT_WHEN_IDLE")
        self.run_id: int | None = None
        self.idle_since: float | None = None
        self.events: list[dict[str, Any]] = []  # failures, waiting to be sent
        self.seen: set[str] = set()  # stored articles seen again: their last_seen_at moves
        self.taken_down: set[str] = set()
        self.not_articles: dict[str, dict[str, str]] = {}  # pages found to be no article: url -> why
        self.counts: dict[int, Counter[str]] = {}  # run -> counts not sent yet
        self.counted: dict[str, int] = {}  # the stats at the last count
        self.validators: dict[int, dict[str, Any]] = {}  # run -> url -> validators not sent yet
        self.archive = RedisArchive(self)
        self.scheduler: RedisScheduler | None = None  # set when the scheduler opens
        self.leases = Leases(self.link)
        install_archive(crawler, self.archive)  # what the spider and SharedSkipStoredMiddleware read
        self.busy_script = self.link.client.register_script(_BUSY)
        self.heartbeat: Any = None  # a LoopingCall, made when the spider opens: making one imports
        # the reactor, which must not happen before Scrapy installs the asyncio one
        self.poller: Any = None  # the same, asking the queue for work
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    def claim(self) -> bool:
        """Whether this crawler pushes the seeds: never, the coordinator does (see above)."""
        logger.info("serving the shared queue of %s (worker %s)", self.source, WORKER_ID)
        return False

    def entered(self, run_id: int | None) -> None:
        """A request of round `run_id` was taken from the queue."""
        self.idle_since = None
        if run_id != self.run_id:
            self.count()  # what was done so far belongs to the previous round
            self.keep_validators()
            self.run_id = run_id
            logger.info("working on round %s of %s", run_id, self.source)

    # --- what goes to the writer ------------------------------------------------------------

    def failure(self, row: dict[str, Any]) -> None:
        self.events.append({"kind": "failure", "run_id": self.run_id, "source": self.source, **row})

    def count(self) -> None:
        """Move what the stats gained since the last count to the current run's counts."""
        stats = self.crawler.stats
        gained: Counter[str] = Counter()
        for column, key in RUN_COUNTS.items():
            value = int(stats.get_value(key, 0) or 0)
            gained[column] = value - self.counted.get(key, 0)
            self.counted[key] = value
        gained = +gained  # drop zeros
        if gained and self.run_id is not None:
            self.counts.setdefault(self.run_id, Counter()).update(gained)

    def keep_validators(self) -> None:
        spider = self.crawler.spider
        fresh = getattr(spider, "fresh_validators", None)
        if fresh and self.run_id is not None:
            self.validators.setdefault(self.run_id, {}).update(fresh)
        if fresh is not None:
            fresh.clear()

    def send(self) -> bool:
        """Send what is waiting, in one transaction (all or nothing); False while Redis is down."""
        self.count()
        messages = [json.dumps(event, ensure_ascii=False) for event in self.events]
        messages += [
            json.dumps({"kind": "counts", "run_id": run, "source": self.source, "counts": dict(counts)})
            for run, counts in self.counts.items()
        ]
        if self.seen:
            messages.append(json.dumps({"kind": "seen", "urls": sorted(self.seen)}))
        if self.taken_down:
            messages.append(json.dumps({"kind": "taken_down", "urls": sorted(self.taken_down)}))
        if self.not_articles:
            messages.append(json.dumps({"kind": "not_articles", "pages": self.not_articles}, ensure_ascii=False))
        if not messages and not self.validators:
            return True

        def push(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            for message in messages:
                pipe.lpush(ITEMS_KEY, message)
            for run, found in self.validators.items():
                key = round_validators_key(run)
                pipe.hset(key, mapping={url: json.dumps(v) for url, v in found.items()})
                pipe.expire(key, 7 * 86400)  # a round nobody closes must not keep it forever
            pipe.execute()

        try:
            self.link.call("sending run records", push)
        except RedisDown:
            return False
        self.events, self.counts, self.validators = [], {}, {}
        self.seen.clear()  # cleared in place: RedisArchive.pending holds these very sets
        self.taken_down.clear()
        self.not_articles.clear()
        return True

    # --- beats, idleness, the end -------------------------------------------------------------

    def opened(self, spider: Spider) -> None:
        from twisted.internet.task import LoopingCall

        self.heartbeat = LoopingCall(self.beat)
        self.heartbeat.start(HEARTBEAT, now=False)
        self.poller = LoopingCall(self.poll_queue)
        self.poller.start(POLL_EVERY, now=False)

    def beat(self) -> None:
        try:
            if self._working():
                self.link.call(
                    "marking the worker busy",
                    lambda _: self.busy_script(keys=[busy_key(self.source)], args=[WORKER_ID]),
                )
            _Liveness.beat(self.link)
            self.send()
            self.settle_leases()
        except RedisDown:
            pass  # logged by the link; the next beat tries again
        except Exception:  # a failing beat must not stop the LoopingCall
            logger.exception("worker beat of %s failed", self.source)

    def settle_leases(self) -> None:
        """Release what was handed on, and take over what dead workers held. Raises RedisDown."""
        if self.scheduler is not None:
            self.scheduler.settle()
        self.leases.take_over(self.source)

    def poll_queue(self) -> None:
        """Have the engine ask the queue now (every POLL_EVERY) rather than at its 5-second
        heartbeat. Otherwise the worker whose page found new links takes them at once (its engine
        asks after each download) while the others sleep: one made 143 of a round's 208 requests.
        Requests taken over from a dead worker are found as fast. (`_slot.nextcall` is what Scrapy
        itself schedules after each download; a worker downloading all it may asks Redis nothing.)"""
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None:
            slot.nextcall.schedule()

    def _working(self) -> bool:
        engine = self.crawler.engine
        slot = engine.scraper.slot
        return bool(engine.downloader.active) or (slot is not None and not slot.is_idle())

    def spider_idle(self) -> None:
        """Connected to spider_idle by NewsSpider: hand everything over, then wait for the next
        round (or close, with NEWS_REDIS_EXIT_WHEN_IDLE, once idle that long)."""
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        self.keep_validators()
        sent = self.send()
        with contextlib.suppress(RedisDown):
            self.settle_leases()
        if sent and self.exit_when_idle and now - self.idle_since >= self.exit_when_idle:
            return  # the spider closes ("finished")
        raise DontCloseSpider

    def closed(self, spider: Spider, reason: str) -> None:
        for looping in (self.heartbeat, self.poller):
            if looping is not None and looping.running:
                looping.stop()
        self.keep_validators()
        # A worker stopping during an outage waits a little for Redis rather than drop its records.
        deadline = time.monotonic() + 30
        while not self.send():
            if time.monotonic() > deadline:
                logger.error(
                    "could not hand over the run records of %s (%d failures, counts %s): Redis unavailable",
                    self.source,
                    sum(e["kind"] == "failure" for e in self.events),
                    dict(self.counts),
                )
                return
            time.sleep(self.link.wait_time())
        if reason == "finished" or self.idle_since is not None:  # idle, nothing held: leaving is not dying
            with contextlib.suppress(RedisDown):
                self.link.call("leaving the round", lambda client: client.hdel(busy_key(self.source), WORKER_ID))


# KEYS: the worker's key. ARGV: ttl s. The value is the beat's time on the Redis clock (ms).
_ALIVE = """
local t = redis.call('TIME')
redis.call('SET', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), 'EX', tonumber(ARGV[1]))
return 1
"""


class _Liveness:
    """`news:worker:<host:pid>`, the time of the process's last beat: the coordinator tells a
    worker that died mid-round (no beat for ALIVE_WITHIN_MS) from one that is still there."""

    last = 0.0
    script: Any = None

    @classmethod
    def beat(cls, link: RedisLink) -> None:
        if time.monotonic() - cls.last < HEARTBEAT / 2:
            return  # several crawlers in one process share the key
        if cls.script is None:
            cls.script = link.client.register_script(_ALIVE)
        link.call("beating", lambda _: cls.script(keys=[worker_key(WORKER_ID)], args=[WORKER_TTL]))
        cls.last = time.monotonic()


@dataclasses.dataclass
class _Pending:
    """What the spider, middleware and pipelines leave for the archive (``archive.pending.seen.add(url)``,
    ``archive.pending.taken_down.add(url)``, ``archive.pending.not_articles[url] = ...``): the round
    sends it to the writer."""

    seen: set[str]
    taken_down: set[str]
    not_articles: dict[str, dict[str, str]]


class RedisArchive:
    """What a worker's spider and middleware read from and leave for the archive, through Redis
    instead of SQLite: stored articles (``news:stored:<url>``, kept by the writer), the validators
    of feeds and sitemaps (``news:validators``, kept by the coordinator), and what to tell the writer.

    While Redis is down every lookup answers "not known": the page is fetched, and the writer's
    deduplication keeps it from being stored twice.
    """

    def __init__(self, round: SharedRound) -> None:
        self.round = round
        self.link = round.link
        self.pending = _Pending(round.seen, round.taken_down, round.not_articles)

    def _stored(self, url: str) -> dict[str, Any] | None:
        try:
            data = self.link.call("looking up a stored article", lambda client: client.get(stored_key(url)))
        except RedisDown:
            return None
        return json.loads(data) if data else None

    def stored_url_for(self, url: str) -> str | None:
        record = self._stored(url)
        return record.get("url") if record else None

    def stored_article(self, url: str) -> dict[str, Any] | None:
        record = self._stored(url)
        if not record or record["url"] != url or "fetched_at" not in record:
            return None
        return record

    def not_article(self, url: str) -> dict[str, Any] | None:
        record = self._stored(url)
        return record.get("not_article") if record else None

    def validators(self, url: str) -> dict[str, Any] | None:
        try:
            data = self.link.call("reading validators", lambda client: client.hget(VALIDATORS_KEY, url))
        except RedisDown:
            return None
        return json.loads(data) if data else None


class WorkerSpider(NewsSpider):
    """The news spider as a worker runs it: seeds come from the coordinator (SharedRound.claim()
    is False, so `start()` yields none), and its archive is Redis (RedisArchive, which SharedRound
    installs)."""

    def closed(self, reason: str) -> None:
        """Validators go to the round (SharedRound), which keeps them if it ends cleanly."""


def worker_spider_class() -> type[Spider]:
    """The spider class a worker's crawlers run."""
    return WorkerSpider


# --- the worker's Scrapy components (set by apply_worker_settings) ----------------------------


class SharedSkipStoredMiddleware(SkipStoredArticlesMiddleware):
    """SkipStoredArticlesMiddleware with the archive in Redis: a stored article (or alias) is not
    downloaded again unless a re-visit is due, and its last_seen_at moves (through the writer).

    No in-process "claimed" set: within a source the round's seen-set already keeps two workers
    from fetching one URL, and a long-lived worker must not remember a URL across rounds.
    """

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        # Must either return the request (to schedule it) or None (to drop it).
        if request.meta.get("news_kind") != "article":
            return request
        archive = article_lookup(self.crawler)
        stored = archive.stored_url_for(request.url)
        if stored is not None and not (stored == request.url and self._fetch_again(request, archive)):
            archive.pending.seen.add(stored)
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            return None
        if stored is None and self._passed_over(request, archive):
            self.crawler.stats.inc_value("news/requests/skipped_not_article")
            return None
        return request


class WorkerRunRecorder(FailureRecorder):
    """CrawlRunRecorder's part on a worker: every failure is counted and logged as in any crawl
    (FailureRecorder), then sent to the writer (with the round's run id) instead of written to SQLite."""

    def keep_failure(self, url: str | None, stage: str, reason: str, http_status: int | None) -> None:
        round: SharedRound = self.crawler.spider.round  # type: ignore[union-attr]
        round.failure(
            {"url": url, "stage": stage, "reason": reason, "http_status": http_status, "occurred_at": utc_now_iso()}
        )


class PushItemPipeline:
    """The worker's last stage: a finished item goes to the writer through Redis. While Redis is
    down the item waits here (and Scrapy stops taking new pages once enough items wait)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.link = RedisLink.for_url(crawler.settings.get("NEWS_REDIS_URL"))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PushItemPipeline:
        return cls(crawler)

    async def process_item(self, item: ArticleItem) -> ArticleItem:
        round: SharedRound = self.crawler.spider.round  # type: ignore[union-attr]
        data = encode_item(item, round.run_id)
        while True:
            try:
                self.link.call("handing an item to the writer", lambda client: client.lpush(ITEMS_KEY, data))
                break
            except RedisDown:
                await asyncio.sleep(self.link.wait_time())
        self.crawler.stats.inc_value("news/items/pushed")
        return item
