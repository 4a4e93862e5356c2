"""The daemon's schedule: one APScheduler job per enabled source (``crawl:<name>``), built from the
sources file at start and rebuilt on reload; adaptive sources are rescheduled after each run; each
source's next run is written to `daemon_jobs` (for `status` and Datasette)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from config.dates import utc_now
from config.durations import format_duration
from daemon import polling
from daemon.config import iso
from daemon.jobs import build_jobs, job_id, make_trigger, next_run_time, schedule_changed
from daemon.logs import event, guarded

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from config.sources import Source
    from daemon.state import DaemonState


class Schedule:
    """The jobs; each calls `due(name)` when its source is due (in the scheduler's threads)."""

    def __init__(self, state: DaemonState, due: Callable[[str], None]) -> None:
        self.state = state
        self.due = due
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},  # jobs only queue: quick
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._saved: dict[str, tuple[str, str | None]] = {}

    def start(self, sources: list[Source]) -> None:
        book = self.state.book
        for spec in build_jobs([polling.effective(s, book.db) for s in sources], book.last_started(), utc_now()):
            self.scheduler.add_job(
                self.due,
                trigger=spec.trigger,
                args=[spec.source],
                id=spec.id,
                name=spec.source,
                next_run_time=spec.next_run_time,
            )
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def jobs(self) -> int:
        return len(self.scheduler.get_jobs())

    def apply(self, old: dict[str, Source], new: dict[str, Source]) -> None:
        """Jobs for the sources of a reloaded file: added, removed or rescheduled."""
        now = utc_now()
        last = self.state.book.last_started()
        for name in old.keys() - new.keys():
            self._remove_job(name)
            event(logging.INFO, name, None, "removed from the schedule")
        for name, source in new.items():
            before = old.get(name)
            if before is not None and not schedule_changed(before, source):
                if before != source:
                    event(logging.INFO, name, None, "settings changed; they apply from its next run")
                continue
            self._remove_job(name)
            if not source.enabled:
                event(logging.INFO, name, None, "disabled")
                continue
            source = polling.effective(source, self.state.book.db)
            when = next_run_time(source, last.get(name), now)
            self.scheduler.add_job(
                self.due, trigger=make_trigger(source), args=[name], id=job_id(name), name=name, next_run_time=when
            )
            what = "added" if before is None else "rescheduled"
            event(logging.INFO, name, None, "%s: %s, next run %s", what, source.schedule, iso(when))

    def _remove_job(self, name: str) -> None:
        if self.scheduler.get_job(job_id(name)) is not None:
            self.scheduler.remove_job(job_id(name))

    def adapt(self, names: Iterable[str]) -> None:
        """Adaptive sources: decide the next interval from the run just recorded, and reschedule."""
        for name in names:
            source = self.state.sources.get(name)
            if source is None or not source.enabled or not polling.is_adaptive(source):
                continue
            decision: Any = guarded(f"adaptive polling of {name}", polling.plan, self.state.book.db, source)
            if decision is None or self.scheduler.get_job(job_id(name)) is None:
                continue
            trigger = make_trigger(replace(source, every=decision.interval))
            self.scheduler.reschedule_job(job_id(name), trigger=trigger)
            event(logging.INFO, name, None, "polling every %s: %s", format_duration(decision.interval), decision.reason)

    def save(self) -> None:
        """Write each source's next run to daemon_jobs when it changed (for `status`, Datasette)."""
        sources = self.state.sources
        jobs = {
            job.name: (
                sources[job.name].schedule if job.name in sources else "",
                iso(job.next_run_time) if job.next_run_time else None,
            )
            for job in self.scheduler.get_jobs()
        }
        changed = {name: v for name, v in jobs.items() if self._saved.get(name) != v}
        removed = self._saved.keys() - jobs.keys()
        if not self._saved:
            removed = self.state.book.scheduled_sources() - jobs.keys()
        if changed or removed:
            self.state.book.save_schedule(changed, removed)
        self._saved = jobs
