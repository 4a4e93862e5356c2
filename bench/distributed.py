"""Shared crawl through Redis: articles per second with 1, 2 and 4 workers, and the writer's ceiling.

    .venv/bin/python bench/distributed.py [--articles 500] [--workers 1 2 4] [--per-domain 8]

Each run gets a fresh redis-server (Debian's, on a free port), a fresh database and the same site
from bench/sitegen.py, served by bench/siteserver.py. Workers, the writer and the coordinator are
the real `scheduler.py worker` / `writer` / `push` processes, all on this machine. The workers and
the writer are started first and left idle (as they run in production); then `push` opens one
round of the source. Two rates:

- round: stored articles over the time from `push` starting to the last commit. It includes the
  round's start (seeds built, then up to 5 s until an idle worker's Scrapy engine polls its queue)
  and the feed and sitemaps being read;
- steady: articles stored between the first and the last commit, over that time.

The writer's ceiling: workers fill Redis with no writer running, then one writer drains the queue
into an empty database; rate = items / time from its start to the last commit.

With --kill: the same round with 3 workers (--kill-workers) twice, once as is and once with one
worker killed (SIGKILL) when a third of the site is stored, the busiest one (most requests
claimed). For each: coverage (articles stored of the site's), wall time (push started to its
end), the longest time the site got no request, each surviving worker's requests (from its
Scrapy stats), and the killed worker's processes still alive at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archive.sqlite import sqlite3  # noqa: E402
from bench.sitegen import ensure_site  # noqa: E402
from bench.throughput import ServedSite  # noqa: E402

SOURCE = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*argv, "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def write_sources(path: Path, base_url: str) -> None:
    path.write_text(
        f'[[source]]\nname = "{SOURCE}"\nevery = "1h"\nsitemaps = ["{base_url}/sitemap_index.xml"]\n'
        f'feeds = ["{base_url}/feeds/rss.xml"]\nallow_private = true\ndelay = "0s"\n',
        encoding="utf-8",
    )


def launch(
    command: str, work: Path, url: str, log: str, extra: list[str], log_level: str = "WARNING"
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "scheduler.py", command, *extra, "--redis", url]
    argv += ["--db", str(work / "news.db"), "--sources", str(work / "sources.toml"), "--log-level", log_level]
    with open(work / log, "ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def worker_args(per_domain: int, delay: float = 0.0) -> list[str]:
    settings = {
        "NEWS_EXTRACT_WORKERS": "1",
        "AUTOTHROTTLE_ENABLED": "0",
        "DOWNLOAD_DELAY": str(delay),
        "CONCURRENT_REQUESTS": str(per_domain * 2),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(per_domain),
    }
    return [SOURCE, "--exit-when-idle", "20"] + [
        arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")
    ]


def start_workers(
    work: Path, url: str, count: int, per_domain: int, log_level: str = "WARNING", delay: float = 0.0
) -> list[subprocess.Popen[bytes]]:
    """Workers, returned once each is up and polling its queue (logged at WARNING: the log stays small)."""
    import redis

    workers = [
        launch("worker", work, url, f"worker{i}.log", worker_args(per_domain, delay), log_level) for i in range(count)
    ]
    client = redis.Redis.from_url(url)
    try:
        while client.dbsize() == 0 or len(client.keys("news:worker:*")) < count:  # their liveness keys
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker failed to start; see its log")
            time.sleep(0.1)
    finally:
        client.close()
    return workers


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def watch(db: Path, procs: list[subprocess.Popen[bytes]], started: float) -> list[tuple[float, int]]:
    """Poll until every process ended; returns (seconds since `started`, articles stored) at each change."""
    counts: list[tuple[float, int]] = []
    while True:
        running = any(p.poll() is None for p in procs)
        now = stored(db)
        if not counts or now != counts[-1][1]:
            counts.append((time.monotonic() - started, now))
        if not running:
            break
        time.sleep(0.2)
    for p in procs:
        if p.returncode:
            raise RuntimeError(f"a process failed (exit {p.returncode}); see its log")
    return counts


def rates(counts: list[tuple[float, int]]) -> dict[str, float]:
    changes = [c for c in counts if c[1]]
    (first_t, first_n), (last_t, last_n) = changes[0], changes[-1]
    return {
        "articles": last_n,
        "seconds": last_t,
        "rate": last_n / last_t,
        "steady": (last_n - first_n) / (last_t - first_t) if last_t > first_t else float("nan"),
    }


def run_workers(site: ServedSite, work: Path, workers: int, per_domain: int) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_sources(work / "sources.toml", site.base_url)
    redis_proc, url = start_redis(work)
    try:
        writer = launch("writer", work, url, "writer.log", [])
        crawl = start_workers(work, url, workers, per_domain)
        started = time.monotonic()
        push = launch("push", work, url, "push.log", [SOURCE, "--round-grace", "3s"])
        counts = watch(work / "news.db", [push], started)  # push returns once the writer stored everything
        writer.send_signal(signal.SIGTERM)
        writer.wait(timeout=60)
        for proc in crawl:
            proc.wait(timeout=60)  # idle: they leave after 20 s
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    return {"workers": workers, **rates(counts)}


def writer_ceiling(site: ServedSite, work: Path, workers: int, per_domain: int) -> dict[str, float]:
    import redis

    from distributed import ITEMS_KEY

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_sources(work / "sources.toml", site.base_url)
    redis_proc, url = start_redis(work)
    try:
        crawl = start_workers(work, url, workers, per_domain)
        push = launch("push", work, url, "push.log", [SOURCE, "--round-grace", "3s"])
        push.wait()  # no writer: it returns when the round is crawled, its items left in Redis
        for proc in crawl:
            proc.wait()
        with redis.Redis.from_url(url) as client:
            items = client.llen(ITEMS_KEY)
        for suffix in ("", "-wal", "-shm"):  # the run records; the writer starts on an empty archive
            (work / f"news.db{suffix}").unlink(missing_ok=True)
        started = time.monotonic()
        writer = launch("writer", work, url, "writer.log", ["--exit-when-idle", "2"])
        counts = watch(work / "news.db", [writer], started)
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    return {"items": items, **rates(counts)}


def kill_round(
    site: ServedSite, work: Path, workers: int, per_domain: int, total: int, kill: bool, delay: float
) -> dict[str, Any]:
    """One round with `workers` workers; with `kill`, the busiest is killed once a third is stored."""
    import redis

    from tests.processes import alive, descendants, started_by

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_sources(work / "sources.toml", site.base_url)
    redis_proc, url = start_redis(work)
    client = redis.Redis.from_url(url)
    victim: subprocess.Popen[bytes] | None = None
    children: set[int] = set()
    polls, last_served, last_change, longest_idle = 0, -1, 0.0, 0.0
    try:
        writer = launch("writer", work, url, "writer.log", [])
        crawl = start_workers(work, url, workers, per_domain, log_level="INFO", delay=delay)
        started = time.monotonic()
        push = launch("push", work, url, "push.log", [SOURCE, "--round-grace", "3s"])
        while push.poll() is None:
            polls += 1
            served = site.stats()["requests"] - polls  # /__stats counts itself
            now = time.monotonic()
            if served != last_served:
                if last_served > 0:
                    longest_idle = max(longest_idle, now - last_change)
                last_served, last_change = served, now
            if kill and victim is None and stored(work / "news.db") >= total / 3:
                held = {w: client.hlen(f"news:{SOURCE}:held:{socket.gethostname()}:{w.pid}") for w in crawl}
                victim = max(held, key=lambda w: held[w])
                children = descendants(victim.pid) | started_by(victim.pid)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
            time.sleep(0.2)
        seconds = time.monotonic() - started
        writer.send_signal(signal.SIGTERM)
        writer.wait(timeout=60)
        for proc in crawl:
            proc.wait(timeout=60)
        with sqlite3.connect(work / "news.db") as conn:
            reason = conn.execute("SELECT status || ': ' || finish_reason FROM crawl_runs").fetchone()[0]
    finally:
        client.close()
        redis_proc.terminate()
        redis_proc.wait()
    requests = []
    for i, proc in enumerate(crawl):
        if proc is not victim:
            found = re.search(r"'downloader/request_count': (\d+)", (work / f"worker{i}.log").read_text())
            requests.append(int(found.group(1)) if found else 0)
    return {
        "stored": stored(work / "news.db"),
        "seconds": seconds,
        "longest_idle": longest_idle,
        "requests": requests,
        "left_alive": len(alive(children)),
        "killed_processes": len(children),
        "run": reason,
    }


def compare_kill(site: ServedSite, work: Path, workers: int, per_domain: int, total: int, delay: float) -> None:
    for kill in (False, True):
        r = kill_round(site, work / ("kill" if kill else "no-kill"), workers, per_domain, total, kill, delay)
        what = "one worker killed" if kill else "no kill"
        line = (
            f"{workers} workers, {what}: {r['stored']}/{total} articles (coverage {r['stored'] / total:.3f}) "
            f"in {r['seconds']:.1f}s; site idle at most {r['longest_idle']:.1f}s; "
            f"requests per {'surviving ' if kill else ''}worker {r['requests']}"
        )
        if kill:
            line += f"; killed worker's processes alive at the end: {r['left_alive']} of {r['killed_processes']}"
        print(line)
        print(f"  run: {r['run']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--per-domain", type=int, default=8, help="global per-host concurrency (default: 8)")
    parser.add_argument("--kill", action="store_true", help="compare a round with a worker killed to one without")
    parser.add_argument("--kill-workers", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.0, help="with --kill: DOWNLOAD_DELAY, seconds (default: 0)")
    args = parser.parse_args(argv)
    if not shutil.which("redis-server"):
        parser.error("needs redis-server (apt-get install -y redis-server)")
    site_dir = ROOT / "bench" / "out" / f"site-{args.articles}"
    ensure_site(site_dir, args.articles)
    work = ROOT / "bench" / "out" / "distributed"
    print(f"machine: {os.cpu_count()} cores; site: {args.articles} articles; per-host limit {args.per_domain}")
    with ServedSite(site_dir) as site:
        if args.kill:
            compare_kill(site, work, args.kill_workers, args.per_domain, args.articles, args.delay)
            return 0
        for n in args.workers:
            r = run_workers(site, work / f"w{n}", n, args.per_domain)
            print(
                f"{n} worker(s) + writer: {r['articles']} articles in {r['seconds']:.1f}s = {r['rate']:.1f}/s "
                f"for the round, {r['steady']:.1f}/s steady ({r['steady'] / n:.1f}/s per worker)"
            )
        r = writer_ceiling(site, work / "writer", max(args.workers), args.per_domain)
        print(
            f"writer alone: {r['articles']} articles from {r['items']} queued messages in {r['seconds']:.1f}s "
            f"= {r['rate']:.1f}/s ({r['steady']:.1f}/s steady)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
