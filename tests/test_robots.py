"""robots.txt that cannot be read: the host's pages are refused and recorded, never crawled blind.

Real `scrapy crawl` runs against a FeedSite on 127.0.0.1 whose robots.txt fails in different ways.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from archive.sqlite import sqlite3
from tests.conftest import scrapy_crawl
from tests.feedsite import DelayHandler, FeedSite

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SOURCE = "wire"
ROBOTS_RULES = "User-agent: *\nDisallow: /wire/2.html\n"


class FlakyRobotsHandler(DelayHandler):
    """robots.txt answers 503 `server.robots_failures` times, then serves the file (only when
    asked as `server.robots_failing_host`, if set)."""

    def do_GET(self) -> None:
        failing_host = getattr(self.server, "robots_failing_host", None)
        if self.path == "/robots.txt" and (failing_host is None or self.headers.get("Host") == failing_host):
            with self.server.lock:
                failing = self.server.robots_failures > 0  # type: ignore[attr-defined]
                self.server.robots_failures -= failing  # type: ignore[attr-defined]
            if failing:
                self._send(503, b"<html><body>Busy</body></html>", "text/html")
                return
        super().do_GET()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FeedSite]:
    site = FeedSite(tmp_path / "site")
    site.add_source(SOURCE, articles=3)
    (site.root / "robots.txt").write_text(ROBOTS_RULES, encoding="utf-8")
    site.server.RequestHandlerClass = FlakyRobotsHandler
    site.server.robots_failures = 0  # type: ignore[attr-defined]
    site.start()
    yield site
    site.stop()


def crawl(site: FeedSite, tmp_path: Path, **settings: str) -> Path:
    sources = tmp_path / "sources.toml"
    sources.write_text(site.sources_toml({SOURCE: 'every = "1h"'}), encoding="utf-8")
    db = tmp_path / "news.db"
    scrapy_crawl(SOURCE, db=db, sources=sources, settings={"NEWS_EXTRACT_WORKERS": "0", **settings})
    return db


def stored_urls(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {url for (url,) in conn.execute("SELECT url FROM articles")}


def failures(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT url, reason FROM failures ORDER BY id"))


def fetched(site: FeedSite) -> list[str]:
    return site.server.paths_requested()


def test_readable_robots_txt_is_honoured(site: FeedSite, tmp_path: Path) -> None:
    db = crawl(site, tmp_path)
    assert stored_urls(db) == {site.article_url(SOURCE, 1), site.article_url(SOURCE, 3)}
    assert "/wire/2.html" not in fetched(site)


def test_a_transient_robots_error_is_retried_and_then_honoured(site: FeedSite, tmp_path: Path) -> None:
    site.server.robots_failures = 2  # type: ignore[attr-defined]  # RETRY_TIMES = 2: the third try reads it
    db = crawl(site, tmp_path)
    assert fetched(site).count("/robots.txt") == 3
    assert stored_urls(db) == {site.article_url(SOURCE, 1), site.article_url(SOURCE, 3)}
    assert "/wire/2.html" not in fetched(site)


@pytest.mark.parametrize("status", [503, 500, 429])
def test_an_unreachable_robots_txt_refuses_the_host_and_records_why(
    site: FeedSite, tmp_path: Path, status: int
) -> None:
    db = crawl(site, tmp_path)  # a first run stores what robots.txt allows
    before = stored_urls(db)
    assert len(before) == 2
    site.server.clear_log()
    site.server.set_page("/robots.txt", "<html><body>Service unavailable</body></html>", status=status)
    site.add_article(SOURCE)  # something new to fetch, were robots.txt ignored

    crawl(site, tmp_path)  # robots.txt is asked for 1 + RETRY_TIMES times

    assert set(fetched(site)) == {"/robots.txt"}  # not the feed, not a page
    assert stored_urls(db) == before  # nothing stored is lost
    (reason,) = [reason for url, reason in failures(db) if url.endswith(site.feed_path(SOURCE))]
    assert reason == f"refused: robots.txt could not be read (HTTP {status}), so nothing on the host is fetched"


def test_a_robots_txt_that_times_out_refuses_the_host(site: FeedSite, tmp_path: Path) -> None:
    site.server.delays["/robots.txt"] = 5.0
    db = crawl(site, tmp_path, DOWNLOAD_TIMEOUT="1", RETRY_TIMES="0")
    assert stored_urls(db) == set()
    assert set(fetched(site)) <= {"/robots.txt"}  # the delayed robots.txt may be logged as served
    (reason,) = {reason for _, reason in failures(db)}
    assert reason.startswith("refused: robots.txt could not be read (DownloadTimeoutError: ")


def test_a_missing_robots_txt_means_no_rules(site: FeedSite, tmp_path: Path) -> None:
    site.server.set_page("/robots.txt", "User-agent: *\nDisallow: /wire/\n", status=404)
    db = crawl(site, tmp_path)
    assert stored_urls(db) == site.urls(SOURCE)  # what a 404 says is not read as rules


def test_robots_txt_is_asked_for_again_once_the_refusal_has_run_its_time(site: FeedSite, tmp_path: Path) -> None:
    # The feed is read through "localhost", the articles are fetched from "127.0.0.1": two hosts,
    # one server. The articles' robots.txt fails once; one request at a time, no wait.
    site.server.robots_failing_host = site.base_url.removeprefix("http://")  # type: ignore[attr-defined]
    site.server.robots_failures = 1  # type: ignore[attr-defined]
    feed = site.base_url.replace("127.0.0.1", "localhost") + site.feed_path(SOURCE)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[defaults]\nallow_private = true\ndelay = "0s"\nmax_age = "100000d"\n\n[[source]]\n'
        f'name = "{SOURCE}"\nfeeds = ["{feed}"]\nallowed_domains = ["localhost", "127.0.0.1"]\nevery = "1h"\n',
        encoding="utf-8",
    )
    db = tmp_path / "news.db"
    settings = {
        "NEWS_EXTRACT_WORKERS": "0",
        "RETRY_TIMES": "0",
        "NEWS_ROBOTSTXT_RETRY": "0",
        "CONCURRENT_REQUESTS": "1",
    }
    scrapy_crawl(SOURCE, db=db, sources=sources, settings=settings)

    assert fetched(site).count("/robots.txt") == 3  # localhost's, then 127.0.0.1's twice
    (refused,) = failures(db)  # the first article, refused while robots.txt could not be read
    assert refused[1] == "refused: robots.txt could not be read (HTTP 503), so nothing on the host is fetched"
    # Read on the second try, robots.txt is obeyed again: /wire/2.html is not fetched.
    assert stored_urls(db) == {site.article_url(SOURCE, 1), site.article_url(SOURCE, 3)} - {refused[0]}
    assert "/wire/2.html" not in fetched(site)


def test_requests_that_wait_for_robots_txt_together_are_all_checked(site: FeedSite, tmp_path: Path) -> None:
    # Scrapy 2.19 gave the parser to the first request waiting for robots.txt and None ("allowed")
    # to the others. Four feeds start together while robots.txt takes a second; three of them are
    # disallowed.
    hidden = [f"/feeds/hidden-{i}.xml" for i in range(3)]
    for path in hidden:
        (site.root / path.lstrip("/")).write_text((site.root / "feeds" / f"{SOURCE}.xml").read_text())
    (site.root / "robots.txt").write_text(ROBOTS_RULES + "".join(f"Disallow: {p}\n" for p in hidden))
    site.server.delays["/robots.txt"] = 1.0
    sources = tmp_path / "sources.toml"
    sources.write_text(
        site.sources_toml({SOURCE: 'every = "1h"'}, feeds={SOURCE: [site.feed_path(SOURCE), *hidden]}),
        encoding="utf-8",
    )
    db = tmp_path / "news.db"
    fast = {"NEWS_EXTRACT_WORKERS": "0", "AUTOTHROTTLE_ENABLED": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "8"}
    result = scrapy_crawl(SOURCE, db=db, sources=sources, settings=fast)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not set(hidden) & set(fetched(site))
    assert "/wire/2.html" not in fetched(site)
    assert stored_urls(db) == {site.article_url(SOURCE, 1), site.article_url(SOURCE, 3)}
