"""DedupePipeline: the Scrapy adapter of the dedupe decision (archive/dedupe.py), which says whether
a page is a new article, an update, unchanged, or a copy; the pipeline counts what it decided. The
body first loses the lines its site's template repeats (archive/site_chrome.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.dedupe import body_hash, changed_fields, decide, normalize_space, published_before
from archive.site_chrome import strip_site_chrome
from crawl.archive_access import crawl_archive

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem

# The pure helpers stay importable from here, where they used to live.
__all__ = ["DedupePipeline", "body_hash", "changed_fields", "normalize_space", "published_before"]


class DedupePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        archive = crawl_archive(self.crawler)
        if strip_site_chrome(archive.chrome, item):
            self.crawler.stats.inc_value("news/pages/site_chrome_stripped")
        decision = decide(archive, item)
        for key in decision.stats_keys():
            self.crawler.stats.inc_value(key)
        return item
