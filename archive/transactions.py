"""The one way the project writes in a transaction: take SQLite's write lock first."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlite_utils import Database


@contextmanager
def immediate_transaction(db: Database) -> Iterator[None]:
    """A transaction that takes the write lock first (waiting up to the busy timeout), committed
    when the block ends and rolled back when it raises.

    sqlite-utils' atomic() begins a deferred transaction; its first statement is often a read
    (table introspection), and a read transaction cannot become a write transaction once another
    process has committed: SQLite answers "database is locked" at once, without waiting. Several
    crawl processes (and the daemon) write one archive, so every write transaction begins IMMEDIATE.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()
