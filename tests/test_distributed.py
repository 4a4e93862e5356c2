"""Several crawl workers and one writer sharing a crawl through Redis (distributed.py).

Every process is real: `redis-server` on a free port, `scheduler.py worker` and `scheduler.py writer`
as subprocesses, the demo site on 127.0.0.1 behind a handler that counts requests in flight.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from demo.server import DEFAULT_ROOT, SiteHandler, SiteServer
from distributed import PROCESSING_KEY
from tests.conftest import DEMO_SOURCES, ROOT, scrapy_crawl, write_sources

SOURCE = "courier_front"  # listings to depth 2 plus robots.txt sitemaps: the most varied crawl
PER_DOMAIN = 2
# Fast rounds: a worker stops 2 s after the shared queue ran dry; pages extract in the crawl process.
WORKER_SETTINGS = {
    "NEWS_REDIS_IDLE_GRACE": "2",
    "NEWS_EXTRACT_WORKERS": "0",
    "CONCURRENT_REQUESTS_PER_DOMAIN": str(PER_DOMAIN),
    "AUTOTHROTTLE_ENABLED": "False",
}


class CountingHandler(SiteHandler):
    """The demo site, a little slow, counting the requests it is answering at once."""

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.in_flight += 1  # type: ignore[attr-defined]
            server.max_in_flight = max(server.max_in_flight, server.in_flight)  # type: ignore[attr-defined]
        try:
            time.sleep(server.page_delay)  # type: ignore[attr-defined]
            super().do_GET()
        finally:
            with server.lock:
                server.in_flight -= 1  # type: ignore[attr-defined]


@pytest.fixture
def counting_site() -> SiteServer:
    server = SiteServer(DEFAULT_ROOT)
    server.RequestHandlerClass = CountingHandler
    server.in_flight = 0  # type: ignore[attr-defined]
    server.max_in_flight = 0  # type: ignore[attr-defined]
    server.page_delay = 0.05  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    """redis-server on 127.0.0.1:`port`, nothing saved; returns once it answers PING."""
    binary = shutil.which("redis-server")
    assert binary, "these tests need Debian's redis-server (apt-get install -y redis-server)"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*argv, "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


@pytest.fixture
def redis_url(tmp_path: Path) -> str:
    port = free_port()
    process = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def start(command: str, *args: str, db: Path, sources: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "scheduler.py", command, *args, "--db", str(db), "--sources", str(sources)]
    argv += ["--redis", url]
    if command == "worker":
        for name, value in WORKER_SETTINGS.items():
            argv += ["-s", f"{name}={value}"]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


def finish(process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    assert process.wait(timeout=timeout) == 0, log.read_text(errors="replace")[-4000:]


def articles(db: Path) -> tuple[set[str], int, int]:
    """Stored article URLs, row count, distinct bodies."""
    with sqlite3.connect(db) as conn:
        urls = {row[0] for row in conn.execute("SELECT url FROM articles")}
        rows, bodies = conn.execute("SELECT count(*), count(DISTINCT body_hash) FROM articles").fetchone()
    return urls, rows, bodies


def reference_crawl(site: SiteServer, tmp_path: Path) -> tuple[set[str], Counter[str]]:
    """What the single-machine crawl stores and fetches: the yardstick."""
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), site.base_url, tmp_path / "ref.toml")
    site.clear_log()
    scrapy_crawl(SOURCE, db=tmp_path / "ref.db", sources=sources, settings={"NEWS_EXTRACT_WORKERS": "0"})
    fetched = Counter(site.paths_requested())
    site.clear_log()
    return articles(tmp_path / "ref.db")[0], fetched


def test_three_workers_one_writer_store_each_article_once(
    counting_site: SiteServer, redis_url: str, tmp_path: Path
) -> None:
    expected, reference_fetches = reference_crawl(counting_site, tmp_path)
    assert len(expected) >= 10
    counting_site.max_in_flight = 0  # type: ignore[attr-defined]
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), counting_site.base_url, tmp_path / "s.toml")
    db = tmp_path / "news.db"
    common = {"db": db, "sources": sources, "url": redis_url}
    writer = start("writer", "--exit-when-idle", "6", **common, log=tmp_path / "writer.log")
    workers = [start("worker", SOURCE, **common, log=tmp_path / f"worker{i}.log") for i in range(3)]
    for i, worker in enumerate(workers):
        finish(worker, tmp_path / f"worker{i}.log")
    finish(writer, tmp_path / "writer.log")

    urls, rows, bodies = articles(db)
    assert urls == expected
    assert rows == bodies == len(expected)
    fetched = Counter(counting_site.paths_requested())
    # Each worker asks for robots.txt once (each honours it); every other URL is fetched as often
    # as by the single-machine crawl (once, or its retries for a 5xx).
    assert fetched.pop("/robots.txt") <= 3
    reference_fetches.pop("/robots.txt")
    assert fetched == reference_fetches
    # Three workers, each allowed PER_DOMAIN downloads by its own Scrapy: the shared limiter
    # keeps the site at PER_DOMAIN in total.
    assert counting_site.max_in_flight == PER_DOMAIN  # type: ignore[attr-defined]
    logs = "".join((tmp_path / f"worker{i}.log").read_text(errors="replace") for i in range(3))
    assert "Warning" not in logs  # scrapy-redis's deprecated calls are overridden (RedisScheduler)
    assert logs.count("opened a new round") == 1
    assert logs.count("joining the running round") == 2


def _wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _kill_writer_mid_batch(writer: subprocess.Popen[bytes], client: redis.Redis) -> int:
    """Freeze the writer until it is caught holding unacknowledged items, then kill -9 it."""
    while True:
        os.kill(writer.pid, signal.SIGSTOP)
        held = client.llen(PROCESSING_KEY)
        if held:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
            return held
        os.kill(writer.pid, signal.SIGCONT)
        assert writer.poll() is None, "writer ended before it could be caught mid-batch"
        time.sleep(0.005)


def test_killed_worker_and_writer_lose_and_duplicate_nothing(
    counting_site: SiteServer, redis_url: str, tmp_path: Path
) -> None:
    expected, _ = reference_crawl(counting_site, tmp_path)
    counting_site.page_delay = 0.15  # type: ignore[attr-defined]  # long enough to kill in the middle
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), counting_site.base_url, tmp_path / "s.toml")
    db = tmp_path / "news.db"
    common = {"db": db, "sources": sources, "url": redis_url}
    client = redis.Redis.from_url(redis_url)
    writer = start("writer", "--batch-size", "3", **common, log=tmp_path / "writer.log")
    workers = [start("worker", SOURCE, **common, log=tmp_path / f"worker{i}.log") for i in range(3)]

    def article_fetches() -> int:
        return sum(p.startswith(("/world/", "/business/", "/culture/")) for p in counting_site.paths_requested())

    _wait_for(lambda: article_fetches() >= 6, what="articles being fetched")
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait()
    _wait_for(lambda: articles(db)[1] >= 1, what="a first commit")
    held = _kill_writer_mid_batch(writer, client)
    assert held > 0
    for i, worker in enumerate(workers[1:], start=1):
        finish(worker, tmp_path / f"worker{i}.log")
    assert client.llen(PROCESSING_KEY) == held  # nobody acknowledged the dead writer's batch

    # The next run: a restarted writer and one worker, which opens a new round.
    writer = start("writer", "--exit-when-idle", "6", **common, log=tmp_path / "writer2.log")
    worker = start("worker", SOURCE, **common, log=tmp_path / "worker-again.log")
    finish(worker, tmp_path / "worker-again.log")
    finish(writer, tmp_path / "writer2.log")

    assert f"requeued {held} items" in (tmp_path / "writer2.log").read_text()
    urls, rows, bodies = articles(db)
    assert urls == expected
    assert rows == bodies == len(expected)
    assert client.llen(PROCESSING_KEY) == 0
    assert client.llen("news:items") == 0


def test_worker_waits_for_redis_instead_of_failing(counting_site: SiteServer, tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), counting_site.base_url, tmp_path / "s.toml")
    common = {"db": tmp_path / "news.db", "sources": sources, "url": url}
    worker = start("worker", "courier_feeds", **common, log=tmp_path / "worker.log")
    writer = start("writer", "--exit-when-idle", "6", **common, log=tmp_path / "writer.log")
    time.sleep(3)  # both are up, and Redis is not
    assert worker.poll() is None
    assert writer.poll() is None
    server = start_redis(port, tmp_path)
    try:
        finish(worker, tmp_path / "worker.log")
        finish(writer, tmp_path / "writer.log")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "unavailable" in (tmp_path / "worker.log").read_text()
    assert len(articles(tmp_path / "news.db")[0]) >= 10
