"""The archive's side of re-extraction (pipelines/reextract.py): stored pages read in batches, and
the changed fields written back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archive.near_duplicates import NearDuplicateIndex, signature

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlite_utils import Database


def stored_pages(
    db: Database, columns: Iterable[str], *, after: str, source: str | None, since: str | None, limit: int
) -> list[dict[str, Any]]:
    """The next articles with stored HTML, by URL (keyset paging: writes never shift the window):
    their `columns` and where their page is (`raw_page_refs`, or a `raw_pages` row not moved yet),
    for archive.raw_pages.page_html."""
    where = ["a.url > ?", "(f.url IS NOT NULL OR r.url IS NOT NULL)"]
    params: list[Any] = [after]
    if source:
        where.append("a.source = ?")
        params.append(source)
    if since:
        where.append("a.fetched_at >= ?")
        params.append(since)
    selected = ", ".join(f"a.{name}" for name in columns)
    sql = (
        f"SELECT a.url, {selected}, f.warc_file, f.record_offset, f.record_length,"
        " coalesce(f.charset, r.charset) AS charset, r.html_gzip, r.html_zstd, r.html_zlib"
        " FROM articles a LEFT JOIN raw_page_refs f ON f.url = a.url LEFT JOIN raw_pages r ON r.url = a.url"
        f" WHERE {' AND '.join(where)} ORDER BY a.url LIMIT ?"
    )
    cursor = db.execute(sql, [*params, limit])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def update_articles(db: Database, updates: list[tuple[str, dict[str, Any]]]) -> None:
    """Write each article's changed fields, in one transaction; a changed body gets a new
    near-duplicate signature (the cluster stays as it was)."""
    if not updates:
        return
    with db.atomic():
        for url, changed in updates:
            db.table("articles").update(url, changed)
            if "text" in changed:
                NearDuplicateIndex(db).replace(url, signature(changed["text"]) if changed["text"] else None)
