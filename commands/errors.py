"""The exit statuses every command ends with, and the error that is a usage error."""

from __future__ import annotations

import signal

# Exit statuses of every command (docs/exit-codes.md is the table; tests/test_cli_errors.py checks it).
EXIT_OK = 0


EXIT_FAILED = 1  # some sources failed (or fetched nothing), or the archive could not be read or written


EXIT_USAGE = 2  # a wrong option or argument, or a broken sources file: nothing was done (argparse's code)


EXIT_NOT_RUNNING = 3  # `status` when the daemon is not alive (the LSB init-script convention)


EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # stdout closed early (`status | head -1`), as a shell reports it


class UsageError(Exception):
    """A command given what it cannot work with: one line on stderr, exit status EXIT_USAGE."""
