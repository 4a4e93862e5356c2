"""Extraction workers replaced when pages grow them (crawl/worker_pool.py), and the malloc settings
that hand memory back (crawl/memory.py): real worker processes, a real crawl."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
import textwrap
from concurrent.futures import CancelledError, ProcessPoolExecutor
from pathlib import Path

import pytest

from archive.schema import open_db
from crawl.worker_pool import RecyclingPool, note_start
from demo.server import DEFAULT_ROOT, SiteServer
from tests.conftest import DEMO_SOURCES, ROOT, run_scheduler, write_sources

_kept: list[bytes] = []


def grow(page: int, megabytes: int) -> tuple[int, int]:
    """A page that leaves `megabytes` behind in the worker, as a large page's heap does."""
    _kept.append(os.urandom(megabytes * 1_000_000))
    return page, os.getpid()


def fail(page: int) -> None:
    raise ValueError(f"page {page} is broken")


def start_worker() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"), initializer=note_start)


def test_a_grown_worker_is_replaced_and_no_page_is_lost() -> None:
    pool = RecyclingPool(2, start_worker, growth_limit_mb=20)
    try:
        futures = [pool.submit(grow, page, 8) for page in range(40)]
        answers = [future.result(timeout=60) for future in futures]
    finally:
        pool.shutdown(wait=True)
    assert [page for page, _ in answers] == list(range(40))  # each page answered, with its own answer
    workers = {pid for _, pid in answers}
    # 8 MB a page, replaced past 20 MB: a worker is retired after its third page and also answers
    # the one queued behind it, so 40 pages take about 10 workers (fewer if a page's memory shows late).
    assert len(workers) >= 6
    # Every worker but the first two replaced one; the last replacements may have had no page left.
    assert len(workers) - 2 <= pool.replaced <= len(workers)


def test_a_worker_within_its_limit_is_kept() -> None:
    pool = RecyclingPool(2, start_worker, growth_limit_mb=500)
    try:
        answers = [future.result(timeout=60) for future in [pool.submit(grow, page, 1) for page in range(20)]]
    finally:
        pool.shutdown(wait=True)
    assert len({pid for _, pid in answers}) == 2
    assert pool.replaced == 0


def test_a_failing_page_fails_alone() -> None:
    pool = RecyclingPool(1, start_worker, growth_limit_mb=500)
    try:
        broken = pool.submit(fail, 1)
        fine = pool.submit(grow, 2, 1)
        with pytest.raises(ValueError, match="page 1 is broken"):
            broken.result(timeout=60)
        assert fine.result(timeout=60)[0] == 2
    finally:
        pool.shutdown(wait=True)


def test_shutdown_cancels_the_pages_still_waiting() -> None:
    pool = RecyclingPool(1, start_worker, growth_limit_mb=500)
    futures = [pool.submit(grow, page, 1) for page in range(30)]
    pool.shutdown(wait=True, cancel_futures=True)
    cancelled = [f for f in futures if f.cancelled()]
    assert cancelled, "30 pages for one worker: some were still waiting"
    for future in futures:
        if not future.cancelled():
            # Answered, or cancelled in the worker's own queue when its pool was shut down.
            with contextlib.suppress(CancelledError):
                future.result(timeout=60)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(grow, 99, 1)


def test_every_page_of_a_crawl_is_stored_when_each_page_replaces_its_worker(tmp_path: Path) -> None:
    """A limit of 0 MB: every page retires the worker that extracted it, mid-crawl, with pages
    queued behind it. The crawl still stores the demo site's 30 articles, each once."""
    server = SiteServer(DEFAULT_ROOT).start()
    try:
        sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), server.base_url, tmp_path / "sources.toml")
        db = tmp_path / "news.db"
        result = run_scheduler(
            "crawl", "--all", "--sources", str(sources), "--db", str(db),
            "-s", "NEWS_EXTRACT_WORKERS=2", "-s", "NEWS_EXTRACT_WORKER_GROWTH_MB=0",
        )  # fmt: skip
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr[-4000:]
    log = result.stdout + result.stderr
    # About one page in two replaces a worker: the page queued behind the one that retired it is
    # still extracted by the retiring worker (some 37 pages reach extraction).
    assert log.count("extraction worker replaced") >= 10
    assert "30 articles in" in result.stdout
    assert open_db(db).execute("SELECT count(*) FROM articles").fetchone()[0] == 30


MALLOC_PROBE = textwrap.dedent(
    """
    import sys
    from crawl.memory import keep_heap_small, private_memory_mb
    if sys.argv[1] == "set":
        assert keep_heap_small()
    first = bytearray(4_000_000)  # freeing a 4 MB block raises glibc's mapping threshold to 4 MB
    del first
    before = private_memory_mb()
    pages = [bytearray(600_000) for _ in range(100)]  # 60 MB of pages, then all but the last freed
    last = pages.pop()
    del pages
    print(round(private_memory_mb() - before))
    """
)


def test_malloc_hands_back_freed_pages_once_set() -> None:
    """A large block freed, then many page-sized blocks freed but the last: glibc's defaults keep
    the 60 MB (the last block pins the heap's top); keep_heap_small() gives it back."""

    def kept_mb(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", MALLOC_PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    assert kept_mb("default") >= 50
    assert kept_mb("set") <= 5


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("<html><head><meta charset='windows-1251'></head><p>Привет, мир</p></html>".encode("cp1251"), {}),
        ("\ufeff<p>Grüße aus Köln</p>".encode(), {}),
        ("<p>Grüße</p>".encode("latin-1"), {"Content-Type": "text/html; charset=iso-8859-1"}),
        (b"<p>broken \xff\xfe utf-8 \xc3</p>", {"Content-Type": "text/html; charset=utf-8"}),
        ("<p>한국어 기사 😀</p>".encode(), {"Content-Type": "text/html; charset=utf-8"}),
    ],
)
def test_a_page_handed_on_as_bytes_decodes_as_scrapy_would(body: bytes, headers: dict[str, str]) -> None:
    """The spider hands a worker the response's bytes and encoding (crawl/items.py): the worker's
    text must be the one Scrapy's response.text would have given."""
    from scrapy.http import HtmlResponse

    from crawl.items import decode_page

    response = HtmlResponse("https://news.example/a", body=body, headers=headers)
    assert decode_page(response.body, response.encoding) == response.text


def garbage_collector_state() -> tuple[bool, int]:
    import gc

    return gc.isenabled(), gc.get_freeze_count()


def test_extraction_workers_collect_garbage_and_leave_the_preloaded_objects_alone() -> None:
    """The forkserver preloads the extractor with the collector off and freezes what it loaded
    (crawl/extraction_preload.py); the workers forked from it have the collector on again."""
    from crawl.extraction_pool import make_pool

    pool = make_pool(1, growth_limit_mb=500)
    try:
        enabled, frozen = pool.submit(garbage_collector_state).result(timeout=120)
    finally:
        pool.shutdown(wait=True)
    assert enabled
    assert frozen > 50_000  # the objects of trafilatura, lxml, numpy and the language model


def data_loaded_on_first_use() -> dict[str, bool]:
    import sys

    from htmldate.extractors import month_words
    from justext.core import define_stoplist
    from tld.utils import tld_names

    return {
        "month names of every locale (htmldate)": month_words.cache_info().currsize == 1,
        "lower-cased stoplists (jusText)": define_stoplist.cache_info().currsize >= 1,
        "public-suffix list (tld, for courlan)": bool(tld_names),
        "numpy.ma (numpy.unique, for the signature)": "numpy.ma" in sys.modules,
        "the WARC writer": "archive.warc_files" in sys.modules,
    }


def test_a_fresh_extraction_worker_finds_what_pages_load_on_first_use_already_loaded() -> None:
    """Loaded once in the forkserver, shared by every worker: a worker replaced every few dozen
    pages would otherwise load each again, in its own memory (0.15 s and some 30 MB a worker)."""
    from crawl.extraction_pool import make_pool

    pool = make_pool(1, growth_limit_mb=500)
    try:
        loaded = pool.submit(data_loaded_on_first_use).result(timeout=120)
    finally:
        pool.shutdown(wait=True)
    assert loaded == dict.fromkeys(loaded, True)
