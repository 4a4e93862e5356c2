"""bench/proctree.py and bench/throughput.py's CPU of the extraction workers: a worker that exits
mid-run (replaced, as crawl/worker_pool.py replaces them) is counted with all of its CPU, not only
what its last sample saw."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.proctree import run_measured  # noqa: E402
from bench.throughput import classify_procs, workers_cpu_s  # noqa: E402

WORKERS = 8
BURN_S = 0.3

# Each task in a pool of its own, from a forkserver: every worker burns BURN_S of CPU and exits.
SCRIPT = f"""
import multiprocessing, time

def burn(_):
    end = time.process_time() + {BURN_S}
    while time.process_time() < end:
        pass

if __name__ == "__main__":
    context = multiprocessing.get_context("forkserver")
    for _ in range({WORKERS}):
        with context.Pool(1) as pool:
            pool.map(burn, [0])
"""


def test_workers_that_exit_are_counted_with_all_their_cpu(tmp_path: Path) -> None:
    script = tmp_path / "burn.py"
    script.write_text(SCRIPT)
    tree = run_measured([sys.executable, str(script)], interval=0.25)
    assert tree.returncode == 0
    roles = classify_procs(tree)
    assert len(roles["forkserver"]) == 1
    assert len(roles["workers"]) == WORKERS
    expected = WORKERS * BURN_S
    assert expected * 0.95 <= workers_cpu_s(roles) <= expected * 1.3
