"""reextract: stored raw HTML extracted again, changed articles (and their search index) updated."""

from __future__ import annotations

import argparse
import gzip
import json
import zlib
from pathlib import Path

import pytest

from archive.near_duplicates import band_buckets, signature
from archive.raw_html import raw_html, raw_page_row
from archive.schema import open_db
from commands.reextract import add_reextract_command
from extraction import extract_article
from pipelines.dedupe import body_hash
from pipelines.reextract import reextract

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BARRIER_URL = "https://harbourpost.example/news/tidal-barrier-opens"
LIBRARY_URL = "https://townnews.example/2021/library-hours"
FERRY_URL = "https://nordkurier-beispiel.example/region/faehre-suedholm"


def fixture_html(name: str) -> str:
    return (FIXTURES / f"{name}.html").read_text(encoding="utf-8")


def store(db_path: Path, url: str, html: str, fields: dict, *, source: str, fetched_at: str) -> None:
    """An article row as the pipeline writes it, and its raw page."""
    db = open_db(db_path)
    row = {
        "url": url,
        "source": source,
        "fetched_at": fetched_at,
        "first_seen_at": fetched_at,
        "last_seen_at": fetched_at,
        "body_hash": body_hash(fields.get("text") or ""),
        **{k: v for k, v in fields.items() if k not in ("page_type", "page_canonical", "is_amp")},
    }
    with db.atomic():
        db["articles"].insert(row)
        db["raw_pages"].insert(
            raw_page_row(url, html, fetched_at=fetched_at, http_status=200, content_type="text/html")
        )
    db.close()


def stale_fields() -> dict:
    """What an older extractor stored for the tidal-barrier page."""
    return {
        "title": "Tidal barrier opens two years late after budget row | The Harbour Post",
        "authors": ["The Harbour Post", "Maren Solberg", "Tobias Quill"],
        "published_at": "2024-03-06",
        "modified_at": "2024-03-06T08:15:00+00:00",
        "language": None,
        "sitename": "The Harbour Post",
        "description": None,
        "categories": ["Local"],
        "tags": [],
        "image": None,
        "text": "Stale floodgate paragraph. Advertisement. Scroll to Top",
        "markdown": "Stale floodgate paragraph. Advertisement. Scroll to Top",
        "word_count": 8,
        "provenance": {"title": "trafilatura", "text": "trafilatura"},
    }


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    db_path = tmp_path / "news.db"
    store(
        db_path,
        BARRIER_URL,
        fixture_html("article_jsonld"),
        stale_fields(),
        source="harbour",
        fetched_at="2024-03-06T10:00:00+00:00",
    )
    current = extract_article(fixture_html("article_meta"), FERRY_URL, {})
    store(
        db_path,
        FERRY_URL,
        fixture_html("article_meta"),
        current,
        source="nordkurier",
        fetched_at="2023-11-15T08:00:00+00:00",
    )
    return db_path


def search(db_path: Path, query: str) -> list[str]:
    db = open_db(db_path)
    try:
        return [row["url"] for row in db["articles"].search(query)]
    finally:
        db.close()


def test_changed_fields_are_updated_and_counted(archive: Path) -> None:
    counts = reextract(archive)
    assert counts["articles"] == 2
    assert counts["updated"] == 1  # the ferry article was stored by the current extractor
    assert counts["failed"] == 0
    for field in ("title", "authors", "published_at", "language", "text", "markdown", "word_count"):
        assert counts[field] == 1, field
    for field in ("modified_at", "sitename", "categories"):
        assert counts[field] == 0, field

    db = open_db(archive)
    row = db["articles"].get(BARRIER_URL)
    db.close()
    assert row["title"] == "Tidal barrier opens two years late after budget row"
    assert json.loads(row["authors"]) == ["Maren Solberg", "Tobias Quill"]
    assert row["published_at"] == "2024-03-05T22:30:00+00:00"
    assert row["language"] == "en"
    assert "spring tides next month" in row["text"]
    assert "Scroll to Top" not in row["text"]
    assert row["body_hash"] == body_hash(row["text"])
    assert row["updated_at"] is not None
    assert json.loads(row["provenance"])["title"].startswith("json-ld")
    db = open_db(archive)
    stored = db.execute("SELECT signature FROM article_signatures WHERE url = ?", [BARRIER_URL]).fetchone()
    bands = db.execute(
        "SELECT count(*) FROM signature_bands JOIN article_signatures ON signature_id = id WHERE url = ?",
        [BARRIER_URL],
    ).fetchone()[0]
    db.close()
    assert stored[0] == signature(row["text"])
    assert bands == len(band_buckets(stored[0]))


def test_search_index_follows_the_update(archive: Path) -> None:
    assert search(archive, "floodgate") == [BARRIER_URL]
    assert search(archive, "estuary") == []
    reextract(archive)
    assert search(archive, "floodgate") == []
    assert search(archive, "estuary") == [BARRIER_URL]


def test_second_run_changes_nothing(archive: Path) -> None:
    reextract(archive)
    counts = reextract(archive)
    assert counts["articles"] == 2
    assert counts["updated"] == 0
    assert counts["title"] == 0


def test_source_and_since_filters(archive: Path) -> None:
    assert reextract(archive, source="nordkurier") == {
        **reextract(archive, source="nordkurier"),
        "articles": 1,
    }
    assert reextract(archive, source="nordkurier")["updated"] == 0
    assert reextract(archive, since="2030-01-01")["articles"] == 0
    counts = reextract(archive, source="harbour", since="2024-03-01")
    assert (counts["articles"], counts["updated"]) == (1, 1)


def test_values_only_the_feed_knew_are_kept(tmp_path: Path) -> None:
    db_path = tmp_path / "news.db"
    hints = {"published": "Tue, 09 Nov 2021 07:00:00 +0000", "authors": ["Priya Natarajan"]}
    fields = extract_article(fixture_html("article_feedhints"), LIBRARY_URL, hints)
    assert fields["provenance"]["published_at"] == "feed"
    fields["text"] = "An older, shorter body."
    store(
        db_path,
        LIBRARY_URL,
        fixture_html("article_feedhints"),
        fields,
        source="town",
        fetched_at="2021-11-09T08:00:00+00:00",
    )
    counts = reextract(db_path)
    assert (counts["updated"], counts["text"], counts["published_at"], counts["authors"]) == (1, 1, 0, 0)
    db = open_db(db_path)
    row = db["articles"].get(LIBRARY_URL)
    db.close()
    assert row["published_at"] == "2021-11-09T07:00:00+00:00"
    assert json.loads(row["authors"]) == ["Priya Natarajan"]


def test_small_batches_cover_every_article(archive: Path) -> None:
    counts = reextract(archive, batch_size=1)
    assert (counts["articles"], counts["updated"]) == (2, 1)


def test_command_line(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="scheduler.py")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path)
    add_reextract_command(parser.add_subparsers(dest="command", required=True), common)
    args = parser.parse_args(["reextract", "--db", str(archive), "--source", "harbour", "--since", "2024-03-01"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "re-extracted 1 articles: 1 updated, 0 failed" in out
    assert "title 1" in out
    with pytest.raises(SystemExit):
        parser.parse_args(["reextract", "--db", str(archive), "--since", "last week"])


def reextracted_barrier(archive: Path) -> str:
    """The barrier article's stored text after a re-extraction that must update it."""
    counts = reextract(archive)
    assert counts["failed"] == 0
    assert counts["updated"] == 1
    db = open_db(archive)
    try:
        return db["articles"].get(BARRIER_URL)["text"]
    finally:
        db.close()


def test_pages_stored_zlib_compressed_before_zstd_are_still_read(archive: Path) -> None:
    db = open_db(archive)
    html = raw_html(db["raw_pages"].get(BARRIER_URL))
    with db.atomic():  # the row as a version of the project before zstd wrote it
        db["raw_pages"].update(BARRIER_URL, {"html_zlib": zlib.compress(html.encode()), "html_zstd": None})
    db.close()
    assert "spring tides next month" in reextracted_barrier(archive)


def test_pages_stored_as_the_gzip_bytes_they_came_in_are_read_in_their_charset(archive: Path) -> None:
    db = open_db(archive)
    html = raw_html(db["raw_pages"].get(BARRIER_URL)).replace(
        "spring tides", "spring tides at the Caf\u00e9 Br\u00fbl\u00e9"
    )
    with db.atomic():  # as a Windows-1252 page served gzipped is stored
        db["raw_pages"].update(
            BARRIER_URL,
            {"html_gzip": gzip.compress(html.encode("cp1252")), "charset": "cp1252", "html_zstd": None},
        )
    db.close()
    assert "spring tides at the Caf\u00e9 Br\u00fbl\u00e9 next month" in reextracted_barrier(archive)
