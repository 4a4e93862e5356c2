"""The crawl process's heap trim (crawl/heap.py): one loop for the process while any crawl runs,
and a trim that gives back the free memory between live blocks (real glibc malloc)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from twisted.internet import task

from crawl.heap import TRIM_EVERY, HeapTrimmer
from crawl.memory import _glibc


def test_one_trim_loop_for_the_process_while_any_of_its_crawls_runs() -> None:
    clock = task.Clock()
    trimmer = HeapTrimmer(clock=clock)
    trimmer.crawl_opened()
    trimmer.crawl_opened()  # a second crawler of the same process: no second loop
    clock.pump([TRIM_EVERY] * 3)
    assert trimmer.trims == 3
    trimmer.crawl_closed()
    clock.advance(TRIM_EVERY)
    assert trimmer.trims == 4  # one crawl still runs
    trimmer.crawl_closed()
    clock.pump([TRIM_EVERY] * 5)
    assert trimmer.trims == 4
    assert trimmer.loop is None
    assert not clock.getDelayedCalls()
    trimmer.crawl_opened()  # a later crawl of the same process starts it again
    clock.advance(TRIM_EVERY)
    assert trimmer.trims == 5


FRAGMENTED_HEAP = """
import random
from crawl.heap import HeapTrimmer
from crawl.memory import keep_heap_small, private_memory_mb
keep_heap_small()
rnd = random.Random(1)
blocks = [bytearray(rnd.randint(2_000, 60_000)) for _ in range(6_000)]  # under the own-mapping size
del blocks[::2]  # every other block freed: free chunks between live ones, not at the heap's top
before = private_memory_mb()
HeapTrimmer().trim()
print(before, private_memory_mb())
"""


@pytest.mark.skipif(_glibc() is None, reason="glibc's malloc_trim only")
def test_a_trim_gives_back_the_free_memory_between_live_blocks() -> None:
    out = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, check=True)
    before, after = map(float, out.stdout.split())
    # some 90 MB freed, in chunks that glibc would keep resident without the trim
    assert before - after > 50, (before, after)
