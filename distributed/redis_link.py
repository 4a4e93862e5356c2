"""The Redis every role of a shared crawl talks to: its keys, the connection, and outages.

A Redis that goes away is waited out, never a crash: every call goes through a process's one
RedisLink, which raises RedisDown while Redis is unreachable and retries with back-off.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING, TypeVar

import redis

from config.redaction import redact, redact_credentials

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

T = TypeVar("T")

# --- the keys, and how often the processes beat ---------------------------------------------

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


def holders_key(source: str) -> str:
    """Workers holding claimed requests of `source` (distributed/leases.py)."""
    return f"news:{source}:holders"


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
        self.recovered_at = float("-inf")  # when the last outage ended (time.monotonic())

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
            self.recovered_at = time.monotonic()


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
