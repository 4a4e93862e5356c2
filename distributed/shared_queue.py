"""Requests in a source's shared queue: scrapy-redis's format, pushed and popped atomically.

Each source has its queue (``news:<source>:requests``, a sorted set of pickled requests scored by
-priority) and its seen-set (``news:<source>:seen``, request fingerprints). Workers use them through
RedisScheduler (the SCHEDULER of a worker); the coordinator pushes a round's seeds in the same
format (encode_request).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy_redis import picklecompat
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler

from crawl.request_queue import request_to_dict
from distributed.redis_link import WORKER_ID, RedisDown, RedisLink, busy_key, round_key

if TYPE_CHECKING:
    from scrapy import Request, Spider

    from distributed.worker import SharedRound

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
