"""The dedupe decision: whether a fetched page is a new article, an update, unchanged, or a copy.

- same canonical URL, same body and headline -> unchanged (only last_seen_at moves)
- same canonical URL, body or headline changed -> updated (old version kept as a revision)
- new URL of the same site (registered domain) whose body is already stored
                                             -> duplicate (its URL becomes an alias), unless it
                                                was published earlier (or the stored copy is undated):
                                                then it takes the copy's place
- new URL on the same site (registered domain) whose body is a near copy of a stored article
  (MinHash similarity >= COPY_THRESHOLD)        -> duplicate too: one record per story per site
- fetched at a variant URL (AMP, non-canonical) of a stored article -> alias only
- new article similar to stored ones (MinHash) -> new, in the same near-duplicate cluster: copies
                                                on other sites stay articles of their own, since who
                                                republished what is news to researchers

Plain functions over an `Archive` and an item: the crawl's DedupePipeline and the shared crawl's
writer both call `decide()`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from archive.near_duplicates import cluster_id_for
from archive.sites import site_of
from archive.store import Archive

# A new URL whose body reaches this MinHash similarity with an article of the same site is a copy
# of it (another section's template around the same text), not a story of its own. Measured with
# bench/near_duplicates.py (see bench/RESULTS.md): same-site copies whose extraction differs by a
# caption, a byline line or a related-links block stay above it; follow-ups that reuse background
# paragraphs and updated stories with new paragraphs stay below it.
COPY_THRESHOLD = 0.7


class DedupeItem(Protocol):
    """What the decision reads from an item (crawl.items.ArticleItem) and writes back into it."""

    url: str
    text: str
    title: str | None
    authors: list[str]
    published_at: str | None
    modified_at: str | None
    signature: bytes
    aliases: dict[str, str]
    provenance: dict[str, str]  # "url": "canonical link" when the page names itself canonical
    # Set by the decision.
    copy_similarity: float | None
    body_hash: str
    status: str
    duplicate_of: str | None
    replaces: str | None
    first_seen_at: str | None
    previous: dict[str, Any] | None
    version: int
    cluster_id: int | None


@dataclass(frozen=True)
class Decision:
    """What became of an item, for the crawl's statistics (the item carries the details)."""

    status: str  # new | updated | unchanged | duplicate | alias
    replaced_copy: bool  # an earlier copy that takes the place of the one stored
    near_duplicate: bool  # a new article put in the cluster of a similar stored one

    def stats_keys(self) -> list[str]:
        """The crawl statistics this decision counts in."""
        keys = ["news/dedupe/near_duplicate"] if self.near_duplicate else []
        if self.replaced_copy:
            # The earlier copy takes the place of the one stored: no article is added (counting it
            # new too made a run's "new" exceed the articles it stored), so it counts as a copy.
            keys += ["news/articles/replaced_copy", "news/articles/duplicate"]
        else:
            keys.append(f"news/articles/{self.status}")
        if self.status == "alias":  # a URL variant: counted with the copies, as "not stored twice"
            keys.append("news/articles/duplicate")
        return keys


def normalize_space(text: str | None) -> str:
    return " ".join((text or "").split())  # str.split's whitespace is re's \s: hashes stay as they were


def body_hash(text: str) -> str:
    """Hash of the body with whitespace differences ignored."""
    return hashlib.sha1(normalize_space(text).encode("utf-8")).hexdigest()


def changed_fields(stored: dict[str, Any], item: DedupeItem) -> list[str]:
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


class NearMatches:
    """The stored articles similar to an item, most similar first: looked up once, when first asked."""

    def __init__(self, archive: Archive, item: DedupeItem) -> None:
        self.archive, self.item = archive, item
        self._found: list[tuple[str, float]] | None = None

    def __call__(self) -> list[tuple[str, float]]:
        if self._found is None:
            self._found = self.archive.near.matches(self.item.signature, exclude=self.item.url)
        return self._found


def same_site_copy(item: DedupeItem, matches: NearMatches) -> tuple[str, float] | None:
    """The stored article of the item's own site whose body the item's nearly repeats, with the
    similarity, or None."""
    if not item.signature:
        return None
    site = site_of(item.url)
    for url, score in matches():
        if score < COPY_THRESHOLD:
            break  # most similar first
        if site_of(url) == site:
            return url, score
    return None


def decide(archive: Archive, item: DedupeItem) -> Decision:
    """Decide what the item is against the archive (and what this process decided but has not
    written yet); fills the item's dedupe fields and remembers a new article in the archive."""
    item.body_hash = body_hash(item.text)
    matches = NearMatches(archive, item)
    item.status = _status(item, archive, matches)
    near_duplicate = False
    if item.status in ("new", "updated"):
        near_duplicate = _cluster(item, archive, matches)
    if item.status == "new":
        archive.recent_urls[item.url] = item.body_hash
        archive.recent_bodies[item.body_hash] = item.url
        archive.recent_published[item.url] = item.published_at
    return Decision(status=item.status, replaced_copy=bool(item.replaces), near_duplicate=near_duplicate)


def _status(item: DedupeItem, archive: Archive, matches: NearMatches) -> str:
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
    reason, similarity = "same_body", 1.0
    original = _same_body_on_site(item, archive)
    if original is None:
        if (copy := same_site_copy(item, matches)) is None:
            return "new"
        (original, similarity), reason = copy, "near_copy"
    item.copy_similarity = round(similarity, 3)
    if _is_original_of(item, original, archive):
        # The copy we stored first is the later one: this page takes its place.
        item.replaces = original
        item.aliases[original] = reason
        item.cluster_id = archive.cluster_of(original)  # the story keeps its cluster
        archive.forget(original)
        return "new"
    item.duplicate_of = original
    item.aliases[item.url] = reason
    return "duplicate"


def _is_original_of(item: DedupeItem, stored: str, archive: Archive) -> bool:
    """Whether the item, a copy of a stored article, is the original: published earlier, or
    published at the same time and naming itself canonical where the stored one does not (a
    section's own page against the same text republished in another section's template)."""
    mine, theirs = item.published_at, archive.published_at(stored)
    if published_before(mine, theirs):
        return True
    if published_before(theirs, mine):
        return False
    return item.provenance.get("url") == "canonical link" and not archive.names_itself_canonical(stored)


def _same_body_on_site(item: DedupeItem, archive: Archive) -> str | None:
    """A stored article of the item's site with the very same body. The same text on another site
    is an article of its own there (in the same cluster)."""
    site = site_of(item.url)
    recent = archive.recent_bodies.get(item.body_hash)
    if recent and site_of(recent) == site:  # decided in this process: no query
        return recent
    return next((url for url in archive.urls_with_body(item.body_hash) if site_of(url) == site), None)


def _cluster(item: DedupeItem, archive: Archive, matches: NearMatches) -> bool:
    """Put the article in the cluster of the most similar stored article, or a cluster of its own;
    returns whether a new article joined a similar one's cluster."""
    if not item.signature:
        item.cluster_id = item.cluster_id or cluster_id_for(item.url)
        return False
    similar = matches()
    near_duplicate = False
    if item.status == "new" and item.cluster_id is None:
        cluster = archive.cluster_of(similar[0][0]) if similar else None
        item.cluster_id = cluster or cluster_id_for(item.url)
        near_duplicate = bool(similar)
    elif item.cluster_id is None:
        item.cluster_id = cluster_id_for(item.url)
    archive.recent_clusters[item.url] = item.cluster_id
    archive.near.add(item.url, item.signature)
    return near_duplicate
