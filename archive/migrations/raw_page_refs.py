"""Raw pages out of the archive file (#25): each article's fetched page is a record in a WARC file
beside the archive (archive/warc_files.py), and ``raw_page_refs`` says where.

``raw_pages`` stays for the pages stored before: `scheduler.py move-raw` moves them out in batches
(it can take long on a big archive, so it is a command, not this migration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations

if TYPE_CHECKING:
    from sqlite_utils import Database


@migrations()
def raw_pages_in_warc_files(db: Database) -> None:
    db.table("raw_page_refs").create(
        {
            "url": str,
            "warc_file": str,  # the file's name in the warc folder beside the archive
            "record_offset": int,  # where its gzip member starts
            "record_length": int,  # bytes of its member and of its request record's after it
            "fetched_at": str,
            "http_status": int,
            "content_type": str,
            "charset": str,  # the encoding the crawl decoded the page with
            "size": int,
        },
        pk="url",
        foreign_keys=[("url", "articles", "url")],
        if_not_exists=True,
    )
    # Pruning and taking a file up again look a file's references up.
    db.table("raw_page_refs").create_index(["warc_file", "record_offset"], if_not_exists=True)
