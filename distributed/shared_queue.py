"""Requests in a source's shared queue: scrapy-redis's format, pushed and popped atomically.

Each source has its queue (``news:<source>:requests``, a sorted set of pickled requests scored by
-priority) and its seen-set (``news:<source>:seen``, request fingerprints). Workers use them through
RedisScheduler (the SCHEDULER of a worker); the coordinator pushes a round's seeds in the same
format (encode_request). A popped request is a lease of its worker until handed on
(distributed/leases.py).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from scrapy_redis import picklecompat
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler

from crawl.request_queue import request_to_dict
from distributed.leases import Leases, held_key
from distributed.redis_link import (
    WORKER_ID,
    WORKER_TTL,
    RedisDown,
    RedisLink,
    busy_key,
    holders_key,
    round_key,
    stored_key,
    worker_key,
)

if TYPE_CHECKING:
    from scrapy import Request, Spider

    from distributed.worker import SharedRound

# Both scripts keep scrapy-redis's layout (a sorted set scored by -priority, a set of fingerprints)
# but do in one step what its scheduler does in two: a request is marked seen only if it is queued,
# and a popped request (leases.CLAIM) is held by its worker, which it marks busy.

# KEYS: seen, queue. ARGV: fingerprint ('' = dont_filter), score, request.
_PUSH = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


_FINGERPRINTER = RFPDupeFilter(server=None, key="")  # only its fingerprint function is used


def encode_request(request: Request, spider: Spider) -> tuple[str, float, bytes]:
    """(fingerprint or '' for dont_filter, score, data) as scrapy-redis's PriorityQueue stores it."""
    fingerprint = "" if request.dont_filter else _FINGERPRINTER.request_fingerprint(request)
    return fingerprint, -request.priority, picklecompat.dumps(request_to_dict(request, spider))


def decode_request(data: bytes, spider: Spider) -> Request:
    from scrapy.utils.request import request_from_dict

    return request_from_dict(picklecompat.loads(data), spider=spider)


class RedisScheduler(Scheduler):
    """scrapy-redis 0.9.1's scheduler with what a long-lived worker needs:

    - pushes and pops are atomic scripts (above); a pop tells which round (run) the request is for;
    - a popped request stays claimed in Redis until Scrapy has handed it on (downloaded, its items
      pushed to the writer, its links queued): then `settle()` releases it. If the worker dies
      first, another takes it over (distributed/leases.py);
    - it claims no more than it can download at once (CONCURRENT_REQUESTS_PER_DOMAIN in its
      downloader): Scrapy would take CONCURRENT_REQUESTS (16) at once, to wait for the shared
      per-host limiter in one worker while the others find the queue empty;
    - while Redis is down, requests the spider finds wait in memory and are queued once it is back;
      `next_request` returns nothing and the spider stays open (no crash, no busy loop);
    - no `stats.inc_value(..., spider=...)` calls, which Scrapy 2.14+ deprecates.
    """

    # scrapy-redis's RFPDupeFilter, None until open() loads it: the library has no type hints, and
    # declaring it here tells mypy what open() reads before it assigns.
    df: Any

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
        self.leases = Leases(self.link)
        self.held: dict[Request, bytes] = {}  # claimed and not handed on yet -> its data in Redis
        self.prefetch = max(1, spider.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"))
        self.round.scheduler = self

    def close(self, reason: str) -> None:
        """Anything still claimed goes back to the queue: a worker stopped mid-round (SIGTERM)
        cancels its downloads, which leave the engine without being handed on. (Requests handed on
        since the last beat go back too: fetched again at worst, an article stored never.)"""
        super().close(reason)
        if self.held:
            with contextlib.suppress(RedisDown):  # otherwise its lease runs out and others take it over
                self.leases.take_over(self.round.source, worker=WORKER_ID)
                self.held.clear()

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
        if len(self.spider.crawler.engine.downloader.active) >= self.prefetch:
            return None  # asked again as soon as a download ends
        source = self.round.source
        keys = [self.queue.key, round_key(source), busy_key(source), held_key(source, WORKER_ID)]
        keys += [holders_key(source), worker_key(WORKER_ID)]
        try:
            while self.waiting:  # what the spider found during an outage goes first to the shared queue
                self._push(self.waiting[0])
                self.waiting.pop(0)
            found = self.link.call(
                "taking a request", lambda _: self.leases.claim_script(keys=keys, args=[WORKER_ID, WORKER_TTL])
            )
        except RedisDown:
            return None
        if not found:
            return None
        data, run_id = found
        self.round.entered(int(run_id) if run_id else None)
        if self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        request = decode_request(data, self.spider)
        self.held[request] = data
        if request.meta.get("news_kind") == "article":
            self._note_article(request, data)
        return request

    def _note_article(self, request: Request, data: bytes) -> None:
        """Tell the lease which article it is, and whether it was stored: if this worker dies, an
        article the writer stores in the meantime is not requeued."""
        keys = [held_key(self.round.source, WORKER_ID), stored_key(request.url)]
        with contextlib.suppress(RedisDown):  # then it is requeued whatever happens: fetched twice at worst
            self.link.call(
                "noting a claimed article", lambda _: self.leases.note_script(keys=keys, args=[data, request.url])
            )

    def settle(self) -> None:
        """Release the claimed requests Scrapy is done with. The engine keeps a request in progress
        from the pop until its response, items and links are all handed on (scrapy.core.engine:
        _Slot.inprogress, left in `_remove_request` after the scraper finished it). Raises RedisDown."""
        slot = getattr(self.spider.crawler.engine, "_slot", None)
        in_progress = slot.inprogress if slot is not None else set()
        done = [request for request in self.held if request not in in_progress]
        if done:
            self.leases.release(self.round.source, WORKER_ID, [self.held[r] for r in done])
            for request in done:
                del self.held[request]

    def has_pending_requests(self) -> bool:
        if self.waiting:
            return True
        try:
            return bool(self.link.call("counting the queue", lambda client: client.zcard(self.queue.key)))
        except RedisDown:
            return True  # unknown: the spider stays open until Redis answers again
