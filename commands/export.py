"""`export` and `search`: the stored articles for their readers, from a read-only archive."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commands.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from config.sources import SourceConfigError, load_sources

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator
    from typing import TextIO

    from archive.queries import Database


def read_only_archive(db_path: Path) -> Database:
    """The archive for a command that only reads; no database is a one-line error."""
    from archive.queries import NoDatabase, open_read_only

    try:
        return open_read_only(db_path)
    except NoDatabase as exc:
        raise ReadError(f"{exc}: nothing has been crawled into it yet") from None


class ReadError(Exception):
    """A read command that has nothing to read: one line on stderr, exit status EXIT_FAILED."""


def read_command(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the expected failures of a read command into one line each: no database (EXIT_FAILED),
    a search query SQLite cannot parse (EXIT_USAGE)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from archive.queries import BadSearch

        try:
            return handler(args)
        except ReadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except BadSearch as exc:
            print(f"error: {args.command}: {exc} (without --raw-query, words are searched as typed)", file=sys.stderr)
            return EXIT_USAGE

    return run


def check_source_known(db: Database, name: str | None, sources_file: Path) -> None:
    """--source of a read command: a source the archive or the sources file knows, or an error
    (a typo would otherwise look like a source with nothing stored)."""
    from archive.queries import source_known

    if name is None or source_known(db, name):
        return
    try:
        configured = {s.name for s in load_sources(sources_file)}
    except SourceConfigError:
        configured = set()
    if name not in configured:
        raise UsageError(f'--source: no source named "{name}" in the archive or in {sources_file}')


@read_command
def cmd_export(args: argparse.Namespace) -> int:
    from archive.queries import export_articles

    db = read_only_archive(args.db)
    try:
        check_source_known(db, args.source, args.sources)
        rows = export_articles(db, source=args.source, since=args.since, query=args.query, raw_query=args.raw_query)
        if args.output is None:
            count = write_export(rows, sys.stdout, args.format)
            sys.stdout.flush()
        else:
            count = export_to_file(rows, args.output, args.format)
    finally:
        db.close()
    where = args.output or "stdout"
    print(f"exported {count} article{'' if count == 1 else 's'} to {where}", file=sys.stderr)
    return EXIT_OK


def export_to_file(rows: Iterator[dict[str, Any]], path: Path, fmt: str) -> int:
    """Write beside `path`, then rename: a failed export never leaves half a file under its name."""
    import tempfile

    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with open(handle, "w", encoding="utf-8", newline="") as out:
            count = write_export(rows, out, fmt)
        Path(partial).chmod(0o666 & ~current_umask())  # mkstemp's 0600 is for the file in the making
        Path(partial).replace(path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return count


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_export(rows: Iterator[dict[str, Any]], out: TextIO, fmt: str) -> int:
    """Write rows as they come (JSON Lines, or CSV with a header row); returns how many."""
    import csv
    import json

    from archive.queries import decode_json_columns

    count = 0
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        if fmt == "jsonl":
            out.write(json.dumps(decode_json_columns(row), ensure_ascii=False) + "\n")
        else:
            if writer is None:  # the header once the first row is in: a query error writes nothing
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        count += 1
    return count


@read_command
def cmd_search(args: argparse.Namespace) -> int:
    from archive.queries import search_articles

    db = read_only_archive(args.db)
    try:
        check_source_known(db, args.source, args.sources)
        color = sys.stdout.isatty()
        hits = search_articles(
            db,
            args.query,
            source=args.source,
            limit=args.limit,
            newest_first=args.newest,
            raw_query=args.raw_query,
            marks=("\x1b[1m", "\x1b[0m") if color else ("[", "]"),
        )
    finally:
        db.close()
    if not hits:
        print(f"no articles match {args.query!r}", file=sys.stderr)
    for number, hit in enumerate(hits, 1):
        when = (hit.published_at or hit.first_seen_at or "")[:10]
        print(f"{number:>3}. {hit.title or '(no title)'}  ({hit.source}, {when or 'undated'})")
        print(f"     {hit.url}")
        print(f"     {' '.join(hit.snippet.split())}")
    return EXIT_OK
