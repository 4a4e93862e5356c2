"""StageTimer: a Scrapy extension that measures, inside a crawl, the CPU each pipeline stage costs.

Enabled only by bench/throughput.py, on the command line::

    scrapy crawl news ... -s 'EXTENSIONS={<settings.EXTENSIONS>, "bench.stagetimer.StageTimer": 0}' \
        -s BENCH_STAGE_FILE=/tmp/stages.json

Scrapy's stats give counts, not CPU by stage, so this wraps the stage methods (at class level,
before the engine binds them) with `time.thread_time()`: the CPU of the calling thread, which for
the pipelines is the reactor's thread. Nothing in the project's code changes; a method that is not
there (renamed by a later change) is reported as missing instead of failing the crawl.

At close it writes a JSON file with, per stage, the calls and CPU seconds, the crawl's wall time and
the times the first and the last article were stored (for a steady-state rate).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from scrapy import signals

logger = logging.getLogger(__name__)

# (module, class, method, stage label). Inclusive times: "store.sqlite" runs inside "store".
WRAPPED = (
    ("crawl.skip_stored", "SkipStoredArticlesMiddleware", "get_processed_request", "dedup.skip_stored_lookup"),
    ("pipelines.classify", "ArticleFilterPipeline", "process_item", "classify"),
    ("pipelines.canonical", "CanonicalUrlPipeline", "process_item", "canonical"),
    ("pipelines.dedupe", "DedupePipeline", "process_item", "dedup"),
    ("pipelines.store", "StorePipeline", "process_item", "store"),
    ("pipelines.store", "StorePipeline", "close_spider", "store"),
    ("archive.store", "Archive", "write", "store.sqlite_and_fts"),
    ("archive.store", "Archive", "flush", "store.flush"),
    ("crawl.run_records", "CrawlRunRecorder", "failure", "failures"),
)
# Module-level functions, patched where their callers look them up.
WRAPPED_FUNCTIONS = (("archive.staging", "raw_page_row", "store.raw_html_compress"),)

_totals: dict[str, list[float]] = {}  # stage -> [calls, cpu seconds]
_missing: list[str] = []
_patched = False


def _timed(stage: str, func: Any) -> Any:
    entry = _totals.setdefault(stage, [0, 0.0])

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            entry[0] += 1
            entry[1] += time.thread_time() - started

    return wrapper


def patch() -> None:
    global _patched
    if _patched:
        return
    _patched = True
    for module_name, class_name, method, stage in WRAPPED:
        cls = getattr(importlib.import_module(module_name), class_name, None)
        func = getattr(cls, method, None) if cls is not None else None
        if func is None:
            _missing.append(f"{module_name}.{class_name}.{method}")
            continue
        setattr(cls, method, _timed(stage, func))
    for module_name, name, stage in WRAPPED_FUNCTIONS:
        module = importlib.import_module(module_name)
        if getattr(module, name, None) is None:
            _missing.append(f"{module_name}.{name}")
            continue
        setattr(module, name, _timed(stage, getattr(module, name)))


class StageTimer:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.path = crawler.settings.get("BENCH_STAGE_FILE")
        self.opened = 0.0
        self.first_stored: float | None = None
        self.last_stored: float | None = None
        self.stored = 0
        self.timeline: list[tuple[float, int]] = []  # (seconds since open, articles stored so far)

    @classmethod
    def from_crawler(cls, crawler: Any) -> StageTimer:
        patch()  # before the engine is built, so the pipelines bind the wrapped methods
        timer = cls(crawler)
        crawler.signals.connect(timer.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(timer.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(timer.spider_closed, signal=signals.spider_closed)
        return timer

    def spider_opened(self, spider: Any) -> None:
        self.opened = time.monotonic()

    def item_scraped(self, item: Any, response: Any, spider: Any) -> None:
        if getattr(item, "status", None) != "new":
            return
        now = time.monotonic()
        self.stored += 1
        if self.first_stored is None:
            self.first_stored = now
        self.last_stored = now
        if self.stored % 100 == 0:
            self.timeline.append((round(now - self.opened, 3), self.stored))

    def spider_closed(self, spider: Any, reason: str) -> None:
        closed = time.monotonic()
        result = {
            "reason": reason,
            "main_thread_cpu_s": time.thread_time(),
            "process_cpu_s": time.process_time(),
            "open_to_close_s": closed - self.opened,
            "first_stored_s": (self.first_stored - self.opened) if self.first_stored else None,
            "last_stored_s": (self.last_stored - self.opened) if self.last_stored else None,
            "stored_new": self.stored,
            "stages": {k: {"calls": int(v[0]), "cpu_s": v[1]} for k, v in sorted(_totals.items())},
            "missing": _missing,
            "timeline": self.timeline,
        }
        if self.path:
            Path(self.path).write_text(json.dumps(result, indent=1), encoding="utf-8")
        logger.info("stage timings written to %s", self.path)
