"""`move-raw` and `prune-raw`: the raw pages' WARC files beside the archive (archive/raw_upkeep.py)."""

from __future__ import annotations

import argparse
from typing import Any

from commands.errors import EXIT_OK
from config.durations import format_duration
from config.retention import parse_keep_raw
from config.sources import load_keep_raw


def keep_raw(text: str) -> str:
    """An argparse type: "forever" or a duration, checked here and parsed by cmd_prune_raw."""
    try:
        parse_keep_raw(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_raw_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    move = commands.add_parser(
        "move-raw",
        parents=[common],
        help="move the raw pages of an older archive out of the database into WARC files",
        description="Move the raw pages an older version kept inside the database (the raw_pages table) "
        "into the WARC files beside it (warc/ next to the database), in batches: each batch is written "
        "and synced to disk, then referenced and deleted from the database in one transaction. Safe to "
        "stop at any moment and run again. The database file keeps its size until you run VACUUM.",
    )
    move.add_argument("--batch", type=int, default=500, metavar="N", help="pages per batch (default: %(default)s)")
    move.set_defaults(handler=cmd_move_raw)

    prune = commands.add_parser(
        "prune-raw",
        parents=[common],
        help="delete the raw pages' WARC files older than the retention",
        description="Delete the WARC files of raw pages whose day ended longer ago than keep_raw (the "
        'sources file\'s [defaults]; "forever" unless set, which deletes none), and their references: '
        "those articles can no longer be re-extracted; the articles themselves stay. Files no process is "
        "writing are also cut back to their last referenced record (what a killed crawl wrote after it).",
    )
    prune.add_argument(
        "--keep",
        type=keep_raw,
        metavar="DURATION",
        help='keep this long instead of keep_raw ("180d", "26w", or "forever")',
    )
    prune.set_defaults(handler=cmd_prune_raw)


def cmd_move_raw(args: argparse.Namespace) -> int:
    from archive.raw_upkeep import legacy_pages_left, move_raw_pages
    from archive.schema import open_db

    db = open_db(args.db)
    try:
        counts = move_raw_pages(db, batch_size=max(1, args.batch))
        left = legacy_pages_left(db)
    finally:
        db.close()
    print(f"moved {counts['moved']} raw pages to WARC files; {left} left in the database ({counts['damaged']} damaged)")
    if counts["moved"]:
        print(f"the database file keeps its size until: sqlite3 {args.db} VACUUM")
    return EXIT_OK


def cmd_prune_raw(args: argparse.Namespace) -> int:
    from archive.raw_upkeep import prune_raw_pages
    from archive.schema import open_db

    keep = parse_keep_raw(args.keep) if args.keep else load_keep_raw(args.sources)
    db = open_db(args.db)
    try:
        counts = prune_raw_pages(db, keep)
    finally:
        db.close()
    older = f"older than {format_duration(keep)}" if keep is not None else 'older than keep_raw ("forever")'
    print(
        f"pruned {counts['files']} WARC files {older}: {counts['pages']} raw pages, {counts['bytes']} bytes; "
        f"{counts['cut']} bytes no page refers to cut from the others"
    )
    return EXIT_OK
