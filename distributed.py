"""Crawl workers on several machines, one SQLite writer, a coordinator: the parts that talk to Redis.

With a Redis URL, a crawl is shared. Three roles, each a `scheduler.py` command::

    scheduler.py run --redis URL          the coordinator (the daemon): opens a round of a source at
                                          its due time by pushing its seeds to the shared queue, and
                                          closes it once the workers have drained the queue
    scheduler.py worker --redis URL       any number, any machine: pull requests, fetch, extract,
                                          push items and run records to Redis; no database needed
    scheduler.py writer --redis URL       one per archive, next to the database: stores the items
                                          (dedupe, store) and the workers' run records

(`scheduler.py push NAME...` is the coordinator in the foreground, for one round, without the daemon.)

A round is one crawl of one source: one `crawl_runs` row, opened by the coordinator with the seeds
the spider's own `start()` builds (feeds, sitemaps, start pages, due re-visits), worked by every
worker serving the source, and closed when its queue has been empty and no worker has worked on it
for a grace period. scrapy-redis provides the queue format (a priority queue of pickled requests)
and the seen-set; pushes and pops are Lua scripts so that "seen" and "queued" never disagree, even
when Redis goes away between two calls.

Redis keys (all under ``news:``):

- ``news:<source>:requests``, ``news:<source>:seen``: scrapy-redis's queue and seen-set
- ``news:<source>:round``: the open round (hash: run_id, opened_ms); ``news:rounds``: sources with one
- ``news:<source>:busy``: worker id -> when it last worked on the source (Redis clock, ms)
- ``news:round:<run_id>:validators``: ETag/Last-Modified the workers found, kept if the round is clean
- ``news:worker:<host:pid>``, ``news:writer``: a live worker, the live writer (they expire a few
  seconds after their process stops beating)
- ``news:items``, ``news:items:processing``: items and run records for the writer, taken with LMOVE
  and deleted from the processing list only after the SQLite commit
- ``news:stored:<url>``: a stored article (or alias) as the workers see it, kept up to date by the
  writer (expires NEWS_REDIS_STORED_TTL after it was last seen); ``news:validators``: the archive's
  feed and sitemap validators, kept by the coordinator
- ``news:polite:<host>``, ``news:polite:<host>:delay``: the shared per-host limiter
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy_redis import picklecompat
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler

from archive import Archive, utc_now
from extensions import RUN_COUNTS, failure_recorded, install_log_redaction, known_secrets, redact
from items import ArticleItem
from middlewares import SkipStoredArticlesMiddleware
from sources import format_duration, redact_credentials

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from sources import Source

logger = logging.getLogger(__name__)

T = TypeVar("T")

ITEMS_KEY = "news:items"
PROCESSING_KEY = "news:items:processing"
ROUNDS_KEY = "news:rounds"
VALIDATORS_KEY = "news:validators"
WRITER_KEY = "news:writer"  # a live writer (expires WORKER_TTL after its last beat)
STORED_MARKER = "news:stored:published"  # gone after a Redis restart without persistence: publish again
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
WORKER_TTL = 10  # seconds a worker's liveness key outlives its last beat
HEARTBEAT = 1.0  # seconds between a worker's beats
MIN_GRACE = 3 * HEARTBEAT  # the shortest grace a round gets before it ends
# A worker whose last beat is older than this is dead. Not longer than MIN_GRACE: a round ends
# at least MIN_GRACE after a dying worker's last busy beat, and by then it must look dead.
ALIVE_WITHIN_MS = int(MIN_GRACE * 1000)


def queue_key(source: str) -> str:
    return f"news:{source}:requests"


def seen_key(source: str) -> str:
    return f"news:{source}:seen"


def round_key(source: str) -> str:
    return f"news:{source}:round"


def busy_key(source: str) -> str:
    return f"news:{source}:busy"


def round_validators_key(run_id: int) -> str:
    return f"news:round:{run_id}:validators"


def stored_key(url: str) -> str:
    return f"news:stored:{url}"


def worker_key(worker: str) -> str:
    return f"news:worker:{worker}"


# --- connecting, and riding out outages -------------------------------------------------------


class RedisDown(RuntimeError):
    """Redis cannot be reached now; the caller keeps what it has and tries again later."""


# What an outage looks like to redis-py: refused or dropped connections, timeouts, and the
# "LOADING" answer of a server reading its append-only file after a restart (a ConnectionError).
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def connect(url: str) -> redis.Redis:
    # Calls block the thread that makes them (workers: the reactor), so fail fast.
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)


class RedisLink:
    """One process's connection to the shared Redis, and its outage state.

    After a failed call every user of the link waits for the next retry time (0.5 s, doubling up
    to 30 s) instead of hammering a server that is down; each failed retry and the recovery are
    logged once, whichever component hit them.
    """

    FIRST_DELAY = 0.5
    MAX_DELAY = 30.0
    _links: dict[str, RedisLink] = {}

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = redact_credentials(url)
        self.client = connect(url)
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.delay = 0.0
        self.recoveries = 0  # how many outages ended: a restarted Redis may have lost its data

    @classmethod
    def for_url(cls, url: str) -> RedisLink:
        if url not in cls._links:
            cls._links[url] = cls(url)
        return cls._links[url]

    def ready(self) -> bool:
        return self.down_since is None or time.monotonic() >= self.retry_at

    def wait_time(self) -> float:
        """Seconds until the next retry (a short pause when Redis is up)."""
        return max(0.05, self.retry_at - time.monotonic()) if self.down_since is not None else 0.05

    def call(self, doing: str, action: Callable[[redis.Redis], T]) -> T:
        """`action(client)`, or RedisDown while Redis is known to be down or if the call fails."""
        if not self.ready():
            raise RedisDown(f"Redis at {self.shown} is unavailable")
        try:
            result = action(self.client)
        except OUTAGE_ERRORS as exc:
            self.failed(doing, exc)
            raise RedisDown(f"Redis at {self.shown} is unavailable: {exc}") from None
        self.succeeded()
        return result

    def failed(self, doing: str, exc: BaseException) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since, self.delay = now, self.FIRST_DELAY
        else:
            self.delay = min(self.delay * 2, self.MAX_DELAY)
        self.retry_at = now + self.delay
        logger.warning(
            "Redis at %s unavailable (%s: %s): retrying in %.1fs", self.shown, doing, redact(str(exc)), self.delay
        )

    def succeeded(self) -> None:
        if self.down_since is not None:
            logger.warning("Redis at %s is back after %.1fs", self.shown, time.monotonic() - self.down_since)
            self.down_since = None
            self.recoveries += 1


def wait_for_redis(url: str, *, give_up_after: float | None = None) -> redis.Redis:
    """Wait, with back-off, until Redis answers: an outage at start-up is waited out, not a crash loop."""
    link = RedisLink.for_url(url)
    started = time.monotonic()
    while True:
        try:
            link.call("connecting", lambda client: client.ping())
            return link.client
        except RedisDown:
            if give_up_after is not None and time.monotonic() - started > give_up_after:
                raise
            time.sleep(link.wait_time())


# --- a worker's settings ----------------------------------------------------------------------


def apply_worker_settings(settings: Any, redis_url: str, *, exit_when_idle: float = 0.0) -> None:
    """Turn a crawl process's settings into a worker's of the shared crawl."""
    for name, value in {
        "NEWS_REDIS_URL": redis_url,
        "NEWS_REDIS_WORKER": True,
        "NEWS_REDIS_EXIT_WHEN_IDLE": exit_when_idle,
        "REDIS_URL": redis_url,
        "SCHEDULER": "distributed.RedisScheduler",
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
        {"distributed.PushItemPipeline": 500},
    )
    _replace(
        settings,
        "SPIDER_MIDDLEWARES",
        {"middlewares.SkipStoredArticlesMiddleware": None},
        {"distributed.SharedSkipStoredMiddleware": 950},
    )
    _replace(settings, "DOWNLOADER_MIDDLEWARES", {}, {"distributed.SharedPolitenessMiddleware": 950})
    _replace(
        settings,
        "EXTENSIONS",
        # No database on a worker: run records go to the writer; the queue lives in Redis.
        {"extensions.CrawlRunRecorder": None, "extensions.DiskRequestQueue": None},
        {"distributed.WorkerRunRecorder": 100},
    )


def _replace(settings: Any, name: str, removed: dict[str, None], added: dict[str, int]) -> None:
    components = dict(settings.getdict(name))
    components.update(removed)
    components.update(added)
    settings.set(name, components, priority="cmdline")


def source_settings(source: str) -> dict[str, Any]:
    """Per-crawler settings: each source has its own queue and seen-set."""
    return {"SCHEDULER_QUEUE_KEY": queue_key(source), "SCHEDULER_DUPEFILTER_KEY": seen_key(source)}


# --- requests in the shared queue ---------------------------------------------------------------

# Both scripts keep scrapy-redis's layout (a sorted set scored by -priority, a set of fingerprints)
# but do in one step what its scheduler does in two: a request is marked seen only if it is queued,
# and a popped request always marks its worker busy, so the coordinator never ends a round while a
# worker holds its last request.

# KEYS: seen, queue. ARGV: fingerprint ('' = dont_filter), score, request.
_PUSH = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS: queue, round, busy. ARGV: worker id. Returns {request, run id or ''} or nil.
_POP = """
local found = redis.call('ZRANGE', KEYS[1], 0, 0)
if #found == 0 then return nil end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, 0)
local t = redis.call('TIME')
redis.call('HSET', KEYS[3], ARGV[1], t[1] * 1000 + math.floor(t[2] / 1000))
return {found[1], redis.call('HGET', KEYS[2], 'run_id') or ''}
"""

# KEYS: busy. ARGV: worker id.
_BUSY = """
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], t[1] * 1000 + math.floor(t[2] / 1000))
return 1
"""

_FINGERPRINTER = RFPDupeFilter(server=None, key="")  # only its fingerprint function is used


def encode_request(request: Request, spider: Spider) -> tuple[str, float, bytes]:
    """(fingerprint or '' for dont_filter, score, data) as scrapy-redis's PriorityQueue stores it."""
    fingerprint = "" if request.dont_filter else _FINGERPRINTER.request_fingerprint(request)
    return fingerprint, -request.priority, picklecompat.dumps(request.to_dict(spider=spider))


def decode_request(data: bytes, spider: Spider) -> Request:
    from scrapy.utils.request import request_from_dict

    return request_from_dict(picklecompat.loads(data), spider=spider)


class RedisScheduler(Scheduler):
    """scrapy-redis 0.9.1's scheduler with what a long-lived worker needs:

    - pushes and pops are atomic scripts (above); a pop tells which round (run) the request is for;
    - while Redis is down, requests the spider finds wait in memory and are queued once it is back;
      `next_request` returns nothing and the spider stays open (no crash, no busy loop);
    - no `stats.inc_value(..., spider=...)` calls, which Scrapy 2.14+ deprecates.
    """

    def open(self, spider: Spider) -> None:
        # scrapy-redis's open() without its "Resuming crawl" line: it counts the queue (a Redis
        # call a worker must not fail to start for) and logs through the deprecated Spider.log().
        from scrapy.utils.misc import load_object

        self.spider = spider
        self.link = RedisLink.for_url(spider.settings.get("NEWS_REDIS_URL"))
        self.queue = load_object(self.queue_cls)(
            server=self.server, spider=spider, key=self.queue_key, serializer=self.serializer
        )
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        self.round: SharedRound = spider.round  # type: ignore[attr-defined]
        self.waiting: list[Request] = []  # found while Redis was down
        self.push_script = self.link.client.register_script(_PUSH)
        self.pop_script = self.link.client.register_script(_POP)

    def enqueue_request(self, request: Request) -> bool:
        try:
            return self._push(request)
        except RedisDown:
            self.waiting.append(request)
            return True

    def _push(self, request: Request) -> bool:
        fingerprint, score, data = encode_request(request, self.spider)
        keys = [self.df.key, self.queue.key]
        added = self.link.call(
            "queueing a request", lambda _: self.push_script(keys=keys, args=[fingerprint, score, data])
        )
        if not added:
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        try:
            while self.waiting:  # what the spider found during an outage goes first to the shared queue
                self._push(self.waiting[0])
                self.waiting.pop(0)
            found = self.link.call(
                "taking a request",
                lambda _: self.pop_script(
                    keys=[self.queue.key, round_key(self.round.source), busy_key(self.round.source)],
                    args=[WORKER_ID],
                ),
            )
        except RedisDown:
            return None
        if not found:
            return None
        data, run_id = found
        self.round.entered(int(run_id) if run_id else None)
        if self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return decode_request(data, self.spider)

    def has_pending_requests(self) -> bool:
        if self.waiting:
            return True
        try:
            return bool(self.link.call("counting the queue", lambda client: client.zcard(self.queue.key)))
        except RedisDown:
            return True  # unknown: the spider stays open until Redis answers again


# --- a worker's part in the rounds of one source ---------------------------------------------


class SharedRound:
    """One crawler's part in the shared rounds of its source (created by NewsSpider.from_crawler
    when NEWS_REDIS_WORKER is set).

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
        self.counts: dict[int, Counter[str]] = {}  # run -> counts not sent yet
        self.counted: dict[str, int] = {}  # the stats at the last count
        self.validators: dict[int, dict[str, Any]] = {}  # run -> url -> validators not sent yet
        self.archive = RedisArchive(self)
        self.busy_script = self.link.client.register_script(_BUSY)
        self.heartbeat: Any = None  # a LoopingCall, made when the spider opens: making one imports
        # the reactor, which must not happen before Scrapy installs the asyncio one
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
        return True

    # --- beats, idleness, the end -------------------------------------------------------------

    def opened(self, spider: Spider) -> None:
        from twisted.internet.task import LoopingCall

        self.heartbeat = LoopingCall(self.beat)
        self.heartbeat.start(HEARTBEAT, now=False)

    def beat(self) -> None:
        try:
            if self._working():
                self.link.call(
                    "marking the worker busy",
                    lambda _: self.busy_script(keys=[busy_key(self.source)], args=[WORKER_ID]),
                )
            _Liveness.beat(self.link)
            self.send()
        except RedisDown:
            pass  # logged by the link; the next beat tries again
        except Exception:  # a failing beat must not stop the LoopingCall
            logger.exception("worker beat of %s failed", self.source)

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
        if sent and self.exit_when_idle and now - self.idle_since >= self.exit_when_idle:
            return  # the spider closes ("finished")
        raise DontCloseSpider

    def closed(self, spider: Spider, reason: str) -> None:
        if self.heartbeat is not None and self.heartbeat.running:
            self.heartbeat.stop()
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
    """What the spider and middleware leave for the archive (``archive.pending.seen.add(url)``,
    ``archive.pending.taken_down.add(url)``): the round sends it to the writer."""

    seen: set[str]
    taken_down: set[str]


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
        self.pending = _Pending(round.seen, round.taken_down)

    def _stored(self, url: str) -> dict[str, Any] | None:
        try:
            data = self.link.call("looking up a stored article", lambda client: client.get(stored_key(url)))
        except RedisDown:
            return None
        return json.loads(data) if data else None

    def stored_url_for(self, url: str) -> str | None:
        record = self._stored(url)
        return record["url"] if record else None

    def stored_article(self, url: str) -> dict[str, Any] | None:
        record = self._stored(url)
        if not record or record["url"] != url or "fetched_at" not in record:
            return None
        return record

    def validators(self, url: str) -> dict[str, Any] | None:
        try:
            data = self.link.call("reading validators", lambda client: client.hget(VALIDATORS_KEY, url))
        except RedisDown:
            return None
        return json.loads(data) if data else None


@functools.cache
def worker_spider_class() -> type[Spider]:
    """The news spider as a worker runs it: seeds come from the coordinator (SharedRound.claim()
    is False, so `start()` yields none), and its archive is Redis (RedisArchive).

    Built on first use because spiders.news imports this module (for SharedRound).
    """
    from spiders.news import NewsSpider

    class WorkerSpider(NewsSpider):
        @property
        def archive(self) -> Any:
            return self.round.archive  # type: ignore[union-attr]

        def closed(self, reason: str) -> None:
            """Validators go to the round (SharedRound), which keeps them if it ends cleanly."""

    return WorkerSpider


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
        archive: RedisArchive = self.crawler.spider.round.archive  # type: ignore[union-attr]
        stored = archive.stored_url_for(request.url)
        if stored is not None and not (stored == request.url and self._fetch_again(request, archive)):  # type: ignore[arg-type]
            archive.pending.seen.add(stored)
            self.crawler.stats.inc_value("news/requests/skipped_stored")
            return None
        return request


class WorkerRunRecorder:
    """CrawlRunRecorder's part on a worker: every failure is counted, logged with its credentials
    masked, and sent to the writer (with the round's run id) instead of written to SQLite."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WorkerRunRecorder:
        install_log_redaction(known_secrets(crawler.settings))
        recorder = cls(crawler)
        crawler.signals.connect(recorder.failure, signal=failure_recorded)
        crawler.signals.connect(recorder.spider_error, signal=signals.spider_error)
        crawler.signals.connect(recorder.item_error, signal=signals.item_error)
        return recorder

    def failure(self, url: str | None, stage: str, reason: str, http_status: int | None = None) -> None:
        url, reason = (redact(url) if url else url), redact(reason)
        self.crawler.stats.inc_value("news/failures")
        self.crawler.stats.inc_value(f"news/failures/{stage}")
        logger.warning("failure [%s] %s: %s", stage, url, reason)
        round: SharedRound = self.crawler.spider.round  # type: ignore[union-attr]
        round.failure(
            {"url": url, "stage": stage, "reason": reason, "http_status": http_status, "occurred_at": utc_now()}
        )

    def spider_error(self, failure: Failure, response: Response, spider: Spider) -> None:
        self.failure(response.url, "parse", f"{failure.type.__name__}: {failure.value}", response.status)

    def item_error(self, item: Any, response: Response | None, spider: Spider, failure: Failure) -> None:
        from scrapy.exceptions import DropItem

        if isinstance(failure.value, DropItem):
            return
        url = getattr(item, "url", None)
        self.failure(url, getattr(failure.value, "stage", "store"), f"{failure.type.__name__}: {failure.value}")


# --- items ------------------------------------------------------------------------------------


def encode_item(item: ArticleItem, run_id: int | None = None) -> str:
    row = dataclasses.asdict(item)
    row["signature"] = base64.b64encode(item.signature).decode("ascii")
    row["kind"], row["run_id"] = "item", run_id
    return json.dumps(row, ensure_ascii=False)


def decode_item(row: dict[str, Any]) -> ArticleItem:
    fields = {name: value for name, value in row.items() if name not in ("kind", "run_id")}
    fields["signature"] = base64.b64decode(fields["signature"])
    return ArticleItem(**fields)


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
        self.link = RedisLink.for_url(settings.get("NEWS_REDIS_URL"))
        self.acquire = self.link.client.register_script(_ACQUIRE)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPolitenessMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        # Must either return None (go on to download) or raise: here we only wait for a slot.
        from scrapy.utils.httpobj import urlparse_cached

        host = urlparse_cached(request).netloc
        token = uuid.uuid4().hex
        delay_ms = int(self.crawler.settings.getfloat("DOWNLOAD_DELAY") * 1000)
        keys = [f"news:polite:{host}", f"news:polite:{host}:delay"]
        args = [self.limit, token, self.lease_ms, delay_ms]
        while True:
            try:
                if self.link.call("taking a politeness slot", lambda _: self.acquire(keys=keys, args=args)):
                    break
            except RedisDown:
                await asyncio.sleep(self.link.wait_time())
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
            with contextlib.suppress(RedisDown):  # the lease runs out on its own
                self.link.call("releasing a politeness slot", lambda client: client.zrem(*slot))


# --- the coordinator: opening and closing rounds -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Round:
    """An open round as Redis has it."""

    source: str
    run_id: int
    opened_ms: int
    queued: int
    busy: dict[str, int]  # worker -> last busy (ms)

    @property
    def last_work_ms(self) -> int:
        return max([self.opened_ms, *self.busy.values()])


@dataclasses.dataclass(frozen=True)
class Closed:
    source: str
    run_id: int
    status: str
    reason: str


# KEYS: round, queue, seen, busy, rounds. ARGV: source, run id, ttl s, then (fingerprint, score,
# request) per seed. Returns 0 if a round of the source is open, else 1.
_OPEN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'run_id', ARGV[2], 'opened_ms', t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('SADD', KEYS[5], ARGV[1])
for i = 4, #ARGV, 3 do
  if ARGV[i] == '' or redis.call('SADD', KEYS[3], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i + 2])
  end
end
return 1
"""

# KEYS: round, queue, seen, busy, rounds, validators. ARGV: source, run id, '1' to drop the queue.
# Returns the round's validators (flat hash) or nil if the round is not (any more) that run.
_CLOSE = """
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[2] then
  if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[5], ARGV[1]) end
  return nil
end
local validators = redis.call('HGETALL', KEYS[6])
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[6])
if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
redis.call('SREM', KEYS[5], ARGV[1])
return validators
"""


def seed_requests(settings: Any, name: str) -> tuple[list[Request], int, Spider]:
    """The seeds of source `name`, built by the news spider's own `start()` against the archive
    (feeds, sitemaps and start pages, with the validators of the last clean run, and the stored
    articles whose re-visit is due). Returns (requests, re-visits among them, the spider)."""
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import MemoryStatsCollector

    from spiders.news import NewsSpider

    crawler = Crawler(NewsSpider, settings)  # never started: it only carries settings and stats
    crawler.stats = MemoryStatsCollector(crawler)
    spider = NewsSpider.from_crawler(crawler, source=name)
    crawler.spider = spider

    async def collect() -> list[Request]:
        return [request async for request in spider.start()]

    requests = asyncio.run(collect())
    return requests, int(crawler.stats.get_value("news/articles/revisited", 0)), spider


class Coordinator:
    """Opens and closes the rounds of a shared crawl; runs in the daemon (or `scheduler.py push`).

    One thread only: its SQLite connections are that thread's. Every Redis call raises RedisDown
    while Redis is unreachable; callers keep their work and try again later.
    """

    def __init__(self, url: str, db: Path, sources: Path, *, grace: timedelta, log_file: str | None = None) -> None:
        from runner import project_settings

        self.link = RedisLink.for_url(url)
        self.db_path = db
        self.settings = project_settings(db, sources)
        # Workers mark themselves busy every HEARTBEAT: a shorter grace would end rounds between beats.
        self.grace_ms = int(max(grace.total_seconds(), MIN_GRACE) * 1000)
        self.log_file = log_file
        self.archive = Archive.open(db)
        self.rounds: dict[str, Round] = {}  # the open rounds, as last read (and closed) here
        self.close_script = self.link.client.register_script(_CLOSE)
        self.open_script = self.link.client.register_script(_OPEN)

    def close(self) -> None:
        self.archive.close()

    # --- opening --------------------------------------------------------------------------

    def busy(self, name: str) -> str | None:
        """Why a new round of `name` cannot open now (its previous one is still going), or None."""
        run_id = self.link.call("checking a round", lambda client: client.hget(round_key(name), "run_id"))
        if run_id is None:
            return None
        queued = self.link.call("counting a queue", lambda client: client.zcard(queue_key(name)))
        return (
            f"the previous round (run {int(run_id)}) is still being crawled by the workers ({queued} requests queued)"
        )

    def open_round(self, source: Source, timeout: timedelta) -> tuple[int | None, str]:
        """Open a round of `source`: record its run, push its seeds. Returns (run id, what happened);
        the run id is None when the previous round is still going (nothing is recorded then)."""
        busy = self.busy(source.name)
        if busy is not None:
            return None, busy
        requests, revisits, spider = seed_requests(self.settings, source.name)
        args: list[Any] = []
        for request in requests:
            args.extend(encode_request(request, spider))
        self.archive.sync_source(source)
        run_id = self.archive.start_run(source.name, log_file=self.log_file)
        if revisits:
            self.archive.db["crawl_runs"].update(run_id, {"articles_revisited": revisits})
        keys = [
            round_key(source.name),
            queue_key(source.name),
            seen_key(source.name),
            busy_key(source.name),
            ROUNDS_KEY,
        ]
        # The round outlives its timeout only if no coordinator is left to close it.
        ttl = int(timeout.total_seconds() * 2) + 3600
        try:
            opened = self.link.call(
                "opening a round", lambda _: self.open_script(keys=keys, args=[source.name, run_id, ttl, *args])
            )
        except RedisDown as exc:
            self.finish_run(run_id, "failed", f"could not queue its seeds: {exc}")
            raise
        if not opened:  # another coordinator opened one in the meantime
            reason = "the previous round is still being crawled by the workers"
            self.finish_run(run_id, "skipped", reason, keep_pid=False)
            return None, reason
        return run_id, f"round opened: {len(requests)} seeds queued for the workers ({revisits} re-visits)"

    # --- closing --------------------------------------------------------------------------

    def open_rounds(self) -> dict[str, Round]:
        """The open rounds, read in one round trip; also sets `now_ms` (the Redis clock)."""

        def read(client: redis.Redis) -> tuple[list[str], list[Any]]:
            names = sorted(name.decode() for name in client.smembers(ROUNDS_KEY))
            pipe = client.pipeline(transaction=False)
            pipe.time()
            for name in names:
                pipe.hgetall(round_key(name))
                pipe.zcard(queue_key(name))
                pipe.hgetall(busy_key(name))
            return names, pipe.execute()

        names, values = self.link.call("reading the open rounds", read)
        self.rounds = {}
        seconds, micros = values[0]
        self.now_ms = int(seconds) * 1000 + int(micros) // 1000
        for i, name in enumerate(names):
            info, queued, busy = values[1 + 3 * i : 4 + 3 * i]
            if not info:  # expired: no coordinator closed it in time
                self.link.call("tidying the rounds", lambda client, name=name: client.srem(ROUNDS_KEY, name))
                continue
            self.rounds[name] = Round(
                source=name,
                run_id=int(info[b"run_id"]),
                opened_ms=int(info[b"opened_ms"]),
                queued=int(queued),
                busy={worker.decode(): int(ms) for worker, ms in busy.items()},
            )
        return dict(self.rounds)

    def check_rounds(self, timeouts: Mapping[str, timedelta], *, only: Iterable[int] | None = None) -> list[Closed]:
        """Close the rounds that are done (queue empty, no worker busy for the grace period) or
        past their source's timeout; fail this coordinator's runs whose round Redis lost."""
        rounds = self.open_rounds()
        wanted = set(only) if only is not None else None
        closed = []
        for r in rounds.values():
            if wanted is not None and r.run_id not in wanted:
                continue
            timeout = timeouts.get(r.source, timedelta(hours=1))
            if r.queued == 0 and self.now_ms - r.last_work_ms >= self.grace_ms:
                closed += self._close(r, "ok", "finished: the workers drained the queue")
            elif self.now_ms - r.opened_ms > timeout.total_seconds() * 1000:
                reason = f"timed out after {format_duration(timeout)}: {r.queued} queued requests were dropped"
                closed += self._close(r, "timed_out", reason, drop_queue=True)
        return closed + self.fail_lost_rounds({r.run_id for r in rounds.values()})

    def _close(self, r: Round, status: str, reason: str, *, drop_queue: bool = False) -> list[Closed]:
        keys = [
            round_key(r.source),
            queue_key(r.source),
            seen_key(r.source),
            busy_key(r.source),
            ROUNDS_KEY,
            round_validators_key(r.run_id),
        ]
        args = [r.source, r.run_id, "1" if drop_queue else "0"]
        flat = self.link.call("closing a round", lambda _: self.close_script(keys=keys, args=args))
        self.rounds.pop(r.source, None)
        if flat is None:
            return []  # closed by someone else
        gone = self._dead_workers(r.busy)
        workers = f"{len(r.busy)} worker{'s' if len(r.busy) != 1 else ''}"
        reason = f"{reason} ({workers})"
        if gone:
            reason += f"; worker {', '.join(gone)} died during the round: what it held is found again next round"
        elif status == "ok":
            validators = {flat[i].decode(): json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}
            self.keep_validators(validators)
        self.finish_run(r.run_id, status, reason)
        return [Closed(r.source, r.run_id, status, reason)]

    def _dead_workers(self, busy: Mapping[str, int]) -> list[str]:
        """Workers of the round with no beat in the last ALIVE_WITHIN_MS (as of `now_ms`)."""
        if not busy:
            return []
        names = sorted(busy)
        beats = self.link.call("checking workers", lambda client: client.mget([worker_key(w) for w in names]))
        return [
            name
            for name, beat in zip(names, beats, strict=True)
            if beat is None or self.now_ms - int(beat) > ALIVE_WITHIN_MS
        ]

    def fail_lost_rounds(self, open_runs: set[int]) -> list[Closed]:
        """Runs of this coordinator left running with no round in Redis: Redis lost it (restarted
        without persistence, or flushed). What was queued is gone; the next round finds it again."""
        rows = self.archive.db.execute(
            "SELECT id, source FROM crawl_runs WHERE status = 'running' AND pid = ?", [os.getpid()]
        ).fetchall()
        closed = []
        for run_id, source in rows:
            if run_id in open_runs:
                continue
            reason = "its round is gone from Redis (restarted without persistence?): the next round finds it again"
            if self.finish_run(run_id, "failed", reason):
                closed.append(Closed(source, run_id, "failed", reason))
        return closed

    def adopt(self) -> list[int]:
        """Make the open rounds' runs this process's (after a restart of the daemon): their rows
        then count as going, not as crawls whose process died."""
        runs = [r.run_id for r in self.open_rounds().values()]
        with self.archive.db.conn:
            for run_id in runs:
                self.archive.db.execute(
                    "UPDATE crawl_runs SET pid = ? WHERE id = ? AND status = 'running'", [os.getpid(), run_id]
                )
        return runs

    def record_skipped(self, name: str, reason: str) -> None:
        """A round that could not open because the previous one is still going (no pid: not a run)."""
        run_id = self.archive.start_run(name, log_file=self.log_file)
        self.finish_run(run_id, "skipped", reason, keep_pid=False)

    def finish_run(self, run_id: int, status: str, reason: str, *, keep_pid: bool = True) -> bool:
        now = utc_now()
        with self.archive.db.conn:
            cursor = self.archive.db.execute(
                "UPDATE crawl_runs SET status = ?, finish_reason = ?, finished_at = ?, "
                "duration_s = round((julianday(?) - julianday(started_at)) * 86400, 1)"
                f"{'' if keep_pid else ', pid = NULL'} WHERE id = ? AND status = 'running'",
                [status, reason, now, now, run_id],
            )
        return cursor.rowcount > 0

    # --- validators -----------------------------------------------------------------------

    def keep_validators(self, validators: Mapping[str, dict[str, Any]]) -> None:
        """Validators of a clean round: saved in the archive, and where the workers read them."""
        for url, known in validators.items():
            self.archive.save_validators(
                url, etag=known.get("etag"), last_modified=known.get("last_modified"), children=known.get("children")
            )
        if validators:
            mapping = {url: json.dumps(self._validator_row(url)) for url in validators}
            self.link.call("publishing validators", lambda client: client.hset(VALIDATORS_KEY, mapping=mapping))

    def _validator_row(self, url: str) -> dict[str, Any]:
        row = self.archive.validators(url) or {}
        return {
            "etag": row.get("etag"),
            "last_modified": row.get("last_modified"),
            "children": Archive.json_list(row.get("children")),
        }

    def publish_validators(self) -> int:
        """Copy the archive's validators to Redis when Redis has none (first start, or lost)."""
        if self.link.call("checking validators", lambda client: client.exists(VALIDATORS_KEY)):
            return 0
        urls = [row[0] for row in self.archive.db.execute("SELECT url FROM http_validators")]
        if urls:
            mapping = {url: json.dumps(self._validator_row(url)) for url in urls}
            self.link.call("publishing validators", lambda client: client.hset(VALIDATORS_KEY, mapping=mapping))
        return len(urls)


# --- the writer -------------------------------------------------------------------------------

RUN_COLUMNS = tuple(RUN_COUNTS)
STATUS_COLUMNS = {
    "new": "articles_new",
    "updated": "articles_updated",
    "unchanged": "articles_unchanged",
    "duplicate": "articles_duplicate",
    "alias": "articles_duplicate",
}


class BatchNotStored(RuntimeError):
    """Part of a batch could not be written: nothing of it is acknowledged."""


class _WriterCrawler:
    """What the dedupe and store pipelines read from a crawler: settings, stats, signals."""

    def __init__(self, settings: Any) -> None:
        from scrapy.signalmanager import SignalManager
        from scrapy.statscollectors import MemoryStatsCollector

        self.settings = settings
        self.signals = SignalManager(self)
        self.stats = MemoryStatsCollector(self)  # type: ignore[arg-type]
        self.spider = None


class WriterArchive(Archive):
    """The writer's archive: each batch also carries the workers' run records (failures, counts),
    written in the batch's own transaction, so a batch is stored whole or not at all."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.failures: list[dict[str, Any]] = []
        self.counts: dict[int, Counter[str]] = {}

    @contextmanager
    def immediate_transaction(self) -> Iterator[None]:
        with super().immediate_transaction():
            yield
            self._write_run_records()

    def flush(self) -> int:
        records = len(self.failures) + len(self.counts)
        if records and not len(self.pending):
            with self.immediate_transaction():
                pass
            return records
        return super().flush() + records

    def _write_run_records(self) -> None:
        wanted = json.dumps([*self.counts, *(row["run_id"] for row in self.failures)])
        runs = {
            row[0]
            for row in self.db.execute(
                "SELECT id FROM crawl_runs WHERE id IN (SELECT value FROM json_each(?))", [wanted]
            )
        }
        for row in self.failures:
            if row["run_id"] not in runs:  # a run this archive does not have (another database)
                row["run_id"] = None
        if self.failures:
            self.db["failures"].insert_all(self.failures)
        for run_id, counts in self.counts.items():
            columns = [c for c in counts if c in RUN_COLUMNS]
            if run_id in runs and columns:
                sets = ", ".join(f"{c} = coalesce({c}, 0) + ?" for c in columns)
                self.db.execute(f"UPDATE crawl_runs SET {sets} WHERE id = ?", [*(counts[c] for c in columns), run_id])
        self.failures, self.counts = [], {}


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
        import archive
        from pipelines.dedupe import DedupePipeline
        from pipelines.store import StorePipeline

        # A fresh archive: its in-memory "decided this run" caches must match what is committed.
        for old in archive._SHARED.values():
            old.close()
        archive._SHARED.clear()
        path = str(Path(self.settings.get("NEWS_DB_PATH")).resolve())
        self.archive = archive._SHARED[path] = WriterArchive.open(path)
        self.crawler = _WriterCrawler(self.settings)
        self.store_failure: str | None = None
        self.crawler.signals.connect(self._store_failed, signal=failure_recorded)
        self.dedupe = DedupePipeline(self.crawler)  # type: ignore[arg-type]
        self.store = StorePipeline(self.crawler)  # type: ignore[arg-type]
        self.store.batch_size = 1 << 30  # we commit, once per batch, before acknowledging

    def request_stop(self) -> None:
        self.stopping = True

    def beat(self) -> None:
        """Tell the coordinator a writer is draining the queue (`push` waits for it to finish)."""
        if time.monotonic() - self.last_beat >= HEARTBEAT:
            self.link.call("beating", lambda client: client.set(WRITER_KEY, WORKER_ID, ex=WORKER_TTL))
            self.last_beat = time.monotonic()

    def _store_failed(self, url: str | None, stage: str, reason: str, http_status: int | None = None) -> None:
        self.store_failure = f"{url}: {reason}"

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
            first = client.blmove(ITEMS_KEY, PROCESSING_KEY, wait, "RIGHT", "LEFT")
            if first is None:
                return []
            batch = [first]
            while len(batch) < self.batch_size:
                data = client.lmove(ITEMS_KEY, PROCESSING_KEY, "RIGHT", "LEFT")
                if data is None:
                    break
                batch.append(data)
            return batch

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
        if self.store_failure:
            raise BatchNotStored(self.store_failure)
        self.stored += self.archive.flush()
        self.unacknowledged = touched
        self.acknowledge()

    def apply(self, message: dict[str, Any]) -> set[str]:
        """Take one message into the pending batch; returns the URLs whose stored state it changes."""
        kind = message.get("kind", "item")
        pending = self.archive.pending
        if kind == "item":
            item = decode_item(message)
            item = self.dedupe.process_item(item)
            self.store.process_item(item)
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
            "occurred_at": utc_now(),
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
        records: dict[str, dict[str, Any]] = {}
        chunk = sorted(urls)
        db = self.archive.db
        for start in range(0, len(chunk), 500):
            part = json.dumps(chunk[start : start + 500])
            for url, fetched, first_seen, taken_down in db.execute(
                "SELECT url, fetched_at, first_seen_at, taken_down_at FROM articles "
                "WHERE url IN (SELECT value FROM json_each(?))",
                [part],
            ):
                records[url] = {
                    "url": url,
                    "fetched_at": fetched,
                    "first_seen_at": first_seen,
                    "taken_down_at": taken_down,
                }
            for alias, url in db.execute(
                "SELECT alias, url FROM url_aliases WHERE alias IN (SELECT value FROM json_each(?))", [part]
            ):
                records.setdefault(alias, {"url": url})
        return records

    def publish_stored(self) -> int:
        """Publish every article seen within NEWS_REDIS_STORED_TTL (and its aliases) to Redis, when
        Redis does not have them: on a first start, or after a restart that lost its data."""
        if self.link.call("checking stored URLs", lambda client: client.exists(STORED_MARKER)):
            return 0
        since = (datetime.now(UTC) - timedelta(seconds=self.ttl)).replace(microsecond=0).isoformat()
        db = self.archive.db
        rows = db.execute(
            "SELECT url, fetched_at, first_seen_at, taken_down_at FROM articles WHERE last_seen_at >= ?", [since]
        )
        published = 0
        while batch := rows.fetchmany(1000):
            records = {u: {"url": u, "fetched_at": f, "first_seen_at": s, "taken_down_at": t} for u, f, s, t in batch}
            aliases = db.execute(
                "SELECT alias, url FROM url_aliases WHERE url IN (SELECT value FROM json_each(?))",
                [json.dumps(list(records))],
            ).fetchall()
            records.update({alias: {"url": url} for alias, url in aliases if alias not in records})
            self._set_records(records)
            published += len(records)
        self.link.call("publishing stored URLs", lambda client: client.set(STORED_MARKER, utc_now()))
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
                time.sleep(min(1.0, self.link.wait_time()))  # short naps: a stop request is noticed
            except (sqlite3.Error, BatchNotStored) as exc:
                logger.error("writer: could not commit a batch: %s; retrying in %.0fs", exc, sqlite_delay)
                time.sleep(sqlite_delay)
                sqlite_delay = min(sqlite_delay * 2, 60.0)
                self._open_stages()
                self.needs_recovery = True
        logger.info("writer: stopping")
        return self.stored
