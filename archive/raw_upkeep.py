"""Keeping the raw pages' WARC files: moving an older archive's `raw_pages` rows out into them
(`scheduler.py move-raw`), and deleting the files older than the retention (`scheduler.py prune-raw`)."""

from __future__ import annotations

import fcntl
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from archive.raw_html import raw_html
from archive.raw_pages import RawPageFiles, committed_end, database_path, save_refs
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


def prune_raw_pages(db: Database, keep: timedelta | None, *, now: datetime | None = None) -> dict[str, int]:
    """Delete the WARC files whose day ended more than `keep` ago (None: keep them all), and their
    references; cut every other finished file back to its last referenced record.

    References go first, in a transaction, then the file: nothing ever points at a deleted file. A
    file some process holds (it is writing it) is left alone; any other has all its references
    committed, so what follows the last one was left by a process killed before its commit (a torn
    record among it), and is cut off, as the next writer of the file would."""
    now = now or datetime.now(UTC)
    path = database_path(db)
    directory = warc_directory(path)
    counts = {"files": 0, "pages": 0, "bytes": 0, "cut": 0}
    if not directory.is_dir():
        return counts
    pattern = re.compile(rf"^{re.escape(file_prefix(path))}-(\d{{8}})-\d+\.warc\.gz$")
    today = now.strftime("%Y%m%d")
    for file_path in sorted(directory.iterdir()):
        match = pattern.match(file_path.name)
        if not match:
            continue
        day_end = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1)
        with open(file_path, "r+b") as file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("WARC file %s is being written: left for the next prune", file_path.name)
                continue
            if keep is not None and day_end <= now - keep:
                pages, size = _delete_file(db, file_path)
                counts["files"] += 1
                counts["pages"] += pages
                counts["bytes"] += size
            else:
                counts["cut"] += _cut_back(db, file, file_path, unlink_empty=match[1] != today)
    return counts


def _delete_file(db: Database, path: Path) -> tuple[int, int]:
    """Delete a file (locked by the caller) and its references: (references, bytes)."""
    size = path.stat().st_size
    with immediate_transaction(db):
        pages = db.execute("DELETE FROM raw_page_refs WHERE warc_file = ?", [path.name]).rowcount
    path.unlink()
    logger.info("pruned %s: %d raw pages, %d bytes", path.name, pages, size)
    return pages, size


def _cut_back(db: Database, file: BinaryIO, path: Path, *, unlink_empty: bool) -> int:
    """Bytes cut from a file (locked by the caller) after its last referenced record. A file of an
    earlier day with no reference left goes (no writer opens it again); today's stays for one."""
    end = committed_end(db, path.name)
    size = path.stat().st_size
    if end == 0 and unlink_empty:
        path.unlink()
        logger.info("removed %s: no raw page refers to it", path.name)
        return size
    if size > end:
        file.truncate(end)
        file.flush()
        os.fsync(file.fileno())
        logger.info("cut %s back to its last referenced record: %d bytes after it", path.name, size - end)
    return max(0, size - end)
