"""The throughput benchmark's generated site: valid feeds, sitemaps and pages, served as generated."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import html as lxml_html

from bench.peers import trafilatura_sitemap_input
from bench.sitegen import SITEMAP_LIMIT, ensure_site, generate, iter_pages, read_index, read_manifest
from bench.throughput import judge, seeds_of, write_sources
from crawl.urls import canonical_url
from spiders.discovery import SitemapLink, iter_sitemap, parse_feed

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://127.0.0.1:9"
N = 24


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    generate(root, N, seed=7, sitemap_size=10)
    return root


@pytest.fixture(scope="module")
def query_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same site with its sitemaps at Arc XP's query URLs."""
    root = tmp_path_factory.mktemp("query-site")
    generate(root, N, seed=7, sitemap_size=10, sitemap_style="query")
    return root


QUERY_INDEX = "/arc/outboundfeeds/sitemap-index/?outputType=xml"
QUERY_NEWS = "/arc/outboundfeeds/news-sitemap/?outputType=xml"


def body(root: Path, path: str) -> bytes:
    offset, length, flags, _ = read_index(root)[path]
    with open(root / "pages.bin", "rb") as f:
        f.seek(offset)
        data = f.read(length)
    if flags == "tpl":
        data = data.replace(b"{{BASE}}", BASE.encode())
    return gzip.decompress(data) if flags == "gz" else data


def test_sitemap_index_splits_articles_and_lists_each_once(site: Path) -> None:
    index = list(iter_sitemap(body(site, "/sitemap_index.xml")))
    assert all(isinstance(link, SitemapLink) for link in index)
    maps = [urlsplit(link.url).path for link in index]
    assert maps == ["/sitemaps/news.xml", "/sitemaps/articles-1.xml", "/sitemaps/articles-2.xml",
                    "/sitemaps/articles-3.xml"]  # fmt: skip
    found = []
    for path in maps[1:]:
        entries = list(iter_sitemap(body(site, path)))
        assert len(entries) <= 10
        found += [urlsplit(e.url).path for e in entries]
    assert sorted(found) == sorted(m["path"] for m in read_manifest(site))
    news = list(iter_sitemap(body(site, "/sitemaps/news.xml")))
    assert len(news) == N
    assert all(e.title and e.published for e in news)


def test_feed_links_carry_tracking_parameters_that_canonicalise_away(site: Path) -> None:
    entries = parse_feed(body(site, "/feeds/rss.xml"), BASE + "/feeds/rss.xml")
    paths = {m["path"] for m in read_manifest(site)}
    assert len(entries) == N
    for entry in entries:
        assert "utm_source=rss" in entry.url
        assert urlsplit(canonical_url(entry.url)).query == ""
        assert urlsplit(entry.url).path in paths


def test_pages_are_large_distinct_and_hold_their_truth(site: Path) -> None:
    manifest = read_manifest(site)
    firsts = set()
    templates = set()
    for truth, (path, page) in zip(manifest, iter_pages(site, [m["path"] for m in manifest]), strict=True):
        assert path == truth["path"]
        assert 45_000 <= len(page.encode()) <= 230_000, path
        tree = lxml_html.fromstring(page)
        assert truth["title"] in tree.xpath("string(//h1)")
        assert tree.xpath("//link[@rel='canonical']/@href") == [path]
        text = " ".join(tree.xpath("//p//text()"))
        assert truth["first_paragraph"] in text
        assert truth["last_paragraph"] in text
        assert truth["comment"] in " ".join(tree.xpath("//*[@id='comments']//text()"))
        assert all(name in page for name in truth["authors"])
        assert "{{BASE}}" not in page  # pages are served as stored, without templating
        firsts.add(truth["first_paragraph"])
        templates.add(truth["template"])
    assert len(firsts) == N
    assert templates == {"classic", "magazine", "portal"}


def test_generation_is_deterministic_and_reused(site: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, N, seed=7, sitemap_size=10)
    digest = [hashlib.sha256((root / "pages.bin").read_bytes()).hexdigest() for root in (site, again)]
    assert digest[0] == digest[1]
    stamp = (again / "pages.bin").stat().st_mtime_ns
    ensure_site(again, N, seed=7, sitemap_size=10)
    assert (again / "pages.bin").stat().st_mtime_ns == stamp  # same parameters: not regenerated
    ensure_site(again, N, seed=8, sitemap_size=10)
    assert hashlib.sha256((again / "pages.bin").read_bytes()).hexdigest() != digest[0]


def test_sitemap_size_is_bounded_by_the_protocol(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sitemap size"):
        generate(tmp_path, 3, sitemap_size=SITEMAP_LIMIT + 1)


def test_query_style_puts_only_the_sitemaps_at_arc_xp_query_urls(site: Path, query_site: Path) -> None:
    index = [link.url.removeprefix(BASE) for link in iter_sitemap(body(query_site, QUERY_INDEX))]
    assert index == [QUERY_NEWS] + [f"/arc/outboundfeeds/sitemap/?outputType=xml&from={k}" for k in (0, 10, 20)]
    assert b"&amp;from=10<" in body(query_site, QUERY_INDEX)  # escaped in the XML
    files_index = [link.url.removeprefix(BASE) for link in iter_sitemap(body(site, "/sitemap_index.xml"))]
    for query_path, files_path in zip(index, files_index, strict=True):  # the same sitemaps, elsewhere
        assert body(query_site, query_path) == body(site, files_path)
    assert f"Sitemap: {BASE}{QUERY_INDEX}\n" in body(query_site, "/robots.txt").decode()
    files, query = read_index(site), read_index(query_site)
    assert not any(path.endswith(".xml") and "sitemap" in path for path in query)
    shared = [path for path in files if path in query]  # articles, feed, fronts, robots.txt
    assert len(shared) == len(files) - len(index) - 1
    assert all(body(query_site, path) == body(site, path) for path in shared if path != "/robots.txt")
    assert json.loads((query_site / "meta.json").read_text())["sitemap_style"] == "query"


def test_sitemap_style_is_part_of_the_cached_site(tmp_path: Path) -> None:
    generate(tmp_path, 3, seed=7)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert (meta["sitemap_style"], meta["sitemap_index"]) == ("files", "/sitemap_index.xml")
    del meta["sitemap_style"], meta["sitemap_index"]  # as a site written before there were styles
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    stamp = (tmp_path / "pages.bin").stat().st_mtime_ns
    assert ensure_site(tmp_path, 3, seed=7)["sitemap_style"] == "files"
    assert (tmp_path / "pages.bin").stat().st_mtime_ns == stamp  # still the files style: reused
    assert ensure_site(tmp_path, 3, seed=7, sitemap_style="query")["sitemap_style"] == "query"
    assert QUERY_INDEX in read_index(tmp_path)
    with pytest.raises(ValueError, match="sitemap style"):
        generate(tmp_path / "bad", 3, sitemap_style="paths")


def test_crawlers_are_pointed_at_the_index_of_each_style(tmp_path: Path) -> None:
    write_sources(tmp_path / "files.toml", *seeds_of(BASE, {}))
    write_sources(tmp_path / "query.toml", *seeds_of(BASE, {}, "query"))
    assert f'sitemaps = ["{BASE}/sitemap_index.xml"]' in (tmp_path / "files.toml").read_text()
    assert f'sitemaps = ["{BASE}{QUERY_INDEX}"]' in (tmp_path / "query.toml").read_text()
    assert trafilatura_sitemap_input(BASE) == f"{BASE}/sitemap_index.xml"
    assert trafilatura_sitemap_input(BASE, "query") == f"{BASE}/"  # robots.txt names the index


@contextmanager
def served(root: Path) -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "siteserver.py"), "--site", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def test_server_answers_query_urls_whole_then_by_bare_path(query_site: Path) -> None:
    with served(query_site) as base:
        conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=10)
        conn.request("GET", "/robots.txt")
        assert f"Sitemap: {base}{QUERY_INDEX}" in response_text(conn)
        conn.request("GET", QUERY_INDEX)
        index = response_text(conn)
        assert f"<loc>{base}/arc/outboundfeeds/sitemap/?outputType=xml&amp;from=10</loc>" in index
        child = body(query_site, "/arc/outboundfeeds/sitemap/?outputType=xml&from=10")
        conn.request("GET", "/arc/outboundfeeds/sitemap/?outputType=xml&from=10")
        assert response_text(conn).encode() == child.replace(BASE.encode(), base.encode())
        conn.request("GET", "/arc/outboundfeeds/sitemap/?from=10&outputType=xml")  # as courlan reorders it
        assert response_text(conn).encode() == child.replace(BASE.encode(), base.encode())
        page = read_manifest(query_site)[0]["path"]
        conn.request("GET", page + "?utm_source=rss&utm_medium=feed")  # an article: by its bare path
        assert response_text(conn) == body(query_site, page).decode()
        for missing in ("/arc/outboundfeeds/sitemap/?outputType=xml&from=5", "/arc/outboundfeeds/sitemap/"):
            conn.request("GET", missing)
            response = conn.getresponse()
            response.read()
            assert response.status == 404
        conn.close()


def test_server_sends_stored_bytes_gzip_and_keeps_connections_alive(site: Path) -> None:
    with served(site) as base:
        page = read_manifest(site)[0]["path"]
        conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=10)
        conn.request("GET", page, headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(response.read()) == body(site, page)
        conn.request("GET", page)  # same connection, a client without gzip
        response = conn.getresponse()
        assert response.getheader("Content-Encoding") is None
        assert response.read() == body(site, page)
        conn.request("GET", "/robots.txt")
        assert f"Sitemap: {base}/sitemap_index.xml" in response_text(conn)
        conn.request("GET", "/no/such/page.html")
        response = conn.getresponse()
        response.read()
        assert response.status == 404
        conn.close()


def response_text(conn: http.client.HTTPConnection) -> str:
    response = conn.getresponse()
    assert response.status == 200
    return response.read().decode()


def test_judge_counts_correct_duplicate_and_wrong_records(site: Path) -> None:
    manifest = read_manifest(site)
    good, wrong = manifest[0], manifest[1]

    def record(truth: dict, **changes: object) -> dict:
        text = f"{truth['first_paragraph']}\n\n middle \n\n{truth['last_paragraph']}"
        base = {"url": BASE + truth["path"], "title": truth["title"], "authors": truth["authors"],
                "date": truth["published"], "text": text}  # fmt: skip
        return {**base, **changes}

    records = [
        record(good),
        record(good, url=BASE + good["path"] + "?utm_source=rss"),  # the same article again
        record(wrong, text=record(wrong)["text"] + " " + wrong["comment"]),  # a comment in the body
        {"url": BASE + "/world/", "title": "World", "authors": [], "date": None, "text": ""},
    ]
    result = judge(records, manifest)
    assert result["distinct_articles"] == 2
    assert result["duplicates"] == 1
    assert result["not_articles"] == 1
    assert result["correct"] == 1
    assert result["no_comments"] == 1
