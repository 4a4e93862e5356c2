"""The coordinator of a shared crawl: it opens and closes the rounds (the daemon with a Redis URL,
or `scheduler.py push`).

A round is one crawl of one source: one `crawl_runs` row (with the coordinator's pid), opened with
the seeds the news spider's own `start()` builds against the archive (distributed/seeds.py, in a
child process), and closed
once its queue has been empty and no worker has worked on it for the grace period, or at the
source's timeout. The validators the workers found are kept only if the round ends cleanly.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from archive.store import Archive
from config.dates import utc_now_iso
from config.durations import format_duration
from config.paths import PROJECT_ROOT
from distributed.leases import Leases, held_prefix
from distributed.redis_link import (
    ALIVE_WITHIN_MS,
    MIN_GRACE,
    ROUNDS_KEY,
    VALIDATORS_KEY,
    RedisDown,
    RedisLink,
    busy_key,
    holders_key,
    queue_key,
    round_key,
    round_validators_key,
    seen_key,
    worker_key,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    import redis
    from redis.typing import EncodableT, FieldT

    from config.sources import Source


@dataclasses.dataclass(frozen=True)
class Round:
    """An open round as Redis has it."""

    source: str
    run_id: int
    opened_ms: int
    queued: int
    busy: dict[str, int]  # worker -> last busy (ms)
    holders: int = 0  # workers holding claimed requests (distributed/leases.py)
    taken_over: int = 0  # requests requeued from workers that died during the round

    @property
    def last_work_ms(self) -> int:
        return max([self.opened_ms, *self.busy.values()])


@dataclasses.dataclass(frozen=True)
class Closed:
    source: str
    run_id: int
    status: str
    reason: str


# KEYS: round, queue, seen, busy, rounds. ARGV: source, run id, ttl s, then (fingerprint, score,
# request) per seed. Returns 0 if a round of the source is open, else 1.
_OPEN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'run_id', ARGV[2], 'opened_ms', t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('SADD', KEYS[5], ARGV[1])
for i = 4, #ARGV, 3 do
  if ARGV[i] == '' or redis.call('SADD', KEYS[3], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i + 2])
  end
end
return 1
"""

# KEYS: round, queue, seen, busy, rounds, validators, holders. ARGV: source, run id, '1' to drop the
# queue (and what workers still hold), held-key prefix. Returns the round's validators (flat hash)
# or nil if the round is not (any more) that run.
_CLOSE = """
if redis.call('HGET', KEYS[1], 'run_id') ~= ARGV[2] then
  if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[5], ARGV[1]) end
  return nil
end
local validators = redis.call('HGETALL', KEYS[6])
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[6])
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  for _, worker in ipairs(redis.call('SMEMBERS', KEYS[7])) do redis.call('DEL', ARGV[4] .. worker) end
  redis.call('DEL', KEYS[7])
end
redis.call('SREM', KEYS[5], ARGV[1])
return validators
"""


class SeedError(RuntimeError):
    """The seeds of a source could not be built (a broken seed, an unreadable archive)."""


class SeedProcess:
    """The child process that builds seeds (distributed/seeds.py): Scrapy and the spider are
    imported there, once, never in the coordinator's process (the daemon's)."""

    def __init__(self, db: Path, sources: Path) -> None:
        self.command = [sys.executable, "-m", "distributed.seeds", "--db", str(db), "--sources", str(sources)]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the child and wait until it is ready: a round then opens as fast as in-process."""
        if self.process is not None and self.process.poll() is None:
            return
        self.close()
        self.process = subprocess.Popen(
            self.command, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.process.stdout.readline()  # {"ready": true}, or nothing if it died (seeds() says so)

    def seeds(self, name: str) -> tuple[list[tuple[str, float, bytes]], int]:
        """The seeds of source `name`, encoded for the shared queue, and how many are re-visits."""
        self.start()
        assert self.process is not None
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        try:
            self.process.stdin.write(name + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it died: the empty answer below says so
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise SeedError(f"the seeds process exited with code {code} (its errors are in the daemon's log)")
        return decode_seeds(line)

    def close(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        assert process.stdin is not None
        assert process.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()  # it ends at the end of its input
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def decode_seeds(line: str) -> tuple[list[tuple[str, float, bytes]], int]:
    """What distributed/seeds.py printed, back as ([(fingerprint, score, data), ...], re-visits)."""
    found = json.loads(line)
    if "error" in found:
        raise SeedError(found["error"])
    seeds = [(fingerprint, float(score), base64.b64decode(data)) for fingerprint, score, data in found["seeds"]]
    return seeds, int(found["revisits"])


class Coordinator:
    """Opens and closes the rounds of a shared crawl; runs in the daemon (or `scheduler.py push`).

    One thread only: its SQLite connections are that thread's. Every Redis call raises RedisDown
    while Redis is unreachable; callers keep their work and try again later.
    """

    def __init__(self, url: str, db: Path, sources: Path, *, grace: timedelta, log_file: str | None = None) -> None:
        self.link = RedisLink.for_url(url)
        self.db_path = db
        self.seed_process = SeedProcess(db, sources)
        self.seed_process.start()  # Scrapy's import, once, before the first round is due
        # Workers mark themselves busy every HEARTBEAT: a shorter grace would end rounds between beats.
        self.grace_ms = int(max(grace.total_seconds(), MIN_GRACE) * 1000)
        self.log_file = log_file
        self.archive = Archive.open(db)
        self.rounds: dict[str, Round] = {}  # the open rounds, as last read (and closed) here
        self.leases = Leases(self.link)
        self.close_script = self.link.client.register_script(_CLOSE)
        self.open_script = self.link.client.register_script(_OPEN)

    def close(self) -> None:
        self.seed_process.close()
        self.archive.close()

    # --- opening --------------------------------------------------------------------------

    def busy(self, name: str) -> str | None:
        """Why a new round of `name` cannot open now (its previous one is still going), or None."""
        run_id = self.link.call("checking a round", lambda client: client.hget(round_key(name), "run_id"))
        if run_id is None:
            return None
        queued = self.link.call("counting a queue", lambda client: client.zcard(queue_key(name)))
        return (
            f"the previous round (run {int(run_id)}) is still being crawled by the workers ({queued} requests queued)"
        )

    def open_round(self, source: Source, timeout: timedelta) -> tuple[int | None, str]:
        """Open a round of `source`: record its run, push its seeds. Returns (run id, what happened);
        the run id is None when the previous round is still going (nothing is recorded then)."""
        busy = self.busy(source.name)
        if busy is not None:
            return None, busy
        seeds, revisits = self.seed_process.seeds(source.name)
        args: list[Any] = [part for seed in seeds for part in seed]
        self.archive.sync_source(source)
        run_id = self.archive.start_run(source.name, log_file=self.log_file)
        if revisits:
            self.archive.db.table("crawl_runs").update(run_id, {"articles_revisited": revisits})
        keys = [
            round_key(source.name),
            queue_key(source.name),
            seen_key(source.name),
            busy_key(source.name),
            ROUNDS_KEY,
        ]
        # The round outlives its timeout only if no coordinator is left to close it.
        ttl = int(timeout.total_seconds() * 2) + 3600
        try:
            opened = self.link.call(
                "opening a round", lambda _: self.open_script(keys=keys, args=[source.name, run_id, ttl, *args])
            )
        except RedisDown as exc:
            self.finish_run(run_id, "failed", f"could not queue its seeds: {exc}")
            raise
        if not opened:  # another coordinator opened one in the meantime
            reason = "the previous round is still being crawled by the workers"
            self.finish_run(run_id, "skipped", reason, keep_pid=False)
            return None, reason
        return run_id, f"round opened: {len(seeds)} seeds queued for the workers ({revisits} re-visits)"

    # --- closing --------------------------------------------------------------------------

    def open_rounds(self) -> dict[str, Round]:
        """The open rounds, read in one round trip; also sets `now_ms` (the Redis clock)."""

        def read(client: redis.Redis) -> tuple[list[str], list[Any]]:
            # connect() leaves decode_responses off, so members are bytes; redis-py's types also allow str.
            names = sorted(name.decode() for name in cast("set[bytes]", client.smembers(ROUNDS_KEY)))
            pipe = client.pipeline(transaction=False)
            pipe.time()
            for name in names:
                pipe.hgetall(round_key(name))
                pipe.zcard(queue_key(name))
                pipe.hgetall(busy_key(name))
                pipe.scard(holders_key(name))
            return names, pipe.execute()

        names, values = self.link.call("reading the open rounds", read)
        self.rounds = {}
        seconds, micros = values[0]
        self.now_ms = int(seconds) * 1000 + int(micros) // 1000
        for i, name in enumerate(names):
            info, queued, busy, holders = values[1 + 4 * i : 5 + 4 * i]
            if not info:  # expired: no coordinator closed it in time
                # link.call runs the lambda at once, in this iteration: `name` is the one meant.
                self.link.call("tidying the rounds", lambda client: client.srem(ROUNDS_KEY, name))  # noqa: B023
                continue
            self.rounds[name] = Round(
                source=name,
                run_id=int(info[b"run_id"]),
                opened_ms=int(info[b"opened_ms"]),
                queued=int(queued),
                busy={worker.decode(): int(ms) for worker, ms in busy.items()},
                holders=int(holders),
                taken_over=int(info.get(b"taken_over", 0)),
            )
        return dict(self.rounds)

    def check_rounds(self, timeouts: Mapping[str, timedelta], *, only: Iterable[int] | None = None) -> list[Closed]:
        """Close the rounds that are done (queue empty, nothing claimed, no worker busy for the
        grace period) or past their source's timeout; fail this coordinator's runs whose round
        Redis lost. What dead workers held goes back to the queue first (also if no worker is left
        to do it)."""
        # connect() leaves decode_responses off, so members are bytes; redis-py's types also allow str.
        for name in cast("set[bytes]", self.link.call("listing the open rounds", lambda c: c.smembers(ROUNDS_KEY))):
            self.leases.take_over(name.decode())
        rounds = self.open_rounds()
        wanted = set(only) if only is not None else None
        closed = []
        for r in rounds.values():
            if wanted is not None and r.run_id not in wanted:
                continue
            timeout = timeouts.get(r.source, timedelta(hours=1))
            if r.queued == 0 and r.holders == 0 and self.now_ms - r.last_work_ms >= self.grace_ms:
                closed += self._close(r, "ok", "finished: the workers drained the queue")
            elif self.now_ms - r.opened_ms > timeout.total_seconds() * 1000:
                reason = f"timed out after {format_duration(timeout)}: {r.queued} queued requests were dropped"
                closed += self._close(r, "timed_out", reason, drop_queue=True)
        return closed + self.fail_lost_rounds({r.run_id for r in rounds.values()})

    def _close(self, r: Round, status: str, reason: str, *, drop_queue: bool = False) -> list[Closed]:
        keys = [
            round_key(r.source),
            queue_key(r.source),
            seen_key(r.source),
            busy_key(r.source),
            ROUNDS_KEY,
            round_validators_key(r.run_id),
            holders_key(r.source),
        ]
        args: list[str | int] = [r.source, r.run_id, "1" if drop_queue else "0", held_prefix(r.source)]
        flat = self.link.call("closing a round", lambda _: self.close_script(keys=keys, args=args))
        self.rounds.pop(r.source, None)
        if flat is None:
            return []  # closed by someone else
        gone = self._dead_workers(r.busy)
        workers = f"{len(r.busy)} worker{'s' if len(r.busy) != 1 else ''}"
        reason = f"{reason} ({workers})"
        if gone:
            # Its validators may be lost with it: they are found again next round.
            reason += f"; worker {', '.join(gone)} died during the round: its {r.taken_over} requests were taken over"
        elif status == "ok":
            validators = {flat[i].decode(): json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}
            self.keep_validators(validators)
        self.finish_run(r.run_id, status, reason)
        return [Closed(r.source, r.run_id, status, reason)]

    def _dead_workers(self, busy: Mapping[str, int]) -> list[str]:
        """Workers of the round with no beat in the last ALIVE_WITHIN_MS (as of `now_ms`)."""
        if not busy:
            return []
        names = sorted(busy)
        beats = self.link.call("checking workers", lambda client: client.mget([worker_key(w) for w in names]))
        return [
            name
            for name, beat in zip(names, beats, strict=True)
            if beat is None or self.now_ms - int(beat) > ALIVE_WITHIN_MS
        ]

    def fail_lost_rounds(self, open_runs: set[int]) -> list[Closed]:
        """Runs of this coordinator left running with no round in Redis: Redis lost it (restarted
        without persistence, or flushed). What was queued is gone; the next round finds it again."""
        rows = self.archive.db.execute(
            "SELECT id, source FROM crawl_runs WHERE status = 'running' AND pid = ?", [os.getpid()]
        ).fetchall()
        closed = []
        for run_id, source in rows:
            if run_id in open_runs:
                continue
            reason = "its round is gone from Redis (restarted without persistence?): the next round finds it again"
            if self.finish_run(run_id, "failed", reason):
                closed.append(Closed(source, run_id, "failed", reason))
        return closed

    def adopt(self) -> list[int]:
        """Make the open rounds' runs this process's (after a restart of the daemon): their rows
        then count as going, not as crawls whose process died."""
        runs = [r.run_id for r in self.open_rounds().values()]
        with self.archive.db.conn:
            for run_id in runs:
                self.archive.db.execute(
                    "UPDATE crawl_runs SET pid = ? WHERE id = ? AND status = 'running'", [os.getpid(), run_id]
                )
        return runs

    def record_skipped(self, name: str, reason: str) -> None:
        """A round that could not open because the previous one is still going (no pid: not a run)."""
        run_id = self.archive.start_run(name, log_file=self.log_file)
        self.finish_run(run_id, "skipped", reason, keep_pid=False)

    def finish_run(self, run_id: int, status: str, reason: str, *, keep_pid: bool = True) -> bool:
        now = utc_now_iso()
        with self.archive.db.conn:
            cursor = self.archive.db.execute(
                "UPDATE crawl_runs SET status = ?, finish_reason = ?, finished_at = ?, "
                "duration_s = round((julianday(?) - julianday(started_at)) * 86400, 1)"
                f"{'' if keep_pid else ', pid = NULL'} WHERE id = ? AND status = 'running'",
                [status, reason, now, now, run_id],
            )
        return cursor.rowcount > 0

    # --- validators -----------------------------------------------------------------------

    def keep_validators(self, validators: Mapping[str, dict[str, Any]]) -> None:
        """Validators of a clean round: saved in the archive, and where the workers read them."""
        for url, known in validators.items():
            self.archive.save_validators(
                url, etag=known.get("etag"), last_modified=known.get("last_modified"), children=known.get("children")
            )
        if validators:
            mapping: dict[FieldT, EncodableT] = {url: json.dumps(self._validator_row(url)) for url in validators}
            self.link.call("publishing validators", lambda client: client.hset(VALIDATORS_KEY, mapping=mapping))

    def _validator_row(self, url: str) -> dict[str, Any]:
        row = self.archive.validators(url) or {}
        return {
            "etag": row.get("etag"),
            "last_modified": row.get("last_modified"),
            "children": Archive.json_list(row.get("children")),
        }

    def publish_validators(self) -> int:
        """Copy the archive's validators to Redis when Redis has none (first start, or lost)."""
        if self.link.call("checking validators", lambda client: client.exists(VALIDATORS_KEY)):
            return 0
        urls = [row[0] for row in self.archive.db.execute("SELECT url FROM http_validators")]
        if urls:
            mapping = {url: json.dumps(self._validator_row(url)) for url in urls}
            self.link.call("publishing validators", lambda client: client.hset(VALIDATORS_KEY, mapping=mapping))
        return len(urls)
