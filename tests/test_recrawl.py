"""Re-crawls: conditional requests, updated articles kept as revisions, re-visits and take-downs,
and near-duplicate clusters across sources. Real crawls against local servers."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.schema import open_db
from demo.server import DEFAULT_ROOT, SiteServer
from tests.conftest import DEMO_SOURCES, scrapy_crawl, write_sources

MANIFEST = json.loads((DEFAULT_ROOT / "manifest.json").read_text(encoding="utf-8"))
ARTICLE_PATHS = {a["path"] for a in MANIFEST["articles"]}
CHANGED = "/world/2026/11/10/storm-damage-bill-rises-for-seafront.html"


@pytest.fixture
def fresh_site() -> SiteServer:
    server = SiteServer(DEFAULT_ROOT).start()
    yield server
    server.stop()


def crawl(site: SiteServer, tmp_path: Path, source: str, **settings: str) -> None:
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), site.base_url, tmp_path / "sources.toml")
    scrapy_crawl(source, db=tmp_path / "news.db", sources=sources, settings=settings)


def last_run(tmp_path: Path) -> dict:
    return next(open_db(tmp_path / "news.db")["crawl_runs"].rows_where(order_by="id desc", limit=1))


def test_unchanged_site_gets_only_304s_and_no_article_requests(fresh_site: SiteServer, tmp_path: Path) -> None:
    for source in ("courier_feeds", "courier_sitemaps"):
        crawl(fresh_site, tmp_path, source)
    fresh_site.clear_log()
    for source in ("courier_feeds", "courier_sitemaps"):
        crawl(fresh_site, tmp_path, source)
        assert last_run(tmp_path)["not_modified"] >= 3
    requested = fresh_site.paths_requested()
    assert not ARTICLE_PATHS & set(requested)
    feeds_and_sitemaps = {p: s for p, s in fresh_site.statuses().items() if p.endswith((".xml", ".xml.gz"))}
    assert "/feeds/rss.xml" in feeds_and_sitemaps
    assert "/sitemaps/articles.xml.gz" in feeds_and_sitemaps  # asked again even though the index was 304
    assert {s for statuses in feeds_and_sitemaps.values() for s in statuses} == {304}


def test_changed_article_is_stored_as_an_update_with_a_revision(fresh_site: SiteServer, tmp_path: Path) -> None:
    crawl(fresh_site, tmp_path, "courier_sitemaps")
    url = fresh_site.url(CHANGED)
    before = open_db(tmp_path / "news.db")["articles"].get(url)

    page = (DEFAULT_ROOT / CHANGED.lstrip("/")).read_text(encoding="utf-8")
    edited = page.replace(before["title"], before["title"] + " - council revises figure")  # h1, meta, JSON-LD
    edited = re.sub(r"(<p>)([^<]{40})", r"\1Correction: the council now puts the total higher. \2", edited, count=1)
    fresh_site.set_page(CHANGED, edited)
    sitemap = (DEFAULT_ROOT / "sitemaps/articles.xml").read_text(encoding="utf-8")
    moved = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0).isoformat()
    sitemap = re.sub(rf"(<loc>{{{{BASE}}}}{re.escape(CHANGED)}</loc>\s*<lastmod>)[^<]+", rf"\g<1>{moved}", sitemap)
    fresh_site.set_page("/sitemaps/articles.xml", sitemap)
    fresh_site.clear_log()
    crawl(fresh_site, tmp_path, "courier_sitemaps")

    article_requests = [p for p in fresh_site.paths_requested() if p in ARTICLE_PATHS]
    assert article_requests == [CHANGED]  # only the article whose lastmod moved
    db = open_db(tmp_path / "news.db")
    after = db["articles"].get(url)
    assert after["title"].endswith("council revises figure")
    assert "Correction: the council now puts the total higher." in after["text"]
    assert after["version"] == 2
    assert after["first_seen_at"] == before["first_seen_at"]
    (revision,) = db["article_revisions"].rows
    assert revision["url"] == url
    assert revision["version"] == 1
    assert revision["title"] == before["title"]
    assert revision["text"] == before["text"]
    assert set(json.loads(revision["changed"])) >= {"title", "text"}
    hits = db.execute(
        "SELECT a.url FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid "
        "WHERE articles_fts MATCH 'correction'"
    ).fetchall()
    assert hits == [(url,)]  # the search index follows the update
    assert db["articles"].count == len(ARTICLE_PATHS)
    assert last_run(tmp_path)["articles_updated"] == 1


def test_revisits_catch_take_downs_and_then_stop(fresh_site: SiteServer, tmp_path: Path) -> None:
    crawl(fresh_site, tmp_path, "courier_feeds", NEWS_REVISIT_AFTER="1s")
    time.sleep(1.2)
    fresh_site.set_page(CHANGED, "<html><body><h1>Gone</h1></body></html>", status=410)
    fresh_site.clear_log()
    crawl(fresh_site, tmp_path, "courier_feeds", NEWS_REVISIT_AFTER="1s")

    assert set(fresh_site.paths_requested()) >= ARTICLE_PATHS  # every recent article re-visited once
    db = open_db(tmp_path / "news.db")
    gone = db["articles"].get(fresh_site.url(CHANGED))
    assert gone["taken_down_at"] is not None  # marked, not deleted
    assert db["articles"].count == len(ARTICLE_PATHS)
    run = last_run(tmp_path)
    assert run["articles_taken_down"] == 1
    assert run["articles_revisited"] == len(ARTICLE_PATHS)
    assert db["article_revisions"].count == 0  # nothing else changed

    fresh_site.clear_log()
    crawl(fresh_site, tmp_path, "courier_feeds", NEWS_REVISIT_AFTER="1s")
    assert not ARTICLE_PATHS & set(fresh_site.paths_requested())  # the schedule's last step has passed


# --- near-duplicates -------------------------------------------------------------------------

WIRE = [a for a in MANIFEST["articles"] if a["language"] == "en"][:4]
UNRELATED = [a for a in MANIFEST["articles"] if a["language"] == "en" and a["section"] == "world"][4:7]


def article_paragraphs(path: str) -> tuple[str, list[str]]:
    html = (DEFAULT_ROOT / path.lstrip("/")).read_text(encoding="utf-8")
    body = html[html.index('<div class="story-body">') :]
    paragraphs = [re.sub(r"<[^>]+>", "", p) for p in re.findall(r"<p>(.*?)</p>", body, flags=re.S)]
    title = re.search(r"<h1[^>]*>(.*?)</h1>", html, flags=re.S).group(1)
    return title, [p for p in paragraphs if len(p) > 60][:9]


def page(title: str, paragraphs: list[str], template: int, published: str) -> str:
    chrome = [("Harbour Wire", "wire"), ("Island Post", "post"), ("Coast Daily", "daily")][template]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html lang='en'><head><title>{title} - {chrome[0]}</title>"
        f"<meta property='article:published_time' content='{published}'></head><body>"
        f"<div class='{chrome[1]}-nav'><a href='/'>{chrome[0]}</a> | <a href='/news/'>News</a></div>"
        f"<main><h1>{title}</h1><div class='{chrome[1]}-body'>{body}</div></main>"
        f"<aside>Most read on {chrome[0]}</aside><footer>(c) {chrome[0]}</footer></body></html>"
    )


def build_syndication_site(root: Path) -> dict[str, list[str]]:
    """Each wire story: an original, a copy in another template, an edited copy with a new
    headline, and a shortened copy. Plus unrelated stories on the same topics."""
    expected: dict[str, list[str]] = {}
    files: dict[str, str] = {}
    for n, truth in enumerate(WIRE):
        title, paragraphs = article_paragraphs(truth["path"])
        edited = [p.replace("council", "local authority").replace("said", "told reporters") for p in paragraphs]
        variants = {
            f"/wire/2026/11/0{n + 1}/story-original-{n}.html": page(
                title, paragraphs, 0, f"2026-11-0{n + 1}T08:00:00Z"
            ),
            f"/post/2026/11/0{n + 1}/copy-same-text-{n}.html": page(
                title, paragraphs, 1, f"2026-11-0{n + 1}T10:00:00Z"
            ),
            f"/daily/2026/11/0{n + 1}/copy-new-headline-{n}.html": page(
                f"What we know: {title.lower()}",
                [*edited, "Additional reporting by our correspondent."],
                2,
                f"2026-11-0{n + 1}T12:00:00Z",
            ),
            f"/post/2026/11/0{n + 2}/copy-shortened-{n}.html": page(
                title, paragraphs[:-1], 1, f"2026-11-0{n + 2}T09:00:00Z"
            ),
        }
        files.update(variants)
        expected[f"/wire/2026/11/0{n + 1}/story-original-{n}.html"] = list(variants)
    for n, truth in enumerate(UNRELATED):
        title, paragraphs = article_paragraphs(truth["path"])
        path = f"/daily/2026/11/2{n}/unrelated-story-{n}.html"
        files[path] = page(title, paragraphs, 2, f"2026-11-2{n}T08:00:00Z")
        expected[path] = [path]
    items = "".join(f"<item><title>x</title><link>{{{{BASE}}}}{p}</link></item>" for p in files)
    files["/feed.xml"] = f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return expected


def test_syndicated_copies_share_a_cluster_whose_original_is_the_earliest(tmp_path: Path) -> None:
    expected = build_syndication_site(tmp_path / "site")
    server = SiteServer(tmp_path / "site").start()
    try:
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[source]]\nname = "wire"\nfeeds = ["{server.base_url}/feed.xml"]\nevery = "1h"\n'
            'allow_private = true\ndelay = "0s"\n',
            encoding="utf-8",
        )
        scrapy_crawl("wire", db=tmp_path / "news.db", sources=sources)
        db = open_db(tmp_path / "news.db")
        cluster_of = {row["url"][len(server.base_url) :]: row["cluster_id"] for row in db["articles"].rows}
        clusters = {row["original_url"][len(server.base_url) :]: row for row in db["article_clusters"].rows}
    finally:
        server.stop()
    copies = [p for members in expected.values() for p in members if "copy-same-text" in p]
    assert not set(copies) & set(cluster_of)  # identical bodies are aliases, not articles
    for original, members in expected.items():
        stored = [m for m in members if m in cluster_of]
        assert {cluster_of[m] for m in stored} == {cluster_of[original]}, original
        assert clusters[original]["articles"] == len(stored)
    all_clusters = {cluster_of[o] for o in expected}
    assert len(all_clusters) == len(expected)  # unrelated stories on the same topics stay apart
