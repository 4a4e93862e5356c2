"""The pages held in the crawl process are bounded in bytes (crawl/body_budget.py).

The decision is tested as a function; the bound in a real `scrapy crawl` of a local site whose
articles are large and slower to extract than to download, with and without the budget.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING

import pytest

from archive.sqlite import sqlite3
from crawl.body_budget import PageSizes, admits
from tests.conftest import scrapy_crawl
from tests.feedsite import WORDS, FeedSite

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MB = 1024 * 1024
SOURCE = "longreads"
ARTICLES = 30
PAGE_BYTES = 600_000
BUDGET_MB = 3


def test_a_page_is_let_through_while_everything_fits() -> None:
    assert admits(held=1 * MB, in_flight=1 * MB, page=1 * MB, budget=3 * MB)
    assert not admits(held=1 * MB, in_flight=1 * MB, page=1 * MB + 1, budget=3 * MB)
    assert not admits(held=4 * MB, in_flight=0, page=1, budget=3 * MB)


def test_a_page_larger_than_the_budget_goes_when_nothing_else_is_held() -> None:
    assert admits(held=0, in_flight=0, page=10 * MB, budget=3 * MB)
    assert not admits(held=0, in_flight=1, page=10 * MB, budget=3 * MB)


def test_page_sizes_are_learned_per_kind() -> None:
    sizes = PageSizes()
    assert sizes.estimate("a.example parse_article") is None
    sizes.learn({"a.example parse_article"}, 500_000)
    sizes.learn({"a.example parse_feed"}, 20_000)
    assert sizes.estimate("a.example parse_article") == 500_000
    assert sizes.estimate("a.example parse_feed") == 20_000
    sizes.learn({"a.example parse_article"}, 300_000)  # moves towards the new size, not to it
    assert 300_000 < (sizes.estimate("a.example parse_article") or 0) < 500_000
    assert 20_000 < sizes.overall < 500_000


def test_a_failed_first_page_leaves_a_typical_estimate() -> None:
    sizes = PageSizes()
    sizes.learn({"a.example parse_article"}, 100_000)
    sizes.assume_typical("b.example parse_article")
    assert sizes.estimate("b.example parse_article") == 100_000
    sizes.assume_typical("a.example parse_article")  # a kind already known keeps its estimate
    assert sizes.estimate("a.example parse_article") == 100_000


# --- a real crawl -----------------------------------------------------------------------------------


def long_article(number: int) -> str:
    """An article page of about PAGE_BYTES: the story, and a long reader-comments section."""
    rnd = random.Random(number)
    sentence = lambda: " ".join(rnd.choice(WORDS) for _ in range(14)).capitalize() + "."  # noqa: E731
    story = "".join(f"<p>{sentence()} {sentence()} {sentence()}</p>" for _ in range(8))
    comments = []
    while sum(map(len, comments)) < PAGE_BYTES:
        comments.append(f'<li class="comment"><p>{sentence()}</p></li>')
    title = f"Long read {number}: the {rnd.choice(WORDS)} of the {rnd.choice(WORDS)}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta property="og:type" content="article"></head><body>'
        f"<article><h1>{title}</h1><p>By Ann Writer</p>{story}</article>"
        f'<section id="comments"><ul>{"".join(comments)}</ul></section></body></html>'
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedSite]:
    site = FeedSite(tmp_path_factory.mktemp("site"))
    site.add_source(SOURCE, articles=ARTICLES)
    for number in range(1, ARTICLES + 1):
        (site.root / SOURCE / f"{number}.html").write_text(long_article(number), encoding="utf-8")
    site.start()
    yield site
    site.stop()


def crawl(site: FeedSite, tmp_path: Path, budget_mb: float) -> tuple[dict[str, int], int]:
    """Crawl the site at full speed; the probe's figures and the number of articles stored."""
    sources = tmp_path / "sources.toml"
    sources.write_text(site.sources_toml({SOURCE: 'every = "1h"'}), encoding="utf-8")
    db, figures = tmp_path / "news.db", tmp_path / "held.json"
    settings = {
        "NEWS_BODY_BUDGET_MB": str(budget_mb),
        "NEWS_EXTRACT_WORKERS": "1",
        "AUTOTHROTTLE_ENABLED": "0",
        "CONCURRENT_REQUESTS": "16",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
        "EXTENSIONS": json.dumps({"tests.held_bytes_probe.HeldBytesProbe": 900}),
        "TEST_HELD_BYTES_FILE": str(figures),
    }
    scrapy_crawl(SOURCE, db=db, sources=sources, settings=settings)
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    return json.loads(figures.read_text()), stored


def test_the_held_pages_stay_within_the_budget(site: FeedSite, tmp_path: Path) -> None:
    figures, stored = crawl(site, tmp_path, budget_mb=BUDGET_MB)
    assert stored == ARTICLES  # held back, never dropped
    assert figures["largest_page"] >= PAGE_BYTES
    assert figures["waited"] > 0
    assert figures["most_held"] <= BUDGET_MB * MB


def test_without_the_budget_the_same_crawl_holds_more(site: FeedSite, tmp_path: Path) -> None:
    """What the budget prevents: the downloads under way land on top of what waits for extraction."""
    figures, stored = crawl(site, tmp_path, budget_mb=0)
    assert stored == ARTICLES
    assert figures["waited"] == 0
    assert figures["most_held"] > 2 * BUDGET_MB * MB


def test_pages_larger_than_the_budget_are_fetched_one_at_a_time(site: FeedSite, tmp_path: Path) -> None:
    figures, stored = crawl(site, tmp_path, budget_mb=0.25)
    assert stored == ARTICLES
    assert figures["most_held"] <= figures["largest_page"] + 64 * 1024  # one page (and the feed)
