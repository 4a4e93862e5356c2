"""Faults and bad input: the fault site crawled once, every case judged, and the crawl goes on.

demo/faults.py serves each fault (HTTP errors, hangs, redirect loops, gzip bombs, undeclared
encodings, broken feeds, a 50,000-URL sitemap, file:// links, ...) and states what the archive
must show for it. One real `scrapy crawl` of the whole site runs here; each case is a test.
bench/faults.py prints the same verdicts as a table.

The sources-file cases at the end complete tests/test_sources.py: every broken file is one
line naming the file, the source and the field, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.retry_after import retry_after_seconds
from config.sources import SourceConfigError, load_sources
from crawl.bodies import binary_kind, guess_encoding
from demo.faults import (
    CASES,
    CHARSET_PAGES,
    CHARSET_TEXT,
    CRAWL_SETTINGS,
    Case,
    FaultServer,
    Outcome,
    charset_page,
    sources_toml,
)
from tests.conftest import scrapy_crawl

STAGES = {"fetch", "parse", "extract", "store"}


@dataclass(frozen=True)
class FaultCrawl:
    outcome: Outcome
    log: str


@pytest.fixture(scope="module")
def fault_crawl(tmp_path_factory: pytest.TempPathFactory) -> FaultCrawl:
    """One crawl of the whole fault site, as `scrapy crawl news -a source=faults`."""
    tmp = tmp_path_factory.mktemp("faults")
    server = FaultServer().start()
    try:
        sources = tmp / "sources.toml"
        sources.write_text(sources_toml(server.base_url), encoding="utf-8")
        log = tmp / "crawl.log"
        settings = {**CRAWL_SETTINGS, "LOG_FILE": str(log)}
        scrapy_crawl("faults", db=tmp / "news.db", sources=sources, settings=settings)
        text = log.read_text(encoding="utf-8")
        return FaultCrawl(Outcome.read(tmp / "news.db", server, text), text)
    finally:
        server.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_case(fault_crawl: FaultCrawl, case: Case) -> None:
    verdict = case.judge(fault_crawl.outcome)
    assert verdict.ok, f"expected: {case.expected}; observed: {verdict.observed}; {verdict.problems}"


def test_the_crawl_goes_on_and_ends_ok(fault_crawl: FaultCrawl) -> None:
    outcome = fault_crawl.outcome
    (run,) = outcome.runs
    assert (run["status"], run["finish_reason"]) == ("ok", "finished")
    assert run["failures"] == len(outcome.failures)
    assert run["articles_new"] == len(outcome.articles)
    assert "Traceback" not in fault_crawl.log
    for failure in outcome.failures:
        assert failure["run_id"] == run["id"]
        assert failure["source"] == "faults"
        assert failure["stage"] in STAGES
        assert failure["reason"]
        assert "\n" not in failure["reason"]


def test_every_failure_belongs_to_a_case(fault_crawl: FaultCrawl) -> None:
    """Nothing failed that no case expects (robots.txt, the good feed, the articles)."""
    expected = {c.path for c in CASES if c.failure}
    unexpected = [(f["path"], f["reason"]) for f in fault_crawl.outcome.failures if f["path"] not in expected]
    assert not unexpected


def test_no_local_file_was_read(fault_crawl: FaultCrawl) -> None:
    for failure in fault_crawl.outcome.failures:
        assert not failure["path"].startswith(("file:", "ftp:", "data:")) or failure["reason"].startswith("refused:")
    assert "root:" not in fault_crawl.log  # /etc/passwd's first line


# --- the pieces, one at a time ------------------------------------------------------------------


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(b"120", now) == 120
    assert retry_after_seconds("Wed, 25 Nov 2026 12:01:30 GMT", now) == 90
    assert retry_after_seconds("Wed, 25 Nov 2026 11:00:00 GMT", now) == 0  # already past: at once
    assert retry_after_seconds(b"soon", now) is None
    assert retry_after_seconds(None, now) is None


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n....", "a PNG image"),
        (b"%PDF-1.7 ...", "a PDF document"),
        (b"<html>\x00\x01\x02</html>", "binary data"),
        (b"<!doctype html><html><body>caf\xc3\xa9</body></html>", None),
        ("<html>caf\u00e9</html>".encode("utf-16"), None),  # UTF-16 with its BOM is text
    ],
)
def test_binary_bodies_are_told_from_text(body: bytes, kind: str | None) -> None:
    assert binary_kind(body) == kind


@pytest.mark.parametrize("slug", list(CHARSET_PAGES))
def test_undeclared_encodings_are_guessed_from_the_text(slug: str) -> None:
    encoding = guess_encoding(charset_page(slug))
    assert encoding is not None
    assert CHARSET_TEXT[slug][0] in charset_page(slug).decode(encoding)


# --- sources files: one line naming file, source and field -------------------------------------


def write(tmp_path: Path, text: str | bytes, name: str = "sources.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def one_line_error(path: Path) -> str:
    with pytest.raises(SourceConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


SOURCE = '[[source]]\nname = "bad"\nevery = "1h"\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (SOURCE + 'start_pages = ["file:///etc/passwd"]', 'source "bad": field "start_pages": expected'),
        (SOURCE + 'sitemaps = ["data:text/xml,<urlset/>"]', 'source "bad": field "sitemaps": expected'),
        (SOURCE + 'feeds = ["ftp://news.example/rss"]', 'source "bad": field "feeds": expected'),
        (SOURCE + 'feeds = ["http://"]', 'source "bad": field "feeds": expected'),
        (
            SOURCE + 'feeds = ["https://a.example/x"]\nallow_private = "yes"',
            'field "allow_private": expected true',
        ),
        (SOURCE + 'feeds = ["https://a.example/x"]\ndelay = 5', 'field "delay": expected a duration'),
        (
            SOURCE + 'feeds = ["https://a.example/x"]\nmax_articles = 0',
            'field "max_articles": expected a whole',
        ),
        (
            SOURCE + 'feeds = ["https://a.example/x"]\nmax_age = "soon"',
            'field "max_age": expected a duration',
        ),
        (
            SOURCE + 'feeds = ["https://a.example/x"]\narticle_allow = "/news/"',
            'field "article_allow": expected',
        ),
        ('source = ["bbc"]\n', "source #1: expected a [[source]] table, got str"),
        ('[[source]]\nname = "a"\n[[source]]\nname = 7\n', 'source "a": field "every": no schedule'),
        ("defaults = 3\n" + SOURCE, "[defaults] must be a table"),
        ('[sources]\nname = "a"\n', 'unknown top-level table "sources"'),
    ],
)
def test_more_mistakes_are_one_line_naming_file_source_and_field(tmp_path: Path, body: str, expected: str) -> None:
    message = one_line_error(write(tmp_path, body))
    assert message.startswith("sources.toml: ")
    assert expected in message


def test_a_bad_url_never_shows_its_password(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, SOURCE + 'feeds = ["ftp://reader:hunter22@news.example/rss"]'))
    assert 'field "feeds"' in message
    assert "hunter22" not in message
    assert "ftp://***@news.example/rss" in message


def test_unreadable_or_undecodable_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    assert "dir.toml: cannot read the file" in one_line_error(tmp_path / "dir.toml")
    latin1 = write(tmp_path, SOURCE.encode() + 'feeds = ["https://caf\xe9.example/"]\n'.encode("latin-1"))
    assert one_line_error(latin1).startswith("sources.toml: invalid TOML: ")
