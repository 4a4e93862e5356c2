"""Run crawls in this process: what `scheduler.py crawl` does, and what the daemon's children run.

Several sources crawl side by side in one Scrapy process (one crawler each, one `crawl_runs`
row each), so starting a process is paid once per batch, not once per source.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CrawlRequest:
    """One crawl to run: a configured source by name, or an ad-hoc URL."""

    source: str | None = None
    url: str | None = None
    allow_private: bool = False
    max_articles: int | None = None

    def spider_kwargs(self) -> dict[str, Any]:
        if self.url:
            kwargs: dict[str, Any] = {"url": self.url, "allow_private": "1" if self.allow_private else "0"}
            if self.max_articles:
                kwargs["max_articles"] = str(self.max_articles)
            return kwargs
        return {"source": self.source}


def project_settings(
    db_path: str | os.PathLike[str],
    sources_file: str | os.PathLike[str],
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Scrapy settings from settings.py, pointed at this database and sources file."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "settings")
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    settings.set("NEWS_DB_PATH", str(db_path), priority="cmdline")
    settings.set("NEWS_SOURCES_FILE", str(sources_file), priority="cmdline")
    for name, value in (overrides or {}).items():
        settings.set(name, value, priority="cmdline")
    return settings


def run_crawls(requests: Sequence[CrawlRequest], settings: Any) -> float:
    """Crawl every request side by side and block until all are done; returns seconds taken."""
    from scrapy.crawler import CrawlerProcess

    from spiders.news import NewsSpider

    started = time.monotonic()
    process = CrawlerProcess(settings)
    for request in requests:
        process.crawl(NewsSpider, **request.spider_kwargs())
    process.start()
    return time.monotonic() - started
