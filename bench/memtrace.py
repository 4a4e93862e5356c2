"""MemTrace: a Scrapy extension that shows what the crawl process keeps in memory as N grows.

Enabled only by ``bench/throughput.py --trace-memory``, which adds it to EXTENSIONS with
``-s BENCH_MEMTRACE_FILE=...``. It starts tracemalloc (one frame per allocation: the line that
allocated) when the crawler is built, and every BENCH_MEMTRACE_EVERY stored articles records the
process's RSS, the memory tracemalloc traces, and the lines whose live allocations grew most since
the first checkpoint. What tracemalloc cannot see is given too: SQLite's own allocations, and
glibc's heap in use and free but kept (fragmentation).

tracemalloc slows the crawl several times over: the figures are for finding the growth, never for
the throughput report.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import json
import logging
import os
import tracemalloc
from collections import deque
from pathlib import Path
from typing import Any

from scrapy import signals

logger = logging.getLogger(__name__)
TOP = 25


def rss_mb() -> float:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd")] + [
        (name, ctypes.c_size_t) for name in ("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def native_memory_mb() -> dict[str, float]:
    """What Python's tracing cannot see: SQLite's own allocations (its page caches, FTS5's pending
    terms, in-memory sorts) and glibc's heap, in use and free-but-kept (fragmentation)."""
    figures: dict[str, float] = {}
    try:
        from sqlite_utils.utils import sqlite3

        library = ctypes.CDLL(sqlite3._sqlite3.__file__)  # pysqlite3's build, SQLite linked in
        library.sqlite3_memory_used.restype = ctypes.c_int64
        library.sqlite3_memory_highwater.restype = ctypes.c_int64
        figures["sqlite_mb"] = library.sqlite3_memory_used() / 2**20
        figures["sqlite_peak_mb"] = library.sqlite3_memory_highwater(0) / 2**20
    except (OSError, AttributeError):
        pass
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
        figures["malloc_in_use_mb"] = (info.uordblks + info.hblkhd) / 2**20
        figures["malloc_free_kept_mb"] = info.fordblks / 2**20
        figures["malloc_own_mappings_mb"] = info.hblkhd / 2**20
    except (OSError, AttributeError):
        pass
    return {name: round(value, 1) for name, value in figures.items()}


def _filtered(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])


def _where(obj: object) -> str:
    traceback = tracemalloc.get_object_traceback(obj)
    return str(traceback[0]) if traceback else "?"


def large_containers(min_len: int = 1000) -> list[dict[str, Any]]:
    """The big sets, dicts, lists and deques alive now: where each was made and where its items were.

    Strings are not tracked by the garbage collector, so the growth tracemalloc reports as "the line
    that made a URL string" is traced back to its holder this way.
    """
    found = []
    for obj in gc.get_objects():
        if not isinstance(obj, set | frozenset | dict | list | deque):
            continue
        try:
            size = len(obj)
        except TypeError:
            continue
        if size < min_len:
            continue
        items = list(itertools.islice(obj.items() if isinstance(obj, dict) else obj, 3))
        found.append(
            {
                "type": type(obj).__name__,
                "len": size,
                "made_at": _where(obj),
                "items_made_at": sorted(
                    {_where(part) for item in items for part in (item if isinstance(item, tuple) else (item,))}
                ),
            }
        )
    return sorted(found, key=lambda c: -c["len"])[:40]


class MemTrace:
    def __init__(self, crawler: Any) -> None:
        self.path = crawler.settings.get("BENCH_MEMTRACE_FILE")
        self.every = crawler.settings.getint("BENCH_MEMTRACE_EVERY", 1000)
        self.stored = 0
        self.baseline: tracemalloc.Snapshot | None = None
        self.checkpoints: list[dict[str, Any]] = []
        tracemalloc.start(1)

    @classmethod
    def from_crawler(cls, crawler: Any) -> MemTrace:
        trace = cls(crawler)
        crawler.signals.connect(trace.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(trace.spider_closed, signal=signals.spider_closed)
        return trace

    def item_scraped(self, item: Any, response: Any, spider: Any) -> None:
        if getattr(item, "status", None) != "new":
            return
        self.stored += 1
        if self.stored % self.every == 0:
            self.checkpoint()

    def checkpoint(self) -> None:
        snapshot = _filtered(tracemalloc.take_snapshot())
        current, peak = tracemalloc.get_traced_memory()
        entry: dict[str, Any] = {
            "stored": self.stored,
            "rss_mb": round(rss_mb(), 1),
            "traced_mb": round(current / 2**20, 1),
            "traced_peak_mb": round(peak / 2**20, 1),
            **native_memory_mb(),
        }
        if self.baseline is None:
            self.baseline = snapshot
        else:
            entry["grown_since_first"] = [
                {
                    "where": str(stat.traceback),
                    "size_diff_kb": round(stat.size_diff / 1024, 1),
                    "count_diff": stat.count_diff,
                    "size_kb": round(stat.size / 1024, 1),
                }
                for stat in snapshot.compare_to(self.baseline, "lineno")[:TOP]
            ]
        self.checkpoints.append(entry)
        logger.info("memtrace at %d stored: rss %.1f MB, traced %.1f MB", self.stored, entry["rss_mb"],
                    entry["traced_mb"])  # fmt: skip

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.checkpoint()
        self.checkpoints[-1]["large_containers"] = large_containers()
        if self.path:
            Path(self.path).write_text(json.dumps(self.checkpoints, indent=1), encoding="utf-8")
        tracemalloc.stop()
