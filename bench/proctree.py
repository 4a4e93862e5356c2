"""Run a command and measure its whole process tree from outside, through /proc (Linux only).

`run_measured(command)` starts the command and samples every process descended from it (Scrapy's
crawl process, the forkserver and its extraction workers, ...) a few times a second: CPU seconds
(utime + stime, per process and for the top process per thread), resident memory (VmRSS and the
kernel's own high-water mark VmHWM) and, less often, proportional memory (Pss, which splits the
pages a forked worker shares with its parent instead of counting them twice). When the command ends
it is reaped with wait4(), whose rusage holds the exact CPU of the whole tree (every descendant
that was waited for adds to it).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_STATUS_RE = re.compile(rb"^(VmRSS|VmHWM):\s+(\d+) kB", re.MULTILINE)


@dataclass
class ProcInfo:
    pid: int
    ppid: int
    cmdline: str
    first_seen: float
    cpu_s: float = 0.0  # last sampled utime + stime
    # last sampled cutime + cstime: the exact CPU of the children it has waited for (a forkserver's
    # workers that have exited: their own last sample misses what they did after it)
    children_cpu_s: float = 0.0
    last_seen: float = 0.0
    rss_mb: float = 0.0
    max_rss_mb: float = 0.0
    hwm_mb: float = 0.0  # VmHWM: the kernel's peak RSS for this process
    max_pss_mb: float = 0.0
    max_pss_at_s: float = 0.0  # when the largest PSS was sampled (seconds from the start)
    threads_cpu_s: dict[int, float] = field(default_factory=dict)  # tid -> cpu (top process only)


@dataclass
class TreeResult:
    returncode: int
    wall_s: float
    tree_cpu_s: float  # exact, from wait4 (the top process and every reaped descendant)
    top_pid: int
    procs: dict[int, ProcInfo]
    peak_rss_sum_mb: float  # the largest sum of RSS over the tree at one sample
    peak_pss_sum_mb: float
    peak_pss_at_s: float  # when the largest sum of PSS was sampled
    samples: int
    timeline: list[tuple[float, float, float]]  # (seconds, sum of RSS MB, the top process's RSS MB)

    def children_of(self, pid: int) -> list[ProcInfo]:
        return [p for p in self.procs.values() if p.ppid == pid]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _stat_fields(raw: bytes) -> list[bytes]:
    # The command name may hold spaces and parentheses: split after its last ")".
    return raw[raw.rindex(b")") + 2 :].split()


def _ppid_map() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            raw = _read(f"/proc/{entry.name}/stat")
            if raw:
                parents[int(entry.name)] = int(_stat_fields(raw)[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    found = [root]
    frontier = [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def _cpu(raw: bytes) -> float:
    fields = _stat_fields(raw)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _children_cpu(raw: bytes) -> float:
    fields = _stat_fields(raw)
    return (int(fields[13]) + int(fields[14])) / CLOCK_TICKS  # cutime, cstime


def _pss_mb(pid: int) -> float:
    raw = _read(f"/proc/{pid}/smaps_rollup")
    if not raw:
        return 0.0
    match = re.search(rb"^Pss:\s+(\d+) kB", raw, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


class TreeSampler(threading.Thread):
    def __init__(self, root_pid: int, interval: float, pss_every: int, exclude: re.Pattern[str] | None) -> None:
        super().__init__(name="proc-sampler", daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.pss_every = pss_every
        self.exclude = exclude  # processes not to count (a profiler wrapping the command)
        self.procs: dict[int, ProcInfo] = {}
        self.peak_rss = 0.0
        self.peak_pss = 0.0
        self.peak_pss_at = 0.0
        self.samples = 0
        self.timeline: list[tuple[float, float, float]] = []
        self.started = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.interval)

    def sample(self) -> None:
        now = time.monotonic() - self.started
        with_pss = self.samples % self.pss_every == 0
        rss_sum = pss_sum = top_rss = 0.0
        for pid in descendants(self.root_pid, _ppid_map()):
            info = self._sample_one(pid, now, with_pss)
            if info is None:
                continue
            rss_sum += info.rss_mb
            if pid == self.root_pid:
                top_rss = info.rss_mb
            if with_pss:
                pss = _pss_mb(pid)
                if pss > info.max_pss_mb:
                    info.max_pss_mb, info.max_pss_at_s = pss, round(now, 1)
                pss_sum += pss
        self.peak_rss = max(self.peak_rss, rss_sum)
        if with_pss and pss_sum > self.peak_pss:
            self.peak_pss, self.peak_pss_at = pss_sum, round(now, 1)
        self.samples += 1
        self.timeline.append((round(now, 2), round(rss_sum, 1), round(top_rss, 1)))

    def _sample_one(self, pid: int, now: float, with_threads: bool) -> ProcInfo | None:
        stat = _read(f"/proc/{pid}/stat")
        status = _read(f"/proc/{pid}/status")
        if not stat or not status:
            return None
        info = self.procs.get(pid)
        if info is None:
            cmdline = (_read(f"/proc/{pid}/cmdline") or b"").replace(b"\0", b" ").decode(errors="replace")
            if self.exclude is not None and self.exclude.search(cmdline):
                return None
            info = ProcInfo(pid=pid, ppid=int(_stat_fields(stat)[1]), cmdline=cmdline.strip(), first_seen=now)
            self.procs[pid] = info
        elif info.cmdline == "" or info.cmdline == self.procs.get(info.ppid, info).cmdline:
            # a forked child execs or is renamed after we first saw it
            cmdline = (_read(f"/proc/{pid}/cmdline") or b"").replace(b"\0", b" ").decode(errors="replace")
            info.cmdline = cmdline.strip() or info.cmdline
        info.cpu_s = _cpu(stat)
        info.children_cpu_s = _children_cpu(stat)
        info.last_seen = now
        values = {k.decode(): int(v) / 1024 for k, v in _STATUS_RE.findall(status)}
        info.rss_mb = values.get("VmRSS", 0.0)
        info.hwm_mb = max(info.hwm_mb, values.get("VmHWM", 0.0))
        info.max_rss_mb = max(info.max_rss_mb, info.rss_mb)
        if pid == self.root_pid or with_threads:
            self._sample_threads(info)
        return info

    def _sample_threads(self, info: ProcInfo) -> None:
        try:
            tids = [task.name for task in Path(f"/proc/{info.pid}/task").iterdir()]
        except OSError:
            return
        for tid in tids:
            raw = _read(f"/proc/{info.pid}/task/{tid}/stat")
            if raw:
                info.threads_cpu_s[int(tid)] = _cpu(raw)


def run_measured(
    command: list[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    stdout: Any = None,
    stderr: Any = None,
    interval: float = 0.2,
    pss_every: int = 5,
    timeout: float | None = None,
    exclude: str | None = None,
) -> TreeResult:
    """Run `command` to completion while sampling its process tree; see the module docstring."""
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    sampler = TreeSampler(proc.pid, interval, pss_every, re.compile(exclude) if exclude else None)
    sampler.started = started
    sampler.start()
    deadline = started + timeout if timeout else None
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline and time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.05)
    except BaseException:
        proc.terminate()  # interrupted (Ctrl-C, SIGTERM): never leave the measured command running
        proc.wait()
        raise
    wall = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return TreeResult(
        returncode=proc.returncode,
        wall_s=wall,
        tree_cpu_s=usage.ru_utime + usage.ru_stime,
        top_pid=proc.pid,
        procs=sampler.procs,
        peak_rss_sum_mb=sampler.peak_rss,
        peak_pss_sum_mb=sampler.peak_pss,
        peak_pss_at_s=sampler.peak_pss_at,
        samples=sampler.samples,
        timeline=sampler.timeline,
    )
