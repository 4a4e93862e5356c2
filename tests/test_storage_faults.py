"""Storage faults: a database that cannot be written, a full disk, kill -9, readers during writes.

Each test crawls the demo site with a real `scrapy crawl` process and then looks at the SQLite
file itself. The read-only cases need file permissions to bite: as root, the crawl process is
started without the capabilities that override them.
"""

from __future__ import annotations

import ctypes
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from archive.raw_pages import page_html
from archive.schema import open_db
from archive.sqlite import sqlite3
from archive.warc_files import warc_directory
from demo.server import DEFAULT_ROOT, SiteServer
from tests.conftest import ROOT, scrapy_crawl

DEMO_ARTICLES = 30  # every demo article is in the courier_feeds feeds (see tests/test_crawl.py)
PR_CAPBSET_DROP = 24  # <linux/prctl.h>
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # <linux/capability.h>


def crawl_command(source: str, db: Path, sources: Path, **settings: object) -> list[str]:
    command = [sys.executable, "-m", "scrapy", "crawl", "news", "-a", f"source={source}"]
    for name, value in {"NEWS_DB_PATH": db, "NEWS_SOURCES_FILE": sources, **settings}.items():
        command += ["-s", f"{name}={value}"]
    return command


def connect_read_only(db: Path, timeout: float = 0.05) -> sqlite3.Connection:
    """A connection as Datasette opens one on a database that changes under it."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)


def assert_consistent(db: Path) -> int:
    """The checks a crash must not break; returns the number of articles."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # An article and the reference to its raw page are committed together, after the page's
        # WARC record is on disk: never one alone, never a reference to bytes that are not there.
        assert conn.execute(
            "SELECT count(*) FROM articles WHERE url NOT IN (SELECT url FROM raw_page_refs)"
        ).fetchone() == (0,)
        conn.row_factory = sqlite3.Row
        for ref in conn.execute("SELECT * FROM raw_page_refs"):
            assert "</html>" in page_html(warc_directory(db), dict(ref)).lower()
        conn.row_factory = None
        conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('integrity-check')")
        (articles,) = conn.execute("SELECT count(*) FROM articles").fetchone()
        assert conn.execute("SELECT count(*) FROM articles_fts").fetchone() == (articles,)
        return articles
    finally:
        conn.close()


def wait_for_articles(db: Path, count: int, process: subprocess.Popen[str], timeout: float = 120) -> int:
    conn = connect_read_only(db)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            (stored,) = conn.execute("SELECT count(*) FROM articles").fetchone()
            if stored >= count:
                return stored
            assert process.poll() is None, "the crawl ended before the fault could be injected"
            time.sleep(0.01)
    finally:
        conn.close()
    raise AssertionError(f"fewer than {count} articles after {timeout}s")


# --- a database that cannot be written ------------------------------------------------------------


def without_permission_overrides() -> None:
    """preexec_fn: as root, start the child without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so file
    modes apply to it as to anyone (a root-owned 0555 directory is then read-only for it)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Path:
    """A directory the crawl process can read but not write; made writable again afterwards."""
    directory = tmp_path / "ro"
    directory.mkdir()
    yield directory
    for path in (directory, *directory.iterdir()):
        path.chmod(0o755)


def lock(directory: Path) -> None:
    for path in directory.iterdir():
        path.chmod(0o444)
    directory.chmod(0o555)
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(directory / 'probe')!r}, 'w')"],
        preexec_fn=without_permission_overrides,
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        pytest.skip("file permissions cannot be enforced here (root without CAP_SETPCAP)")


def run_refused(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=without_permission_overrides,
    )


def test_a_read_only_database_stops_the_crawl_before_any_fetch(read_only_dir: Path, demo_sources: Path) -> None:
    db = read_only_dir / "news.db"
    open_db(db).close()
    before = db.read_bytes()
    lock(read_only_dir)
    server = SiteServer(DEFAULT_ROOT).start()
    try:
        result = run_refused(crawl_command("courier_feeds", db, demo_sources))
        requests = list(server.requests)
    finally:
        server.stop()
    assert result.returncode == 1
    error = f"cannot write the archive database {db}: attempt to write a readonly database"
    assert f"[crawl.run_records] ERROR: {error}; the crawl of courier_feeds does not start" in result.stderr
    assert result.stderr.count("Traceback") <= 1  # Scrapy reports the failed start once; no loop
    assert requests == []
    assert db.read_bytes() == before


def test_a_database_where_no_file_can_be_created_is_one_clear_error(read_only_dir: Path, demo_sources: Path) -> None:
    lock(read_only_dir)
    db = read_only_dir / "sub" / "news.db"
    result = run_refused(crawl_command("courier_feeds", db, demo_sources))
    assert result.returncode == 1
    assert f"[crawl.run_records] ERROR: cannot write the archive database {db}: [Errno 13] Permission denied" in (
        result.stderr
    )
    assert result.stderr.count("Traceback") <= 1


# --- a full disk --------------------------------------------------------------------------------


def ignore_file_size_signal() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail (EFBIG) instead


@dataclass(frozen=True)
class FullDisk:
    db: Path
    stderr: str


@pytest.fixture(scope="module")
def full_disk(site: SiteServer, demo_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> FullDisk:
    """A crawl whose disk fills up once the first articles are stored: from then on the crawl
    process may not grow any file, so to SQLite the disk is full (its writes fail with
    SQLITE_IOERR here, SQLITE_FULL on a real disk; both stop the crawl the same way)."""
    db = tmp_path_factory.mktemp("full-disk") / "news.db"
    open_db(db).close()
    command = crawl_command(
        "courier_feeds",
        db,
        demo_sources,
        NEWS_STORE_BATCH_SIZE=3,
        DOWNLOAD_DELAY=0.2,  # slow enough that the limit lands mid-crawl
        CONCURRENT_REQUESTS_PER_DOMAIN=1,
    )
    crawl = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_file_size_signal,
    )
    try:
        wait_for_articles(db, 1, crawl)
        files = [p.stat().st_size for p in db.parent.iterdir() if p.name.startswith("news.db")]
        limit = max(files) + 16 * 1024  # room for the run's last rows, not for another batch
        resource.prlimit(crawl.pid, resource.RLIMIT_FSIZE, (limit, limit))
        _, stderr = crawl.communicate(timeout=180)
    finally:
        crawl.kill()
    return FullDisk(db, stderr)


def test_a_full_disk_mid_crawl_fails_the_run_with_one_clear_error(full_disk: FullDisk) -> None:
    db, stderr = full_disk.db, full_disk.stderr
    assert stderr.count(f"ERROR: cannot write the archive database {db}: OperationalError: disk I/O error") == 1
    assert "; stopping the crawl" in stderr
    assert "Traceback" not in stderr
    assert 0 < assert_consistent(db) < DEMO_ARTICLES
    conn = sqlite3.connect(db)
    (run,) = conn.execute("SELECT status, finish_reason FROM crawl_runs").fetchall()
    assert run == ("failed", "storage_error")
    for stage, reason in conn.execute("SELECT stage, reason FROM failures"):  # those that fitted
        assert (stage, reason) == ("store", "OperationalError: disk I/O error")
    conn.close()


def test_articles_a_full_disk_turned_away_are_stored_by_the_next_crawl(full_disk: FullDisk, demo_sources: Path) -> None:
    scrapy_crawl("courier_feeds", db=full_disk.db, sources=demo_sources)
    assert assert_consistent(full_disk.db) == DEMO_ARTICLES


# --- kill -9 ------------------------------------------------------------------------------------


def test_kill_9_mid_crawl_leaves_whole_batches_only(site: SiteServer, demo_sources: Path, tmp_path: Path) -> None:
    """SIGKILL at two random moments of a crawl writing two articles per transaction: the file
    passes SQLite's checks, and every stored article came with its raw page and its index entry.
    The crawl is the home page source: it finds the articles through listing pages, which are
    fetched every run."""
    db = tmp_path / "news.db"
    open_db(db).close()
    command = crawl_command(
        "courier_front",
        db,
        demo_sources,
        NEWS_STORE_BATCH_SIZE=2,
        # Pages stored about as fast as they come (no worker pool warming up while pages pile
        # up), and slowly enough that each kill lands with articles still to go.
        NEWS_EXTRACT_WORKERS=0,
        DOWNLOAD_DELAY=0.2,
        CONCURRENT_REQUESTS_PER_DOMAIN=1,
    )
    random.seed(6)
    stored = 0
    for _ in range(2):
        crawl = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_for_articles(db, stored + 1, crawl)
            time.sleep(random.uniform(0, 0.4))
        finally:
            os.killpg(crawl.pid, signal.SIGKILL)  # the crawl and its extraction workers
            crawl.wait(timeout=30)
        stored = assert_consistent(db)
        assert 0 < stored < DEMO_ARTICLES
    # The next crawl carries on: the stored articles are skipped, the rest fetched.
    scrapy_crawl("courier_front", db=db, sources=demo_sources)
    assert assert_consistent(db) == DEMO_ARTICLES
    conn = sqlite3.connect(db)
    statuses = [status for (status,) in conn.execute("SELECT status FROM crawl_runs ORDER BY id")]
    conn.close()
    # A killed run cannot record its end; the next crawl finds its process gone and closes it.
    assert statuses == ["failed", "failed", "ok"]


# --- readers while the crawler writes -------------------------------------------------------------


def test_readers_never_see_database_is_locked_while_the_crawler_writes(
    site: SiteServer, demo_sources: Path, tmp_path: Path
) -> None:
    """Two reader threads hammer SELECTs (as Datasette would) with a 50 ms busy timeout while a
    crawl writes in small batches: WAL mode means no reader ever waits for the writer."""
    db = tmp_path / "news.db"
    open_db(db).close()
    errors: list[str] = []
    counts: list[int] = []
    done = threading.Event()

    def read() -> None:
        conn = connect_read_only(db)
        try:
            while not done.is_set():
                try:
                    counts.append(conn.execute("SELECT count(*) FROM articles").fetchone()[0])
                    conn.execute("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'harbour' LIMIT 5").fetchall()
                    conn.execute("SELECT url, title FROM articles ORDER BY published_at DESC LIMIT 10").fetchall()
                    conn.execute("SELECT status FROM crawl_runs ORDER BY id DESC LIMIT 1").fetchall()
                except sqlite3.OperationalError as exc:
                    errors.append(str(exc))
        finally:
            conn.close()

    readers = [threading.Thread(target=read, daemon=True) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        scrapy_crawl("courier_feeds", db=db, sources=demo_sources, settings={"NEWS_STORE_BATCH_SIZE": "2"})
    finally:
        done.set()
        for reader in readers:
            reader.join(timeout=10)
    assert errors == []
    assert len(counts) > 200
    assert len(set(counts)) >= 3  # the readers saw the archive grow, batch by batch
    assert max(counts) == DEMO_ARTICLES


def test_queue_folders_left_by_killed_crawls_are_removed_by_a_later_one(tmp_path: Path) -> None:
    from crawl.disk_queue import DiskRequestQueue

    old, fresh, other = tmp_path / "news-queue-old", tmp_path / "news-queue-fresh", tmp_path / "keep-me"
    for folder in (old, fresh, other):
        (folder / "requests.queue").mkdir(parents=True)
    day_ago = time.time() - DiskRequestQueue.STALE_AFTER - 60
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    assert DiskRequestQueue.remove_stale(tmp_path) == [old]
    assert not old.exists()
    assert fresh.exists()  # a crawl still running
    assert other.exists()  # not ours
