"""Feeds, sitemaps and content sniffing, from small fixture files (no network, no crawl)."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from spiders import discovery
from spiders.discovery import (
    DiscoveryError,
    Entry,
    SitemapLink,
    is_feed_link,
    iter_sitemap,
    parse_feed,
    sniff_kind,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_rss2_entries_with_dates_and_authors() -> None:
    first, second = parse_feed(fixture("feed_rss2_basic.xml"), "https://news.example/rss.xml")
    assert first.url.startswith("https://news.example/2026/11/20/council-approves-tram-line?utm_source=rss")
    assert first.title == "Council approves new tram line"
    assert first.published == "2026-11-20T07:15:00+00:00"  # normalised to UTC
    assert first.authors == ("Ada Brook",)
    assert second.url == "https://news.example/2026/11/19/storm-closes-harbour#comments"  # resolved


def test_rdf_and_atom_feeds() -> None:
    (rdf,) = parse_feed(fixture("feed_rdf_basic.xml"))
    assert rdf.url == "https://news.example/business/bakery-chain-expands"
    assert rdf.published == "2026-11-18T06:30:00+00:00"
    assert rdf.authors == ("Lena Ortiz",)
    (atom,) = parse_feed(fixture("feed_atom_basic.xml"))
    assert atom.url == "https://news.example/culture/theatre-reopens-after-repairs"
    assert atom.published == "2026-11-21T09:00:00+00:00"
    assert atom.modified == "2026-11-21T10:00:00+00:00"
    assert atom.hints() == {
        "title": "Theatre reopens after repairs",
        "published": "2026-11-21T09:00:00+00:00",
        "modified": "2026-11-21T10:00:00+00:00",
        "authors": ["Mina Sato"],
    }


def test_truncated_feed_keeps_what_it_can_read_and_says_what_was_wrong() -> None:
    problems: list[str] = []
    entries = parse_feed(fixture("feed_truncated.xml"), problems=problems)
    assert [e.url for e in entries][:1] == ["https://news.example/2026/11/20/first-story-survives"]
    assert len(problems) == 1
    assert problems[0].startswith("feed is not well-formed XML")
    clean: list[str] = []
    parse_feed(fixture("feed_rss2_basic.xml"), problems=clean)
    assert clean == []


@pytest.mark.parametrize("body", [b"", b"\x00\x01binary", fixture("feed_is_html.xml")])
def test_things_that_are_not_feeds_raise(body: bytes) -> None:
    with pytest.raises(DiscoveryError, match="not a feed"):
        parse_feed(body)


def test_sitemap_index_lists_child_sitemaps_with_lastmod() -> None:
    links = list(iter_sitemap(fixture("sitemap_index_basic.xml")))
    assert links == [
        SitemapLink("https://news.example/sitemaps/articles.xml.gz", "2026-11-24T00:00:00+00:00"),
        SitemapLink("https://news.example/sitemaps/archive-2019.xml", "2019-06-30T00:00:00+00:00"),
    ]


def test_google_news_sitemap_gives_titles_and_publication_dates() -> None:
    entries = list(iter_sitemap(fixture("sitemap_news_basic.xml")))
    assert len(entries) == 2  # the <url> without <loc> is skipped
    tram, storm = entries
    assert isinstance(tram, Entry)
    assert tram.title == "Council approves new tram line"
    assert tram.published == "2026-11-20T08:15:00+01:00"
    assert tram.modified == "2026-11-20T09:00:00+01:00"
    assert storm == Entry("https://news.example/2026/11/19/storm-closes-harbour")


def test_invalid_sitemap_raises_after_the_entries_it_could_read() -> None:
    found: list[object] = []
    with pytest.raises(DiscoveryError, match="invalid sitemap XML"):
        found.extend(iter_sitemap(fixture("sitemap_invalid.xml")))
    assert [e.url for e in found] == ["https://news.example/a-story-here"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("slice_size", [1, 100, 64 * 1024, 10**9])
@pytest.mark.parametrize("entries_before", [1, 3_000])
def test_broken_sitemap_keeps_every_entry_before_the_error_whatever_the_buffering(
    monkeypatch: pytest.MonkeyPatch, slice_size: int, entries_before: int
) -> None:
    # 3,000 entries are ~200 KB: the error lies past several of the parser's slices, or inside the only one.
    monkeypatch.setattr(discovery, "_SITEMAP_SLICE", slice_size)
    head = b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    rows = b"".join(b"<url><loc>https://a.example/story-%d</loc></url>" % i for i in range(entries_before))
    broken = b"<url><loc>https://a.example/broken</loc></urlset>"
    found: list[object] = []
    with pytest.raises(DiscoveryError, match="invalid sitemap XML"):
        found.extend(iter_sitemap(head + rows + broken))
    assert [e.url for e in found] == [f"https://a.example/story-{i}" for i in range(entries_before)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body", [b"", b"not xml at all", b"<html><body>hi</body></html>", fixture("feed_rss2_basic.xml")]
)
def test_non_sitemaps_raise(body: bytes) -> None:
    with pytest.raises(DiscoveryError, match="sitemap"):
        list(iter_sitemap(body))


def test_sitemap_entities_are_not_expanded() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://a.example/&x;</loc></url></urlset>'
    )
    urls = [e.url for e in iter_sitemap(body)]  # type: ignore[union-attr]
    assert all("root:" not in u for u in urls)


def test_large_sitemap_streams_in_bounded_memory() -> None:
    head = b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    rows = b"".join(
        b"<url><loc>https://a.example/story-number-%d</loc><lastmod>2026-11-01</lastmod></url>" % i
        for i in range(50_000)
    )
    body = head + rows + b"</urlset>"
    tracemalloc.start()
    count = sum(1 for _ in iter_sitemap(body))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 50_000
    assert peak < len(body) // 2  # a parsed tree of 50,000 entries would be many times the input


def test_sniffing_tells_feeds_sitemaps_and_pages_apart() -> None:
    assert sniff_kind(fixture("feed_rss2_basic.xml")) == "feed"
    assert sniff_kind(fixture("feed_atom_basic.xml")) == "feed"
    assert sniff_kind(fixture("feed_rdf_basic.xml")) == "feed"
    assert sniff_kind(fixture("sitemap_index_basic.xml")) == "sitemap"
    assert sniff_kind(gzip.compress(fixture("sitemap_news_basic.xml"))) == "sitemap"
    assert sniff_kind(fixture("feed_is_html.xml"), "text/html") == "html"


def test_feed_links_are_recognised() -> None:
    assert is_feed_link("alternate", "application/rss+xml")
    assert is_feed_link("Alternate", "application/atom+xml ")
    assert not is_feed_link("stylesheet", "text/css")
    assert not is_feed_link("alternate", "text/html")  # a translated page, not a feed
