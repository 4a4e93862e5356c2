"""The extraction pool's processes: started where they fit, and gone when their crawl is gone.

The pool (pipelines/extract.py) forks its workers from a forkserver, which the crawl process starts
and talks to over an AF_UNIX socket in multiprocessing's temporary directory. Two things go wrong
without care:

- **A long TMPDIR.** The socket's path must fit in 107 bytes (sockaddr_un). Under a long
  ``TMPDIR`` every page failed with "OSError: AF_UNIX path too long" and the crawl still said
  "ok - 0 new". The pool's directory is chosen where the path fits (TMPDIR, else /tmp, /var/tmp,
  /dev/shm), and the forkserver is started with the pool: if no directory fits it fails at start,
  with one line (ExtractionPoolError), before any page is fetched.
- **A killed crawl.** SIGKILL gives the crawl process no chance to stop its children: the
  forkserver, its pool processes and the resource tracker (some 470 MB) lived on. The forkserver
  and each pool process ask Linux for SIGKILL when their parent dies (prctl PR_SET_PDEATHSIG),
  and, where that is not available, watch the crawl's pid. The resource tracker ends by itself
  once the last of them has closed its pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from crawl.worker_pool import RecyclingPool, note_start

PARENT_ENV = "NEWS_EXTRACTION_PARENT"  # the crawl's pid, as the forkserver inherits it
PR_SET_PDEATHSIG = 1
# sockaddr_un.sun_path is 108 bytes with the final NUL; multiprocessing names the socket
# <tempdir>/pymp-XXXXXXXX/listener-XXXXXXXX (its temp dir, then a name from tempfile.mktemp).
MAX_SOCKET_PATH = 107
SOCKET_NAME = "/listener-" + "x" * 8
FALLBACK_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # short paths are the point


class ExtractionPoolError(RuntimeError):
    """The extraction pool cannot start (no temporary directory short enough for its socket)."""


def make_pool(workers: int, growth_limit_mb: float) -> RecyclingPool:
    """A started pool of `workers` extraction processes, forked from a forkserver that has the
    extractor preloaded (crawl/extraction_preload.py), never from the crawl process and its reactor
    threads; a worker that a page grew by more than `growth_limit_mb` is replaced by a fresh one
    (crawl/worker_pool.py). Raises ExtractionPoolError, with the reason in one line, if it cannot
    start."""
    use_short_socket_dir()
    os.environ[PARENT_ENV] = str(os.getpid())
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["crawl.extraction_preload"])
    try:
        # Start the forkserver now: a failure here is one clear error at start, not one per page.
        from multiprocessing import forkserver

        forkserver.ensure_running()
    except OSError as exc:
        raise ExtractionPoolError(f"the extraction pool cannot start its forkserver: {exc}") from None
    crawl_pid = os.getpid()

    def start_worker() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=start_in_worker, initargs=(crawl_pid,)
        )

    return RecyclingPool(workers, start_worker, growth_limit_mb)


def start_in_worker(crawl_pid: int) -> None:
    """A pool process's first steps: die with the crawl, and note its size as it starts."""
    die_with_parent(crawl_pid)
    gc.enable()  # the forkserver ran without it (crawl/extraction_preload.py)
    note_start()


def socket_path_fits(directory: str) -> bool:
    return len(str(Path(directory) / ("pymp-" + "x" * 8)) + SOCKET_NAME) <= MAX_SOCKET_PATH


def use_short_socket_dir() -> str:
    """multiprocessing's temporary directory (where the forkserver's socket goes) in a place whose
    path fits; returns it. Leaves one that is already chosen alone if it fits."""
    from multiprocessing import process, util

    config = process.current_process()._config  # type: ignore[attr-defined]  # where util.get_temp_dir() keeps it
    chosen = config.get("tempdir")
    if chosen is not None and len(chosen + SOCKET_NAME) <= MAX_SOCKET_PATH:
        return str(chosen)
    candidates = [tempfile.gettempdir(), *FALLBACK_DIRS]
    for parent in candidates:
        if not socket_path_fits(parent) or not os.access(parent, os.W_OK | os.X_OK):
            continue
        try:
            directory = tempfile.mkdtemp(prefix="pymp-", dir=parent)
        except OSError:
            continue
        # What util.get_temp_dir() does for a directory it makes: removed when the process exits.
        util.Finalize(None, shutil.rmtree, args=(directory, True), exitpriority=-100)
        config["tempdir"] = directory
        return directory
    raise ExtractionPoolError(
        "the extraction pool needs a temporary directory with a path of at most "
        f"{MAX_SOCKET_PATH - len('/pymp-xxxxxxxx' + SOCKET_NAME)} characters for its socket; "
        f"TMPDIR is {tempfile.gettempdir()!r} and none of {', '.join(FALLBACK_DIRS)} is writable: "
        "set a shorter TMPDIR"
    )


def die_with_parent(crawl_pid: int) -> None:
    """Make this process die when its parent does (a pool process: the forkserver; the forkserver:
    the crawl), and in any case once the crawl process `crawl_pid` is gone."""
    if not _ask_for_parent_death_signal():
        _watch(crawl_pid)
    if not _alive(crawl_pid) or os.getppid() == 1:  # the parent died before we asked
        os._exit(1)


def _ask_for_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(crawl_pid: int, every: float = 1.0) -> None:
    """The fallback: a daemon thread that ends the process once the crawl's pid is gone."""

    def watch() -> None:
        while _alive(crawl_pid):
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def die_with_crawl_from_env() -> None:
    """The forkserver's part (crawl/extraction_preload.py): its parent is the crawl whose pid
    make_pool() left in the environment."""
    pid = os.environ.get(PARENT_ENV)
    if pid:
        with contextlib.suppress(ValueError):
            die_with_parent(int(pid))
