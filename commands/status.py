"""`status` (is the daemon alive; each source's last and next run) and `list` (the sources file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from commands.errors import EXIT_NOT_RUNNING, EXIT_OK
from config.durations import format_duration
from config.sources import SourceConfigError, load_sources

if TYPE_CHECKING:
    import argparse

    from archive.queries import Database


def cmd_status(args: argparse.Namespace) -> int:
    from archive.queries import open_read_only
    from daemon.status import daemon_state

    if args.json:
        return cmd_status_json(args)
    if not args.db.exists():
        print(f"no database at {args.db}: nothing has run yet")
        return EXIT_NOT_RUNNING
    db = open_read_only(args.db)
    now = datetime.now(UTC).replace(microsecond=0)
    state = daemon_state(db, now)
    print(describe_daemon(state, now))
    try:
        sources = load_sources(args.sources)
    except SourceConfigError as exc:
        print(f"warning: {exc}")
        sources = []
    print()
    print_source_table(db, sources, state, now)
    print_health(db, now)
    print_problems(db, args.failures, now)
    db.close()
    return EXIT_OK if state and state["alive"] else EXIT_NOT_RUNNING


def ago(moment: str | None, now: datetime) -> str:
    """'13:45:31Z, 5m ago' (the date too when it is not today), 'in 10m' for the future."""
    if not moment:
        return "-"
    when = datetime.fromisoformat(moment).astimezone(UTC)
    delta = now - when
    stamp = when.strftime("%H:%M:%SZ") if when.date() == now.date() else when.strftime("%Y-%m-%d %H:%MZ")
    if delta >= timedelta(0):
        return f"{stamp}, {format_duration(delta)} ago" if delta else f"{stamp}, now"
    return f"{stamp}, in {format_duration(-delta)}"


def describe_daemon(state: dict[str, Any] | None, now: datetime) -> str:
    if state is None:
        return "daemon: never run on this database (start it with: python scheduler.py run)"
    if state["alive"]:
        up = format_duration(now - datetime.fromisoformat(state["started_at"]))
        if state["coordinating"]:  # run --redis: it opens rounds for the workers, runs no crawl
            rounds = state["running"]
            running = f"{rounds} round{'' if rounds == 1 else 's'} open for the workers"
        else:
            running = f"{state['running']} crawl processes running"
        return (
            f"daemon: running, pid {state['pid']} on {state['host']}, up {up}, last tick "
            f"{format_duration(timedelta(seconds=int(state['since_tick_s'])))} ago; "
            f"{state['sources']} sources scheduled, {running}, {state['queued']} sources queued"
        )
    if state["status"] == "running":
        return (
            f"daemon: NOT RESPONDING - pid {state['pid']} on {state['host']} last ticked "
            f"{ago(state['last_tick_at'], now)}; it was killed or hangs"
        )
    return f"daemon: stopped ({ago(state['stopped_at'], now)})"


def print_source_table(db: Database, sources: list[Any], state: dict[str, Any] | None, now: datetime) -> None:
    from archive.queries import last_run_of_each_source, problems_since, scheduled_runs
    from daemon.jobs import next_run_time

    names = [s.name for s in sources]
    last_runs = last_run_of_each_source(db)
    names += [name for name in last_runs if name not in names and not name.startswith("adhoc_")]
    by_name = {s.name: s for s in sources}
    alive = bool(state and state["alive"])
    next_runs = scheduled_runs(db) if alive else {}
    since = (now - timedelta(days=1)).isoformat()
    header = f"{'SOURCE':24} {'SCHEDULE':14} {'LAST RUN':30} {'STATUS':10} {'NEW':>4} {'UPD':>4} {'FAIL':>4}"
    print(f"{header}  {'NEXT RUN':26} {'FAILED RUNS 24H':>15} {'FAILURES 24H':>12}")
    for name in names:
        last_row: dict[str, Any] = last_runs.get(name) or {}
        source = by_name.get(name)
        schedule = source.schedule if source else "(not in file)"
        if source is not None and not source.enabled:
            next_run = "disabled"
        elif alive:
            next_run = ago(next_runs.get(name), now) if name in next_runs else "-"
        elif source is not None:
            started = datetime.fromisoformat(last_row["started_at"]) if last_row else None
            due = next_run_time(source, started, now)
            next_run = "at daemon start" if due <= now else ago(due.isoformat(), now)
        else:
            next_run = "-"
        failed_runs, failures = problems_since(db, name, since)
        print(
            f"{name:24} {schedule:14} {ago(last_row.get('started_at'), now):30} "
            f"{last_row.get('status', 'never'):10} {last_row.get('articles_new') or 0:>4} "
            f"{last_row.get('articles_updated') or 0:>4} {last_row.get('failures') or 0:>4}  "
            f"{next_run:26} {failed_runs:>15} {failures:>12}"
        )


def print_health(db: Database, now: datetime) -> None:
    """Each judged source's health verdict, since when, why, and a page or two that shows it."""
    from archive.health import health_of_sources

    verdicts = health_of_sources(db)
    if not verdicts:
        return
    print("\nsource health:")
    for name, row in sorted(verdicts.items()):
        print(f"  {name:24} {row['verdict']:9} since {ago(row['since'], now):30} {row['reason']}")
        for url in row["evidence"]:
            print(f"  {'':24} {'':9} see {url}")


def print_problems(db: Database, limit: int, now: datetime) -> None:
    from archive.queries import recent_failed_runs

    rows = recent_failed_runs(db, limit)
    if not rows:
        return
    print("\nrecent failed runs:")
    for run_id, source, started_at, status, reason in rows:
        print(f"  {ago(started_at, now):30} {source} run {run_id}: {status}: {reason}")


def cmd_status_json(args: argparse.Namespace) -> int:
    """`status --json`: the daemon and each source as one JSON document, from a read-only database."""
    import json

    from archive.queries import NoDatabase, open_read_only
    from daemon.status import daemon_state

    now = datetime.now(UTC).replace(microsecond=0)
    report: dict[str, Any] = {"checked_at": now.isoformat(), "database": str(args.db), "sources_file_error": None}
    try:
        sources = load_sources(args.sources)
    except SourceConfigError as exc:
        report["sources_file_error"] = str(exc)
        sources = []
    try:
        db = open_read_only(args.db)
    except NoDatabase:
        report.update(daemon=None, sources=[source_status(None, s.name, s, None, now) for s in sources])
        print(json.dumps(report, indent=2))
        return EXIT_NOT_RUNNING
    try:
        state = daemon_state(db, now)
        report["daemon"] = state
        report["sources"] = source_statuses(db, sources, state, now)
    finally:
        db.close()
    print(json.dumps(report, indent=2))
    return EXIT_OK if state and state["alive"] else EXIT_NOT_RUNNING


def source_statuses(db: Database, sources: list[Any], state: dict[str, Any] | None, now: datetime) -> list[dict]:
    """Each configured source, then each other source with runs (removed from the file since)."""
    from archive.queries import scheduled_runs, sources_with_runs

    by_name = {s.name: s for s in sources}
    names = [*by_name, *(name for name in sources_with_runs(db) if name not in by_name)]
    alive = bool(state and state["alive"])
    next_runs = scheduled_runs(db) if alive else None
    return [source_status(db, name, by_name.get(name), next_runs, now) for name in names]


def source_status(
    db: Database | None, name: str, source: Any, next_runs: dict[str, str] | None, now: datetime
) -> dict[str, Any]:
    """One source as `status` shows it: configuration, last run, next run, problems in 24 hours.

    `next_runs` is the live daemon's schedule; without one, the next run is when a daemon started
    now would run it (overdue ones at once)."""
    from archive.health import health_of
    from archive.queries import article_count, last_run, problems_since
    from daemon.jobs import next_run_time

    last = last_run(db, name) if db is not None else None
    if source is not None and not source.enabled:
        next_run = None
    elif next_runs is not None:
        next_run = next_runs.get(name)
    elif source is not None:
        started = datetime.fromisoformat(last["started_at"]) if last else None
        next_run = next_run_time(source, started, now).isoformat()
    else:
        next_run = None
    failed_runs, failures = problems_since(db, name, (now - timedelta(days=1)).isoformat()) if db else (0, 0)
    return {
        "name": name,
        "in_sources_file": source is not None,
        "enabled": source.enabled if source is not None else None,
        "schedule": source.schedule if source is not None else None,
        "articles": article_count(db, name) if db is not None else 0,
        "last_run": last,
        "next_run_at": next_run,
        "failed_runs_24h": failed_runs,
        "failures_24h": failures,
        "health": health_of(db, name) if db is not None else None,
    }


def cmd_list(args: argparse.Namespace) -> int:
    for source in load_sources(args.sources):
        seeds = len(source.seed_urls)
        state = "enabled" if source.enabled else "disabled"
        max_age = format_duration(source.max_age)
        print(f"{source.name:24} {state:8} {source.schedule:16} {seeds} seed URLs  max_age={max_age}")
    return EXIT_OK
