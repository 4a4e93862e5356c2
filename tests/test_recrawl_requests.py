"""One request per URL and crawl, and a re-crawl that fetches nothing it has seen (#20): real
crawls of a site built for them, each asserting on the server's request log.

The site has what a news site has and the demo site lacks: a page both linked from the home page
(with a URL that looks like a section) and listed in the feed, links with lower-case
percent-escapes and tracking parameters, a Cyrillic article in windows-1251 with no charset
declared anywhere, a copy of an article in a partner template (same text) and one in a print
template (the same text with a caption and a related-links block), a photo gallery and a 404 at
article URLs, and a second site that republishes an article.
"""

from __future__ import annotations

import random
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from archive.schema import open_db
from archive.sqlite import sqlite3
from tests.conftest import ROOT, scrapy_crawl
from tests.feedsite import WORDS, FeedSiteServer

CYRILLIC_SLUG = "мост-открыт-после-ремонта"
CYRILLIC_PATH = "/world/2026/12/03/" + quote(CYRILLIC_SLUG) + ".htm"
LISTING_LOOKING = "/notes/timetable"  # no date, no id, a two-word slug: a listing by its URL
ARTICLES = {
    "/world/2026/12/01/harbour-wall-repaired-after-storm.html": "harbour",
    "/world/2026/12/02/tram-line-extended-to-the-coast.html": "tram",
    LISTING_LOOKING: "timetable",
    CYRILLIC_PATH: "cyrillic",
}
SAME_TEXT_COPY = "/partners/harbour-wall-repaired.html"
NEAR_COPY = "/print/harbour-wall-repaired-print.html"
GALLERY = "/world/2026/12/04/photos-of-the-week.html"
MISSING = "/world/2026/12/05/story-that-is-gone.html"
REPUBLISHED = "/wire/harbour-wall-repaired.html"  # on the other site


def paragraphs(seed: str, count: int = 6) -> list[str]:
    rnd = random.Random(seed)
    return [
        " ".join(" ".join(rnd.choice(WORDS) for _ in range(14)).capitalize() + "." for _ in range(4))
        for _ in range(count)
    ]


def page(title: str, body: list[str], *, chrome: str, canonical: str | None = None, extra: str = "") -> str:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    text = "".join(f"<p>{p}</p>" for p in body)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>{link}'
        '<meta property="og:type" content="article">'
        '<meta property="article:published_time" content="2026-12-01T08:00:00Z"></head><body>'
        f'<nav class="{chrome}"><a href="/">Home</a></nav><article><h1>{title}</h1>{text}{extra}</article>'
        f"<footer>{chrome} footer</footer></body></html>"
    )


def build_site(root: Path, other: Path, base: str, other_base: str) -> None:
    def write(path: str, text: str | bytes, into: Path = root) -> None:
        target = into / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))

    harbour = paragraphs("harbour")
    for path, seed in ARTICLES.items():
        if seed != "cyrillic":
            write(path, page(f"The {seed} story of the week", paragraphs(seed), chrome="main"))
    # windows-1251, declared nowhere (no charset in Content-Type: .htm; no <meta>), with a
    # canonical link written in Cyrillic letters, not percent-escapes.
    cyrillic_body = "".join(
        f"<p>{' '.join(['Мост через реку снова открыт для движения после долгого ремонта'] * 3)} {n}.</p>"
        for n in range(6)
    )
    write(
        CYRILLIC_PATH,
        (
            f'<html lang="ru"><head><title>Мост открыт после ремонта</title>'
            f'<link rel="canonical" href="{base}/world/2026/12/03/{CYRILLIC_SLUG}.htm">'
            '<meta property="article:published_time" content="2026-12-03T08:00:00Z"></head>'
            f"<body><article><h1>Мост открыт после ремонта</h1>{cyrillic_body}</article></body></html>"
        ).encode("cp1251"),
    )
    write(SAME_TEXT_COPY, page("Harbour wall repaired", harbour, chrome="partner"))
    caption = "<p>Pictured: the repaired wall at low tide on Tuesday morning.</p>"
    related = "<ul><li>Ferry times change for winter</li><li>Council meets on Thursday</li></ul>"
    write(NEAR_COPY, page("Harbour wall repaired", harbour, chrome="print", extra=caption + related))
    # The section's own page names itself canonical; its copies in other templates name nothing.
    original = "/world/2026/12/01/harbour-wall-repaired-after-storm.html"
    write(original, page("Harbour wall repaired after storm", harbour, chrome="main", canonical=base + original))
    write(GALLERY, page("Photos of the week", ["A gull on the pier."], chrome="main"))
    write(REPUBLISHED, page("Harbour wall repaired", harbour, chrome="wire"), into=other)

    lower_escaped = CYRILLIC_PATH.replace(quote(CYRILLIC_SLUG), quote(CYRILLIC_SLUG).lower())
    home_links = [
        "/world/",
        LISTING_LOOKING,
        "/world/2026/12/01/harbour-wall-repaired-after-storm.html?utm_source=home#top",
        MISSING,
    ]
    write("/index.html", "".join(f'<a href="{href}">link</a> ' for href in home_links))
    write("/world/index.html", f'<a href="{lower_escaped}">bridge</a> <a href="/">home</a>')
    feed_items = [
        *(p for p in ARTICLES if p != LISTING_LOOKING),
        LISTING_LOOKING,
        SAME_TEXT_COPY,
        NEAR_COPY,
        GALLERY,
        MISSING,
    ]
    items = "".join(f"<item><title>t</title><link>{base}{path}</link></item>" for path in feed_items)
    items += f"<item><title>t</title><link>{other_base}{REPUBLISHED}</link></item>"
    write("/feed.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>')
    for folder in (root, other):
        (folder / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")


@pytest.fixture
def sites(tmp_path: Path) -> tuple[FeedSiteServer, FeedSiteServer]:
    main, other = FeedSiteServer(tmp_path / "site").start(), FeedSiteServer(tmp_path / "other").start()
    main.gzip_html = other.gzip_html = False
    build_site(tmp_path / "site", tmp_path / "other", main.base_url, other.base_url)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[[source]]\nname = "coast"\n'
        f'feeds = ["{main.base_url}/feed.xml"]\nstart_pages = ["{main.base_url}/"]\n'
        'follow_depth = 1\nallowed_domains = ["127.0.0.1"]\nevery = "1h"\nallow_private = true\ndelay = "0s"\n',
        encoding="utf-8",
    )
    yield main, other
    main.stop()
    other.stop()


def crawl(tmp_path: Path) -> None:
    scrapy_crawl("coast", db=tmp_path / "news.db", sources=tmp_path / "sources.toml")


def requested(server: FeedSiteServer) -> list[str]:
    return [path for path in server.paths_requested() if path != "/robots.txt"]


def article_requests(server: FeedSiteServer) -> list[str]:
    """Requests answered with a page (not a 304) other than the feed, the home and section pages."""
    listings = {"/feed.xml", "/", "/world/"}
    return [r.path for r in server.requests if r.path not in listings | {"/robots.txt"} and r.status != 304]


def test_one_crawl_asks_for_each_url_once_whatever_way_it_was_found(
    sites: tuple[FeedSiteServer, FeedSiteServer], tmp_path: Path
) -> None:
    main, other = sites
    crawl(tmp_path)
    paths = requested(main)
    assert sorted(set(paths)) == sorted(paths), "a URL was requested twice"
    # The page that the home page links as a listing and the feed lists as an article: one request,
    # and it is stored as an article.
    assert paths.count(LISTING_LOOKING) == 1
    db = open_db(tmp_path / "news.db")
    stored = {row["url"].removeprefix(main.base_url) for row in db["articles"].rows}
    assert LISTING_LOOKING in stored
    assert f"/world/2026/12/03/{quote(CYRILLIC_SLUG)}.htm" in stored
    assert requested(other) == [REPUBLISHED]


def test_a_page_found_both_ways_that_times_out_is_tried_three_times_not_six(
    sites: tuple[FeedSiteServer, FeedSiteServer], tmp_path: Path
) -> None:
    main, _ = sites
    main.delays[LISTING_LOOKING] = 30.0  # never answers within the crawl's timeout
    scrapy_crawl(
        "coast", db=tmp_path / "news.db", sources=tmp_path / "sources.toml", settings={"DOWNLOAD_TIMEOUT": "1"}
    )
    assert main.arrived.count(LISTING_LOOKING) == 3  # the first try and RETRY_TIMES = 2 more


def test_a_second_crawl_of_an_unchanged_site_fetches_no_article_and_no_remembered_page(
    sites: tuple[FeedSiteServer, FeedSiteServer], tmp_path: Path
) -> None:
    main, other = sites
    crawl(tmp_path)
    main.clear_log()
    other.clear_log()
    crawl(tmp_path)
    # Conditional requests for the feed and the home and section pages, nothing else.
    assert article_requests(main) == []
    assert {r.path: r.status for r in main.requests if r.path != "/robots.txt"} == {
        "/feed.xml": 304,
        "/": 304,
        "/world/": 304,
    }
    assert requested(other) == []

    # The same with every listing read again (as from a server that sends no validators).
    with sqlite3.connect(tmp_path / "news.db") as conn:
        conn.execute("DELETE FROM http_validators")
    main.clear_log()
    crawl(tmp_path)
    assert article_requests(main) == []
    assert {"/feed.xml", "/", "/world/"} <= set(requested(main))
    assert requested(other) == []


def test_pages_that_are_no_article_are_remembered_and_looked_at_again_after_a_back_off(
    sites: tuple[FeedSiteServer, FeedSiteServer], tmp_path: Path
) -> None:
    main, _ = sites
    crawl(tmp_path)
    db = open_db(tmp_path / "news.db")
    remembered = {row["url"].removeprefix(main.base_url): row for row in db["not_articles"].rows}
    assert set(remembered) == {GALLERY, MISSING}
    assert remembered[GALLERY]["reason"].startswith("too short")
    assert remembered[MISSING]["reason"] == "HTTP 404"
    assert {row["checks"] for row in remembered.values()} == {1}

    # A day later (the next check is due): asked for again, and the next check is two days on.
    with sqlite3.connect(tmp_path / "news.db") as conn:
        conn.execute("UPDATE not_articles SET next_check_at = '2000-01-01T00:00:00+00:00'")
        conn.execute("DELETE FROM http_validators")
    main.clear_log()
    crawl(tmp_path)
    assert sorted(article_requests(main)) == sorted([GALLERY, MISSING])
    row = open_db(tmp_path / "news.db")["not_articles"].get(main.base_url + GALLERY)
    assert row["checks"] == 2
    days = (
        sqlite3.connect(":memory:")
        .execute("SELECT julianday(?) - julianday(?)", [row["next_check_at"], row["checked_at"]])
        .fetchone()[0]
    )
    assert days == pytest.approx(2, abs=0.01)


def test_copies_on_the_same_site_are_aliases_and_copies_elsewhere_are_articles_in_one_cluster(
    sites: tuple[FeedSiteServer, FeedSiteServer], tmp_path: Path
) -> None:
    main, other = sites
    crawl(tmp_path)
    db = open_db(tmp_path / "news.db")
    original = main.base_url + "/world/2026/12/01/harbour-wall-repaired-after-storm.html"
    aliases = {row["alias"].removeprefix(main.base_url): row for row in db["url_aliases"].rows}
    # Whichever order the pages came in, the section's own page (it names itself canonical) is the
    # article; a copy folded into a copy before the original came follows it there.
    assert aliases[SAME_TEXT_COPY]["url"] == original
    assert aliases[SAME_TEXT_COPY]["reason"] in ("same_body", "near_copy")
    assert aliases[SAME_TEXT_COPY]["similarity"] >= 0.7
    assert aliases[NEAR_COPY]["url"] == original
    assert aliases[NEAR_COPY]["reason"] == "near_copy"
    assert 0.7 <= aliases[NEAR_COPY]["similarity"] < 1.0
    republished = db["articles"].get(other.base_url + REPUBLISHED)
    assert republished["cluster_id"] == db["articles"].get(original)["cluster_id"]
    same_story_here = db.execute(
        "SELECT count(*) FROM articles WHERE cluster_id = ? AND url LIKE ?",
        [republished["cluster_id"], main.base_url + "%"],
    ).fetchone()[0]
    assert same_story_here == 1  # one record of the story per site


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_make_demo_twice_the_second_run_fetches_no_article_page(tmp_path: Path) -> None:
    """What `make demo` runs, twice on one archive: the second summary says no article page was fetched."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "demo.run",
        "--db",
        str(tmp_path / "news.db"),
        "--sources-out",
        str(tmp_path / "sources.toml"),
        "--port",
        str(port),
    ]
    runs = [subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[1].stderr[-2000:]
    first, second = ([line for line in run.stdout.splitlines() if ": ok - " in line] for run in runs)
    assert len(first) == len(second) == 3
    assert sum(int(re.search(r"(\d+) article pages\)", line)[1]) for line in first) >= 30
    assert all(line.endswith(" 0 article pages)") and " 0 new," in line for line in second), second
