"""The processes of a crawl, read from /proc: what must be gone once a crawl or worker is killed."""

from __future__ import annotations

from pathlib import Path


def descendants(pid: int) -> set[int]:
    """The living processes below `pid` (children, their children, ...), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def started_by(pid: int) -> set[int]:
    """The extraction processes of crawl `pid`, found by the crawl's pid in their environment
    (crawl/extraction_pool.py puts it there): also those re-parented already."""
    found = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"NEWS_EXTRACTION_PARENT={pid}".encode() in environ.read_bytes().split(b"\0"):
                found.add(int(environ.parent.name))
        except OSError:
            continue
    return found
