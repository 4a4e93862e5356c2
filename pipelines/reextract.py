"""Re-run extraction over the archive's stored raw HTML, so better rules reach stored articles.

    python scheduler.py reextract [--source NAME] [--since DATE]

Every article with a stored page (a record in the WARC files that `raw_page_refs` points at, or a
`raw_pages` row not yet moved out; optionally only one source's, or only those fetched since a
date) is extracted again from its stored HTML; rows whose extracted fields changed are updated, in
one transaction per batch. The FTS triggers keep `articles_fts` in step with each UPDATE, and a
changed body gets a new near-duplicate signature (its cluster is left as it was). Feed hints
are not stored, so a field whose provenance says it came from the feed is passed back in as a hint:
re-extraction never loses what only the feed knew.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from archive.dedupe import body_hash
from archive.raw_pages import page_html
from archive.reextraction import stored_pages, update_articles
from archive.schema import open_db
from archive.site_chrome import Chrome, SiteChrome, less_chrome, strip_chrome, strip_title_affixes, word_count
from archive.sites import site_of
from archive.warc_files import warc_directory
from config.dates import utc_now_iso
from crawl.items import EXTRACTED_COLUMNS
from extraction import ExtractionError, extract_article

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# The `articles` columns that extraction decides, compared and rewritten by re-extraction.
FIELDS = EXTRACTED_COLUMNS
_LIST_FIELDS = {"authors", "categories", "tags"}
# Hint name for each field a feed can supply (see ArticleItem.hints).
_HINTS = {"title": "title", "published_at": "published", "modified_at": "modified", "authors": "authors"}


def reextract(
    db_path: str | Path, *, source: str | None = None, since: str | None = None, batch_size: int = BATCH_SIZE
) -> dict[str, int]:
    """Re-extract stored articles and update those whose fields changed.

    Args:
        db_path: the archive database.
        source: only this source's articles.
        since: only articles fetched at or after this ISO 8601 date or timestamp.
        batch_size: articles read, extracted and written per transaction.

    Returns:
        Counts: "articles" examined, "updated" rows, "failed" extractions, and per field the
        number of rows in which that field changed.
    """
    counts = {"articles": 0, "updated": 0, "failed": 0, **dict.fromkeys(FIELDS, 0)}
    db = open_db(db_path)
    chrome = SiteChrome(db)  # what each site's template repeats, learned from its stored articles
    warc_files = warc_directory(db_path)
    try:
        after = ""
        while True:
            rows = stored_pages(db, FIELDS, after=after, source=source, since=since, limit=batch_size)
            if not rows:
                break
            after = rows[-1]["url"]
            updates = []
            for row in rows:
                counts["articles"] += 1
                changed = _reextract_row(row, warc_files, chrome.chrome(site_of(row["url"])))
                if changed is None:
                    counts["failed"] += 1
                elif changed:
                    updates.append((row["url"], changed))
                    for name in changed:
                        if name in counts:
                            counts[name] += 1
            update_articles(db, updates)
            counts["updated"] += len(updates)
            logger.info("re-extracted %d articles, %d updated so far", counts["articles"], counts["updated"])
    finally:
        db.close()
    return counts


def _reextract_row(row: dict[str, Any], warc_files: Path, chrome: Chrome) -> dict[str, Any] | None:
    """The changed fields of one stored article ({} if none), or None if extraction failed."""
    try:
        fresh = extract_article(page_html(warc_files, row), row["url"], _hints(row))
    except (ExtractionError, ValueError, UnicodeDecodeError) as exc:
        logger.warning("cannot re-extract %s: %s", row["url"], exc)
        return None
    if (title := strip_title_affixes(fresh["title"], chrome)) is not None:
        fresh["title"] = title
    if (stripped := strip_chrome(fresh["text"], fresh["markdown"], chrome)) is not None:
        fresh.update(text=stripped.text, markdown=stripped.markdown, word_count=word_count(stripped.text))
        fresh["provenance"] = {
            **fresh["provenance"],
            "text": less_chrome(fresh["provenance"].get("text", ""), stripped.lines),
        }
    changed: dict[str, Any] = {}
    for name in FIELDS:
        if _stored(name, row[name]) != fresh[name]:
            changed[name] = fresh[name]
    if "text" in changed:
        changed["body_hash"] = body_hash(fresh["text"])
    if set(changed) - {"provenance"}:
        changed["updated_at"] = utc_now_iso()
        return changed
    return {}  # only where a value came from changed: the stored values stand


def _stored(name: str, value: Any) -> Any:
    """A stored column value in the form extract_article returns it."""
    if name in _LIST_FIELDS:  # lists are JSON text in SQLite
        return json.loads(value) if isinstance(value, str) and value else list(value or [])
    if name == "provenance":
        return json.loads(value) if isinstance(value, str) and value else (value or {})
    if name in ("text", "markdown"):
        return value or ""
    if name == "word_count":
        return value or 0
    return value


def _hints(row: dict[str, Any]) -> dict[str, Any]:
    """What the feed said about this article, recovered from the fields that came from it."""
    provenance = _stored("provenance", row["provenance"])
    hints: dict[str, Any] = {}
    for name, hint in _HINTS.items():
        if str(provenance.get(name, "")).startswith("feed") and row[name]:
            hints[hint] = _stored(name, row[name])
    return hints
