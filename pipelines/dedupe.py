"""DedupePipeline: decide whether a page is a new article, an update, unchanged, or a copy.

- same canonical URL, same body and title  -> unchanged (only last_seen_at moves)
- same canonical URL, body or title changed -> updated (the row is rewritten)
- new URL whose body is already stored      -> duplicate (its URL becomes an alias)
- fetched at a variant URL (AMP, non-canonical) of a stored article -> alias only
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from archive import Archive

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from items import ArticleItem

_SPACE_RE = re.compile(r"\s+")


def body_hash(text: str) -> str:
    """Hash of the body with case and whitespace differences ignored."""
    normalized = _SPACE_RE.sub(" ", text).strip().casefold()
    return hashlib.sha1(normalized.encode("utf-8")).hexdigest()


class DedupePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        archive = Archive.for_crawler(self.crawler)
        item.body_hash = body_hash(item.text)
        item.status = self._decide(item, archive)
        if item.status == "new":
            archive.recent_urls[item.url] = item.body_hash
            archive.recent_bodies.setdefault(item.body_hash, item.url)
        self.crawler.stats.inc_value(f"news/articles/{item.status}")
        if item.status == "alias":  # a URL variant: counted with the copies, as "not stored twice"
            self.crawler.stats.inc_value("news/articles/duplicate")
        return item

    def _decide(self, item: ArticleItem, archive: Archive) -> str:
        fetched_elsewhere = any(reason in ("amp", "canonical") for reason in item.aliases.values())
        stored = archive.article(item.url)
        if stored is not None or item.url in archive.recent_urls:
            item.duplicate_of = item.url
            if fetched_elsewhere:
                return "alias"  # the variant page never overwrites the canonical one
            if stored is None:
                return "unchanged"  # reached twice in one run
            item.first_seen_at = stored["first_seen_at"]
            same = stored["body_hash"] == item.body_hash and (stored["title"] or "") == (item.title or "")
            return "unchanged" if same else "updated"
        original = archive.recent_bodies.get(item.body_hash) or archive.url_with_body(item.body_hash)
        if original is not None:
            item.duplicate_of = original
            item.aliases[item.url] = "same_body"
            return "duplicate"
        return "new"
