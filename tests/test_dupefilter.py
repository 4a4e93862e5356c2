"""The duplicate filter keeps fingerprints of feeds, sitemaps, listings and redirects only."""

from __future__ import annotations

from pathlib import Path

from scrapy import Request

from crawl.dupefilter import ArticleAwareDupeFilter


def test_article_requests_leave_no_fingerprint_and_everything_else_is_filtered(tmp_path: Path) -> None:
    seen = ArticleAwareDupeFilter(str(tmp_path))
    feed = Request("http://127.0.0.1/feed.xml", meta={"news_kind": "seed"})
    article = Request("http://127.0.0.1/2026/11/20/story", meta={"news_kind": "article"})
    assert not seen.request_seen(feed)
    assert seen.request_seen(feed.replace())
    assert not seen.request_seen(article)
    assert not seen.request_seen(article.replace())  # the archive's check decides, not Scrapy's
    assert len(seen._fingerprints) == 1
    # A redirect reaches the scheduler without the archive's check: two redirects to one page fetch it once.
    redirected = Request(
        "http://127.0.0.1/2026/11/20/story-moved",
        meta={"news_kind": "article", "redirect_urls": ["http://127.0.0.1/2026/11/20/story"]},
    )
    assert not seen.request_seen(redirected)
    assert seen.request_seen(redirected.replace())
    seen.close("finished")
