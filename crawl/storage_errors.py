"""Which storage errors stop a crawl: after a full disk, a read-only or a corrupt database no
write can succeed, so the crawl stops with one clear line instead of a traceback per page."""

from __future__ import annotations

from archive.raw_pages import WARC_WRITE_FAILED

# SQLite errors after which no write can succeed, by their error name (Python 3.11+) ...
FATAL_SQLITE_ERRORS = (
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_PERM",
)
# ... and by their message, which is all StorePipeline passes on when a batch cannot be written.
FATAL_STORAGE_MESSAGES = (
    "database or disk is full",
    "readonly database",
    "disk I/O error",
    "unable to open database file",
    "database disk image is malformed",
    "file is not a database",
    WARC_WRITE_FAILED,
)


class ArchiveUnwritable(RuntimeError):
    """The archive database cannot be written, so a crawl does not start; the message is one line
    naming the file and why. (archive.store.StorageError is the failed write itself.)"""


def is_fatal_storage_error(error: BaseException | str) -> bool:
    """True for an error after which the archive cannot be written at all (disk full, read-only)."""
    if isinstance(error, OSError):
        return True
    name = getattr(error, "sqlite_errorname", "") or ""
    return name.startswith(FATAL_SQLITE_ERRORS) or any(m in str(error) for m in FATAL_STORAGE_MESSAGES)
