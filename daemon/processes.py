"""Processes the daemon looks after: killing a crawl's process group, saying how one ended, and
whether a run's process is still there (`process_state`, which reads /proc: archive/run_closing.py)."""

from __future__ import annotations

import os
import signal

from archive.runs import process_state

__all__ = ["describe_exit", "kill_group", "process_state"]


def kill_group(pid: int, sig: int) -> bool:
    """Send `sig` to the process group led by `pid`; False if there is none left."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # not ours (any more): leave it alone
        return False
    return True


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"
