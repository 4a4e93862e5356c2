"""The command line's errors and exit codes: a one-line error for bad input, before anything is
created or crawled; an exit code that says what happened (docs/exit-codes.md); a crawl that
fetched nothing is no success; `status` never writes; a closed pipe ends it quietly.

Each case runs `python scheduler.py ...` as a user does, against a local site on 127.0.0.1.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import scheduler
from archive.schema import open_db
from archive.sqlite import sqlite3
from demo.server import SiteServer
from scheduler import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, EXIT_USAGE, build_parser
from tests.conftest import ROOT, run_scheduler
from tests.test_storage_faults import lock, read_only_dir, without_permission_overrides

__all__ = ["read_only_dir"]  # a fixture, used by name

DOCS = ROOT / "docs" / "exit-codes.md"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def no_traceback(output: str) -> None:
    assert "Traceback" not in output
    assert "Unhandled error in Deferred" not in output


# --- crawl --url: only http(s) URLs with a host, refused before anything starts ------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("file:///etc/passwd", "only http and https URLs are crawled, not file:"),
        ("ftp://news.example/feed.xml", "only http and https URLs are crawled, not ftp:"),
        ("data:text/html,<p>hello</p>", "only http and https URLs are crawled, not data:"),
        ("not a url", "not a URL (no scheme); give one such as https://news.example/"),
        ("http://", "the URL has no host"),
        ("http://[::1/", "not a valid URL (Invalid IPv6 URL)"),
    ],
)
def test_a_url_that_cannot_be_crawled_is_one_line_and_a_usage_error(url: str, problem: str, tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    result = run_scheduler("crawl", "--url", url, "--db", str(db), timeout=60)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.splitlines() == [f"error: crawl --url {url!r}: {problem}"]
    assert result.stdout == ""  # no "0 articles" summary: nothing ran
    assert not db.exists()


# --- log levels ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["crawl", "run", "worker", "writer", "push"])
def test_log_levels_are_taken_in_any_case_and_listed_in_help(command: str) -> None:
    parser = build_parser()
    extra = ["--all"] if command in ("crawl", "push") else []
    assert parser.parse_args([command, *extra, "--log-level", "warning"]).log_level == "WARNING"
    assert parser.parse_args([command, *extra, "--log-level", "Debug"]).log_level == "DEBUG"
    help_text = run_scheduler(command, "--help", timeout=60).stdout
    assert "--log-level {DEBUG,INFO,WARNING,ERROR,CRITICAL}" in help_text


def test_the_daemons_crawl_log_level_too() -> None:
    args = build_parser().parse_args(["run", "--crawl-log-level", "error"])
    assert args.crawl_log_level == "ERROR"


def test_an_unknown_log_level_is_a_usage_error_before_the_database_exists(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    result = run_scheduler("crawl", "--url", "https://news.example/", "--db", str(db), "--log-level", "loud")
    assert result.returncode == EXIT_USAGE
    assert result.stderr.splitlines()[-1] == (
        "scheduler.py crawl: error: argument --log-level: invalid choice: 'LOUD' "
        "(choose from 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')"
    )
    no_traceback(result.stderr)
    assert not db.exists()


def test_a_lowercase_log_level_sets_the_crawls_level(tmp_path: Path) -> None:
    """`--log-level warning` is WARNING: the crawl runs, and logs no INFO line."""
    url = f"http://127.0.0.1:{closed_port()}/"
    result = run_scheduler("crawl", "--url", url, "--db", str(tmp_path / "news.db"), "--log-level", "warning")
    assert "] WARNING: failure [fetch] " in result.stderr
    assert "] INFO: " not in result.stderr
    no_traceback(result.stderr)


# --- a crawl that fetched nothing is no success ----------------------------------------------------


def test_a_private_address_refused_is_a_failed_source_with_its_reason(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    result = run_scheduler("crawl", "--url", url, "--db", str(tmp_path / "news.db"))
    assert result.returncode == EXIT_FAILED
    assert result.stdout.splitlines()[0] == (
        "adhoc_127_0_0_1: failed - nothing came of it: refused: 127.0.0.1 is a loopback address; "
        "set allow_private = true on the source to crawl it; 1 failures (0 requests)"
    )
    no_traceback(result.stderr)


def test_an_unreachable_source_fails_and_the_reachable_one_is_ok(site: SiteServer, tmp_path: Path) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[defaults]\nallow_private = true\ndelay = "0s"\nevery = "1h"\n\n'
        f'[[source]]\nname = "reachable"\nfeeds = ["{site.base_url}/feeds/rss.xml"]\n\n'
        f'[[source]]\nname = "unreachable"\nfeeds = ["http://127.0.0.1:{closed_port()}/feed.xml"]\n',
        encoding="utf-8",
    )
    db = tmp_path / "news.db"
    result = run_scheduler("crawl", "reachable", "unreachable", "--sources", str(sources), "--db", str(db))
    assert result.returncode == EXIT_FAILED
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines()[:2])
    assert lines["reachable"].startswith("ok - ")
    assert re.fullmatch(
        r"failed - nothing came of it: refused: robots\.txt could not be read \(.*Connection refused.*\), "
        r"so nothing on the host is fetched; 1 failures \(\d+ requests\)",
        lines["unreachable"],
    ), lines["unreachable"]
    # The run is recorded as it finished; only the summary and the exit code judge it.
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT source, status FROM crawl_runs ORDER BY source").fetchall() == [
        ("reachable", "ok"),
        ("unreachable", "ok"),
    ]


def test_a_crawl_that_stored_articles_exits_ok(site: SiteServer, tmp_path: Path) -> None:
    """The control for the cases above: a source that came to something is ok, exit 0."""
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "reachable"\nallow_private = true\ndelay = "0s"\nevery = "1h"\n'
        f'max_age = "100000d"\nfeeds = ["{site.base_url}/feeds/rss.xml"]\n',
        encoding="utf-8",
    )
    result = run_scheduler("crawl", "reachable", "--sources", str(sources), "--db", str(tmp_path / "news.db"))
    assert result.returncode == EXIT_OK, result.stdout + result.stderr[-3000:]
    assert re.match(r"reachable: ok - [1-9]\d* new, ", result.stdout)


# --- status and list only read ------------------------------------------------------------------


def archive_with_a_run(db: Path) -> None:
    archive = open_db(db)
    archive["crawl_runs"].insert({"source": "harbour", "started_at": "2024-05-01T10:00:00+00:00", "status": "ok"})
    archive.close()


def test_status_reads_a_database_it_may_not_write(read_only_dir: Path) -> None:
    db = read_only_dir / "news.db"
    archive_with_a_run(db)
    before = db.read_bytes()
    lock(read_only_dir)
    result = subprocess.run(
        [sys.executable, "scheduler.py", "status", "--db", str(db), "--sources", str(ROOT / "sources.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=without_permission_overrides,
    )
    assert result.returncode == EXIT_NOT_RUNNING, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("daemon: never run on this database")
    assert re.search(r"^harbour ", result.stdout, re.MULTILINE)
    assert db.read_bytes() == before


def test_status_changes_nothing_in_a_database_it_may_write(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    archive_with_a_run(db)
    before = db.read_bytes()
    result = run_scheduler("status", "--db", str(db), "--sources", str(ROOT / "sources.toml"), timeout=60)
    assert result.returncode == EXIT_NOT_RUNNING
    assert db.read_bytes() == before


def test_list_never_opens_the_database(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    result = run_scheduler("list", "--db", str(db), "--sources", str(ROOT / "sources.toml"), timeout=60)
    assert result.returncode == EXIT_OK
    assert not db.exists()


def test_a_reader_that_stops_reading_ends_status_quietly(tmp_path: Path) -> None:
    """`status | head -1`: the pipe closes before status has written; no error blamed on the database."""
    db = tmp_path / "news.db"
    archive_with_a_run(db)
    process = subprocess.Popen(
        [sys.executable, "scheduler.py", "status", "--db", str(db), "--sources", str(ROOT / "sources.toml")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # before the interpreter has even started: every write finds no reader
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_BROKEN_PIPE
    assert stderr == ""


# --- reextract --source ----------------------------------------------------------------------------


def test_reextract_of_an_unknown_source_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    archive_with_a_run(db)  # harbour: known to the archive, no longer in the sources file
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[[source]]\nname = "lighthouse"\nevery = "1h"\nfeeds = ["https://news.example/feed"]\n', encoding="utf-8"
    )
    for known in ("harbour", "lighthouse"):
        result = run_scheduler("reextract", "--source", known, "--db", str(db), "--sources", str(sources))
        assert result.returncode == EXIT_OK, result.stderr
        assert result.stdout.startswith("re-extracted 0 articles")
    unknown = run_scheduler("reextract", "--source", "nosuch", "--db", str(db), "--sources", str(sources))
    assert unknown.returncode == EXIT_USAGE
    assert unknown.stderr.splitlines() == [
        f'error: reextract: no source named "nosuch" in sources.toml or the archive {db}'
    ]
    assert unknown.stdout == ""


# --- the table -----------------------------------------------------------------------------------


def test_the_exit_code_table_is_the_codes_the_commands_use() -> None:
    rows = re.findall(r"^\| (\d+) +\| `(EXIT_\w+)` +\|", DOCS.read_text(encoding="utf-8"), re.MULTILINE)
    documented = {name: int(code) for code, name in rows}
    defined = {name: value for name, value in vars(scheduler).items() if name.startswith("EXIT_")}
    assert documented == defined
    assert len(set(defined.values())) == len(defined)  # no code means two things


def test_other_usage_errors_exit_with_the_usage_code(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    for args in (["crawl", "--db", str(db)], ["crawl", "--all", "--url", "https://news.example/", "--db", str(db)]):
        result = run_scheduler(*args, timeout=60)
        assert result.returncode == EXIT_USAGE, args
        assert result.stderr.splitlines() == [
            "error: crawl: give source names, --all, or --url URL (exactly one of them)"
        ]
    assert not db.exists()


@pytest.mark.asyncio
async def test_datasette_changes_nothing_in_the_archive(tmp_path: Path) -> None:
    """The web side only reads: pages, JSON and canned queries leave the database file as it was."""
    from tests.test_datasette import make_datasette

    db = tmp_path / "news.db"
    archive_with_a_run(db)
    before = db.read_bytes()
    ds = make_datasette(db)
    for path in ("/", "/news", "/news/crawl_runs", "/news/crawl_runs.json", "/news/articles", "/-/dashboards"):
        response = await ds.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    refused = await ds.client.post("/news/-/query", data={"sql": "DELETE FROM crawl_runs"})
    assert refused.status_code == 405
    assert db.read_bytes() == before
