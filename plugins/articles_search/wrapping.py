"""Wrapping Datasette's Database.execute, once per kind of wrapper.

Datasette has no hook for the SQL of a table page's count or of a canned query, so the plugin
replaces Database.execute with a function that handles the queries it recognises and hands every
other query to the one it wrapped. Each kind is installed once however often Datasette starts in
a process (the tests start many), and each keeps the marks of the wrappers under it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    Execute = Callable[..., Awaitable[Any]]


def wrap_database_execute(mark: str, wrap: Callable[[Execute], Execute]) -> None:
    """Replace Database.execute with `wrap(the current one)`, unless a wrapper marked `mark` is there."""
    from datasette.database import Database

    original = Database.execute
    if getattr(original, mark, False):
        return
    execute = functools.update_wrapper(wrap(original), original)  # keeps the marks of those below
    setattr(execute, mark, True)
    Database.execute = execute
