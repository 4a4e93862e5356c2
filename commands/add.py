"""`add`: probe a site's URL and append a [[source]] table for it to the sources file."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commands.errors import EXIT_FAILED, EXIT_OK, UsageError
from config.durations import format_duration
from config.redaction import redact_credentials
from config.sources import NAME_RE, adhoc_source, find_source, load_sources

if TYPE_CHECKING:
    import argparse


def cmd_add(args: argparse.Namespace) -> int:
    from spiders.probe import probe

    url = args.url.strip()
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise UsageError(f"add: expected an http(s) URL, got {args.url!r}")
    adhoc = adhoc_source(url)  # an http(s) URL with a host, or SourceConfigError (exit EXIT_USAGE)
    text = args.sources.read_text(encoding="utf-8") if args.sources.exists() else ""
    existing = load_sources(args.sources) if text.strip() else []
    name = args.name or adhoc.name.removeprefix("adhoc_")
    refuse_taken(existing, name, [url], args.sources)

    defaults = file_defaults(text)
    # A file whose [defaults] allow private addresses (a LAN's sites) lets the probe reach them too.
    allow_private = args.allow_private or defaults.get("allow_private") is True
    found = probe(url, allow_private=allow_private)
    print(describe_probe(found))
    if found.kind is None:
        hint = "; give --allow-private" if not allow_private and "allow_private" in str(found.problems) else ""
        print(f"error: add: could not read {redact_credentials(url)}: nothing added{hint}", file=sys.stderr)
        return EXIT_FAILED
    refuse_taken(existing, name, found.seeds, args.sources)
    # No schedule of its own when the file's [defaults] give one and --every does not.
    every = args.every or (None if defaults.keys() & {"every", "cron"} else timedelta(hours=1))
    own_allow_private = allow_private and defaults.get("allow_private") is not True
    block = source_table(name, url, found, every=every, allow_private=own_allow_private)
    append_source(args.sources, text, block, name)
    print(f'added source "{name}" to {args.sources}; a running daemon reads it on SIGHUP (kill -HUP <pid>)')
    return EXIT_OK


def refuse_taken(existing: list[Any], name: str, urls: list[str], sources_file: Path) -> None:
    """A name or URL another source has already: one line, nothing written."""
    if not NAME_RE.match(name):
        raise UsageError(f'add: --name: expected a lowercase slug like "guardian_world", got {name!r}')
    for source in existing:
        if source.name == name:
            raise UsageError(f'add: {sources_file} has a source named "{name}" already (choose another --name)')
        for url in urls:
            if url in source.seed_urls:
                shown = redact_credentials(url)
                raise UsageError(f'add: source "{source.name}" in {sources_file} reads {shown} already')


def describe_probe(found: Any) -> str:
    lines = [f"{redact_credentials(found.url)}: {found.kind or 'not fetched'}"]
    for kind, items in (("feed", found.feeds), ("sitemap", found.sitemaps)):
        for item in items:
            what = f"{item.articles} articles" if item.articles or not item.sitemaps else ""
            if item.sitemaps:
                what = ", ".join(filter(None, [what, f"index of {item.sitemaps} sitemaps"]))
            lines.append(f"  {kind:8} {redact_credentials(item.url)} ({what})")
    if found.kind == "html" and not found.seeds:
        lines.append("  no feeds or sitemaps announced: the page is added as a start page")
    lines += [f"  problem: {redact_credentials(problem)}" for problem in found.problems]
    return "\n".join(lines)


def file_defaults(text: str) -> dict[str, Any]:
    """The sources file's [defaults] table as written (the file was checked by load_sources)."""
    import tomllib

    defaults = tomllib.loads(text).get("defaults", {}) if text.strip() else {}
    return defaults if isinstance(defaults, dict) else {}


def source_table(name: str, url: str, found: Any, *, every: timedelta | None, allow_private: bool) -> str:
    """The [[source]] table for what the probe found, as TOML text with a comment saying whence."""
    import json

    def strings(values: list[str]) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"  # JSON strings are TOML strings

    today = datetime.now(UTC).date().isoformat()
    kind = {"feed": "a feed", "sitemap": "a sitemap"}.get(found.kind, "an HTML page")
    lines = [  # the URL has no line break in it (cmd_add refuses any whitespace)
        f"# Added on {today} by `scheduler.py add {redact_credentials(url)}` ({kind})",
        "[[source]]",
        f"name = {json.dumps(name)}",
    ]
    if found.feeds:
        lines.append(f"feeds = {strings([f.url for f in found.feeds])}")
    if found.sitemaps:
        lines.append(f"sitemaps = {strings([s.url for s in found.sitemaps])}")
    if not found.seeds:
        lines.append(f"start_pages = {strings([url])}")
    elif found.kind == "html":
        lines.append(f"# start_pages = {strings([url])}  # also follow the page's own links")
    if every is not None:
        lines.append(f'every = "{format_duration(every)}"')
    if allow_private:
        lines.append("allow_private = true")
    return "\n".join(lines) + "\n"


def append_source(path: Path, text: str, block: str, name: str) -> None:
    """Append `block` to the file's text, check the whole with the loader the daemon uses, and
    replace the file in one rename: the daemon never reads half an edit, nor a broken one."""
    import tempfile

    new_text = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text.strip() else "") + block
    handle, staged = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".adding", dir=path.parent)
    try:
        with open(handle, "w", encoding="utf-8") as out:
            out.write(new_text)
        find_source(load_sources(staged), name, path)
        if path.exists():
            Path(staged).chmod(path.stat().st_mode & 0o7777)
        Path(staged).replace(path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
