"""DedupePipeline: decide whether a page is a new article, an update, unchanged, or a copy.

- same canonical URL, same body and headline -> unchanged (only last_seen_at moves)
- same canonical URL, body or headline changed -> updated (old version kept as a revision)
- new URL whose body is already stored       -> duplicate (its URL becomes an alias), unless it
                                                was published earlier (or the stored copy is undated):
                                                then it takes the copy's place
- fetched at a variant URL (AMP, non-canonical) of a stored article -> alias only
- new article similar to stored ones (MinHash) -> new, in the same near-duplicate cluster
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from archive.near_duplicates import cluster_id_for
from archive.store import Archive

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem


def normalize_space(text: str | None) -> str:
    return " ".join((text or "").split())  # str.split's whitespace is re's \s: hashes stay as they were


def body_hash(text: str) -> str:
    """Hash of the body with whitespace differences ignored."""
    return hashlib.sha1(normalize_space(text).encode("utf-8")).hexdigest()


def changed_fields(stored: dict[str, Any], item: ArticleItem) -> list[str]:
    """Which of headline, body, dates and authors differ between a stored row and a new fetch."""
    changes = []
    if normalize_space(stored["title"]) != normalize_space(item.title):
        changes.append("title")
    if stored["body_hash"] != item.body_hash:
        changes.append("text")
    for name in ("published_at", "modified_at"):
        if (stored[name] or None) != (getattr(item, name) or None):
            changes.append(name)
    if Archive.json_list(stored["authors"]) != list(item.authors):
        changes.append("authors")
    return changes


def _has_time(value: str) -> bool:
    """False for a bare date, or a naive midnight (how date-only values are often written)."""
    return len(value) > 10 and not value.endswith("T00:00:00")


def published_before(mine: str | None, theirs: str | None) -> bool:
    """Whether a copy dated `mine` is the original of an identical one dated `theirs`.

    Strictly earlier wins. A dated copy beats an undated one, and on the same day a copy
    with a publication time beats a date-only one: syndicated copies tend to drop or blur
    the date, the publisher's own page carries its full timestamp.
    """
    if not mine:
        return False
    if not theirs:
        return True
    try:
        a, b = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in (mine, theirs))
    except ValueError:
        return False
    if not _has_time(mine) or not _has_time(theirs):  # a date without a time: compare days
        return a.date() < b.date() or (a.date() == b.date() and _has_time(mine) and not _has_time(theirs))
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return a < b


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
        if item.status in ("new", "updated"):
            self._cluster(item, archive)
        if item.status == "new":
            archive.recent_urls[item.url] = item.body_hash
            archive.recent_bodies[item.body_hash] = item.url
            archive.recent_published[item.url] = item.published_at
        if item.replaces:
            # The earlier copy takes the place of the one stored: no article is added (counting it
            # new too made a run's "new" exceed the articles it stored), so it counts as a copy.
            self.crawler.stats.inc_value("news/articles/replaced_copy")
            self.crawler.stats.inc_value("news/articles/duplicate")
        else:
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
            changes = changed_fields(stored, item)
            if "title" not in changes and "text" not in changes:
                return "unchanged"
            item.first_seen_at = stored["first_seen_at"]
            item.previous = {**stored, "changed": changes}
            item.version = (stored["version"] or 1) + 1
            item.cluster_id = stored["cluster_id"]
            return "updated"
        original = archive.recent_bodies.get(item.body_hash) or archive.url_with_body(item.body_hash)
        if original is None:
            return "new"
        if published_before(item.published_at, archive.published_at(original)):
            # The copy we stored first is the later one: this page takes its place.
            item.replaces = original
            item.aliases[original] = "same_body"
            item.cluster_id = archive.cluster_of(original)  # the story keeps its cluster
            archive.forget(original)
            return "new"
        item.duplicate_of = original
        item.aliases[item.url] = "same_body"
        return "duplicate"

    def _cluster(self, item: ArticleItem, archive: Archive) -> None:
        """Put the article in the cluster of the most similar stored article, or a cluster of its own."""
        if not item.signature:
            item.cluster_id = item.cluster_id or cluster_id_for(item.url)
            return
        matches = archive.near.matches(item.signature, exclude=item.url)
        if item.status == "new" and item.cluster_id is None:
            cluster = archive.cluster_of(matches[0][0]) if matches else None
            item.cluster_id = cluster or cluster_id_for(item.url)
            if matches:
                self.crawler.stats.inc_value("news/dedupe/near_duplicate")
        elif item.cluster_id is None:
            item.cluster_id = cluster_id_for(item.url)
        archive.recent_clusters[item.url] = item.cluster_id
        archive.near.add(item.url, item.signature)
