"""The store step: an item whose dedupe decision is made becomes pending writes of the archive
(`Archive.pending`), committed together by `Archive.flush()`.

Plain functions over an `Archive` and an item: the crawl's StorePipeline and the shared crawl's
writer both call them; each decides when to flush.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from archive.dedupe import DedupeItem
from archive.raw_html import raw_page_row
from archive.sites import site_of
from config.dates import utc_now_iso

if TYPE_CHECKING:
    from archive.raw_html import CompressedHtml
    from archive.store import Archive


class StoredItem(DedupeItem, Protocol):
    """What the store step reads from an item (crawl.items.ArticleItem) after dedupe."""

    source: str
    html: str
    fetched_at: str
    http_status: int
    content_type: str
    fetched_url: str
    http_headers: list[tuple[str, str]]
    request_headers: list[tuple[str, str]]
    raw_html: CompressedHtml | None
    line_keys: set[int]

    def article_row(self) -> dict[str, Any]: ...

    def page_html(self) -> str: ...


REVISION_COLUMNS = (
    "url",
    "title",
    "authors",
    "published_at",
    "modified_at",
    "text",
    "body_hash",
    "fetched_at",
)


def revision_row(previous: dict[str, Any], *, replaced_at: str) -> dict[str, Any]:
    """The replaced version of an article, with what the new version changed."""
    row = {name: previous[name] for name in REVISION_COLUMNS}
    row.update(version=previous["version"] or 1, replaced_at=replaced_at, changed=previous["changed"])
    return row


def must_flush_first(archive: Archive, item: StoredItem) -> bool:
    """Whether the copy this item replaces is still pending: it must be in the database before
    the swap (`Archive.write` makes the stored copy an alias of the item)."""
    return bool(item.replaces) and any(row["url"] == item.replaces for row in archive.pending.new)


def stage(archive: Archive, item: StoredItem, *, keep_raw: bool) -> None:
    """Add what the item changes to the archive's pending writes."""
    now = utc_now_iso()
    pending = archive.pending
    if item.replaces:
        pending.replaced[item.replaces] = item.url
    target = item.url if item.status in ("new", "updated", "unchanged") else item.duplicate_of
    if item.status == "new" and item.line_keys:
        archive.chrome.count(site_of(item.url), item.line_keys)
    if item.status in ("new", "updated"):
        row = item.article_row()
        row.update(first_seen_at=item.first_seen_at or now, last_seen_at=now)
        row["updated_at"] = now if item.status == "updated" else None
        (pending.new if item.status == "new" else pending.updated).append(row)
        if item.previous is not None:
            pending.revisions.append(revision_row(item.previous, replaced_at=now))
        if keep_raw:
            raw = raw_page_row(
                item.url,
                "" if item.raw_html is not None else item.page_html(),  # kept as it came: not decoded here
                fetched_at=item.fetched_at,
                http_status=item.http_status,
                content_type=item.content_type,
                compressed=item.raw_html,
            )
            # For its WARC record (archive/raw_pages.py): the response as it came, from where it came.
            raw.update(
                headers=item.http_headers,
                request_headers=item.request_headers,
                fetched_url=item.fetched_url or item.url,
            )
            pending.raw_pages.append(raw)
    elif target:
        pending.seen.add(target)
        if item.status == "unchanged":  # fetched again: the re-visit clock moves on
            pending.refetched[target] = item.fetched_at
    for alias, reason in item.aliases.items():
        if alias != target:
            similarity = item.copy_similarity if reason in ("same_body", "near_copy") else None
            pending.aliases.append(
                {
                    "alias": alias,
                    "url": target,
                    "reason": reason,
                    "similarity": similarity,
                    "source": item.source,
                    "first_seen_at": now,
                }
            )
