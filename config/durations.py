"""Durations as people write them in the sources file and on the command line: "90s", "15m",
"1h30m", "2d", "1w"; parsed into a timedelta and formatted back the same way."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

DURATION_RE = re.compile(r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_duration(value: Any, *, allow_zero: bool = False) -> timedelta:
    """Parse "90s", "15m", "1h30m", "2d" or "1w" into a timedelta."""
    if not isinstance(value, str) or not (match := DURATION_RE.match(value)) or not any(match.groups()):
        raise ValueError(f'expected a duration like "30m", got {value!r}')
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    duration = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration < timedelta(0) or (duration == timedelta(0) and not allow_zero):
        raise ValueError(f"expected a positive duration, got {value!r}")
    return duration
