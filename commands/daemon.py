"""`run`: the daemon, configured from the command line."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from commands.errors import EXIT_FAILED

if TYPE_CHECKING:
    import argparse

# The command line's log lines keep the name they always had: operators' filters match it.
logger = logging.getLogger("scheduler")


def cmd_run(args: argparse.Namespace) -> int:
    from daemon.config import DaemonConfig, DaemonError
    from daemon.logs import setup_logging
    from daemon.loop import Daemon, install_signal_handlers

    config = DaemonConfig(
        db=args.db,
        sources=args.sources,
        max_parallel=args.max_parallel,
        batch_size=args.batch_size,
        batch_window=args.batch_window,
        grace=args.grace,
        kill_wait=args.kill_wait,
        tick=args.tick,
        crawl_log_level=args.crawl_log_level,
        keep_logs=args.keep_logs,
        redis_url=args.redis,
        round_grace=args.round_grace,
    )
    setup_logging(config.log_dir, args.log_level)
    daemon = Daemon(config)
    install_signal_handlers(daemon)  # before it starts: a signal during start-up is not lost
    try:
        return daemon.run()
    except DaemonError as exc:
        logger.error("%s", exc)
        return EXIT_FAILED
