"""A Scrapy extension for tests: the most bytes of responses Scrapy's scraper held at once.

The scraper counts a response's body as it enqueues it, just after the `response_received`
signal: the held bytes peak at those moments, so reading them there misses no peak. Written as
JSON to the file named by the TEST_HELD_BYTES_FILE setting when the spider closes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class HeldBytesProbe:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.most_held = 0
        self.largest_page = 0
        crawler.signals.connect(self._received, signal=signals.response_received)
        crawler.signals.connect(self._closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HeldBytesProbe:
        return cls(crawler)

    def _received(self, response: Response) -> None:
        assert self.crawler.engine is not None
        slot = self.crawler.engine.scraper.slot
        held = slot.active_size if slot is not None else 0
        size = max(len(response.body), slot.MIN_RESPONSE_SIZE if slot is not None else 0)
        self.most_held = max(self.most_held, held + size)
        self.largest_page = max(self.largest_page, len(response.body))

    def _closed(self) -> None:
        stats = self.crawler.stats
        figures = {
            "most_held": self.most_held,
            "largest_page": self.largest_page,
            "waited": stats.get_value("news/body_budget/waited", 0),
        }
        Path(self.crawler.settings.get("TEST_HELD_BYTES_FILE")).write_text(json.dumps(figures))
