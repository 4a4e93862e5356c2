"""The sources file: load `sources.toml`, validate it, and hand out `Source` objects.

Every mistake is reported as one line naming the file, the source and the field, e.g.::

    sources.toml: source "bbc_world": field "every": expected a duration like "30m", got 30
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from apscheduler.triggers.cron import CronTrigger

from config.durations import format_duration, parse_duration
from config.redaction import redact_credentials
from config.retention import parse_keep_raw

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
DOMAIN_RE = re.compile(r"^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


class SourceConfigError(ValueError):
    """A mistake in the sources file; the message is one line naming file, source and field."""


@dataclass(frozen=True)
class Source:
    """One site to crawl, as configured in the sources file."""

    name: str
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    start_pages: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    article_allow: tuple[str, ...] = ()  # regexes; when set, an article URL must match one
    article_deny: tuple[str, ...] = ()  # regexes; a matching URL is never an article
    every: timedelta | None = None  # interval schedule ...
    cron: str | None = None  # ... or a crontab expression
    jitter: timedelta = timedelta(seconds=30)
    timeout: timedelta = timedelta(hours=1)  # hard limit for one crawl of this source
    enabled: bool = True
    follow_depth: int = 1  # how many listing-page hops to follow from a start page
    max_age: timedelta | None = None  # skip feed/sitemap entries older than this
    max_articles: int | None = None  # stop after this many article pages per run
    discover_feeds: bool = True  # follow <link rel="alternate"> feeds announced by start pages
    robots_sitemaps: bool = False  # also read the sitemaps listed in robots.txt
    allow_private: bool = False  # allow private/loopback addresses (the demo and tests)
    delay: timedelta | None = None  # minimum delay between requests to one domain (DOWNLOAD_DELAY)
    min_every: timedelta | None = None  # with max_every: poll adaptively within these bounds
    max_every: timedelta | None = None
    on_alarm: tuple[str, ...] = ()  # a command (argv) run with each health verdict change as JSON on stdin

    @property
    def schedule(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {format_duration(self.every)}"

    @property
    def seed_urls(self) -> tuple[str, ...]:
        return self.feeds + self.sitemaps + self.start_pages

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view, stored in the `sources` table."""
        return {
            "name": self.name,
            "enabled": self.enabled,
            "schedule": self.schedule,
            "feeds": [redact_credentials(u) for u in self.feeds],
            "sitemaps": [redact_credentials(u) for u in self.sitemaps],
            "start_pages": [redact_credentials(u) for u in self.start_pages],
            "allowed_domains": list(self.allowed_domains),
        }


# Field name -> (parser, human description of what is expected)
LIST_OF_URLS = "a list of http(s) URLs"
LIST_OF_DOMAINS = 'a list of domain names like "example.com"'
LIST_OF_REGEXES = "a list of regular expressions"


def _urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected {LIST_OF_URLS}, got {value!r}")
    for url in value:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected {LIST_OF_URLS}, got {url!r}")
    return tuple(value)


def _domains(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected {LIST_OF_DOMAINS}, got {value!r}")
    for domain in value:
        if not DOMAIN_RE.match(domain):
            raise ValueError(f"expected {LIST_OF_DOMAINS}, got {domain!r}")
    return tuple(d.lower().lstrip(".") for d in value)


def _regexes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected {LIST_OF_REGEXES}, got {value!r}")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return tuple(value)


def _command(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f'expected a command as a list of strings like ["notify-send", "news"], got {value!r}')
    return tuple(value)


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'expected a crontab expression like "*/15 * * * *", got {value!r}')
    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(f"invalid crontab expression {value!r}: {exc}") from None
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _count(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
    return value


PARSERS: dict[str, Any] = {
    "feeds": _urls,
    "sitemaps": _urls,
    "start_pages": _urls,
    "allowed_domains": _domains,
    "article_allow": _regexes,
    "article_deny": _regexes,
    "every": parse_duration,
    "cron": _cron,
    "jitter": lambda v: parse_duration(v, allow_zero=True),
    "timeout": parse_duration,
    "enabled": _bool,
    "follow_depth": lambda v: _count(v, 0),
    "max_age": parse_duration,
    "max_articles": lambda v: _count(v, 1),
    "discover_feeds": _bool,
    "robots_sitemaps": _bool,
    "allow_private": _bool,
    "delay": lambda v: parse_duration(v, allow_zero=True),
    "min_every": parse_duration,
    "max_every": parse_duration,
    "on_alarm": _command,
}
# Settings of the whole archive, allowed in [defaults] only (not per source).
ARCHIVE_SETTINGS: dict[str, Any] = {"keep_raw": parse_keep_raw}
KNOWN_FIELDS = {f.name for f in fields(Source)}
assert set(PARSERS) | {"name"} == KNOWN_FIELDS, "every Source field needs a parser"


def _parse_fields(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate and convert the keys of one table; `where` prefixes every error."""
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in PARSERS:
            raise SourceConfigError(f'{where}: field "{key}": unknown field (known: {", ".join(sorted(PARSERS))})')
        try:
            parsed[key] = PARSERS[key](value)
        except ValueError as exc:  # the message may quote a URL: never its password
            raise SourceConfigError(f'{where}: field "{key}": {redact_credentials(str(exc))}') from None
    return parsed


def _check_adaptive(values: dict[str, Any], where: str) -> None:
    low, high = values.get("min_every"), values.get("max_every")
    if low is None and high is None:
        return
    if low is None or high is None:
        missing = "min_every" if low is None else "max_every"
        raise SourceConfigError(f'{where}: field "{missing}": adaptive polling needs both min_every and max_every')
    if low > high:
        raise SourceConfigError(f'{where}: field "min_every": {format_duration(low)} is longer than max_every')
    if values.get("cron"):
        raise SourceConfigError(f'{where}: field "min_every": adaptive polling works with "every", not "cron"')


def _domains_of(urls: tuple[str, ...]) -> tuple[str, ...]:
    hosts = (urlsplit(u).hostname or "" for u in urls)
    return tuple(dict.fromkeys(h.removeprefix("www.") for h in hosts if h))


def build_source(raw: dict[str, Any], defaults: dict[str, Any], where: str) -> Source:
    """Turn one `[[source]]` table (plus parsed defaults) into a Source."""
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SourceConfigError(f'{where}: field "name": expected a lowercase slug like "guardian_world", got {name!r}')
    where = f'{where.split(":")[0]}: source "{name}"'
    values = {**defaults, **_parse_fields({k: v for k, v in raw.items() if k != "name"}, where)}
    if "cron" in raw and "every" in raw:
        raise SourceConfigError(f'{where}: field "cron": give either "every" or "cron", not both')
    if "cron" in raw:
        values.pop("every", None)
    elif "every" in raw:
        values.pop("cron", None)
    if not values.get("every") and not values.get("cron"):
        raise SourceConfigError(f'{where}: field "every": no schedule; set "every" (like "30m") or "cron"')
    _check_adaptive(values, where)
    seeds = values.get("feeds", ()) + values.get("sitemaps", ()) + values.get("start_pages", ())
    if not seeds:
        raise SourceConfigError(f'{where}: field "feeds": a source needs at least one feed, sitemap or start page')
    if not values.get("allowed_domains"):
        values["allowed_domains"] = _domains_of(seeds)
    return Source(name=name, **values)


def load_sources(path: str | Path) -> list[Source]:
    """Read and validate a sources file. Raises SourceConfigError with a one-line message."""
    path = Path(path)
    label = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceConfigError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SourceConfigError(f"{label}: invalid TOML: {exc}") from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise SourceConfigError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    unknown = set(data) - {"defaults", "source"}
    if unknown:
        raise SourceConfigError(
            f'{label}: unknown top-level table "{sorted(unknown)[0]}" (use [defaults] and [[source]])'
        )
    raw_defaults = data.get("defaults", {})
    if not isinstance(raw_defaults, dict):
        raise SourceConfigError(f"{label}: [defaults] must be a table")
    archive_wide = {k: raw_defaults.pop(k) for k in list(raw_defaults) if k in ARCHIVE_SETTINGS}
    _parse_archive_settings(archive_wide, f"{label}: [defaults]")
    defaults = _parse_fields(raw_defaults, f"{label}: [defaults]")
    raw_sources = data.get("source", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise SourceConfigError(f"{label}: no sources; add at least one [[source]] table")
    sources: list[Source] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_sources, 1):
        if not isinstance(raw, dict):  # e.g. `source = ["bbc"]` instead of a [[source]] table
            raise SourceConfigError(
                f"{label}: source #{index}: expected a [[source]] table, got {type(raw).__name__} {raw!r}"
            )
        source = build_source(raw, defaults, f"{label}: source #{index}")
        if source.name in seen:
            raise SourceConfigError(f'{label}: source "{source.name}": field "name": duplicate source name')
        seen.add(source.name)
        sources.append(source)
    return sources


def _parse_archive_settings(raw: dict[str, Any], where: str) -> dict[str, Any]:
    parsed = {}
    for key, value in raw.items():
        try:
            parsed[key] = ARCHIVE_SETTINGS[key](value)
        except ValueError as exc:
            raise SourceConfigError(f'{where}: field "{key}": {exc}') from None
    return parsed


def load_keep_raw(path: str | Path) -> timedelta | None:
    """The raw pages' retention from the sources file's [defaults] (None: "forever", the default).
    Raises SourceConfigError as load_sources does."""
    load_sources(path)  # the same checks as every command that reads the file
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    settings = _parse_archive_settings(
        {k: v for k, v in data.get("defaults", {}).items() if k in ARCHIVE_SETTINGS}, f"{Path(path).name}: [defaults]"
    )
    return settings.get("keep_raw")


def find_source(sources: list[Source], name: str, path: str | Path) -> Source:
    for source in sources:
        if source.name == name:
            return source
    known = ", ".join(s.name for s in sources)
    raise SourceConfigError(f'{Path(path).name}: no source named "{name}" (known: {known})')


def adhoc_source(url: str, *, allow_private: bool = False, max_articles: int | None = None) -> Source:
    """A throw-away source for `crawl --url`: the kind of URL is detected when it is fetched."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceConfigError(f"--url: expected an http(s) URL, got {url!r}")
    host = parts.hostname.removeprefix("www.")
    slug = re.sub(r"[^a-z0-9]+", "_", host.lower()).strip("_")[:50] or "adhoc"
    return Source(
        name=f"adhoc_{slug}",
        start_pages=(url,),
        allowed_domains=(host,),
        every=timedelta(hours=1),
        robots_sitemaps=True,
        allow_private=allow_private,
        max_articles=max_articles,
    )
