"""Shared fixtures: the demo site on 127.0.0.1, and crawls through the real `scrapy crawl`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from demo.server import DEFAULT_ROOT, SiteServer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEMO_SOURCES = ROOT / "demo" / "sources.toml"


@pytest.fixture(scope="session")
def site() -> SiteServer:
    """The demo site, served for the whole test session (its request log is shared: clear it)."""
    server = SiteServer(DEFAULT_ROOT).start()
    yield server
    server.stop()


def write_sources(text: str, base_url: str, path: Path) -> Path:
    path.write_text(text.replace("{{BASE}}", base_url), encoding="utf-8")
    return path


def run_scheduler(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python scheduler.py ARGS...` from the project root, as a user runs it."""
    return subprocess.run(
        [sys.executable, "scheduler.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def scrapy_crawl(
    source: str, *, db: Path, sources: Path, settings: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `scrapy crawl news -a source=NAME` from the project root, as a user would."""
    command = [
        sys.executable,
        "-m",
        "scrapy",
        "crawl",
        "news",
        "-a",
        f"source={source}",
        "-s",
        f"NEWS_DB_PATH={db}",
        "-s",
        f"NEWS_SOURCES_FILE={sources}",
        "-s",
        "LOG_LEVEL=INFO",
    ]
    for name, value in (settings or {}).items():
        command += ["-s", f"{name}={value}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"scrapy crawl failed:\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="session")
def demo_sources(site: SiteServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo/sources.toml pointed at the running demo site."""
    return write_sources(
        DEMO_SOURCES.read_text(encoding="utf-8"),
        site.base_url,
        tmp_path_factory.mktemp("sources") / "sources.toml",
    )


@pytest.fixture(scope="session")
def demo_db(site: SiteServer, demo_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database built by the real pipeline: every demo source crawled once. Treat as read-only."""
    db = tmp_path_factory.mktemp("demo-db") / "news.db"
    result = run_scheduler(
        "crawl",
        "--all",
        "--sources",
        str(demo_sources),
        "--db",
        str(db),
        "--log-level",
        "WARNING",
        timeout=300,
    )
    assert result.returncode == 0, f"demo crawl failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return db
