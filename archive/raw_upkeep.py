"""Keeping the raw pages' WARC files: moving an older archive's `raw_pages` rows out into them
(`scheduler.py move-raw`), and deleting the files older than the retention (`scheduler.py prune-raw`)."""

from __future__ import annotations

import fcntl
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from archive.raw_html import raw_html
from archive.raw_pages import RawPageFiles, database_path, save_refs
from archive.transactions import immediate_transaction
from archive.warc_files import file_prefix, warc_directory

if TYPE_CHECKING:
    from pathlib import Path

    from sqlite_utils import Database

logger = logging.getLogger(__name__)

MOVE_BATCH = 500  # pages written, synced and committed together


def legacy_pages_left(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM raw_pages").fetchone()[0])


def move_raw_pages(db: Database, *, batch_size: int = MOVE_BATCH, **writer_options: Any) -> dict[str, int]:
    """Move every `raw_pages` row into the WARC files, a batch at a time: the batch's records are
    written and synced, then one transaction adds their references and deletes the rows. Killed at
    any moment, a run leaves each page either still a row or a committed reference; the next run
    carries on (and the unreferenced records a killed run left at a file's end are cut off).

    A row whose stored bytes are damaged stays where it is, counted in "damaged"."""
    counts = {"moved": 0, "damaged": 0}
    files = RawPageFiles(db, **writer_options)
    after = ""
    try:
        while True:
            rows = [
                dict(row)
                for row in db.table("raw_pages").rows_where("url > ?", [after], order_by="url", limit=batch_size)
            ]
            if not rows:
                break
            after = rows[-1]["url"]
            readable = []
            for row in rows:
                try:
                    raw_html(row)
                except (ValueError, UnicodeDecodeError) as exc:
                    counts["damaged"] += 1
                    logger.warning("raw page %s left in raw_pages: %s", row["url"], exc)
                else:
                    readable.append(row)
            refs = files.write(readable)
            with immediate_transaction(db):
                save_refs(db, refs, replace=False)  # a reference already there is a newer fetch
            counts["moved"] += len(refs)
            logger.info("moved %d raw pages to WARC files so far", counts["moved"])
    finally:
        files.close()
    return counts


def prune_raw_pages(db: Database, keep: timedelta, *, now: datetime | None = None) -> dict[str, int]:
    """Delete the WARC files whose day ended more than `keep` ago, and their references.

    References go first, in a transaction, then the file: nothing ever points at a deleted file.
    A file some process still holds (it is writing it) is left alone."""
    now = now or datetime.now(UTC)
    path = database_path(db)
    directory = warc_directory(path)
    counts = {"files": 0, "pages": 0, "bytes": 0}
    if not directory.is_dir():
        return counts
    pattern = re.compile(rf"^{re.escape(file_prefix(path))}-(\d{{8}})-\d+\.warc\.gz$")
    for file_path in sorted(directory.iterdir()):
        match = pattern.match(file_path.name)
        if not match:
            continue
        day_end = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1)
        if day_end > now - keep:
            continue
        pages = _delete_file(db, directory, file_path.name)
        if pages is not None:
            counts["files"] += 1
            counts["pages"] += pages[0]
            counts["bytes"] += pages[1]
    return counts


def _delete_file(db: Database, directory: Path, name: str) -> tuple[int, int] | None:
    """(references deleted, bytes freed), or None if a live process holds the file."""
    with open(directory / name, "rb") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("WARC file %s is being written: left for the next prune", name)
            return None
        size = (directory / name).stat().st_size
        with immediate_transaction(db):
            pages = db.execute("DELETE FROM raw_page_refs WHERE warc_file = ?", [name]).rowcount
        (directory / name).unlink()
    logger.info("pruned %s: %d raw pages, %d bytes", name, pages, size)
    return pages, size
