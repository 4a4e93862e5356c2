"""The daemon's schedule, as pure functions: triggers, next run times and batches. No I/O here.

- An interval source ("every") fires on the clock: every 15m means :00, :15, :30 and :45 (slots
  counted from the Unix epoch), each run delayed by a fresh random jitter. Sources that share an
  interval fall due together, so they can share a crawl process.
- A cron source uses APScheduler's CronTrigger, with the same jitter.
- After a restart a source's next run follows from its last recorded run; a source overdue
  (it missed runs while the daemon was down) runs once, at start.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from config.sources import Source

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def next_slot(moment: datetime, interval: timedelta) -> datetime:
    """The first multiple of `interval` after the epoch at or after `moment`."""
    step = interval // _MICROSECOND
    elapsed = (moment - EPOCH) // _MICROSECOND
    return EPOCH + _MICROSECOND * (-(-elapsed // step) * step)


class SlotTrigger(BaseTrigger):
    """Every `interval` on the clock grid, each run delayed by a random jitter that never adds up.

    APScheduler's IntervalTrigger adds the interval to the previous *jittered* run time, so each
    run is late by half the jitter on average and sources that fell due together drift apart
    within weeks. Here the jitter is capped at half the interval and the next run is the first
    slot at least half an interval after the previous run: a run made late (at start-up, or after
    waiting for a free process) is followed by the next slot that is not almost immediate.
    """

    __slots__ = ("interval", "jitter")

    def __init__(self, interval: timedelta, jitter: timedelta | None = None) -> None:
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        self.interval = interval
        self.jitter = min(jitter or timedelta(0), interval / 2)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        earliest = now if previous_fire_time is None else previous_fire_time + self.interval / 2
        return self.jittered(next_slot(earliest, self.interval))

    def jittered(self, slot: datetime) -> datetime:
        return slot + self.jitter * random.random() if self.jitter else slot

    def __str__(self) -> str:
        return f"every {self.interval} on the clock, jitter {self.jitter}"

    def __repr__(self) -> str:
        return f"<SlotTrigger (interval={self.interval!r}, jitter={self.jitter!r})>"


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday(value: str) -> int:
    return int(value) % 7  # crontab allows 7 for Sunday too


def crontab_weekdays(field: str) -> str:
    """Rewrite a crontab day-of-week field with day names.

    In crontab 0 (or 7) is Sunday; APScheduler 3's `from_crontab` reads 0 as Monday (its docs
    call this a historical mistake, fixed only in 4.x). Names mean the same to both.
    """
    days: list[str] = []
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*" or ("-" in spec and spec.replace("-", "").isdigit()):
            first, _, last = ("0-6" if spec == "*" else spec).partition("-")
            numbers = range(int(first), int(last) + 1, step)
            days += [WEEKDAYS[_weekday(str(n))] for n in numbers]
        elif spec.isdigit():
            days.append(WEEKDAYS[_weekday(spec)])
        else:
            days.append(part)  # names ("mon-fri"), "?" and the like mean the same to both
    return ",".join(dict.fromkeys(days))


def cron_trigger(expression: str) -> CronTrigger:
    """A CronTrigger that reads a crontab line the way cron does (see crontab_weekdays)."""
    fields = expression.split()
    if len(fields) == 5 and fields[4] != "*":
        fields[4] = crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields))


def make_trigger(source: Source) -> BaseTrigger:
    """The APScheduler trigger for a source's schedule, with its jitter."""
    if source.cron:
        trigger = cron_trigger(source.cron)
        trigger.jitter = int(source.jitter.total_seconds()) or None
        return trigger
    assert source.every is not None, "config/sources.py guarantees every or cron"
    return SlotTrigger(source.every, source.jitter)


def next_run_time(source: Source, last_started: datetime | None, now: datetime) -> datetime:
    """When the daemon should next crawl `source`, given when its last run started.

    Never run, or overdue (a run fell due while nobody was crawling): now, once.
    """
    if last_started is None:
        return now
    due = make_trigger(source).get_next_fire_time(last_started, now)
    if due is None or due <= now:
        return now
    return due


@dataclass(frozen=True)
class JobSpec:
    """What the daemon hands to APScheduler's add_job for one source."""

    id: str
    source: str
    trigger: BaseTrigger
    next_run_time: datetime


def job_id(name: str) -> str:
    return f"crawl:{name}"


def build_jobs(sources: Iterable[Source], last_started: Mapping[str, datetime], now: datetime) -> list[JobSpec]:
    """One job per enabled source, its first run derived from its last recorded run."""
    return [
        JobSpec(
            id=job_id(source.name),
            source=source.name,
            trigger=make_trigger(source),
            next_run_time=next_run_time(source, last_started.get(source.name), now),
        )
        for source in sources
        if source.enabled
    ]


def schedule_changed(old: Source, new: Source) -> bool:
    return (old.every, old.cron, old.jitter, old.enabled) != (new.every, new.cron, new.jitter, new.enabled)


def next_batch(queue: Iterable[str], timeouts: Mapping[str, timedelta], size: int) -> list[str]:
    """The sources to start together: the oldest queued one and those queued after it that share
    its timeout (a batch has one deadline: its process group is killed as a whole), at most `size`.
    """
    batch: list[str] = []
    for name in queue:
        if not batch or timeouts[name] == timeouts[batch[0]]:
            batch.append(name)
            if len(batch) >= size:
                break
    return batch
