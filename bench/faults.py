"""Fault report: crawl the whole fault site once and print, per case, what was expected and what happened.

    .venv/bin/python bench/faults.py [--results bench/RESULTS.md]

The fault site and its cases live in demo/faults.py (tests/test_faults.py asserts the same
verdicts). The crawl is a real `scrapy crawl news -a source=faults` process, with the settings
the tests use (demo.faults.CRAWL_SETTINGS). Also measured: the crawl's wall time and peak memory,
and the memory it takes to read a sitemap of 5,000 and of 50,000 URLs (streamed: the same).

Exit status: 0 if every case passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import write_section  # noqa: E402
from demo.faults import CASES, CRAWL_SETTINGS, FaultServer, Outcome, sitemap_of, sources_toml  # noqa: E402
from spiders.discovery import iter_sitemap  # noqa: E402

HEADING = "## Fault report (bench/faults.py)"
COLUMNS = (("case", 34), ("expected", 44), ("observed", 58))


def crawl(server: FaultServer, workdir: Path) -> tuple[Outcome, float, float]:
    """One crawl of the fault site: its outcome, wall seconds and the crawl process's peak RSS (MB)."""
    sources = workdir / "sources.toml"
    sources.write_text(sources_toml(server.base_url), encoding="utf-8")
    db, log = workdir / "news.db", workdir / "crawl.log"
    command = [sys.executable, "-m", "scrapy", "crawl", "news", "-a", "source=faults"]
    settings = {"NEWS_DB_PATH": db, "NEWS_SOURCES_FILE": sources, "LOG_FILE": log, **CRAWL_SETTINGS}
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    seconds = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return Outcome.read(db, server, log.read_text(encoding="utf-8")), seconds, peak_mb


def sitemap_memory(urls: int) -> tuple[float, float, float]:
    """(document MB, peak MB Python allocates while reading every entry, seconds) for a sitemap.
    Timed and traced in two passes: tracing slows the reading down many times over."""
    body = sitemap_of(urls, "http://news.example")
    started = time.perf_counter()
    entries = sum(1 for _ in iter_sitemap(body))
    seconds = time.perf_counter() - started
    tracemalloc.start()
    assert sum(1 for _ in iter_sitemap(body)) == entries == urls
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(body) / 1e6, peak / 1e6, seconds


def cell(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def table(outcome: Outcome) -> tuple[list[str], int]:
    header = "  ".join(name.ljust(width) for name, width in COLUMNS) + "  result"
    lines = [header, "-" * len(header)]
    failed = 0
    group = None
    for case in CASES:
        verdict = case.judge(outcome)
        failed += not verdict.ok
        if case.group != group:
            group = case.group
            lines.append(f"[{group}]")
        observed = verdict.observed if verdict.ok else f"{verdict.observed}; {'; '.join(verdict.problems)}"
        cells = [
            cell(text, width) for text, (_, width) in zip((case.name, case.expected, observed), COLUMNS, strict=True)
        ]
        for row in range(max(len(c) for c in cells)):
            parts = [
                (c[row] if row < len(c) else "").ljust(width) for c, (_, width) in zip(cells, COLUMNS, strict=True)
            ]
            verdict_text = ("pass" if verdict.ok else "FAIL") if row == 0 else ""
            lines.append("  ".join(parts) + "  " + verdict_text)
    return lines, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="write the report into this RESULTS.md section")
    args = parser.parse_args(argv)

    server = FaultServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="faults-") as workdir:
            outcome, seconds, peak_mb = crawl(server, Path(workdir))
    finally:
        server.stop()
    lines, failed = table(outcome)
    (run,) = outcome.runs
    lines += [
        "",
        f"{len(CASES) - failed} of {len(CASES)} cases pass. Crawl run: {run['status']} ({run['finish_reason']}), "
        f"{run['requests']} requests, {run['articles_new']} articles stored, {len(outcome.failures)} failures "
        f"recorded; {seconds:.1f} s wall, crawl process peak RSS {peak_mb:.0f} MB.",
    ]
    for urls in (5_000, 50_000):
        size, peak, took = sitemap_memory(urls)
        lines.append(
            f"Sitemap of {urls:,} URLs ({size:.1f} MB): every entry read in {took:.2f} s, "
            f"peak {peak:.2f} MB allocated while reading."
        )
    output = "\n".join(lines)
    print(output)
    if args.results:
        command = "python bench/faults.py" + (f" --results {args.results}" if args.results else "")
        section = (
            f"{HEADING}\n\n"
            f"Command: `{command}`  \n"
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} "
            "(shared with other jobs: times are indicative)\n\n"
            f"```\n{output}\n```\n"
        )
        write_section(args.results, HEADING, section)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
