"""Raw pages kept in WARC files (archive/warc_files.py) and referenced from `raw_page_refs`.

A raw page reaches here as a `raw_pages`-shaped row (archive/raw_html.py `raw_page_row`, plus the
response headers when the crawl has them): a crawl's new pages and the rows `move-raw` moves out of
an older archive take one path. The HTML read back is the HTML the extractor saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from w3lib.encoding import html_to_unicode

from archive.raw_html import raw_html
from archive.sqlite import sqlite3
from archive.warc_files import (
    HttpResponse,
    RecordRef,
    WarcWriter,
    file_prefix,
    read_record,
    utf8_response,
    warc_directory,
)

if TYPE_CHECKING:
    from pathlib import Path

    from sqlite_utils import Database

# What a failed WARC write says; the crawl stops on it as on a full disk (crawl/storage_errors.py).
WARC_WRITE_FAILED = "cannot write the raw pages' WARC file"


class WarcWriteError(sqlite3.OperationalError):
    """A WARC write that failed (a full disk, an unwritable folder): a storage error like a failed
    SQLite write (archive.store.StorageError), so every writer of the archive handles it the same."""


def database_path(db: Database) -> str:
    """The file an open archive lives in (its WARC folder is beside it)."""
    return str(db.execute("PRAGMA database_list").fetchone()[2])


def committed_end(db: Database, warc_file: str) -> int:
    """Where the last record the archive references in a file ends (0: none)."""
    row = db.execute(
        "SELECT max(record_offset + record_length) FROM raw_page_refs WHERE warc_file = ?", [warc_file]
    ).fetchone()
    return int(row[0] or 0)


def http_response(row: dict[str, Any]) -> HttpResponse:
    """A raw_pages-shaped row as the response record to write: a page kept as the gzip bytes it
    came in is recorded as those bytes; any other page as its HTML in UTF-8 (its Content-Type then
    says so, since the bytes of another charset are not kept)."""
    headers = [(str(name), str(value)) for name, value in row.get("headers") or ()]
    if not any(name.lower() == "content-type" for name, _ in headers) and row.get("content_type"):
        headers.append(("Content-Type", row["content_type"]))
    url = row.get("fetched_url") or row["url"]
    request = row.get("request_headers")
    request_headers = [(str(name), str(value)) for name, value in request] if request is not None else None
    if row.get("html_gzip") is not None:
        return HttpResponse(
            url, row["fetched_at"], row["http_status"], headers, row["html_gzip"], True, request_headers
        )
    response = HttpResponse(url, row["fetched_at"], row["http_status"], headers, b"", False, request_headers)
    return utf8_response(response, raw_html(row))


def ref_row(row: dict[str, Any], ref: RecordRef) -> dict[str, Any]:
    return {
        "url": row["url"],
        "warc_file": ref.warc_file,
        "record_offset": ref.offset,
        "record_length": ref.length,
        "fetched_at": row["fetched_at"],
        "http_status": row["http_status"],
        "content_type": row.get("content_type"),
        "charset": (row.get("charset") or "utf-8") if row.get("html_gzip") is not None else "utf-8",
        "size": row.get("size"),
    }


class RawPageFiles:
    """An archive's WARC files as one process writes them (opened at the first page it keeps)."""

    def __init__(self, db: Database, **writer_options: Any) -> None:
        path = database_path(db)
        self.directory = warc_directory(path)
        self.writer = WarcWriter(
            self.directory, file_prefix(path), lambda name: committed_end(db, name), **writer_options
        )

    def write(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write the pages' records and sync them to disk; returns their `raw_page_refs` rows, to be
        committed only now that the bytes they point at are on disk."""
        try:
            # A worker built the records of a page that did not come gzipped (raw_html.CompressedHtml).
            pages = (row["warc_records"] if row.get("warc_records") else http_response(row) for row in rows)
            refs = self.writer.write(pages)
            self.writer.sync()
        except OSError as exc:
            raise WarcWriteError(f"{WARC_WRITE_FAILED} in {self.directory}: {exc.strerror or exc}") from exc
        return [ref_row(row, ref) for row, ref in zip(rows, refs, strict=True)]

    def close(self) -> None:
        self.writer.close()


def save_refs(db: Database, refs: list[dict[str, Any]], *, replace: bool = True) -> None:
    """Inside the caller's transaction: the references, and no legacy copy of the same pages left
    behind (a newer fetch replaces a page still in `raw_pages`). With `replace=False` a reference
    already there wins: it is the newer page."""
    if not refs:
        return
    if replace:
        db.table("raw_page_refs").upsert_all(refs, pk="url")
    else:
        db.table("raw_page_refs").insert_all(refs, pk="url", ignore=True)
    db.conn.executemany("DELETE FROM raw_pages WHERE url = ?", [(ref["url"],) for ref in refs])


def page_html(directory: Path, row: dict[str, Any]) -> str:
    """The HTML of a stored page: read from its WARC record when `row` has one (its `raw_page_refs`
    columns), else from its legacy `raw_pages` columns. Raises ValueError if it cannot be read."""
    if row.get("warc_file") is None:
        return raw_html(row)
    record = read_record(directory, RecordRef(row["warc_file"], row["record_offset"], row["record_length"]))
    # Decoded as Scrapy's TextResponse.text did: BOM first, then the charset it settled on.
    return html_to_unicode(f"charset={row.get('charset') or 'utf-8'}", record.body)[1]
