"""The daemon's crawl process: crawl the named sources side by side, in this process.

Several sources crawl side by side in one Scrapy process (one crawler each, one `crawl_runs`
row each), so starting a process is paid once per batch, not once per source. The process is
built by crawl/process.py, which `scheduler.py crawl` and `worker` use too.

The daemon starts each batch as a child process of its own::

    python runner.py --db data/news.db --sources SNAPSHOT --log-dir data/logs --stamp STAMP NAME...

Each source's Scrapy log goes to ``<log dir>/<source>/<stamp>.log`` (its path is recorded in
``crawl_runs.log_file``). The child's stderr is the batch's log, kept by the daemon.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.paths import STAMP_FORMAT, crawl_log_path
from crawl.extraction_pool import ExtractionPoolError
from crawl.process import CrawlRequest, build_process, project_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)


# --- the daemon's child process ---------------------------------------------------------------


class _SourceFilter(logging.Filter):
    """Passes the records Scrapy tags with a spider of one source (``extra={"spider": ...}``)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(getattr(record, "spider", None), "source_name", None) == self.source


def _child_logging(settings: Any, names: Sequence[str], log_dir: Path, stamp: str) -> None:
    """Everything to stderr (the batch log the daemon opened); in a batch of several sources,
    each source also gets a file of its own with the records that name its spider.

    Scrapy's own root handler is off in the child: each crawler would re-point it at its own
    LOG_FILE when it starts, so the last source to start would get every source's lines.
    """
    level = settings.get("LOG_LEVEL")
    formatter = logging.Formatter(settings.get("LOG_FORMAT"), settings.get("LOG_DATEFORMAT"))
    root = logging.getLogger()
    root.setLevel(level)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    for name in names if len(names) > 1 else ():
        path = crawl_log_path(log_dir, name, stamp)
        path.parent.mkdir(parents=True, exist_ok=True)
        source_file = logging.FileHandler(path, encoding="utf-8")
        source_file.addFilter(_SourceFilter(name))
        handlers.append(source_file)
    for handler in handlers:
        handler.setLevel(level)
        handler.setFormatter(formatter)
        root.addHandler(handler)


def child_main(argv: list[str] | None = None) -> int:
    """Entry point of the daemon's crawl processes: crawl the named sources, side by side."""
    parser = argparse.ArgumentParser(
        prog="runner.py", description="Crawl sources in one process (started by `scheduler.py run`)."
    )
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sources", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--stamp", default=time.strftime(STAMP_FORMAT, time.gmtime()))
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    overrides = {
        "LOG_LEVEL": args.log_level,
        "LOG_INSTALL_ROOT_HANDLER": False,  # see _child_logging
        # The daemon enforces each source's timeout by killing this process group and records
        # the run as timed out; an in-process close at a fixed hour would only race it.
        "CLOSESPIDER_TIMEOUT": 0,
        # Scrapy 2.19's code-running HTTP console, one per crawler: nobody attaches to a batch.
        "REMOTE_CONTROL_ENABLED": False,
    }
    settings = project_settings(args.db, args.sources, overrides)
    # LOG_FILE per crawler only names the file in crawl_runs.log_file (CrawlRunRecorder reads it).
    per_crawler = {name: {"LOG_FILE": str(crawl_log_path(args.log_dir, name, args.stamp))} for name in args.names}
    from spiders.news import NewsSpider

    requests = [CrawlRequest(source=name) for name in args.names]
    try:
        process, _ = build_process(requests, settings, per_crawler, spider_class=NewsSpider)
    except ExtractionPoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _child_logging(settings, args.names, args.log_dir, args.stamp)
    process.start()
    return 1 if process.bootstrap_failed else 0


if __name__ == "__main__":
    sys.exit(child_main())
