"""Site chrome learned from the archive (#19 points 2 and 3): lines that recur across a site's
articles are dropped from its bodies, and title segments that recur across its titles (its name,
its sections) are cut; a quote that a few articles share is not chrome. A real crawl of a
generated site, then `reextract`, on a real SQLite archive."""

from __future__ import annotations

import random
from collections.abc import Collection
from pathlib import Path

import pytest

from archive.site_chrome import MIN_PAGES, SiteCounts, line_keys, page_keys, strip_chrome
from archive.sqlite import sqlite3
from demo.server import SiteServer
from pipelines.reextract import reextract
from tests.conftest import scrapy_crawl
from tests.feedsite import WORDS

ARTICLES = 40
# Template lines that no wording rule of the extractor knows: only their recurrence gives them away.
BOILERPLATE = "The Coast Courier is owned by its readers and has served the islands since 1887."
QUOTE = "We will rebuild the harbour wall before the winter storms come, whatever it costs, the mayor said."
QUOTED_BY = (3, 17, 29)


def title(n: int) -> str:
    rnd = random.Random(f"title {n}")
    return f"The {rnd.choice(WORDS)} and the {rnd.choice(WORDS)} of {rnd.choice(WORDS)} number {n}"


def paragraph(n: int, k: int) -> str:
    rnd = random.Random(f"{n}/{k}")
    return " ".join(" ".join(rnd.choice(WORDS) for _ in range(13)).capitalize() + "." for _ in range(3))


def article(n: int) -> str:
    body = [paragraph(n, k) for k in range(5)]
    if n in QUOTED_BY:
        body.insert(2, QUOTE)
    most_read = title((n * 7 + 3) % ARTICLES)  # another article's headline: chrome whose text varies
    chrome = [BOILERPLATE, f"In pictures: {most_read}"]
    paragraphs = "".join(f"<p>{p}</p>" for p in [*body, *chrome])
    # No <h1>: the headline is only in <title>, with a section and the paper's name (declared nowhere
    # else, so no rule knows it for a site name) after it.
    section = ("Harbour", "Islands")[n % 2]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title(n)} | {section} | The Coast Courier</title>"
        '<meta property="og:type" content="article">'
        f'<meta property="article:published_time" content="2026-11-{1 + n % 28:02d}T08:00:00Z"></head>'
        f"<body><article>{paragraphs}</article></body></html>"
    )


@pytest.fixture
def site(tmp_path: Path) -> SiteServer:
    root = tmp_path / "site"
    for n in range(ARTICLES):
        page = root / "news" / f"2026-11-story-number-{n}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(article(n), encoding="utf-8")
    items = "".join(
        f"<item><link>{{{{BASE}}}}/news/2026-11-story-number-{n}.html</link></item>" for n in range(ARTICLES)
    )
    (root / "feed.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>{items}</channel></rss>', encoding="utf-8"
    )
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    server = SiteServer(root).start()
    yield server
    server.stop()


def bodies(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT url, text FROM articles"))


def titles(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return {url.rsplit("-", 1)[1]: title for url, title in conn.execute("SELECT url, title FROM articles")}


def test_chrome_that_recurs_across_a_site_is_dropped_and_a_shared_quote_is_kept(
    site: SiteServer, tmp_path: Path
) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "courier"\nfeeds = ["{site.base_url}/feed.xml"]\nevery = "1h"\n'
        'allow_private = true\ndelay = "0s"\n',
        encoding="utf-8",
    )
    scrapy_crawl("courier", db=tmp_path / "news.db", sources=sources)
    crawled = bodies(tmp_path / "news.db")
    assert len(crawled) == ARTICLES
    with_chrome = [url for url, text in crawled.items() if BOILERPLATE in text]
    # Extraction keeps the boilerplate line: the first articles of the site, stored before it had
    # recurred often enough, still carry it; the later ones no longer do.
    assert 0 < len(with_chrome) < ARTICLES / 2
    assert 0 < sum("In pictures:" in text for text in crawled.values()) < ARTICLES / 2

    assert 0 < sum(t.endswith("| The Coast Courier") for t in titles(tmp_path / "news.db").values()) < ARTICLES / 2

    reextract(tmp_path / "news.db")
    assert titles(tmp_path / "news.db") == {f"{n}.html": title(n) for n in range(ARTICLES)}
    cleaned = bodies(tmp_path / "news.db")
    for url, text in cleaned.items():
        assert BOILERPLATE not in text, url
        assert "In pictures:" not in text, url
        number = int(url.rsplit("-", 1)[1].removesuffix(".html"))
        assert all(paragraph(number, k) in text for k in range(5)), url  # the story itself stays
        assert (QUOTE in text) == (number in QUOTED_BY), url  # a quote three articles share is no chrome


def test_counts_follow_a_site_that_changes_its_template() -> None:
    counts = SiteCounts(pages=0)
    old, new = "Subscribe to the Tuesday edition", "Follow us on the new app"
    for n in range(60):
        counts.add(page_keys(f"story line {n} with its own words\n{old}"))
    assert all(key in counts.chrome() for key in line_keys(old))
    for n in range(60, 200):
        counts.add(page_keys(f"story line {n} with its own words\n{new}"))
    chrome = counts.chrome()
    assert all(key in chrome for key in line_keys(new))
    assert not any(key in chrome for key in line_keys(old))  # the old template's line is forgotten


def test_a_young_site_has_no_chrome_and_a_mostly_chrome_body_is_left_alone() -> None:
    counts = SiteCounts(pages=0)
    for _ in range(MIN_PAGES - 1):
        counts.add(page_keys("Share this story"))
    assert not counts.chrome()
    counts.add(page_keys("Share this story"))
    chrome = counts.chrome()
    assert strip_chrome("Share this story\nA long paragraph of the story itself, with its own words.", "", chrome)
    assert strip_chrome("Share this story\nShort.", "", chrome) is None  # would take most of the body


def test_short_sentences_of_a_story_are_never_keyed_by_their_start() -> None:
    counts = SiteCounts(pages=0)
    for n in range(40):  # every article has a short paragraph starting "He said", each its own
        headline = f"{WORDS[n % len(WORDS)]} and {WORDS[(n * 7) % len(WORDS)]}"  # varies, digits aside
        counts.add(page_keys(f"He said the {headline} would wait.\nMost read: the {headline}"))
    chrome = counts.chrome()
    assert not any(key in chrome for key in line_keys("He said the river and ferry would wait."))
    assert any(key in chrome for key in line_keys("Most read: another headline"))


def test_a_process_keeps_a_bounded_share_of_many_sites_lines(tmp_path: Path) -> None:
    """300 articles on each of 80 sites, written in batches of 7 (so the article counts skip past
    any fixed multiple): lines not seen lately are forgotten in memory and in site_lines, at most
    SITES_KEPT sites stay in memory, and each site's template is still recognised, also after its
    counts were read back from the archive."""
    from archive.schema import open_db
    from archive.site_chrome import FADED, SITES_KEPT, SiteChrome

    db = open_db(tmp_path / "news.db")
    chrome = SiteChrome(db)
    template = line_keys(BOILERPLATE)
    sites = [f"site{n}.example" for n in range(80)]
    for start in range(0, 300, 7):
        with db.conn:
            for site in sites:
                for n in range(start, min(start + 7, 300)):
                    unique = {key for k in range(5) for key in line_keys(paragraph(n, k) + site)}
                    chrome.count(site, unique | set(template))
            chrome.write()
    assert len(chrome.sites) <= SITES_KEPT
    for site in (sites[0], sites[-1]):  # one read back from the archive, one still in memory
        counts = chrome.counts(site)
        assert counts.pages == 300
        assert all(key in chrome.chrome(site) for key in template)
        # What is kept: the template and the lines of the articles since the last pruning (a line
        # fades below FADED some 34 articles after it was seen), not 300 articles' lines.
        assert len(counts.weights) <= len(template) + 5 * 2 * 90
        assert min(counts.weight(key) for key in counts.weights) >= FADED * 0.98**50
    rows = db.execute("SELECT count(*) FROM site_lines WHERE site = ?", [sites[0]]).fetchone()[0]
    assert rows <= len(template) + 5 * 2 * 90


def test_a_site_read_back_from_the_archive_reads_only_the_lines_its_pages_ask_about(tmp_path: Path) -> None:
    """Another process (or one that let the site go) reads a site's weights key by key, as its
    pages ask, and decides and counts as the process that kept every line in memory."""
    from archive.schema import open_db
    from archive.site_chrome import SiteChrome

    db = open_db(tmp_path / "news.db")
    kept = SiteChrome(db)
    site = "courier.example"
    template = line_keys(BOILERPLATE)
    with db.conn:
        for n in range(120):
            kept.count(site, {key for k in range(5) for key in line_keys(paragraph(n, k))} | set(template))
        kept.write()
    stored_rows = db.execute("SELECT count(*) FROM site_lines WHERE site = ?", [site]).fetchone()[0]

    read_back = SiteChrome(db)
    page = {key for k in range(5) for key in line_keys(paragraph(500, k))} | set(template)
    chrome = read_back.chrome(site, page)
    assert all(key in chrome for key in template)
    assert not any(key in chrome for key in page - set(template))
    assert len(read_back.counts(site).weights) <= len(template) < stored_rows  # the rest was never read

    kept.count(site, page)
    read_back.count(site, page)
    for key in page:
        assert read_back.counts(site).weight(key) == kept.counts(site).weight(key)


def test_keys_asked_but_never_stored_are_not_kept_for_ever() -> None:
    """reextract (and a writer of unchanged pages) reads far more keys than it counts."""
    asked: list[int] = []

    def stored(keys: Collection[int]) -> dict[int, tuple[float, int]]:
        asked.extend(keys)
        return {}

    counts = SiteCounts(pages=100, stored=stored)
    for page in range(60):
        counts.know(range(page * 1000, (page + 1) * 1000))
    assert len(counts.asked) <= 11_000
    assert len(asked) == 60_000
    counts.know([59_999])  # still known as missing: not asked again
    assert len(asked) == 60_000


def test_a_line_stored_after_the_site_count_was_read_is_not_grown() -> None:
    """Another process wrote the site since this one read its count: the row is newer than it."""
    counts = SiteCounts(pages=10, stored=lambda keys: dict.fromkeys(keys, (3.0, 20)))
    assert counts.weight(42) == 3.0


def test_lines_seen_on_one_article_are_forgotten_in_memory_and_read_again_if_they_come_back(tmp_path: Path) -> None:
    """A process keeps in memory only the lines that recur (the template, a quote some articles
    share); a line seen once goes once written, and if it comes back its weight is read from
    site_lines: every weight a page asks about is the one of counts that kept every line."""
    from archive.schema import open_db
    from archive.site_chrome import FADED, SiteChrome

    db = open_db(tmp_path / "news.db")
    chrome = SiteChrome(db)
    everything = SiteCounts(pages=0)  # no archive behind it: keeps every line, never prunes
    site = "courier.example"
    template = set(line_keys(BOILERPLATE))
    rnd = random.Random(7)
    shared = [paragraph(1000 + k, 0) for k in range(12)]  # lines a few articles repeat, far apart
    for start in range(0, 300, 7):
        with db.conn:
            for n in range(start, start + 7):
                lines = [paragraph(n, k) for k in range(5)] + [rnd.choice(shared)] * (rnd.random() < 0.2)
                if n % 40 == 39:
                    lines.append(paragraph(n - 3, 1))  # a line of an article three before, once again
                page = {key for line in lines for key in line_keys(line)} | template
                decided = chrome.chrome(site, page)
                for key in page:
                    assert abs(chrome.counts(site).weight(key) - everything.weight(key)) < FADED
                    assert (key in decided) == (key in everything.chrome())
                chrome.count(site, page)
                everything.add(page)
            chrome.write()
    kept = chrome.counts(site).weights
    assert template <= set(kept)
    repeated = template | {key for line in shared for key in line_keys(line)}
    repeated |= {key for n in range(39, 301, 40) for key in line_keys(paragraph(n - 3, 1))}
    assert set(kept) <= repeated  # no article's own line stays in memory
    assert len(everything.weights) > 10 * len(kept)


def test_a_write_that_fails_part_way_loses_no_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's transaction rolls back; the next write writes every site's counts, the lines
    seen once included (nothing is forgotten before every site is saved)."""
    import archive.site_chrome
    from archive.schema import open_db
    from archive.site_chrome import SiteChrome
    from archive.transactions import immediate_transaction

    db = open_db(tmp_path / "news.db")
    chrome = SiteChrome(db)
    chrome.count("a.example", {42})
    chrome.count("b.example", {7})
    real_save = archive.site_chrome.save

    def disk_full_for_b(db_: object, site: str, *args: object) -> None:
        if site == "b.example":
            raise sqlite3.OperationalError("database or disk is full")
        real_save(db_, site, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(archive.site_chrome, "save", disk_full_for_b)
    with pytest.raises(sqlite3.OperationalError), immediate_transaction(db):
        chrome.write()
    monkeypatch.setattr(archive.site_chrome, "save", real_save)
    with immediate_transaction(db):
        chrome.write()
    rows = db.execute("SELECT site, line_key, weight FROM site_lines ORDER BY site").fetchall()
    assert rows == [("a.example", 42, 1.0), ("b.example", 7, 1.0)]
