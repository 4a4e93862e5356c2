"""Idle cost of the daemon: many sources on a 15-minute schedule against feeds that do not change.

    .venv/bin/python bench/idle.py [--sources 200] [--cycles 4] [--every 60s] [--results bench/RESULTS.md]

A local site (tests/feedsite.py) serves one RSS feed per source, each listing one article. The
daemon (`scheduler.py run`, default options) crawls every source on the same schedule. The first
cycle stores the articles and is not measured (warm-up); the next `--cycles` cycles find nothing
new: that is the idle cost, the price of watching sources that have not changed.

How time is compressed: a real 15-minute schedule with the default 30 s jitter has every source fall
due within 30 s of each quarter hour, then 14.5 minutes of nothing. The benchmark keeps each cycle
exactly as it is (same jitter, same batching, same processes) and shortens only the empty part:
sources run `every = "60s"` with `jitter = "30s"`. A cycle's CPU does not depend on the gap after it,
so the CPU of 4 cycles is the CPU of one real hour of crawling; the daemon's own CPU while idle is
measured per second of wall time and scaled to the hour.

CPU is read from /proc/<daemon pid>/stat: utime + stime (the daemon) and cutime + cstime (every
crawl process it started and reaped, with everything they reaped in turn). Memory: the daemon's
VmRSS after each cycle, and each crawl process's peak RSS as the daemon logs it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archive.sqlite import sqlite3  # noqa: E402
from tests.feedsite import FeedSite  # noqa: E402 - the project root is put on the path just above

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SECTION = "## Daemon idle cost (bench/idle.py)"
TARGET_PERCENT = 5.0


@dataclass
class Sample:
    at: float  # monotonic
    own_cpu: float  # the daemon: utime + stime
    children_cpu: float  # reaped crawl processes: cutime + cstime
    rss_mb: float


def sample(pid: int) -> Sample:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) / CLOCK_TICKS for v in stat[11:15])
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    return Sample(time.monotonic(), utime + stime, cutime + cstime, rss)


def ok_runs(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM crawl_runs WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def quiet(pid: int) -> bool:
    """No crawl process running under the daemon."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                    return False
            except (FileNotFoundError, ProcessLookupError):
                continue
    return True


def wait_cycle(daemon: subprocess.Popen[bytes], db: Path, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while ok_runs(db) < target or not quiet(daemon.pid):
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon exited with {daemon.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"cycle not done after {timeout}s ({ok_runs(db)}/{target} runs)")
        time.sleep(0.5)


def crawl_processes(log: str) -> list[tuple[int, float, int]]:
    """(sources, cpu s, max rss MB) of every crawl process, from the daemon's log."""
    sizes = {int(m[1]): int(m[2]) for m in re.finditer(r"batch \d+ started: pid (\d+), (\d+) sources", log)}
    finished = re.finditer(r"batch \d+ finished: pid (\d+) .*? cpu ([\d.]+)s, max rss (\d+) MB", log)
    return [(sizes.get(int(m[1]), 0), float(m[2]), int(m[3])) for m in finished]


def run(args: argparse.Namespace, work: Path) -> str:
    site = FeedSite(work / "site").start()
    for n in range(args.sources):
        site.add_source(f"s{n:03d}", articles=1)
    sources = work / "sources.toml"
    sources.write_text(
        site.sources_toml(
            {f"s{n:03d}": "" for n in range(args.sources)}, f'every = "{args.every}"\njitter = "{args.jitter}"'
        ),
        encoding="utf-8",
    )
    db = work / "data" / "news.db"
    started = time.monotonic()
    # Warm-up: store every feed's article once, in the foreground and with extraction in-process
    # (a crawl process per batch would start extraction workers for each of its sources).
    subprocess.run(
        [
            *(sys.executable, "scheduler.py", "crawl", "--all", "--sources", str(sources), "--db", str(db)),
            *("--log-level", "WARNING", "-s", "NEWS_EXTRACT_WORKERS=0", "--no-progress"),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    log_path = work / "daemon.out"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "scheduler.py", "run", "--sources", str(sources), "--db", str(db)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_cycle(daemon, db, args.sources * 2, 900)  # the daemon's first cycle: start-up, not measured
        warmup_s = time.monotonic() - started
        warm_log_len = len(log_path.read_text())
        samples = [sample(daemon.pid)]
        for cycle in range(1, args.cycles + 1):
            wait_cycle(daemon, db, args.sources * (cycle + 2), 900)
            samples.append(sample(daemon.pid))
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(120)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        site.stop()
    log_text = log_path.read_text()
    batches = crawl_processes(log_text[warm_log_len:])
    return report(args, samples, batches, warmup_s, code, site)


def report(
    args: argparse.Namespace,
    samples: list[Sample],
    batches: list[tuple[int, float, int]],
    warmup_s: float,
    code: int,
    site: FeedSite,
) -> str:
    first, last = samples[0], samples[-1]
    cycles = len(samples) - 1
    wall = last.at - first.at
    children = last.children_cpu - first.children_cpu
    own = last.own_cpu - first.own_cpu
    per_cycle = (children + own) / cycles
    own_rate = own / wall  # the daemon's CPU per wall second (busy and idle mixed: an upper bound)
    hour_cpu = children / cycles * 4 + own_rate * 3600
    percent = 100 * hour_cpu / 3600
    compressed_percent = 100 * (children + own) / wall
    crawl_processes = len(batches)
    smallest = min((b[0] for b in batches), default=0)
    largest = max((b[0] for b in batches), default=0)
    rss = [round(s.rss_mb, 1) for s in samples]
    # Flat: over the second half of the measured cycles the daemon grew by less than 1 MB.
    growth = rss[-1] - rss[len(rss) // 2]
    verdict = "PASS" if percent < TARGET_PERCENT and growth < 1.0 else "FAIL"
    lines = [
        SECTION,
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} ({os.cpu_count()} cores), Python "
        f"{platform.python_version()}: `.venv/bin/python bench/idle.py --sources {args.sources} "
        f"--cycles {args.cycles} --every {args.every} --jitter {args.jitter}`",
        "",
        f"{args.sources} sources, one feed each on a local server, every feed unchanged after a warm-up "
        f"({warmup_s:.0f} s, not measured: a foreground `crawl --all` that stored one article per source, "
        "then the daemon's first cycle). The daemon runs with its defaults (2 crawl processes at once, "
        "up to 25 sources per process, 10 s batch window, 15 s heartbeat). Time compression: each "
        f"cycle is real (all sources fall due within their {args.jitter} jitter, batched as on a 15-minute "
        "schedule); only the idle gap between cycles is "
        f'shortened, to `every = "{args.every}"`: {cycles} measured cycles = {cycles / 4:g} hours of a '
        "15-minute schedule.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| crawl processes per cycle | {crawl_processes / cycles:.1f} (of {smallest}-{largest} sources) |",
        f"| CPU per cycle, daemon + crawls | {per_cycle:.1f} s ({children / cycles:.1f} s crawls, "
        f"{own / cycles:.2f} s daemon) |",
        f"| CPU per crawl process | {sum(b[1] for b in batches) / max(1, crawl_processes):.2f} s |",
        f"| daemon's own CPU rate | {own_rate * 1000:.2f} ms per second of wall time |",
        f"| **CPU over one hour of a 15-minute schedule** | **{hour_cpu:.1f} s = {percent:.2f} % "
        f"of one core** (target < {TARGET_PERCENT:.0f} %) |",
        f"| the same, compressed run as measured (no scaling) | {compressed_percent:.1f} % of one core over "
        f"{wall:.0f} s |",
        f"| daemon RSS after warm-up and after each cycle | {', '.join(f'{r:.1f}' for r in rss)} MB "
        f"({growth:+.1f} MB over the second half) |",
        f"| crawl process peak RSS | {max((b[2] for b in batches), default=0)} MB |",
        f"| daemon exit status on SIGTERM | {code} |",
        f"| requests served by the site | {len(site.server.requests)} |",
        "",
        f"Verdict: **{verdict}** (CPU under {TARGET_PERCENT:.0f} % of a core; daemon memory flat from cycle to cycle).",
        "",
        "Without batching each source would pay for a process of its own: about 1.1 s of CPU to start "
        f"Scrapy, so {args.sources} x 4 x 1.1 s = {args.sources * 4 * 1.1:.0f} s an hour, "
        f"{args.sources * 4 * 1.1 / 36:.0f} % of a core, before any crawling.",
        "",
    ]
    return "\n".join(lines)


def write_results(path: Path, section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it), leaving the others alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=4, help="measured cycles (4 = one hour of a 15m schedule)")
    parser.add_argument("--every", default="60s", help="the compressed interval (default: 60s)")
    parser.add_argument("--jitter", default="30s", help="the sources' jitter (default: 30s, as in production)")
    parser.add_argument("--results", type=Path, help="write the section into this RESULTS.md")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a tmp dir)")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        section = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="idle-bench-") as tmp:
            section = run(args, Path(tmp))
    print(section)
    if args.results:
        write_results(args.results, section)
    return 0 if "**PASS**" in section else 1


if __name__ == "__main__":
    sys.exit(main())
