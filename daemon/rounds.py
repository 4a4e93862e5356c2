"""Rounds of a crawl shared through Redis: the daemon with a Redis URL coordinates workers on several
machines (distributed/) instead of crawling.

At a source's due time it opens a round (a `crawl_runs` row with the daemon's pid, and the source's
seeds pushed to the shared queue), and at each tick it closes the rounds the workers have finished
(or that ran past the source's timeout). A source whose round is still open is recorded `skipped`.
A Redis outage keeps due sources queued until Redis is back.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from daemon.logs import event, log_run
from distributed.coordinator import Coordinator
from distributed.redis_link import RedisDown

if TYPE_CHECKING:
    from daemon.dispatch import Waiter
    from daemon.state import DaemonState

logger = logging.getLogger(__name__)


class SharedRounds:
    """The Dispatcher of a daemon that coordinates a shared crawl (main thread only)."""

    queued_reason = "the previous run is still waiting for Redis to queue its round"

    def __init__(self, state: DaemonState) -> None:
        self.state = state
        self.config = state.config
        self.coordinator: Coordinator | None = None
        self.rounds: dict[str, int] = {}  # source -> run id of its open round (guarded by state.lock)
        self.rounds_taken_over = False  # the open rounds were read from Redis once
        # Sources whose round is being opened: their seeds take a child process a second or two.
        self.opening: set[str] = set()

    def start(self) -> None:
        """Connect to Redis and take over the rounds a previous daemon left open."""
        self.coordinator = Coordinator(
            self.config.redis_url,
            self.config.db,
            self.config.snapshot,
            grace=self.config.round_grace,
            log_file=str(self.config.log_dir / "daemon.log"),
        )
        self.take_over_rounds()

    def _coordinator(self) -> Coordinator:
        assert self.coordinator is not None, "start() first"
        return self.coordinator

    def started_line(self) -> str:
        return f"coordinating workers through Redis at {self._coordinator().link.shown}"

    def busy(self, name: str) -> str | None:
        if name in self.rounds:
            return f"the previous round (run {self.rounds[name]}) is still being crawled by the workers"
        if name in self.opening:
            return "the previous round is still being crawled by the workers (its seeds are being queued)"
        return None

    def running(self) -> int:
        return len(self.rounds)

    def own_pids(self) -> set[int]:
        return {os.getpid()}  # rounds are recorded with the daemon's pid: the coordinator closes them

    def runs_known(self) -> bool:
        # Until the rounds are taken over (Redis may be down), a run whose process is gone may be a
        # round a previous daemon opened: known once Redis answers.
        return self.rounds_taken_over

    def take_over_rounds(self) -> None:
        """Adopt the open rounds' runs (a previous daemon's) and publish the validators; until this
        has worked once (Redis may be down at start), runs whose process is gone are not failed:
        they may be rounds the workers are still crawling."""
        coordinator = self._coordinator()
        try:
            coordinator.publish_validators()
            for run_id in coordinator.adopt():
                logger.info("run=%s: a shared round a previous daemon opened; closed when the workers finish", run_id)
        except RedisDown:
            logger.warning("Redis is unavailable: open rounds are taken over once it is back")
            return
        with self.state.lock:
            self.rounds = {r.source: r.run_id for r in coordinator.rounds.values()}
        self.rounds_taken_over = True

    def dispatch(self) -> float:
        """Open a round of each due source: its seeds go to the workers' queue. While Redis is down
        the sources stay queued; returns how long the main loop may sleep."""
        coordinator, state = self._coordinator(), self.state
        with state.lock:
            due = [name for name in state.queue if name in state.sources]
        for name in due:
            source = state.sources[name]
            with state.lock:
                self.opening.add(name)  # stays queued until its round is open (Redis may be down)
            try:
                run_id, what = coordinator.open_round(source, source.timeout)
            except RedisDown:
                with state.lock:
                    self.opening.discard(name)
                return coordinator.link.wait_time()
            except Exception as exc:  # a broken seed (or database): this run fails, the daemon goes on
                logger.exception("source=%s: cannot open a round", name)
                with state.lock:
                    self.opening.discard(name)
                    state.queue.pop(name, None)
                state.record(name, "failed", f"cannot open a round: {exc}")
                continue
            with state.lock:
                self.opening.discard(name)
                state.queue.pop(name, None)
                if run_id is not None:
                    self.rounds[name] = run_id
            if run_id is None:
                state.record(name, "skipped", what)
            else:
                event(logging.INFO, name, run_id, "%s", what)
        return 3600.0

    def tick(self) -> None:
        """Close the rounds the workers finished or that ran past their timeout."""
        coordinator = self._coordinator()
        if not self.rounds_taken_over:
            self.take_over_rounds()
            return
        timeouts = {name: source.timeout for name, source in self.state.sources.items()}
        try:
            closed = coordinator.check_rounds(timeouts)
            coordinator.publish_validators()  # only if Redis lost them
        except RedisDown:
            return  # logged by the link; rounds are looked at again next tick
        with self.state.lock:
            self.rounds = {r.source: r.run_id for r in coordinator.rounds.values()}
        for done in closed:
            log_run(self.state.book.run(done.run_id))
        self.state.runs_ended(done.source for done in closed)

    def stop(self, wait: Waiter) -> None:
        """Open rounds stay open: the workers finish them, the next daemon closes them."""
        if self.rounds:
            logger.info(
                "%d shared rounds stay open (%s): the workers finish them; the daemon closes them when it is back",
                len(self.rounds),
                ", ".join(self.rounds),
            )
        if self.coordinator is not None:
            self.coordinator.close()
