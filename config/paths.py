"""Where the project's files are: its root (where scrapy.cfg and runner.py stand) and each crawl's log."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Per-crawl log file names: <log dir>/<source>/<stamp>.log.
STAMP_FORMAT = "%Y%m%dT%H%M%S"


def crawl_log_path(log_dir: str | os.PathLike[str], source: str, stamp: str) -> Path:
    """Where one run's Scrapy log goes: <log dir>/<source>/<stamp>.log."""
    return Path(log_dir) / source / f"{stamp}.log"
