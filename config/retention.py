"""How long raw pages are kept: `keep_raw` in the sources file's [defaults], "forever" or a duration
like "180d" (config/durations.py). `scheduler.py prune-raw` deletes what is older."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config.durations import parse_duration

if TYPE_CHECKING:
    from datetime import timedelta

FOREVER = "forever"


def parse_keep_raw(value: Any) -> timedelta | None:
    """ "forever" (None: nothing is pruned) or a positive duration."""
    if isinstance(value, str) and value.strip().lower() == FOREVER:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f'expected "forever" or a duration like "180d", got {value!r}') from None
