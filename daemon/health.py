"""Source health in the daemon: after a source's run ends, judge it (archive/health.py) and, when its
verdict changed, log the change and run the source's `on_alarm` command with the change as JSON on
its standard input.

An alarm command runs in a thread of its own, in its own process group, with a time limit: one that
fails, hangs or cannot start is logged in one line and never holds up or stops the daemon.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Any

from archive.health import judge_new_runs
from daemon.logs import event, guarded

if TYPE_CHECKING:
    from collections.abc import Iterable

    from daemon.state import DaemonState

logger = logging.getLogger(__name__)

ALARM_TIMEOUT_S = 30.0


class SourceHealth:
    """Judges the sources whose runs ended; `alarms` are the alarm threads started (for tests)."""

    def __init__(self, state: DaemonState, *, alarm_timeout_s: float = ALARM_TIMEOUT_S) -> None:
        self.state = state
        self.alarm_timeout_s = alarm_timeout_s
        self.alarms: list[threading.Thread] = []

    def runs_ended(self, names: Iterable[str]) -> None:
        for name in names:
            changes = guarded(f"judging the health of {name}", judge_new_runs, self.state.book.db, name, default=[])
            for change in changes:
                self.announce(change)

    def announce(self, change: dict[str, Any]) -> None:
        """One log line for the change, then the source's on_alarm command, if it has one."""
        name = change["source"]
        level = logging.INFO if change["verdict"] == "ok" else logging.WARNING
        was = change["previous"] or "not judged yet"
        event(level, name, change["run_id"], "health %s (was %s): %s", change["verdict"], was, change["reason"])
        source = self.state.sources.get(name)
        if source is None or not source.on_alarm:
            return
        thread = threading.Thread(
            target=run_alarm,
            args=(list(source.on_alarm), change, self.alarm_timeout_s),
            name=f"alarm-{name}",
            daemon=True,  # a hung alarm is killed at its timeout, never waited for at shutdown
        )
        self.alarms = [t for t in self.alarms if t.is_alive()]
        self.alarms.append(thread)
        thread.start()


def run_alarm(command: list[str], change: dict[str, Any], timeout_s: float) -> bool:
    """Run `command` with `change` as JSON on stdin; log one line if it fails. True when it exited 0."""
    name, run_id = change["source"], change["run_id"]
    what = f"on_alarm command {command[0]!r}"
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed as a whole at the timeout
        )
    except OSError as exc:
        event(logging.ERROR, name, run_id, "%s could not start: %s", what, exc.strerror or exc)
        return False
    try:
        _, err = process.communicate(json.dumps(change).encode() + b"\n", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        guarded("killing an alarm command", os.killpg, process.pid, signal.SIGKILL)
        process.communicate()
        event(logging.ERROR, name, run_id, "%s killed after %.0fs without finishing", what, timeout_s)
        return False
    if process.returncode != 0:
        first_line = err.decode(errors="replace").strip().splitlines()[:1]
        detail = f": {first_line[0][:200]}" if first_line else ""
        event(logging.ERROR, name, run_id, "%s failed with exit status %d%s", what, process.returncode, detail)
        return False
    return True
