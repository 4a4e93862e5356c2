"""Re-run extraction over the archive's stored raw HTML, so better rules reach stored articles.

    python scheduler.py reextract [--source NAME] [--since DATE]

Every article with a `raw_pages` row (optionally only one source's, or only those fetched since a
date) is extracted again from its stored HTML; rows whose extracted fields changed are updated, in
one transaction per batch. The FTS triggers keep `articles_fts` in step with each UPDATE, and a
changed body gets a new near-duplicate signature (its cluster is left as it was). Feed hints
are not stored, so a field whose provenance says it came from the feed is passed back in as a hint:
re-extraction never loses what only the feed knew.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from archive.near_duplicates import NearDuplicateIndex, signature
from archive.raw_html import raw_html
from archive.schema import open_db
from config.dates import utc_now_iso
from config.sources import SourceConfigError, load_sources
from crawl.items import EXTRACTED_COLUMNS
from extraction import ExtractionError, extract_article
from pipelines.dedupe import body_hash

if TYPE_CHECKING:
    from pathlib import Path

    from sqlite_utils import Database

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
    try:
        after = ""
        while True:
            rows = _batch(db, after=after, source=source, since=since, limit=batch_size)
            if not rows:
                break
            after = rows[-1]["url"]
            updates = []
            for row in rows:
                counts["articles"] += 1
                changed = _reextract_row(row)
                if changed is None:
                    counts["failed"] += 1
                elif changed:
                    updates.append((row["url"], changed))
                    for name in changed:
                        if name in counts:
                            counts[name] += 1
            _write(db, updates)
            counts["updated"] += len(updates)
            logger.info("re-extracted %d articles, %d updated so far", counts["articles"], counts["updated"])
    finally:
        db.close()
    return counts


def _batch(db: Database, *, after: str, source: str | None, since: str | None, limit: int) -> list[dict]:
    """The next articles with stored HTML, by URL (keyset paging: writes never shift the window)."""
    where = ["a.url > ?"]
    params: list[Any] = [after]
    if source:
        where.append("a.source = ?")
        params.append(source)
    if since:
        where.append("a.fetched_at >= ?")
        params.append(since)
    columns = ", ".join(f"a.{name}" for name in FIELDS)
    sql = (
        f"SELECT a.url, {columns}, r.html_gzip, r.charset, r.html_zstd, r.html_zlib"
        f" FROM articles a JOIN raw_pages r ON r.url = a.url WHERE {' AND '.join(where)} ORDER BY a.url LIMIT ?"
    )
    cursor = db.execute(sql, [*params, limit])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _reextract_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """The changed fields of one stored article ({} if none), or None if extraction failed."""
    try:
        fresh = extract_article(raw_html(row), row["url"], _hints(row))
    except (ExtractionError, ValueError, UnicodeDecodeError) as exc:
        logger.warning("cannot re-extract %s: %s", row["url"], exc)
        return None
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


def _write(db: Database, updates: list[tuple[str, dict[str, Any]]]) -> None:
    if not updates:
        return
    with db.atomic():
        for url, changed in updates:
            db["articles"].update(url, changed)
            if "text" in changed:
                _replace_signature(db, url, changed["text"])


def _replace_signature(db: Database, url: str, text: str) -> None:
    """Keep the near-duplicate index in step with a changed body (the cluster stays as it was)."""
    NearDuplicateIndex(db).replace(url, signature(text) if text else None)


# --- command line ---------------------------------------------------------------------------


def iso_date(value: str) -> str:
    """An argparse type: an ISO 8601 date or timestamp, returned in its ISO form."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {value!r} (e.g. 2024-05-01)") from None


def add_reextract_command(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add `reextract` to a CLI's subcommands; `common_parent` supplies --db (and --sources)."""
    command = subparsers.add_parser(
        "reextract",
        parents=[common_parent],
        help="re-run extraction over the stored raw HTML",
        description="Re-run extraction over the stored raw HTML and update the articles whose fields "
        "changed (and their search index). Prints how many rows changed per field.",
    )
    command.add_argument("--source", metavar="NAME", help="only this source's articles")
    command.add_argument(
        "--since", type=iso_date, metavar="DATE", help="only articles fetched on or after DATE (ISO 8601)"
    )
    command.set_defaults(handler=cmd_reextract)
    return command


def cmd_reextract(args: argparse.Namespace) -> int:
    if args.source:
        check_source_known(args.db, args.source, getattr(args, "sources", None))
    counts = reextract(args.db, source=args.source, since=args.since)
    print(format_counts(counts))
    return 0  # a page that cannot be re-extracted keeps its stored fields; it is counted, not fatal


def check_source_known(db_path: Path, source: str, sources_file: Path | None) -> None:
    """Raise SourceConfigError (a usage error) unless `source` is in the sources file or the
    archive: a misspelt name would re-extract nothing and look like a success."""
    if sources_file is not None:
        try:
            if any(s.name == source for s in load_sources(sources_file)):
                return
        except SourceConfigError:
            pass  # a broken sources file: the archive may still know the name
    db = open_db(db_path)
    try:
        known = db.execute(
            "SELECT EXISTS (SELECT 1 FROM sources WHERE name = ?) OR EXISTS (SELECT 1 FROM articles WHERE source = ?)"
            " OR EXISTS (SELECT 1 FROM crawl_runs WHERE source = ?)",
            [source, source, source],
        ).fetchone()[0]
    finally:
        db.close()
    if not known:
        where = f"{sources_file.name} or " if sources_file is not None else ""
        raise SourceConfigError(f'reextract: no source named "{source}" in {where}the archive {db_path}')


def format_counts(counts: dict[str, int]) -> str:
    fields = ", ".join(f"{name} {counts[name]}" for name in FIELDS if name != "provenance")
    return (
        f"re-extracted {counts['articles']} articles: {counts['updated']} updated, "
        f"{counts['failed']} failed\nchanged per field: {fields}"
    )
