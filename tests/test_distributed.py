"""A crawl shared through Redis by several workers, one writer and a coordinator (distributed/).

Every process is real: `redis-server` on a free port, `scheduler.py push` (the coordinator in the
foreground; the daemon as coordinator is in tests/test_daemon.py), `scheduler.py worker` and
`scheduler.py writer` as subprocesses, the demo site on 127.0.0.1 behind a handler that counts
requests in flight. Workers get a --db in a folder that does not exist: they never need one.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import redis

from archive.raw_pages import page_html
from archive.sqlite import sqlite3
from archive.warc_files import warc_directory
from demo.server import DEFAULT_ROOT, SiteHandler, SiteServer
from distributed.redis_link import ITEMS_KEY, PROCESSING_KEY, VALIDATORS_KEY
from tests.conftest import DEMO_SOURCES, ROOT, scrapy_crawl, write_sources
from tests.processes import alive, descendants, started_by

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SOURCE = "courier_front"  # listings to depth 2 plus robots.txt sitemaps: the most varied crawl
PER_DOMAIN = 2
# Pages extract in the crawl process; no AutoThrottle, so the shared limiter is what holds.
WORKER_SETTINGS = {
    "NEWS_EXTRACT_WORKERS": "0",
    "CONCURRENT_REQUESTS_PER_DOMAIN": str(PER_DOMAIN),
    "AUTOTHROTTLE_ENABLED": "False",
    # Every request and robots.txt decision in the workers' logs: a page fetched once too often
    # (a robots.txt-disallowed one did, once, in CI) is then traced to its worker and referer.
    "LOG_LEVEL": "DEBUG",
}
ARTICLE_PATH = re.compile(r"^(/amp)?/(world|business|culture)/\d{4}/\d{2}/\d{2}/")

pytestmark = pytest.mark.timeout(240)


class CountingHandler(SiteHandler):
    """The demo site, a little slow, counting the requests it is answering at once: those in their
    delay, before any byte of the answer is sent. (Counted until the answer was written, a request
    whose client had its whole answer, and let the next request go, could still be counted while
    its thread finished: 3 at once seen with 2 allowed, on a busy machine.)"""

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.arrivals.append((time.monotonic(), self.path))  # type: ignore[attr-defined]
            server.in_flight += 1  # type: ignore[attr-defined]
            server.max_in_flight = max(server.max_in_flight, server.in_flight)  # type: ignore[attr-defined]
        try:
            time.sleep(server.page_delay)  # type: ignore[attr-defined]
        finally:
            with server.lock:
                server.in_flight -= 1  # type: ignore[attr-defined]
        super().do_GET()


@pytest.fixture
def counting_site() -> Iterator[SiteServer]:
    server = SiteServer(DEFAULT_ROOT)
    server.RequestHandlerClass = CountingHandler
    server.in_flight = 0  # type: ignore[attr-defined]
    server.max_in_flight = 0  # type: ignore[attr-defined]
    server.arrivals = []  # type: ignore[attr-defined]  # (monotonic time, path) of each request
    server.page_delay = 0.05  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int, directory: Path, *, appendonly: bool = False) -> subprocess.Popen[bytes]:
    """redis-server on 127.0.0.1:`port`; returns once it answers PING.

    appendonly: every write goes to an append-only file (fsync'd at once), read back on restart.
    Otherwise nothing is saved: a restart starts empty.
    """
    binary = shutil.which("redis-server")
    assert binary, "these tests need Debian's redis-server (apt-get install -y redis-server)"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
    argv += ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    with redis.Redis(port=port) as client:
        while True:
            try:
                client.ping()
                return process
            except redis.ConnectionError:  # refused, or still loading its append-only file
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # SIGTERM: redis-server flushes its append-only file and exits
    process.wait(timeout=10)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    stop_redis(process)


class Crawl:
    """One shared crawl's processes: the coordinator, workers and the writer, logs in tmp_path."""

    def __init__(self, tmp_path: Path, sources: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.db = tmp_path / "news.db"
        self.no_db = tmp_path / "no-such-folder" / "news.db"  # what workers are given
        self.sources = sources
        self.url = url
        self.processes: list[subprocess.Popen[bytes]] = []
        self.clients: list[redis.Redis] = []  # the test's own, closed at the end

    def start(
        self,
        command: str,
        *args: str,
        log: str,
        settings: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        db = self.no_db if command == "worker" else self.db
        argv = [sys.executable, "scheduler.py", command, *args, "--db", str(db), "--sources", str(self.sources)]
        argv += ["--redis", self.url]
        if command == "worker":
            for name, value in {**WORKER_SETTINGS, **(settings or {})}.items():
                argv += ["-s", f"{name}={value}"]
        with open(self.tmp_path / log, "ab") as out:
            process = subprocess.Popen(
                argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        self.processes.append(process)
        return process

    def writer(self, *args: str, log: str = "writer.log") -> subprocess.Popen[bytes]:
        """The writer runs until stop_writer(); `push` returns only once it has stored everything."""
        return self.start("writer", *args, log=log)

    def stop_writer(self, writer: subprocess.Popen[bytes], log: str = "writer.log") -> None:
        writer.send_signal(signal.SIGTERM)  # it finishes the batch in hand, then stops
        self.finish(writer, log)

    def workers(
        self,
        count: int,
        *,
        prefix: str = "worker",
        idle: str = "10",
        settings: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> list[subprocess.Popen[bytes]]:
        """Workers of SOURCE, returned once each serves its queue (so each gets a share of a round)."""
        logs = [f"{prefix}{i}.log" for i in range(count)]
        started = [
            self.start("worker", SOURCE, "--exit-when-idle", idle, log=log, settings=settings, env=env) for log in logs
        ]
        wait_for(lambda: all("serving the shared queue" in self.log(log) for log in logs), 60, "workers to start")
        return started

    def push(self, log: str = "push.log") -> subprocess.Popen[bytes]:
        return self.start("push", SOURCE, "--round-grace", "3s", log=log)

    def log(self, name: str) -> str:
        return (self.tmp_path / name).read_text(errors="replace")

    def finish(self, process: subprocess.Popen[bytes], log: str, status: int = 0, timeout: float = 120) -> None:
        assert process.wait(timeout=timeout) == status, self.log(log)[-4000:]

    def stop_all(self) -> None:
        for client in self.clients:
            client.close()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def crawls() -> Iterator[list[Crawl]]:
    made: list[Crawl] = []
    yield made
    for crawl in made:
        crawl.stop_all()


def articles(db: Path) -> tuple[set[str], int, int]:
    """Stored article URLs, row count, distinct bodies."""
    with sqlite3.connect(db) as conn:
        urls = {row[0] for row in conn.execute("SELECT url FROM articles")}
        rows, bodies = conn.execute("SELECT count(*), count(DISTINCT body_hash) FROM articles").fetchone()
    return urls, rows, bodies


def query(db: Path, sql: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql)]
    finally:
        conn.close()


def reference_crawl(site: SiteServer, tmp_path: Path) -> tuple[set[str], Counter[str], Path]:
    """What the single-machine crawl stores and fetches: the yardstick."""
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), site.base_url, tmp_path / "ref.toml")
    site.clear_log()
    scrapy_crawl(SOURCE, db=tmp_path / "ref.db", sources=sources, settings={"NEWS_EXTRACT_WORKERS": "0"})
    fetched = Counter(site.paths_requested())
    site.clear_log()
    return articles(tmp_path / "ref.db")[0], fetched, tmp_path / "ref.db"


def new_crawl(site: SiteServer, tmp_path: Path, url: str, crawls: list[Crawl]) -> Crawl:
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), site.base_url, tmp_path / "s.toml")
    crawl = Crawl(tmp_path, sources, url)
    crawls.append(crawl)
    return crawl


def article_fetches(site: SiteServer) -> list[str]:
    return [p for p in site.paths_requested() if ARTICLE_PATH.match(p)]


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def stored_count(db: Path) -> int:
    try:
        return articles(db)[1]
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return 0


# --- every article once, no page twice, politeness across workers ----------------------------------


def test_three_workers_one_writer_store_each_article_once(
    counting_site: SiteServer, redis_url: str, tmp_path: Path, crawls: list[Crawl]
) -> None:
    expected, reference_fetches, reference_db = reference_crawl(counting_site, tmp_path)
    assert len(expected) >= 10
    counting_site.max_in_flight = 0  # type: ignore[attr-defined]
    crawl = new_crawl(counting_site, tmp_path, redis_url, crawls)
    writer = crawl.writer()
    workers = crawl.workers(3)
    push = crawl.push()
    crawl.finish(push, "push.log")
    for i, worker in enumerate(workers):
        crawl.finish(worker, f"worker{i}.log")
    crawl.stop_writer(writer)

    urls, rows, bodies = articles(crawl.db)
    assert urls == expected
    assert rows == bodies == len(expected)
    fetched = Counter(counting_site.paths_requested())
    # Each worker asks for robots.txt once (each honours it); no other URL is fetched more often
    # than by the single-machine crawl (once, or its retries for a 5xx). It may be fetched less
    # often: a page whose AMP copy the writer stored already is skipped as stored.
    assert fetched.pop("/robots.txt") <= 3
    reference_fetches.pop("/robots.txt")
    extra = fetched - reference_fetches
    assert extra == Counter(), [
        line[:300]
        for i in range(3)
        for line in crawl.log(f"worker{i}.log").splitlines()
        if any(p in line for p in extra)
    ]
    # Three workers, each allowed PER_DOMAIN downloads by its own Scrapy: the shared limiter
    # keeps the site at PER_DOMAIN in total.
    assert counting_site.max_in_flight == PER_DOMAIN  # type: ignore[attr-defined]
    logs = "".join(crawl.log(f"worker{i}.log") for i in range(3))
    assert "Warning" not in logs  # nothing deprecated from scrapy-redis reaches Scrapy
    assert logs.count(f"serving the shared queue of {SOURCE}") == 3
    assert not crawl.no_db.parent.exists()  # no worker needed (or made) a database

    # One run, recorded as the single-machine crawl records it: the workers' counts and failures
    # reached it through the writer.
    (run,) = query(crawl.db, "SELECT * FROM crawl_runs")
    (reference,) = query(reference_db, "SELECT * FROM crawl_runs")
    assert run["status"] == "ok"
    assert run["finish_reason"].startswith("finished: the workers drained the queue")
    # Every worker took part: none claims more than it can download, and an idle one asks the queue
    # every 0.2 s (they used to take 16 requests at a time and look every 5 s: one did the round).
    assert run["finish_reason"].endswith("(3 workers)"), run["finish_reason"]
    for column in ("articles_new", "failures", "not_articles"):
        assert (run[column] or 0) == (reference[column] or 0), column
    assert run["requests"] == len(counting_site.paths_requested())  # every worker's requests, counted
    failures = query(crawl.db, "SELECT run_id, url, stage, http_status, reason FROM failures ORDER BY url")
    reference_failures = query(reference_db, "SELECT url, stage, http_status, reason FROM failures ORDER BY url")
    assert [{k: f[k] for k in ("url", "stage", "http_status", "reason")} for f in failures] == reference_failures
    assert {f["run_id"] for f in failures} == {run["id"]}
    assert {f["http_status"] for f in failures} == {404, 500}


def test_the_next_round_downloads_no_stored_article(
    counting_site: SiteServer, redis_url: str, tmp_path: Path, crawls: list[Crawl]
) -> None:
    """Workers skip stored articles by asking Redis (the writer publishes what it stores), not SQLite."""
    crawl = new_crawl(counting_site, tmp_path, redis_url, crawls)
    writer = crawl.writer()
    for round_number in (1, 2):
        if round_number == 2:
            counting_site.clear_log()
            # Feeds, sitemaps and listings read again in full (as from a server that sends no
            # validators): every stored article is offered again, and must be skipped.
            redis.Redis.from_url(redis_url).delete(VALIDATORS_KEY)
            with sqlite3.connect(crawl.db) as conn:
                conn.execute("DELETE FROM http_validators")
        workers = crawl.workers(2, prefix=f"round{round_number}-worker")
        crawl.finish(crawl.push(log=f"push{round_number}.log"), f"push{round_number}.log")
        for i, worker in enumerate(workers):
            crawl.finish(worker, f"round{round_number}-worker{i}.log")
    crawl.stop_writer(writer)

    first, second = query(crawl.db, "SELECT * FROM crawl_runs ORDER BY id")
    assert first["articles_new"] >= 10
    assert second["status"] == "ok"
    assert (second["articles_new"] or 0) == 0
    # Every article link found again was skipped, and no article page was fetched: the 404 is
    # remembered as no article (not_articles, published to the workers through Redis); only the
    # 500, a failure worth trying again, was asked for and failed again.
    assert second["skipped_stored"] >= first["articles_new"]
    assert article_fetches(counting_site) == []
    assert "/world/2026/11/03/ferry-strike-ends-missing.html" not in counting_site.paths_requested()
    assert "/broken/server-error.html" in counting_site.paths_requested()
    failures = query(crawl.db, "SELECT run_id, count(*) AS n FROM failures GROUP BY run_id ORDER BY run_id")
    assert [(f["run_id"], f["n"]) for f in failures] == [(first["id"], 2), (second["id"], 1)]
    # The skipped articles were seen again: the writer moved their last_seen_at. (Times are in whole
    # seconds, and workers take a round within 0.2 s: seen in the second the round opened counts.)
    assert first["finished_at"] < second["started_at"]
    (moved,) = query(crawl.db, f"SELECT count(*) AS n FROM articles WHERE last_seen_at >= '{second['started_at']}'")
    assert moved["n"] >= first["articles_new"] - 2
    assert not crawl.no_db.parent.exists()


# --- failures: killed processes, Redis outages -----------------------------------------------------


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
    counting_site: SiteServer, redis_url: str, tmp_path: Path, crawls: list[Crawl]
) -> None:
    expected, _, _ = reference_crawl(counting_site, tmp_path)
    counting_site.page_delay = 0.15  # type: ignore[attr-defined]  # long enough to kill in the middle
    crawl = new_crawl(counting_site, tmp_path, redis_url, crawls)
    client = redis.Redis.from_url(redis_url)
    crawl.clients.append(client)
    writer = crawl.writer("--batch-size", "3")
    workers = crawl.workers(3)
    push = crawl.push()

    wait_for(lambda: len(article_fetches(counting_site)) >= 6, what="articles being fetched")
    busy = {int(w.decode().rpartition(":")[2]) for w in client.hkeys(f"news:{SOURCE}:busy")}
    victim = next(w for w in workers if w.pid in busy)  # a worker that took requests of the round
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    workers.remove(victim)
    wait_for(lambda: stored_count(crawl.db) >= 1, what="a first commit")
    held = _kill_writer_mid_batch(writer, client)
    assert held > 0
    crawl.finish(push, "push.log")  # the round ends without the dead worker
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    assert client.llen(PROCESSING_KEY) == held  # nobody acknowledged the dead writer's batch
    (first,) = query(crawl.db, "SELECT * FROM crawl_runs")
    assert "died during the round" in first["finish_reason"]

    # The next round: a restarted writer and one worker; what the dead worker held is found again.
    writer = crawl.writer(log="writer2.log")
    (worker,) = crawl.workers(1, prefix="worker-again")
    crawl.finish(crawl.push(log="push2.log"), "push2.log")
    crawl.finish(worker, "worker-again0.log")
    crawl.stop_writer(writer, "writer2.log")

    assert f"requeued {held} items" in crawl.log("writer2.log")
    urls, rows, bodies = articles(crawl.db)
    assert urls == expected
    assert rows == bodies == len(expected)
    # Each article's page is referenced and readable in the writer's WARC files, whatever the
    # killed writer had written and never committed.
    refs = query(crawl.db, "SELECT * FROM raw_page_refs")
    assert {ref["url"] for ref in refs} == expected
    for ref in refs:
        assert "</html>" in page_html(warc_directory(crawl.db), ref).lower()
    assert client.llen(PROCESSING_KEY) == 0
    assert client.llen(ITEMS_KEY) == 0


def _kill_worker_holding_fetched_pages(
    victim: subprocess.Popen[bytes], client: redis.Redis, site: SiteServer
) -> tuple[set[str], set[str], float]:
    """Freeze the worker until it is caught holding claimed requests, one of them an article it
    has fetched and not handed on yet, then kill -9 it. Returns (the article paths it held, those
    of them the writer had stored already, when it was killed)."""
    held_key = f"news:{SOURCE}:held:{socket.gethostname()}:{victim.pid}"
    while True:
        os.kill(victim.pid, signal.SIGSTOP)
        held = [json.loads(meta) for meta in client.hvals(held_key)]
        paths = {urlsplit(m["url"]).path: m for m in held if "url" in m}
        fetched = set(paths) & set(site.paths_requested())
        if len(held) >= 2 and fetched:
            killed_at = time.monotonic()
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            stored = {path for path, m in paths.items() if client.exists(f"news:stored:{m['url']}")}
            return set(paths), stored, killed_at
        os.kill(victim.pid, signal.SIGCONT)
        assert victim.poll() is None, "the worker ended before it could be caught holding pages"
        time.sleep(0.005)


def test_a_killed_workers_requests_and_pages_are_taken_over_in_the_same_round(
    counting_site: SiteServer, redis_url: str, tmp_path: Path, crawls: list[Crawl]
) -> None:
    """SIGKILL to a worker that holds claimed requests and fetched pages: the others take them
    over within seconds (its heartbeat stops, its lease runs out), the same round stores every
    article once, nothing stored is fetched again, its extraction processes die with it, and its
    slots in the per-host limiter do not keep the site waiting for their lease (60 s)."""
    expected, reference_fetches, _ = reference_crawl(counting_site, tmp_path)
    counting_site.page_delay = 0.15  # type: ignore[attr-defined]
    counting_site.arrivals.clear()  # type: ignore[attr-defined]
    crawl = new_crawl(counting_site, tmp_path, redis_url, crawls)
    client = redis.Redis.from_url(redis_url)
    crawl.clients.append(client)
    writer = crawl.writer()
    # The victim extracts in a pool (a forkserver and its processes), so that it dies with children.
    (victim,) = crawl.workers(1, prefix="victim", settings={"NEWS_EXTRACT_WORKERS": "1"})
    workers = crawl.workers(2)
    push = crawl.push()

    wait_for(lambda: client.hlen(f"news:{SOURCE}:held:{socket.gethostname()}:{victim.pid}") > 0, what="a claim")
    wait_for(lambda: len(descendants(victim.pid)) >= 2, what="the victim's extraction processes")
    held_paths, stored_at_kill, killed_at = _kill_worker_holding_fetched_pages(victim, client, counting_site)
    children = descendants(victim.pid) | started_by(victim.pid)
    crawl.finish(push, "push.log")  # the same round, ended by the others
    for i, worker in enumerate(workers):
        crawl.finish(worker, f"worker{i}.log")
    crawl.stop_writer(writer)

    (run,) = query(crawl.db, "SELECT * FROM crawl_runs")
    assert run["status"] == "ok", run["finish_reason"]
    assert "died during the round" in run["finish_reason"]
    assert re.search(r"its [1-9]\d* requests were taken over", run["finish_reason"]), run["finish_reason"]
    urls, rows, bodies = articles(crawl.db)
    assert urls == expected
    assert rows == bodies == len(expected)
    # Fetched more often than by the single-machine crawl: only what the victim held, once more,
    # and never an article the writer had stored by then.
    extra = Counter(article_fetches(counting_site)) - Counter(
        {p: n for p, n in reference_fetches.items() if ARTICLE_PATH.match(p)}
    )
    assert set(extra) <= held_paths - stored_at_kill, (extra, held_paths, stored_at_kill)
    assert max(extra.values(), default=1) == 1
    # Its forkserver, pool process and resource tracker went with it.
    wait_for(lambda: not alive(children), 30, f"the killed worker's processes {alive(children)} to end")
    # The site was never left waiting: requests kept coming after the kill (the dead worker's
    # limiter slots were freed, its requests requeued within seconds).
    times = [t for t, _ in counting_site.arrivals]  # type: ignore[attr-defined]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert any(t > killed_at for t in times)
    assert max(gaps) < 20, f"the site got no request for {max(gaps):.1f}s"
    assert client.scard(f"news:{SOURCE}:holders") == 0
    assert client.keys(f"news:{SOURCE}:held:*") == []


def test_a_long_tmpdir_neither_stops_extraction_nor_hides_it(
    counting_site: SiteServer, redis_url: str, tmp_path: Path, crawls: list[Crawl]
) -> None:
    """Under a TMPDIR too long for an AF_UNIX socket path (107 bytes), the extraction pool's
    forkserver once failed every page ("OSError: AF_UNIX path too long") while the crawl said
    "ok - 0 new". The pool puts its socket where it fits: the crawl and a worker store every article."""
    expected, _, _ = reference_crawl(counting_site, tmp_path)
    long_tmp = tmp_path / ("t" * 60) / ("u" * 40)
    long_tmp.mkdir(parents=True)
    assert len(str(long_tmp)) > 107
    env = {"TMPDIR": str(long_tmp)}
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), counting_site.base_url, tmp_path / "s.toml")

    argv = [sys.executable, "scheduler.py", "crawl", SOURCE, "--db", str(tmp_path / "single.db")]
    argv += ["--sources", str(sources), "-s", "NEWS_EXTRACT_WORKERS=1"]
    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "AF_UNIX" not in result.stdout + result.stderr
    assert f"{len(expected)} new" in result.stdout
    assert articles(tmp_path / "single.db")[0] == expected

    crawl = new_crawl(counting_site, tmp_path, redis_url, crawls)
    writer = crawl.writer()
    (worker,) = crawl.workers(1, settings={"NEWS_EXTRACT_WORKERS": "1"}, env=env)
    crawl.finish(crawl.push(), "push.log")
    crawl.finish(worker, "worker0.log")
    crawl.stop_writer(writer)
    assert "AF_UNIX" not in crawl.log("worker0.log")
    assert articles(crawl.db)[0] == expected
    (run,) = query(crawl.db, "SELECT * FROM crawl_runs")
    assert run["status"] == "ok"
    assert run["articles_new"] == len(expected)


def test_a_worker_stopped_while_idle_leaves_its_round_cleanly(
    counting_site: SiteServer, redis_url: str, tmp_path: Path, crawls: list[Crawl]
) -> None:
    """SIGTERM (systemctl stop) to workers that hold nothing is no death in the round: the round
    ends ok and its validators are kept."""
    crawl = new_crawl(counting_site, tmp_path, redis_url, crawls)
    client = redis.Redis.from_url(redis_url)
    crawl.clients.append(client)
    writer = crawl.writer()
    logs = ["worker0.log", "worker1.log"]
    workers = [crawl.start("worker", "courier_feeds", log=log) for log in logs]  # serve until stopped
    wait_for(lambda: all("serving the shared queue" in crawl.log(log) for log in logs), 60, "workers to start")
    push = crawl.start("push", "courier_feeds", "--round-grace", "15s", log="push.log")
    busy = "news:courier_feeds:busy"

    def all_idle_for_3s() -> bool:
        marks = [int(ms) for ms in client.hvals(busy)]
        seconds, micros = client.time()
        return bool(marks) and seconds * 1000 + micros // 1000 - max(marks) > 3000

    wait_for(all_idle_for_3s, 60, "the round's work to be done")
    assert client.exists("news:courier_feeds:round")  # still open: its grace has not passed
    for worker, log in zip(workers, logs, strict=True):
        worker.send_signal(signal.SIGTERM)
        crawl.finish(worker, log)
    crawl.finish(push, "push.log")
    crawl.stop_writer(writer)

    (run,) = query(crawl.db, "SELECT * FROM crawl_runs")
    assert run["status"] == "ok"
    assert "died" not in run["finish_reason"]
    assert query(crawl.db, "SELECT url FROM http_validators") != []  # a clean round keeps them


def test_workers_and_the_writer_wait_for_redis_at_start(
    counting_site: SiteServer, tmp_path: Path, crawls: list[Crawl]
) -> None:
    port = free_port()
    crawl = new_crawl(counting_site, tmp_path, f"redis://127.0.0.1:{port}/0", crawls)
    worker = crawl.start("worker", "courier_feeds", "--exit-when-idle", "5", log="worker.log")
    writer = crawl.writer()
    time.sleep(3)  # both are up, and Redis is not
    assert worker.poll() is None
    assert writer.poll() is None
    server = start_redis(port, tmp_path)
    try:
        push = crawl.start("push", "courier_feeds", "--round-grace", "3s", log="push.log")
        crawl.finish(push, "push.log")
        crawl.finish(worker, "worker.log")
        crawl.stop_writer(writer)
    finally:
        stop_redis(server)
    assert "unavailable" in crawl.log("worker.log")
    assert len(articles(crawl.db)[0]) >= 10


def backoff_delays(log: str) -> list[float]:
    return [float(d) for d in re.findall(r"unavailable \(.*?\): retrying in ([0-9.]+)s", log)]


def test_a_redis_outage_mid_crawl_is_waited_out_and_loses_nothing(
    counting_site: SiteServer, tmp_path: Path, crawls: list[Crawl]
) -> None:
    """Redis stopped mid-crawl and started again (append-only file on, so it keeps its data):
    every process waits and retries with back-off, and the round completes, each article stored once."""
    expected, reference_fetches, _ = reference_crawl(counting_site, tmp_path)
    counting_site.page_delay = 0.1  # type: ignore[attr-defined]
    port = free_port()
    data = tmp_path / "redis-data"
    data.mkdir()
    server = start_redis(port, data, appendonly=True)
    crawl = new_crawl(counting_site, tmp_path, f"redis://127.0.0.1:{port}/0", crawls)
    try:
        writer = crawl.writer()
        workers = crawl.workers(2)
        push = crawl.push()
        wait_for(lambda: len(article_fetches(counting_site)) >= 8, what="articles being fetched")
        wait_for(lambda: stored_count(crawl.db) >= 1, what="a first commit")
        stop_redis(server)
        time.sleep(6)  # long enough for several retries
        assert all(p.poll() is None for p in (writer, push, *workers)), "a process gave up while Redis was down"
        server = start_redis(port, data, appendonly=True)
        crawl.finish(push, "push.log")
        for i, worker in enumerate(workers):
            crawl.finish(worker, f"worker{i}.log")
        crawl.stop_writer(writer)
    finally:
        stop_redis(server)

    urls, rows, bodies = articles(crawl.db)
    assert urls == expected
    assert rows == bodies == len(expected)
    fetched = Counter(counting_site.paths_requested())
    fetched.pop("/robots.txt")
    reference_fetches.pop("/robots.txt")
    assert fetched - reference_fetches == Counter()  # nothing fetched twice: the seen-set survived
    (run,) = query(crawl.db, "SELECT * FROM crawl_runs")
    assert run["status"] == "ok"
    for name in ("writer.log", "push.log", "worker0.log", "worker1.log"):
        log = crawl.log(name)
        assert "Traceback" not in log, name
        assert "is back after" in log, name
    # Waits grow: 0.5 s, 1 s, 2 s, ... (one line per retry, whoever made it)
    delays = backoff_delays(crawl.log("worker0.log"))
    assert delays[:3] == [0.5, 1.0, 2.0]


def test_a_redis_restart_without_persistence_loses_the_round_and_the_next_one_finds_it(
    counting_site: SiteServer, tmp_path: Path, crawls: list[Crawl]
) -> None:
    """Without persistence a restart empties Redis: the round's queue and seen-set are lost (the
    run is recorded failed, saying so), items not yet stored are lost, and the next round
    rediscovers all of it; nothing is stored twice."""
    expected, _, _ = reference_crawl(counting_site, tmp_path)
    counting_site.page_delay = 0.1  # type: ignore[attr-defined]
    port = free_port()
    server = start_redis(port, tmp_path)
    crawl = new_crawl(counting_site, tmp_path, f"redis://127.0.0.1:{port}/0", crawls)
    try:
        writer = crawl.writer()
        workers = crawl.workers(2, idle="8")
        push = crawl.push()
        wait_for(lambda: len(article_fetches(counting_site)) >= 8, what="articles being fetched")
        stop_redis(server)
        time.sleep(3)
        server = start_redis(port, tmp_path)
        crawl.finish(push, "push.log", status=1)  # its run failed
        workers += crawl.workers(1, prefix="round2-worker")
        crawl.finish(crawl.push(log="push2.log"), "push2.log")
        for worker in workers:
            worker.wait(timeout=120)
        crawl.stop_writer(writer)
    finally:
        stop_redis(server)

    lost, again = query(crawl.db, "SELECT * FROM crawl_runs ORDER BY id")
    assert lost["status"] == "failed"
    assert "gone from Redis" in lost["finish_reason"]
    assert again["status"] == "ok"
    urls, rows, bodies = articles(crawl.db)
    assert urls == expected
    assert rows == bodies == len(expected)
    assert "published" in crawl.log("writer.log")  # stored URLs published again to the empty Redis
