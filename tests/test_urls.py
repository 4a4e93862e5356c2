"""URL canonicalisation and article-URL recognition."""

from __future__ import annotations

import pytest

from crawl.urls import canonical_url, in_domains, url_kind


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("https://news.example/a/story?utm_source=rss&utm_medium=feed", "https://news.example/a/story"),
        ("https://news.example/a/story?fbclid=IwAR123", "https://news.example/a/story"),
        ("https://news.example/a/story?gclid=xyz&id=7", "https://news.example/a/story?id=7"),
        ("https://news.example/a/story#comments", "https://news.example/a/story"),
        ("HTTPS://News.Example:443/a/story", "https://news.example/a/story"),
        ("http://news.example:80/a/story", "http://news.example/a/story"),
        ("https://news.example/a/story?b=2&a=1", "https://news.example/a/story?a=1&b=2"),
        ("  https://news.example/a/story  ", "https://news.example/a/story"),
    ],
)
def test_url_variants_share_one_canonical_form(variant: str, canonical: str) -> None:
    assert canonical_url(variant) == canonical


def test_canonical_form_keeps_meaningful_differences() -> None:
    assert canonical_url("https://news.example/a?id=1") != canonical_url("https://news.example/a?id=2")
    assert canonical_url("https://www.news.example/a") != canonical_url("https://news.example/a")


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example/world/2026/11/20/harbour-bridge-reopens.html",
        "https://news.example/2026/11/storm-damage",
        "https://news.example/politics/council-approves-new-tram-line",
        "https://news.example/article/123456789",
        "https://news.example/news/story-a12345678",
    ],
)
def test_article_urls(url: str) -> None:
    assert url_kind(url) == "article"


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example/world/",
        "https://news.example/",
        "https://news.example/world/page/2/",
        "https://news.example/business?page=3",
    ],
)
def test_listing_urls(url: str) -> None:
    assert url_kind(url) == "listing"


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example/tag/harbour/",
        "https://news.example/tags/local-elections-2026",
        "https://news.example/author/jane-doe/",
        "https://news.example/search?q=ferry",
        "https://news.example/login",
        "https://news.example/account/sign-in-to-continue",
        "https://news.example/static/photo-of-the-harbour.jpg",
        "mailto:desk@news.example",
        "https://news.example/feeds/rss.xml",
    ],
)
def test_urls_that_are_neither(url: str) -> None:
    assert url_kind(url) == "skip"


def test_domains_match_subdomains_only() -> None:
    assert in_domains("https://www.news.example/a", ("news.example",))
    assert in_domains("https://news.example/a", ("news.example",))
    assert not in_domains("https://badnews.example/a", ("news.example",))
    assert not in_domains("https://news.example.evil/a", ("news.example",))
