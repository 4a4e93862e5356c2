"""MemSpikes: a Scrapy extension that catches the crawl process in the act when its memory jumps.

Enabled only by ``bench/throughput.py --watch-spikes``, which adds it to EXTENSIONS with
``-s BENCH_MEMSPIKES_FILE=...``. A thread reads the process's RSS every POLL_S seconds; when it
stands SPIKE_MB (or BENCH_MEMSPIKES_MB) above the lowest RSS of the last BASELINE_S seconds, it records what the main
thread is running (its Python stack: SQLite and lxml release the GIL, so the stack is readable
while they work), SQLite's and glibc's own memory, and, on the reactor thread once it is free
again, how much the engine holds (responses downloading, bytes in the scraper, items in flight).
While the RSS keeps rising the record is replaced by the higher one, so each spike is reported at
its top. Unlike bench/memtrace.py it costs next to nothing: the throughput figures of a run with it
stay comparable, but they are not reported from it.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from scrapy import signals
from twisted.internet import reactor

from bench.memtrace import native_memory_mb, rss_mb

logger = logging.getLogger(__name__)
POLL_S = 0.05
BASELINE_S = 30.0
SPIKE_MB = 20.0
STACK_FRAMES = 14


class MemSpikes:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.path = Path(crawler.settings.get("BENCH_MEMSPIKES_FILE"))
        self.spike_mb = crawler.settings.getfloat("BENCH_MEMSPIKES_MB", SPIKE_MB)
        self.spikes: list[dict[str, Any]] = []
        self.recent: deque[tuple[float, float]] = deque()  # (time, rss): the baseline's window
        self.timeline: list[tuple[float, float]] = []  # (time, largest RSS of each second)
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.main_thread = threading.main_thread().ident
        self.thread = threading.Thread(target=self.watch, name="memspikes", daemon=True)

    @classmethod
    def from_crawler(cls, crawler: Any) -> MemSpikes:
        watcher = cls(crawler)
        crawler.signals.connect(watcher.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(watcher.spider_closed, signal=signals.spider_closed)
        return watcher

    def spider_opened(self, spider: Any) -> None:
        self.thread.start()

    def watch(self) -> None:
        spike: dict[str, Any] | None = None
        second, second_max = -1, 0.0
        while not self.stop.wait(POLL_S):
            now = time.monotonic() - self.started
            rss = rss_mb()
            if int(now) != second:
                if second >= 0:
                    self.timeline.append((second, round(second_max, 1)))
                second, second_max = int(now), 0.0
            second_max = max(second_max, rss)
            while self.recent and self.recent[0][0] < now - BASELINE_S:
                self.recent.popleft()
            self.recent.append((now, rss))
            baseline = min(value for _, value in self.recent)
            if rss >= baseline + self.spike_mb:
                if spike is None or rss > spike["rss_mb"]:
                    fresh = spike is None
                    spike = self.capture(now, rss, baseline)
                    if fresh:
                        self.spikes.append(spike)
                    else:
                        self.spikes[-1] = spike
                    reactor.callFromThread(self.engine_state, spike)
            else:
                spike = None

    def capture(self, now: float, rss: float, baseline: float) -> dict[str, Any]:
        frame = sys._current_frames().get(self.main_thread or 0)
        stack = traceback.format_stack(frame)[-STACK_FRAMES:] if frame is not None else []
        stats = self.crawler.stats.get_stats()
        return {
            "at_s": round(now, 2),
            "rss_mb": round(rss, 1),
            "baseline_mb": round(baseline, 1),
            "stored": stats.get("news/articles/new", 0),
            "native": native_memory_mb(),
            "stack": [line.rstrip() for line in stack],
        }

    def engine_state(self, spike: dict[str, Any]) -> None:
        engine = self.crawler.engine
        if engine is None:
            return
        slot = getattr(engine.scraper, "slot", None)
        spike["engine"] = {
            "downloading": len(engine.downloader.active),
            "scraper_bytes_mb": round(getattr(slot, "active_size", 0) / 2**20, 1),
            "scraper_responses": len(getattr(slot, "active", ())),
            "scraper_queued": len(getattr(slot, "queue", ())),
            "items_in_pipelines": getattr(slot, "itemproc_size", None),
            "rss_when_free_mb": round(rss_mb(), 1),
        }

    def spider_closed(self, spider: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.path.write_text(json.dumps({"spikes": self.spikes, "timeline": self.timeline}, indent=1))
        logger.info("memory spikes: %d recorded in %s", len(self.spikes), self.path)
