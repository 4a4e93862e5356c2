"""A sitemap index's children are fetched one at a time (spiders/sitemap_turns.py).

Real `scrapy crawl` runs against a FeedSite on 127.0.0.1 whose sitemaps answer slowly, so
children fetched side by side would overlap at the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from archive.sqlite import sqlite3
from tests.conftest import scrapy_crawl
from tests.feedsite import FeedSite

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SOURCE = "wire"
PARTS = 4


def urlset(paths: list[str]) -> str:
    urls = "".join(f"<url><loc>{{{{BASE}}}}{p}</loc></url>" for p in paths)
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


def index(paths: list[str]) -> str:
    maps = "".join(f"<sitemap><loc>{{{{BASE}}}}{p}</loc></sitemap>" for p in paths)
    return (
        f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FeedSite]:
    site = FeedSite(tmp_path / "site")
    site.add_source(SOURCE, articles=2 * PARTS)
    parts = [f"/sitemaps/part-{i}.xml" for i in range(1, PARTS + 1)]
    for i, path in enumerate(parts):
        (site.root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (site.root / path.lstrip("/")).write_text(
            urlset([f"/{SOURCE}/{2 * i + 1}.html", f"/{SOURCE}/{2 * i + 2}.html"])
        )
        site.server.delays[path] = 0.3
    # Listed too: a missing part, a part twice, and the index itself.
    listed = [*parts[:2], "/sitemaps/missing.xml", parts[0], "/sitemap_index.xml", *parts[2:]]
    (site.root / "sitemap_index.xml").write_text(index(listed), encoding="utf-8")
    site.start()
    yield site
    site.stop()


def test_child_sitemaps_take_turns_and_every_one_is_read_once(site: FeedSite, tmp_path: Path) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        site.sources_toml({SOURCE: 'every = "1h"'}, feeds={SOURCE: []}, sitemaps={SOURCE: ["/sitemap_index.xml"]}),
        encoding="utf-8",
    )
    db = tmp_path / "news.db"
    # Politeness off and room for 8 requests at once, as bench/throughput.py crawls: turns or not,
    # Scrapy would then fetch every sitemap the index lists side by side.
    fast = {"AUTOTHROTTLE_ENABLED": "0", "CONCURRENT_REQUESTS_PER_DOMAIN": "8", "NEWS_EXTRACT_WORKERS": "0"}
    result = scrapy_crawl(SOURCE, db=db, sources=sources, settings=fast)
    assert result.returncode == 0, result.stderr[-3000:]

    assert site.server.most_active["/sitemaps/"] == 1  # one child sitemap at a time
    requested = site.server.paths_requested()
    assert [requested.count(f"/sitemaps/part-{i}.xml") for i in range(1, PARTS + 1)] == [1] * PARTS
    assert requested.count("/sitemap_index.xml") == 1
    conn = sqlite3.connect(db)
    assert {row[0] for row in conn.execute("SELECT url FROM articles")} == site.urls(SOURCE)
    failures = {
        (url.removeprefix(site.base_url), stage) for url, stage in conn.execute("SELECT url, stage FROM failures")
    }
    assert ("/sitemaps/missing.xml", "fetch") in failures  # failed, and the turn went on to the next
    assert ("/sitemap_index.xml", "parse") in failures  # the index listing itself
