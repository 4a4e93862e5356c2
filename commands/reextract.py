"""`reextract`: re-run extraction over the stored raw HTML (pipelines/reextract.py does the work)."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from config.sources import SourceConfigError, load_sources

if TYPE_CHECKING:
    from pathlib import Path


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
    # Imported here: re-extraction loads the extractor (trafilatura, numpy, the language model), which
    # every other command, `status` included, would otherwise pay for when the parser is built.
    from pipelines.reextract import reextract

    if args.source:
        check_source_known(args.db, args.source, getattr(args, "sources", None))
    counts = reextract(args.db, source=args.source, since=args.since)
    print(format_counts(counts))
    return 0  # a page that cannot be re-extracted keeps its stored fields; it is counted, not fatal


def check_source_known(db_path: Path, source: str, sources_file: Path | None) -> None:
    """Raise SourceConfigError (a usage error) unless `source` is in the sources file or the
    archive: a misspelt name would re-extract nothing and look like a success."""
    from archive.queries import source_recorded
    from archive.schema import open_db

    if sources_file is not None:
        try:
            if any(s.name == source for s in load_sources(sources_file)):
                return
        except SourceConfigError:
            pass  # a broken sources file: the archive may still know the name
    db = open_db(db_path)
    try:
        known = source_recorded(db, source)
    finally:
        db.close()
    if not known:
        where = f"{sources_file.name} or " if sources_file is not None else ""
        raise SourceConfigError(f'reextract: no source named "{source}" in {where}the archive {db_path}')


def format_counts(counts: dict[str, int]) -> str:
    from pipelines.reextract import FIELDS  # loaded already by the re-extraction that made `counts`

    fields = ", ".join(f"{name} {counts[name]}" for name in FIELDS if name != "provenance")
    return (
        f"re-extracted {counts['articles']} articles: {counts['updated']} updated, "
        f"{counts['failed']} failed\nchanged per field: {fields}"
    )
