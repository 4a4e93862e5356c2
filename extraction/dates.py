"""Machine-readable dates as pages write them, turned into ISO 8601 (keeping the UTC offset)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

_OFFSET_RE = re.compile(r"([+-]\d{2})(\d{2})$")  # +0200 -> +02:00
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")  # more than microseconds
_DATE_PREFIX_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})")
# Java's Date.toString(), seen in CMS output: "Fri Apr 28 19:20:36 CEST 2023".
_JAVA_RE = re.compile(r"^[A-Za-z]{3} ([A-Za-z]{3}) (\d{1,2}) (\d{1,2}:\d{2}:\d{2}) [A-Za-z+\-0-9:]+ (\d{4})$")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
MIN_YEAR = 1900


def parse_date_iso(value: Any) -> str | None:
    """`value` as an ISO 8601 date or datetime string, or None if it is not a plausible date.

    Accepts ISO 8601 variants (Z, +0200, a space for T, long fractions), Unix timestamps in
    seconds or milliseconds (read as UTC), RFC 2822 dates and Java's Date.toString() format.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit() and len(text) in (10, 13):
        return _from_epoch(int(text) / (1000 if len(text) == 13 else 1))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):  # a day stays a day, not midnight
        try:
            return _plausible(date.fromisoformat(text))
        except ValueError:
            return None
    parsed = _iso(text) or _rfc2822(text) or _java(text)
    if parsed is None:
        match = _DATE_PREFIX_RE.match(text)
        if match:
            try:
                return _plausible(date(*map(int, match.groups())))
            except ValueError:
                return None
    return _plausible(parsed) if parsed is not None else None


def _plausible(value: date | datetime) -> str | None:
    return value.isoformat() if MIN_YEAR <= value.year <= 2200 else None


def _from_epoch(seconds: float) -> str | None:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    try:
        return _plausible(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def _iso(text: str) -> datetime | None:
    text = re.sub(r"[zZ]$", "+00:00", text)
    text = _OFFSET_RE.sub(r"\1:\2", text) if re.search(r"\d[T ]\d", text) else text
    text = _FRACTION_RE.sub(r"\1", text)
    if re.match(r"^\d{4}-\d{2}-\d{2} \d", text):
        text = text[:10] + "T" + text[11:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _rfc2822(text: str) -> datetime | None:
    if not re.search(r"[A-Za-z]{3},? \d{1,2} [A-Za-z]{3} \d{4}", text):
        return None
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def _java(text: str) -> datetime | None:
    match = _JAVA_RE.match(text)
    month = _MONTHS.get(match.group(1).lower()) if match else None
    if match is None or month is None:
        return None
    hour, minute, second = map(int, match.group(3).split(":"))
    try:
        # The zone is an abbreviation (CEST, EST) that names no offset reliably: keep local time.
        return datetime(int(match.group(4)), month, int(match.group(2)), hour, minute, second)
    except ValueError:
        return None
