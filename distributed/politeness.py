"""Politeness across workers: per-host concurrency and delay, held for all workers together
through a limiter in Redis (``news:polite:<host>``, ``news:polite:<host>:delay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

from distributed.leases import POLITE_HOSTS_KEY, slot_token
from distributed.redis_link import WORKER_ID, RedisDown, RedisLink

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

# KEYS: holders zset, delay key, the set of hosts' holder keys. ARGV: limit, token, lease ms, delay ms.
# Holders are scored by the Redis clock, so a slot expires after the lease even if no one frees it;
# a dead worker's slots are freed sooner, when its heartbeat stops (distributed/leases.py, which
# finds them through the set of hosts and their tokens, "<worker>|<uuid>").
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('SADD', KEYS[3], KEYS[1])
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
        token = slot_token(WORKER_ID, uuid.uuid4().hex)
        delay_ms = int(self.crawler.settings.getfloat("DOWNLOAD_DELAY") * 1000)
        keys = [f"news:polite:{host}", f"news:polite:{host}:delay", POLITE_HOSTS_KEY]
        args: list[int | str] = [self.limit, token, self.lease_ms, delay_ms]
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
