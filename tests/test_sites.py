"""archive/sites.py: the site of a URL, the unit of one record per story per site."""

from __future__ import annotations

from archive.sites import _site_of_authority, _site_of_url, site_of

URLS = [
    "https://www.bbc.co.uk/news/world-123",
    "https://news.bbc.co.uk/2/hi/europe/1.stm",
    "http://WWW.Example.COM/Path?q=1#frag",
    "https://example.com:8443/a",
    "https://user:secret@www.example.org/a",
    "http://127.0.0.1:8080/c0/story.html",
    "http://127.0.0.12:8080/c0/story.html",
    "http://localhost:8000/x",
    "https://www.bücher.de/artikel",
    "https://xn--bcher-kva.de/artikel",
    "https://blog.example.github.io/post",
    "https://example.com",
    "https://example.com?x=1",
]


def test_site_is_the_registered_domain_or_the_host_and_port() -> None:
    assert site_of("https://www.bbc.co.uk/news/world-123") == "bbc.co.uk"
    assert site_of("https://news.bbc.co.uk/2/hi/europe/1.stm") == "bbc.co.uk"
    assert site_of("http://127.0.0.1:8080/c0/story.html") == "127.0.0.1:8080"
    assert site_of("http://127.0.0.12:8080/c0/story.html") != site_of("http://127.0.0.1:8080/c0/story.html")
    assert site_of("http://localhost:8000/x") == "localhost:8000"


def test_site_by_authority_equals_the_site_by_whole_url() -> None:
    for url in URLS:
        assert site_of(url) == _site_of_url(url), url


def test_urls_without_a_scheme_are_read_whole() -> None:
    assert site_of("//www.example.com/a") == _site_of_url("//www.example.com/a")


def test_one_lookup_per_host_however_many_urls() -> None:
    _site_of_authority.cache_clear()
    sites = {site_of(f"http://127.0.0.{n % 3 + 1}:8080/c{n}/story-{n}.html") for n in range(3000)}
    assert len(sites) == 3
    assert _site_of_authority.cache_info().misses == 3
