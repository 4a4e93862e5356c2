"""`export`, `search`, `status --json` and `--version`: real SQLite files written through the
project's own storage code (archive.Archive), read by `python scheduler.py ...` subprocesses."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import tomllib
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.queries import export_articles, open_read_only
from archive.sqlite import sqlite3
from archive.store import Archive, PendingWrites
from commands.export import write_export

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("harbour", "council", "budget", "station", "market", "bridge", "winter", "garden", "school", "ferry")
START = datetime(2024, 1, 1, tzinfo=UTC)


def article(number: int, source: str, *, text_words: int = 60) -> dict[str, object]:
    """An article row as the store pipeline writes it; its words depend on its number."""
    when = (START + timedelta(hours=number)).isoformat()
    words = [WORDS[(number * 7 + i) % len(WORDS)] for i in range(text_words)]
    return {
        "url": f"https://news.example/{source}/{number}.html",
        "source": source,
        "title": f"Story {number} about the {WORDS[number % len(WORDS)]}",
        "authors": [f"Writer {number % 3}"],
        "published_at": when,
        "text": f"Story number {number}. " + " ".join(words),
        "word_count": text_words + 3,
        "fetched_at": when,
        "first_seen_at": when,
        "last_seen_at": when,
    }


def build_archive(path: Path, count: int, sources: tuple[str, ...] = ("alpha", "beta")) -> Path:
    """`count` articles, shared out between `sources` in turn, written batch by batch as a crawl does."""
    archive = Archive.open(path)
    try:
        for start in range(0, count, 1000):
            rows = [article(n, sources[n % len(sources)]) for n in range(start, min(count, start + 1000))]
            archive.write(PendingWrites(new=rows))
    finally:
        archive.close()
    return path


def scheduler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scheduler.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def fingerprint(db: Path) -> dict[str, str]:
    """The bytes of the database and of its WAL: a command that wrote changes one. (A reader of a
    WAL database may create an empty WAL file: it holds nothing.)"""
    files = [db, db.with_name(db.name + "-wal")]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists() and f.stat().st_size}


@pytest.fixture(scope="module")
def archive_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_archive(tmp_path_factory.mktemp("archive") / "news.db", 300)


@pytest.fixture(scope="module")
def sources_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "sources.toml"
    path.write_text(
        '[defaults]\nevery = "1h"\n\n'
        '[[source]]\nname = "alpha"\nfeeds = ["https://news.example/alpha.xml"]\n\n'
        '[[source]]\nname = "beta"\nfeeds = ["https://news.example/beta.xml"]\n\n'
        '[[source]]\nname = "gamma"\nfeeds = ["https://news.example/gamma.xml"]\n',
        encoding="utf-8",
    )
    return path


# --- export -------------------------------------------------------------------------------------


def test_export_writes_every_article_as_json_lines_and_changes_nothing(archive_db: Path, sources_file: Path) -> None:
    before = fingerprint(archive_db)
    result = scheduler("export", "--db", str(archive_db), "--sources", str(sources_file))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 300
    assert [r["url"] for r in rows] == [article(n, ("alpha", "beta")[n % 2])["url"] for n in range(300)]
    assert rows[5]["authors"] == ["Writer 2"]  # a JSON column comes out as JSON, not as a string
    assert rows[5]["title"] == "Story 5 about the bridge"
    assert result.stderr.strip() == "exported 300 articles to stdout"
    assert fingerprint(archive_db) == before


def test_the_read_connection_cannot_write(archive_db: Path) -> None:
    db = open_read_only(archive_db)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("UPDATE articles SET title = 'changed'")
    finally:
        db.close()


def test_export_csv_to_a_file_with_source_since_and_query(archive_db: Path, sources_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "beta.csv"
    since = (START + timedelta(hours=100)).date().isoformat()  # 2024-01-05: article 96 onwards
    result = scheduler(
        "export", "--db", str(archive_db), "--sources", str(sources_file), "--format", "csv",
        "--source", "beta", "--since", since, "--query", "Story number 101", "--output", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with out.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    # Every word must match: "101" is only in article 101, which is beta's (odd) and recent enough.
    assert [row["url"] for row in rows] == ["https://news.example/beta/101.html"]
    assert json.loads(rows[0]["authors"]) == ["Writer 2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beta.csv"]  # no partial file left

    since_rows = scheduler("export", "--db", str(archive_db), "--source", "beta", "--since", since)
    urls = [json.loads(line)["url"] for line in since_rows.stdout.splitlines()]
    assert urls == [f"https://news.example/beta/{n}.html" for n in range(97, 300, 2)]


def test_a_search_export_is_in_best_match_order_across_batches(
    archive_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the matches' rowids are sorted, their rows read batch by batch: the order is still the
    ranking's (bm25, then URL), each match with its own row."""
    import archive.queries

    monkeypatch.setattr(archive.queries, "FETCH_ROWS", 7)  # 150 matches: 22 batches
    conn = sqlite3.connect(f"file:{archive_db}?mode=ro", uri=True)
    try:
        expected = [
            url
            for (url,) in conn.execute(
                "SELECT a.url FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid"
                " WHERE articles_fts MATCH 'story' AND a.source = 'alpha' ORDER BY articles_fts.rank, a.url"
            )
        ]
    finally:
        conn.close()
    db = open_read_only(archive_db)
    try:
        rows = list(export_articles(db, source="alpha", query="story"))
    finally:
        db.close()
    assert [row["url"] for row in rows] == expected
    assert len(expected) == 150
    assert len({row["text"] for row in rows}) == 150  # each its own row, not a neighbour's
    assert all(row["url"].endswith(f"/{row['text'].split('.')[0].split()[-1]}.html") for row in rows)


def test_export_refuses_an_unknown_source_and_a_missing_database(archive_db: Path, sources_file: Path) -> None:
    unknown = scheduler("export", "--db", str(archive_db), "--sources", str(sources_file), "--source", "nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        f'error: --source: no source named "nosuch" in the archive or in {sources_file}'
    ]
    assert unknown.stdout == ""
    # A source in the sources file that has stored nothing yet is no error: it has nothing to export.
    gamma = scheduler("export", "--db", str(archive_db), "--sources", str(sources_file), "--source", "gamma")
    assert (gamma.returncode, gamma.stdout) == (0, "")

    missing = archive_db.parent / "none.db"
    result = scheduler("export", "--db", str(missing))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: no database at {missing}: nothing has been crawled into it yet"
    assert not missing.exists()


def export_peak(db_path: Path) -> tuple[int, int]:
    """Rows exported and the peak of Python memory allocated while exporting them."""
    db = open_read_only(db_path)
    try:
        with open(os.devnull, "w", encoding="utf-8") as sink:
            tracemalloc.start()
            try:
                count = write_export(export_articles(db), sink, "jsonl")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        db.close()
    return count, peak


def test_export_memory_does_not_grow_with_the_number_of_rows(tmp_path: Path) -> None:
    small = build_archive(tmp_path / "small.db", 2_000)
    large = build_archive(tmp_path / "large.db", 20_000)
    small_count, small_peak = export_peak(small)
    large_count, large_peak = export_peak(large)
    assert (small_count, large_count) == (2_000, 20_000)
    # Each row is ~600 bytes of text: 18,000 more rows held at once would be 10 MB more. Streamed,
    # the peak is one fetch window's worth either way.
    assert large_peak < small_peak * 1.25 + 100_000, (small_peak, large_peak)


# --- search -------------------------------------------------------------------------------------


def test_search_shows_snippets_best_match_first(archive_db: Path, sources_file: Path) -> None:
    result = scheduler("search", "number 42", "--db", str(archive_db), "--sources", str(sources_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "  1. Story 42 about the budget  (alpha, 2024-01-02)"
    assert lines[1].strip() == "https://news.example/alpha/42.html"
    assert "Story [number] [42]" in lines[2]  # off a terminal, matches are marked with brackets
    assert len(lines) == 3  # every word must match: only article 42 has "42"


def test_search_newest_first_by_source_with_a_limit(archive_db: Path, sources_file: Path) -> None:
    result = scheduler(
        "search", "harbour", "--newest", "--source", "beta", "--limit", "3",
        "--db", str(archive_db), "--sources", str(sources_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    urls = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("https://")]
    assert urls == [f"https://news.example/beta/{n}.html" for n in (299, 297, 295)]
    assert all("[harbour]" in line for line in result.stdout.splitlines()[2::3])


def test_search_queries_fts5_syntax_only_when_asked(archive_db: Path, sources_file: Path) -> None:
    quoted = scheduler("search", "NOT harbour:", "--db", str(archive_db), "--limit", "1")
    assert quoted.returncode == 0, quoted.stderr  # as typed: "NOT" and "harbour:" are words
    raw = scheduler("search", "harbour OR", "--raw-query", "--db", str(archive_db))
    assert raw.returncode == 2
    [line] = raw.stderr.splitlines()
    assert line.startswith("error: search: cannot read the search query: fts5: syntax error")
    either = scheduler("search", "42 OR 43", "--raw-query", "--db", str(archive_db))
    assert {line.strip() for line in either.stdout.splitlines() if "https://" in line} == {
        "https://news.example/alpha/42.html",
        "https://news.example/beta/43.html",
    }
    nothing = scheduler("search", "zeppelin", "--db", str(archive_db))
    assert (nothing.returncode, nothing.stdout, nothing.stderr.strip()) == (0, "", "no articles match 'zeppelin'")


# --- status --json and --version ----------------------------------------------------------------


def test_status_json_gives_each_source_and_the_daemon(tmp_path: Path, sources_file: Path) -> None:
    db = build_archive(tmp_path / "news.db", 10)
    archive = Archive.open(db)
    run_id = archive.start_run("alpha")
    failed = "https://news.example/x"
    archive.record_failure(run_id=run_id, source="alpha", url=failed, stage="fetch", reason="HTTP 500")
    archive.finish_run(run_id, status="failed", finish_reason="finished", counts={"requests": 4, "failures": 1})
    archive.finish_run(archive.start_run("adhoc_example_org"), status="ok", finish_reason="finished", counts={})
    archive.finish_run(archive.start_run("removed"), status="ok", finish_reason="finished", counts={})
    archive.close()
    before = fingerprint(db)

    result = scheduler("status", "--json", "--db", str(db), "--sources", str(sources_file))
    assert result.returncode == 3, result.stderr  # no daemon: as `status`
    report = json.loads(result.stdout)
    assert report["daemon"] is None
    by_name = {s["name"]: s for s in report["sources"]}
    assert list(by_name) == ["alpha", "beta", "gamma", "removed"]  # ad-hoc crawls are not sources
    alpha = by_name["alpha"]
    assert alpha["last_run"]["status"] == "failed"
    assert (alpha["last_run"]["requests"], alpha["failed_runs_24h"], alpha["failures_24h"]) == (4, 1, 1)
    assert (alpha["articles"], alpha["schedule"], alpha["in_sources_file"]) == (5, "every 1h", True)
    assert datetime.fromisoformat(alpha["next_run_at"]) > datetime.fromisoformat(alpha["last_run"]["started_at"])
    assert by_name["gamma"]["last_run"] is None
    assert (by_name["removed"]["in_sources_file"], by_name["removed"]["next_run_at"]) == (False, None)
    assert fingerprint(db) == before


def test_version_is_the_one_in_pyproject() -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    result = scheduler("--version")
    assert (result.returncode, result.stdout) == (0, f"scheduler.py {expected}\n")
