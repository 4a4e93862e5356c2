"""How the crawl's processes give back the memory a large page took.

Real news pages run to 2 MB of HTML; a page passes through the crawl process as bytes, text and a
pickle, and through an extraction worker as an lxml tree and its copies. glibc's malloc keeps what
they freed: its threshold for giving large blocks their own mapping rises with every large block
freed (up to 32 MB), after which pages land in the heap, and a heap is only given back from its
top. The processes then stayed at the high-water mark of the largest pages they had seen (bench/
RESULTS.md, "Memory on real pages": 579 MB for the crawl's processes on real pages, 500 MB with
the settings below). So:

- large blocks (a page, its text, its pickle) always get their own mapping, returned when freed;
- freed memory at the top of the heap goes back to the system past 256 KB, not 128 MB;
- two malloc arenas at most per process: each thread (the pool's queue threads, the store's
  writer) otherwise gets an arena of its own, and each keeps its own high-water mark;
- an extraction worker trims its heap after a page that grew it (release_free_heap).

The extraction workers (their forkserver) give only blocks of 4 MB and more a mapping of their own:
a worker parses a page into many page-sized blocks, and mapping each one costs a page fault per
4 KB touched, 1.5-2 ms of CPU a page (4-5 %, measured in one process extracting the 258 real pages
twice, alternating: 37.0-37.6 ms a page against 35.1-36.3 ms). What pages grow a worker by is
dealt with by replacing it (crawl/worker_pool.py).

glibc only: elsewhere (musl, macOS) these are no-ops and the processes keep their allocator's ways.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

# mallopt() parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

OWN_MAPPING_FROM = 128 * 1024  # glibc's own starting threshold, kept fixed instead of rising
GIVE_BACK_PAST = 256 * 1024
WORKER_OWN_MAPPING_FROM = 4 * 1024 * 1024
WORKER_GIVE_BACK_PAST = 8 * 1024 * 1024
ARENAS = 2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - musl has no mallopt: AttributeError
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def keep_heap_small(own_mapping_from: int = OWN_MAPPING_FROM, give_back_past: int = GIVE_BACK_PAST) -> bool:
    """Set this process's malloc to hand memory back (see the module's doc); True if it could.
    Forked children inherit the settings."""
    libc = _glibc()
    if libc is None:
        return False
    return all(
        libc.mallopt(option, value) == 1
        for option, value in (
            (M_MMAP_THRESHOLD, own_mapping_from),
            (M_TRIM_THRESHOLD, give_back_past),
            (M_ARENA_MAX, ARENAS),
        )
    )


def release_free_heap() -> None:
    """Give the free memory inside the heap back to the system (malloc_trim), not only its top."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def private_memory_mb() -> float:
    """Resident memory of this process that is not a file's (its heap, stacks and anonymous
    mappings), in MB: what a page's work grows. Read from /proc/self/statm, a few microseconds;
    0.0 where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            fields = statm.read().split()
    except OSError:
        return 0.0
    resident, file_backed = int(fields[1]), int(fields[2])
    return (resident - file_backed) * PAGE_SIZE / 1e6


class HeapSettings:
    """Scrapy extension: the crawl process's malloc settings, made as the crawler is built (before
    any page is fetched), for `scrapy crawl` and scheduler.py alike."""

    @classmethod
    def from_crawler(cls, crawler: object) -> HeapSettings:
        keep_heap_small()
        return cls()
