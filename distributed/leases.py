"""A worker's claimed requests as a lease: taken over by the others when the worker dies.

A request popped from a source's shared queue is not gone from Redis: the pop moves it into the
worker's held hash (``news:<source>:held:<worker>``, request -> JSON with its queue score and, for
an article, its URL and the stored record it had when claimed) and names the worker in
``news:<source>:holders``. It stays there while the worker fetches it, extracts it and hands it on
(the item pushed to the writer, the links found pushed to the queue), and only then is it released.

Every live worker (at each beat) and the coordinator (at each check) look for holders whose
liveness key (``news:worker:<id>``, refreshed by every beat and every claim) is older than
LEASE_TIMEOUT_MS or gone: what such a worker held goes back to the queue with its score, except
an article the writer stored (or stored again) since it was claimed, which is not fetched twice.
Its slots in the per-host limiter (``news:polite:<host>``, tokens ``<worker>|<uuid>``) are freed
at the same moment, so the site does not wait out their lease.

No Scrapy here: the coordinator runs in the daemon, which never imports it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from distributed.redis_link import RedisLink, holders_key, queue_key, round_key

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

# A worker whose last beat (or claim) is older than this has died: its leases are taken over.
# Longer than a beat (1 s) with room for a reactor busy with a large page; short enough that the
# site does not go quiet for long.
LEASE_TIMEOUT_MS = 5000
# After a Redis outage no worker has beaten for its length, and each comes back at its own next
# retry (up to RedisLink.MAX_DELAY later): none is taken for dead until all had time to beat again.
AFTER_OUTAGE = LEASE_TIMEOUT_MS / 1000 + RedisLink.MAX_DELAY
POLITE_HOSTS_KEY = "news:polite:hosts"  # the limiter's per-host keys, for freeing a dead worker's slots


def held_prefix(source: str) -> str:
    return f"news:{source}:held:"


def held_key(source: str, worker: str) -> str:
    return held_prefix(source) + worker


def slot_token(worker: str, unique: str) -> str:
    """A politeness slot's member: whose it is, so that a dead worker's slots can be freed."""
    return f"{worker}|{unique}"


# KEYS: queue, round, busy, held, holders, worker's liveness. ARGV: worker id, liveness ttl s.
# Returns {request, run id or ''} or nil. The claim: the request moves from the queue into the
# worker's held hash, the worker is marked busy (the coordinator never ends a round while a worker
# holds its last request) and alive (a claim is a beat: no one takes over a lease just made).
CLAIM = """
local found = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #found == 0 then return nil end
redis.call('ZREM', KEYS[1], found[1])
redis.call('HSET', KEYS[4], found[1], cjson.encode({score = tonumber(found[2])}))
redis.call('SADD', KEYS[5], ARGV[1])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[3], ARGV[1], now)
redis.call('SET', KEYS[6], now, 'EX', tonumber(ARGV[2]))
return {found[1], redis.call('HGET', KEYS[2], 'run_id') or ''}
"""

# KEYS: held, the article's stored key. ARGV: request, url. Notes the article's URL and how the
# workers saw it when it was claimed ('' = not stored).
NOTE_ARTICLE = """
local meta = redis.call('HGET', KEYS[1], ARGV[1])
if not meta then return 0 end
meta = cjson.decode(meta)
meta.url = ARGV[2]
meta.stored = redis.call('GET', KEYS[2]) or ''
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(meta))
return 1
"""

# KEYS: held, holders. ARGV: worker id, then the requests handed on.
RELEASE = """
for i = 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""

# KEYS: queue, holders, round, polite hosts. ARGV: held-key prefix, lease timeout ms, a worker to
# requeue regardless ('' = only dead ones). Returns {requeued, skipped as stored, workers...}.
TAKE_OVER = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local requeued, stored, gone = 0, 0, {}
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local beat = redis.call('GET', 'news:worker:' .. worker)
  if worker == ARGV[3] or not beat or now - tonumber(beat) > tonumber(ARGV[2]) then
    local held = ARGV[1] .. worker
    local entries = redis.call('HGETALL', held)
    for i = 1, #entries, 2 do
      local meta = cjson.decode(entries[i + 1])
      local now_stored = meta.url and redis.call('GET', 'news:stored:' .. meta.url) or false
      if now_stored and now_stored ~= meta.stored then
        stored = stored + 1
      else
        redis.call('ZADD', KEYS[1], meta.score, entries[i])
        requeued = requeued + 1
      end
    end
    redis.call('DEL', held)
    redis.call('SREM', KEYS[2], worker)
    local mine = worker .. '|'
    for _, host in ipairs(redis.call('SMEMBERS', KEYS[4])) do
      for _, token in ipairs(redis.call('ZRANGE', host, 0, -1)) do
        if string.sub(token, 1, #mine) == mine then redis.call('ZREM', host, token) end
      end
    end
    table.insert(gone, worker)
  end
end
if requeued + stored > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'taken_over', requeued)
end
return {requeued, stored, unpack(gone)}
"""


class Leases:
    """The lease scripts of one Redis, for any role (workers, the coordinator)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        client = link.client
        self.claim_script = client.register_script(CLAIM)
        self.note_script = client.register_script(NOTE_ARTICLE)
        self.release_script = client.register_script(RELEASE)
        self.take_over_script = client.register_script(TAKE_OVER)

    def release(self, source: str, worker: str, requests: Iterable[bytes]) -> None:
        """Requests handed on: no longer this worker's to requeue if it dies. Raises RedisDown."""
        args: list[Any] = [worker, *requests]
        if len(args) > 1:
            keys = [held_key(source, worker), holders_key(source)]
            self.link.call("releasing claimed requests", lambda _: self.release_script(keys=keys, args=args))

    def take_over(self, source: str, *, worker: str = "") -> tuple[int, int, list[str]]:
        """Requeue what dead workers of `source` held (and all that `worker` holds, if given),
        and free their politeness slots. Returns (requeued, skipped as stored since, workers).
        Raises RedisDown."""
        if not worker and time.monotonic() - self.link.recovered_at < AFTER_OUTAGE:
            return 0, 0, []
        keys = [queue_key(source), holders_key(source), round_key(source), POLITE_HOSTS_KEY]
        args: list[str | int] = [held_prefix(source), LEASE_TIMEOUT_MS, worker]
        requeued, stored, *gone = self.link.call(
            "taking over dead workers' requests", lambda _: self.take_over_script(keys=keys, args=args)
        )
        workers = [w.decode() if isinstance(w, bytes) else str(w) for w in gone]
        if (requeued or stored) and not worker:
            logger.warning(
                "took over what worker %s held in %s (no beat for %.0fs): %d requests requeued, %d stored since",
                ", ".join(workers),
                source,
                LEASE_TIMEOUT_MS / 1000,
                requeued,
                stored,
            )
        return int(requeued), int(stored), workers
