"""Each pipeline stage on its own: extraction mapping, the article filter, canonical URLs,
deduplication and batched storage into a real SQLite file."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from scrapy import Spider
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler
from warcio.archiveiterator import ArchiveIterator

from archive.raw_html import from_wire, raw_html, raw_page_row
from archive.raw_pages import page_html
from archive.schema import open_db
from archive.store import Archive
from archive.warc_files import warc_directory
from crawl.archive_access import crawl_archive
from crawl.items import ArticleItem
from pipelines.canonical import CanonicalUrlPipeline, resolve_canonical
from pipelines.classify import ArticleFilterPipeline
from pipelines.dedupe import DedupePipeline, body_hash
from pipelines.extract import ExtractPipeline
from pipelines.store import StorePipeline

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

BASE = "https://news.example"
PARAGRAPHS = [
    "The ferry company said on Monday that the evening crossing to the islands would run twice a week "
    "from December, after a winter in which residents had complained about the single morning boat.",
    "Harbour staff will add a second crew for the late departures, and the council has agreed to cover "
    "part of the cost for the first year while passenger numbers are counted.",
    "Islanders who commute to the mainland welcomed the change but asked for a timetable that matches "
    "the last train, which leaves the station a few minutes before the current ferry arrives.",
]


def article_html(
    title: str = "Evening ferry returns to the islands",
    *,
    canonical: str | None = None,
    paragraphs: list[str] | None = None,
    amp: bool = False,
) -> str:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    body = "".join(f"<p>{p}</p>" for p in (paragraphs or PARAGRAPHS))
    jsonld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": title,
            "author": {"@type": "Person", "name": "Ada Brook"},
            "datePublished": "2026-11-20T08:15:00+01:00",
            "inLanguage": "en-GB",
            "keywords": "ferries, islands",
        }
    )
    return (
        f'<html{" amp" if amp else ""} lang="en"><head><title>{title} | Example Gazette</title>{link}'
        f'<meta property="og:site_name" content="Example Gazette">'
        f'<meta property="og:image" content="/img/ferry.jpg">'
        f'<script type="application/ld+json">{jsonld}</script></head>'
        f"<body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{body}</article>"
        f"<footer>Example Gazette</footer></body></html>"
    )


def make_crawler(tmp_path: Path, **settings: object) -> Crawler:
    crawler = get_crawler(
        settings_dict={
            "NEWS_DB_PATH": str(tmp_path / "news.db"),
            "NEWS_EXTRACT_WORKERS": 0,
            "NEWS_MIN_WORDS": 50,
            "NEWS_STORE_BATCH_SIZE": 100,
            "NEWS_KEEP_RAW_HTML": True,
            **settings,
        }
    )
    crawler.spider = Spider(name="news", allowed_domains=["news.example"])
    return crawler


def page(url: str, html: str, requested: str | None = None) -> ArticleItem:
    return ArticleItem(
        url=url,
        requested_url=requested or url,
        source="gazette",
        html=html,
        fetched_at="2026-11-20T10:00:00+00:00",
        discovered_via="feed",
    )


class Pipeline:
    """All stages in crawl/settings.py order, as Scrapy would chain them."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.extract = ExtractPipeline.from_crawler(crawler)
        self.rest = [
            ArticleFilterPipeline.from_crawler(crawler),
            CanonicalUrlPipeline.from_crawler(crawler),
            DedupePipeline.from_crawler(crawler),
        ]
        self.store = StorePipeline.from_crawler(crawler)

    def run(self, item: ArticleItem) -> ArticleItem:
        item = asyncio.run(self.extract.process_item(item))
        for stage in self.rest:
            item = stage.process_item(item)
        return self.store.process_item(item)

    def close(self) -> None:
        self.store.close_spider()

    def stat(self, key: str) -> int:
        return self.crawler.stats.get_value(key, 0)


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(make_crawler(tmp_path))


def rows(tmp_path: Path, table: str) -> list[dict]:
    db = open_db(tmp_path / "news.db")
    try:
        return list(db[table].rows)
    finally:
        db.close()


def test_extraction_fills_every_field(tmp_path: Path) -> None:
    crawler = make_crawler(tmp_path)
    item = asyncio.run(
        ExtractPipeline.from_crawler(crawler).process_item(page(f"{BASE}/2026/11/20/evening-ferry", article_html()))
    )
    assert item.title == "Evening ferry returns to the islands"
    assert item.authors == ["Ada Brook"]
    assert item.published_at.startswith("2026-11-20")
    assert item.language == "en"
    assert item.sitename == "Example Gazette"
    assert item.image == f"{BASE}/img/ferry.jpg"
    assert "ferries" in item.tags
    assert "evening crossing to the islands" in item.text
    assert item.markdown.count("\n\n") >= 2  # the body as Markdown keeps its paragraphs
    assert item.word_count > 80
    assert item.provenance["title"]


def test_extraction_in_worker_processes_gives_the_same_result(tmp_path: Path) -> None:
    local = make_crawler(tmp_path)
    pooled = make_crawler(tmp_path, NEWS_EXTRACT_WORKERS=2)
    html = article_html()

    async def both() -> tuple[ArticleItem, ArticleItem]:
        in_process = await ExtractPipeline.from_crawler(local).process_item(page(f"{BASE}/a-b-c", html))
        pool = ExtractPipeline.from_crawler(pooled)
        pool.open_spider()
        try:
            in_workers = await pool.process_item(page(f"{BASE}/a-b-c", html))
        finally:
            pool.close_spider()
        return in_process, in_workers

    in_process, in_workers = asyncio.run(both())
    assert in_workers.text == in_process.text
    assert in_workers.title == in_process.title
    assert in_workers.signature == in_process.signature
    # The worker also built the page's WARC records; in the crawl process the store does it.
    assert in_process.raw_html is None
    assert in_workers.raw_html is not None
    assert in_workers.raw_html.codec == "warc"
    assert in_workers.raw_html.size == len(html.encode("utf-8"))
    records = list(ArchiveIterator(io.BytesIO(in_workers.raw_html.data)))
    assert [r.rec_type for r in records] == ["response", "request"]
    assert records[0].rec_headers.get_header("WARC-Target-URI") == f"{BASE}/a-b-c"


def test_a_page_that_came_gzipped_is_not_compressed_again_by_the_worker(tmp_path: Path) -> None:
    html = article_html()
    body = html.encode("utf-8")
    item = page(f"{BASE}/a-b-c", html)
    item.raw_html = from_wire(b"gzip", gzip.compress(body, mtime=0), body, "utf-8")
    pool = ExtractPipeline.from_crawler(make_crawler(tmp_path, NEWS_EXTRACT_WORKERS=1))
    pool.open_spider()
    try:
        done = asyncio.run(pool.process_item(item))
    finally:
        pool.close_spider()
    assert done.title == "Evening ferry returns to the islands"
    assert done.raw_html.codec == "gzip"  # a worker's zstd copy would have replaced it
    row = raw_page_row(done.url, "", fetched_at="", http_status=200, content_type="", compressed=done.raw_html)
    assert raw_html(row) == html


def test_unparseable_page_is_a_recorded_extract_failure(tmp_path: Path) -> None:
    crawler = make_crawler(tmp_path)
    reported: list[dict] = []
    from crawl.failures import failure_recorded

    crawler.signals.connect(lambda **kw: reported.append(kw), signal=failure_recorded, weak=False)
    with pytest.raises(DropItem, match="extraction failed"):
        asyncio.run(ExtractPipeline.from_crawler(crawler).process_item(page(f"{BASE}/x-y-z", "   ")))
    assert reported[0]["stage"] == "extract"
    assert reported[0]["url"] == f"{BASE}/x-y-z"


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (
            "<html><body><h1>Latest</h1><ul><li><a href='/a'>A</a></li></ul></body></html>",
            "no main text|too short",
        ),
        (
            "<html><head><title>Consent</title></head><body><p>We use cookies. Accept all?</p></body></html>",
            "no main text|too short",
        ),
    ],
)
def test_pages_that_are_not_articles_are_dropped_and_counted(pipeline: Pipeline, html: str, reason: str) -> None:
    with pytest.raises(DropItem, match=f"not an article: ({reason})"):
        pipeline.run(page(f"{BASE}/latest", html))
    assert pipeline.stat("news/pages/not_article") == 1


def test_canonical_link_amp_and_redirects_become_aliases() -> None:
    canonical = f"{BASE}/2026/11/20/evening-ferry"
    item = page(f"{BASE}/amp/2026/11/20/evening-ferry?utm_source=x", "", requested=f"{BASE}/r/123")
    item.page_canonical, item.is_amp = canonical, True
    url, aliases = resolve_canonical(item, ("news.example",))
    assert url == canonical
    assert aliases == {f"{BASE}/amp/2026/11/20/evening-ferry": "amp", f"{BASE}/r/123": "redirect"}
    item.page_canonical = "https://elsewhere.example/stolen"  # a canonical link off-site is ignored
    assert resolve_canonical(item, ("news.example",))[0] == f"{BASE}/amp/2026/11/20/evening-ferry"


def test_new_article_is_stored_with_raw_html_and_search(pipeline: Pipeline, tmp_path: Path) -> None:
    url = f"{BASE}/2026/11/20/evening-ferry"
    pipeline.run(page(url + "?utm_source=rss", article_html(canonical=url)))
    pipeline.close()
    (article,) = rows(tmp_path, "articles")
    assert article["url"] == url
    assert json.loads(article["authors"]) == ["Ada Brook"]
    assert article["body_hash"] == body_hash(article["text"])
    assert article["first_seen_at"] == article["last_seen_at"]
    assert rows(tmp_path, "raw_pages") == []  # the page is in a WARC file beside the archive
    (raw,) = rows(tmp_path, "raw_page_refs")
    assert page_html(warc_directory(tmp_path / "news.db"), raw) == article_html(canonical=url)
    db = open_db(tmp_path / "news.db")
    hits = db.execute("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'islanders'").fetchall()
    assert len(hits) == 1


def test_same_body_at_a_second_url_is_an_alias_not_a_second_article(pipeline: Pipeline, tmp_path: Path) -> None:
    first, copy = f"{BASE}/2026/11/20/evening-ferry", f"{BASE}/partners/evening-ferry-returns"
    pipeline.run(page(first, article_html()))
    item = pipeline.run(page(copy, article_html()))
    pipeline.close()
    assert item.status == "duplicate"
    assert [a["url"] for a in rows(tmp_path, "articles")] == [first]
    assert rows(tmp_path, "url_aliases") == [
        {
            "alias": copy,
            "url": first,
            "reason": "same_body",
            "source": "gazette",
            "first_seen_at": rows(tmp_path, "url_aliases")[0]["first_seen_at"],
            "similarity": 1.0,
        }
    ]
    assert pipeline.stat("news/articles/duplicate") == 1


def test_amp_page_of_a_stored_article_adds_an_alias_and_changes_nothing(tmp_path: Path) -> None:
    url = f"{BASE}/2026/11/20/evening-ferry"
    first = Pipeline(make_crawler(tmp_path))
    first.run(page(url, article_html(canonical=url)))
    first.close()
    before = rows(tmp_path, "articles")
    second = Pipeline(make_crawler(tmp_path))
    amp_text = PARAGRAPHS[:2]  # the AMP rendering differs, but must not overwrite the article
    item = second.run(
        page(
            f"{BASE}/amp/2026/11/20/evening-ferry",
            article_html(
                canonical=url,
                amp=True,
                paragraphs=[*amp_text, "An extra AMP-only sentence about the timetable."],
            ),
        )
    )
    second.close()
    assert item.status == "alias"
    assert [r["text"] for r in rows(tmp_path, "articles")] == [before[0]["text"]]
    assert rows(tmp_path, "url_aliases")[0]["reason"] == "amp"


def test_storing_the_same_page_twice_only_moves_last_seen(tmp_path: Path) -> None:
    url = f"{BASE}/2026/11/20/evening-ferry"
    for _ in range(2):
        run = Pipeline(make_crawler(tmp_path))
        item = run.run(page(url, article_html()))
        run.close()
    assert item.status == "unchanged"
    (article,) = rows(tmp_path, "articles")
    assert article["updated_at"] is None
    assert len(rows(tmp_path, "raw_page_refs")) == 1


def test_changed_article_is_an_update_not_a_second_article(tmp_path: Path) -> None:
    url = f"{BASE}/2026/11/20/evening-ferry"
    run = Pipeline(make_crawler(tmp_path))
    run.run(page(url, article_html()))
    run.close()
    first_seen = rows(tmp_path, "articles")[0]["first_seen_at"]
    changed = [*PARAGRAPHS, "Update: the council has now confirmed the funding for a second year as well."]
    run = Pipeline(make_crawler(tmp_path))
    item = run.run(page(url, article_html("Evening ferry returns, funding confirmed", paragraphs=changed)))
    run.close()
    assert item.status == "updated"
    (article,) = rows(tmp_path, "articles")
    assert article["title"] == "Evening ferry returns, funding confirmed"
    assert "second year" in article["text"]
    assert article["first_seen_at"] == first_seen
    assert article["updated_at"] is not None
    db = open_db(tmp_path / "news.db")
    assert db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'funding'").fetchone()[0] == 1


def other_story(n: int) -> list[str]:
    """Paragraphs of a story of its own (PARAGRAPHS' words shuffled): no copy of another one."""
    shuffled = random.Random(n)
    return [" ".join(shuffled.sample(p.split(), k=len(p.split()))) for p in PARAGRAPHS]


def test_writes_are_batched(tmp_path: Path) -> None:
    run = Pipeline(make_crawler(tmp_path, NEWS_STORE_BATCH_SIZE=3))
    for n in range(2):
        run.run(
            page(
                f"{BASE}/2026/11/20/story-number-{n}",
                article_html(f"Story {n}", paragraphs=other_story(n)),
            )
        )
    assert rows(tmp_path, "articles") == []  # still pending
    run.run(
        page(
            f"{BASE}/2026/11/20/story-number-2",
            article_html("Story 2", paragraphs=other_story(2)),
        )
    )
    assert len(rows(tmp_path, "articles")) == 3  # the third item filled the batch
    run.close()


def test_archive_lookups_cover_aliases(pipeline: Pipeline, tmp_path: Path) -> None:
    first, copy = f"{BASE}/2026/11/20/evening-ferry", f"{BASE}/partners/evening-ferry-returns"
    pipeline.run(page(first, article_html()))
    pipeline.run(page(copy, article_html()))
    pipeline.close()
    archive = Archive.open(tmp_path / "news.db")
    assert archive.stored_url_for(first) == first
    assert archive.stored_url_for(copy) == first
    assert archive.stored_url_for(f"{BASE}/never-seen") is None


def test_written_articles_are_looked_up_in_the_database_not_kept_in_memory(tmp_path: Path) -> None:
    """After each write the process forgets what it wrote (memory flat in a long crawl), and
    still knows it: a copy, a re-fetch and a change in the same crawl are judged against the database."""
    run = Pipeline(make_crawler(tmp_path, NEWS_STORE_BATCH_SIZE=1))
    archive = crawl_archive(run.crawler)
    url = f"{BASE}/2026/11/20/evening-ferry"
    archive.claimed.add(url)  # as SkipStoredArticlesMiddleware does when it lets the request through
    assert run.run(page(url, article_html())).status == "new"
    assert url not in archive.claimed
    assert (archive.recent_urls, archive.recent_bodies, archive.recent_clusters, archive.recent_published) == (
        {},
        {},
        {},
        {},
    )
    assert run.run(page(f"{BASE}/partners/evening-ferry-returns", article_html())).status == "duplicate"
    assert run.run(page(url, article_html())).status == "unchanged"
    changed = [*PARAGRAPHS, "Update: the council has now confirmed the funding for a second year as well."]
    assert run.run(page(url, article_html("Evening ferry returns, funding confirmed", paragraphs=changed))).status == (
        "updated"
    )
    run.close()
    assert [a["url"] for a in rows(tmp_path, "articles")] == [url]
    assert not archive.recent_urls
