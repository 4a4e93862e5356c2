"""Triggers that keep a summary table adding up rows of another (the per-day and per-author counts)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database


def counting_triggers(db: Database, *, table: str, summary: str, key: dict[str, str], adds: dict[str, str]) -> None:
    """Insert, delete and update triggers that keep `summary` (one row per `key`) adding up `adds`.

    `key` and `adds` map the summary's columns to expressions over a row written as `{row}`; the
    update trigger fires only when a column an expression reads changes.
    """
    columns = [*key, *adds]
    watched = sorted({name for expr in (*key.values(), *adds.values()) for name in row_columns(expr)})

    def add(row: str) -> str:
        values = ", ".join(expr.format(row=row) for expr in (*key.values(), *adds.values()))
        updates = ", ".join(f"{column} = {column} + excluded.{column}" for column in adds)
        return (
            f"INSERT INTO {summary} ({', '.join(columns)}) VALUES ({values})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates};"
        )

    def subtract(row: str) -> str:
        match = " AND ".join(f"{column} = {expr.format(row=row)}" for column, expr in key.items())
        updates = ", ".join(f"{column} = {column} - {expr.format(row=row)}" for column, expr in adds.items())
        first = next(iter(adds))
        return f"UPDATE {summary} SET {updates} WHERE {match}; DELETE FROM {summary} WHERE {match} AND {first} <= 0;"

    for suffix, event, body in (
        ("ai", "INSERT", add("new")),
        ("ad", "DELETE", subtract("old")),
        ("au", f"UPDATE OF {', '.join(watched)}", subtract("old") + "\n" + add("new")),
    ):
        db.execute(f"DROP TRIGGER IF EXISTS {summary}_{suffix}")
        db.execute(f"CREATE TRIGGER {summary}_{suffix} AFTER {event} ON {table} BEGIN\n{body}\nEND")


def row_columns(expr: str) -> set[str]:
    return set(re.findall(r"\{row\}\.(\w+)", expr))
