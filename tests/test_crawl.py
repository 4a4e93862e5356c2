"""End to end: real `scrapy crawl` / `scheduler.py crawl` processes against the demo site on 127.0.0.1.

The demo site's manifest.json is the truth: 30 articles, an AMP copy, a syndicated copy, thin
pages at article URLs, a robots-disallowed page, a 404 and a 500.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from archive.schema import open_db
from demo.server import DEFAULT_ROOT, SiteServer
from tests.conftest import DEMO_SOURCES, ROOT, run_scheduler, scrapy_crawl, write_sources
from tests.processes import alive, descendants, started_by

MANIFEST = json.loads((DEFAULT_ROOT / "manifest.json").read_text(encoding="utf-8"))
ARTICLE_PATHS = {a["path"] for a in MANIFEST["articles"]}


@pytest.fixture
def fresh_site() -> SiteServer:
    """A demo site of the test's own, so its request log holds only this test's crawls."""
    server = SiteServer(DEFAULT_ROOT).start()
    yield server
    server.stop()


def crawl_all(site: SiteServer, tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), site.base_url, tmp_path / "sources.toml")
    db = tmp_path / "news.db"
    result = run_scheduler("crawl", "--all", "--sources", str(sources), "--db", str(db), timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return db, result


def path_of(url: str, site: SiteServer) -> str:
    assert url.startswith(site.base_url), url
    return url[len(site.base_url) :]


def test_demo_crawl_stores_every_article_once_with_its_fields(fresh_site: SiteServer, tmp_path: Path) -> None:
    db_path, result = crawl_all(fresh_site, tmp_path)
    db = open_db(db_path)
    articles = {path_of(a["url"], fresh_site): a for a in db["articles"].rows}

    assert set(articles) == ARTICLE_PATHS  # each article once, under its canonical URL
    for truth in MANIFEST["articles"]:
        stored = articles[truth["path"]]
        assert stored["title"] == truth["title"]
        assert set(json.loads(stored["authors"])) == set(truth["authors"])
        published = datetime.fromisoformat(stored["published_at"])
        assert published.date() == datetime.fromisoformat(truth["published"]).date()
        assert stored["language"] == truth["language"]
        assert stored["word_count"] > 200
        assert stored["markdown"].strip()
        assert stored["first_seen_at"]
        assert stored["last_seen_at"]
    assert "courier_sitemaps" in result.stdout
    assert "30 articles in" in result.stdout


def test_url_variants_collapse_onto_one_article(fresh_site: SiteServer, tmp_path: Path) -> None:
    db_path, _ = crawl_all(fresh_site, tmp_path)
    db = open_db(db_path)
    urls = [a["url"] for a in db["articles"].rows]
    assert not any("utm_" in u or "#" in u for u in urls)
    aliases = {
        path_of(a["alias"], fresh_site): (path_of(a["url"], fresh_site), a["reason"]) for a in db["url_aliases"].rows
    }
    amp = MANIFEST["amp"]
    assert aliases[amp["path"]] == (amp["canonical_path"], "amp")
    copy = MANIFEST["partner_copy"]
    pair = {copy["path"], copy["original_path"]}
    # The syndicated copy and its original are one article: one URL stored, the other an alias.
    stored_of_pair = pair & {path_of(u, fresh_site) for u in urls}
    assert len(stored_of_pair) == 1
    (alias,) = pair - stored_of_pair
    assert aliases[alias] == (stored_of_pair.pop(), "same_body")


def test_non_articles_robots_and_failures(fresh_site: SiteServer, tmp_path: Path) -> None:
    db_path, _ = crawl_all(fresh_site, tmp_path)
    db = open_db(db_path)
    stored = {path_of(a["url"], fresh_site) for a in db["articles"].rows}
    for thin in MANIFEST["thin_pages"]:
        assert thin not in stored
    assert not stored & set(MANIFEST["not_articles"])
    runs = list(db["crawl_runs"].rows)
    assert {r["status"] for r in runs} == {"ok"}
    assert sum(r["not_articles"] for r in runs) == len(MANIFEST["thin_pages"])
    # An undated syndicated copy stored first is replaced by its original: one extra "new".
    assert len(ARTICLE_PATHS) <= sum(r["articles_new"] for r in runs) <= len(ARTICLE_PATHS) + 1

    requested = fresh_site.paths_requested()
    assert "/robots.txt" in requested
    assert not [p for p in requested if p.startswith("/private/") or p.startswith("/search")]
    assert not [p for p in requested if "archive-2019" in p]  # stale sitemap skipped by lastmod

    failures = {(path_of(f["url"], fresh_site), f["stage"], f["http_status"]) for f in db["failures"].rows}
    assert (MANIFEST["missing"], "fetch", 404) in failures
    assert (MANIFEST["server_error"], "fetch", 500) in failures
    assert requested.count(MANIFEST["server_error"]) == 3  # retried twice, then recorded
    assert all(f["run_id"] for f in db["failures"].rows)


def test_second_crawl_fetches_no_article_again_and_changes_only_last_seen(
    fresh_site: SiteServer, tmp_path: Path
) -> None:
    db_path, _ = crawl_all(fresh_site, tmp_path)
    before = {a["url"]: a for a in open_db(db_path)["articles"].rows}
    fresh_site.clear_log()
    _, result = crawl_all(fresh_site, tmp_path)

    requested = fresh_site.paths_requested()
    assert not ARTICLE_PATHS & set(requested)
    assert MANIFEST["amp"]["path"] not in requested
    assert MANIFEST["partner_copy"]["path"] not in requested
    assert MANIFEST["partner_copy"]["original_path"] not in requested
    after = {a["url"]: a for a in open_db(db_path)["articles"].rows}
    assert after.keys() == before.keys()
    ignore = {"last_seen_at"}
    for url, row in after.items():
        assert {k: v for k, v in row.items() if k not in ignore} == {
            k: v for k, v in before[url].items() if k not in ignore
        }
    assert any(after[u]["last_seen_at"] >= before[u]["last_seen_at"] for u in after)
    assert "0 new" in result.stdout


def test_scrapy_crawl_from_the_project_root(fresh_site: SiteServer, tmp_path: Path) -> None:
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), fresh_site.base_url, tmp_path / "s.toml")
    scrapy_crawl("courier_feeds", db=tmp_path / "news.db", sources=sources)
    db = open_db(tmp_path / "news.db")
    assert db["articles"].count == len(ARTICLE_PATHS)  # the RSS, Atom and RDF feeds cover every article
    (run,) = db["crawl_runs"].rows
    assert run["source"] == "courier_feeds"
    assert run["status"] == "ok"
    assert run["articles_new"] == len(ARTICLE_PATHS)
    user_agents = {r.user_agent for r in fresh_site.requests}
    assert len(user_agents) == 1
    assert user_agents.pop().startswith("news-archive/")


def test_an_article_in_several_feeds_is_fetched_once(fresh_site: SiteServer, tmp_path: Path) -> None:
    """Scrapy's fingerprints are not kept for article requests (crawl/dupefilter.py): the claimed URLs,
    then the database once written (a batch of one writes each article at once), stop the copies."""
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), fresh_site.base_url, tmp_path / "s.toml")
    result = scrapy_crawl(
        "courier_feeds", db=tmp_path / "news.db", sources=sources, settings={"NEWS_STORE_BATCH_SIZE": "1"}
    )
    assert result.returncode == 0, result.stderr[-4000:]
    requested = fresh_site.paths_requested()
    assert not [p for p in ARTICLE_PATHS if requested.count(p) > 1]
    assert open_db(tmp_path / "news.db")["articles"].count == len(ARTICLE_PATHS)
    assert "news/requests/skipped_stored" in result.stderr  # the feeds do list articles twice


@pytest.mark.parametrize(("start", "expected"), [("/", 30), ("/feeds/atom.xml", 10), ("/sitemap_index.xml", 30)])
def test_crawl_url_detects_what_the_url_is(fresh_site: SiteServer, tmp_path: Path, start: str, expected: int) -> None:
    db = tmp_path / "news.db"
    result = run_scheduler(
        "crawl",
        "--url",
        fresh_site.url(start),
        "--allow-private",
        "--db",
        str(db),
        "-s",
        "DOWNLOAD_DELAY=0",
        "-s",
        "AUTOTHROTTLE_ENABLED=0",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert open_db(db)["articles"].count == expected
    if start == "/":
        requested = fresh_site.paths_requested()
        assert "/feeds/rss.xml" in requested  # announced by <link rel="alternate">
        assert "/sitemap_index.xml" in requested  # listed in robots.txt


def test_unknown_source_is_a_clear_error(tmp_path: Path) -> None:
    result = run_scheduler(
        "crawl",
        "nope",
        "--sources",
        str(ROOT / "sources.toml"),
        "--db",
        str(tmp_path / "news.db"),
        timeout=60,
    )
    assert result.returncode == 2
    assert 'error: sources.toml: no source named "nope"' in result.stderr


def test_a_slow_crawl_writes_what_it_found_before_it_ends(site: SiteServer, demo_sources: Path, tmp_path: Path) -> None:
    """A batch that does not fill is written after NEWS_STORE_MAX_WAIT, not at the end of the crawl."""
    import sys
    import time

    from archive.sqlite import sqlite3

    db = tmp_path / "news.db"
    settings = {
        "NEWS_DB_PATH": str(db),
        "NEWS_SOURCES_FILE": str(demo_sources),
        "NEWS_STORE_BATCH_SIZE": "1000",
        "NEWS_STORE_MAX_WAIT": "1",
        "AUTOTHROTTLE_ENABLED": "False",
        "DOWNLOAD_DELAY": "0.3",
        "DOWNLOAD_DELAY_JITTER": "0",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "1",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "news", "-a", "source=courier_sitemaps"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    site.clear_log()
    log = tmp_path / "crawl.log"
    with log.open("w") as stderr:
        crawl = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    requests_at_first_write = None
    try:
        while crawl.poll() is None and requests_at_first_write is None:
            time.sleep(0.2)
            if not db.exists():
                continue
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as reader:
                try:
                    stored = reader.execute("SELECT count(*) FROM articles").fetchone()[0]
                except sqlite3.OperationalError:  # tables not created yet
                    continue
            if stored:
                requests_at_first_write = len(site.paths_requested())
        assert crawl.wait(timeout=120) == 0, log.read_text()[-4000:]
    finally:
        if crawl.poll() is None:
            crawl.kill()
    assert requests_at_first_write is not None
    # Articles were readable while the crawl still had most of its pages to fetch (37 requests in
    # all: robots.txt, 6 sitemaps, 30 articles). Without the timer the first write comes at the
    # 31st, when an AMP copy makes the batch flush early.
    assert len(site.paths_requested()) - requests_at_first_write >= 15
    assert open_db(db).execute("SELECT count(*) FROM articles").fetchone()[0] == 30


def test_a_killed_crawl_leaves_no_extraction_process_behind(fresh_site: SiteServer, tmp_path: Path) -> None:
    """SIGKILL to a crawl extracting in its pool: the forkserver, the pool processes and the
    resource tracker go with it (they ask for a parent-death signal), instead of living on."""
    sources = write_sources(DEMO_SOURCES.read_text(encoding="utf-8"), fresh_site.base_url, tmp_path / "sources.toml")
    argv = [sys.executable, "scheduler.py", "crawl", "--all", "--sources", str(sources), "--db", str(tmp_path / "n.db")]
    crawl = subprocess.Popen([*argv, "-s", "NEWS_EXTRACT_WORKERS=2"], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # The forkserver, at least one pool process, and the resource tracker.
        while len(children := descendants(crawl.pid)) < 3:
            assert crawl.poll() is None, "the crawl ended before its pool was caught running"
            assert time.monotonic() < deadline, "the extraction pool never started"
            time.sleep(0.01)
        children |= started_by(crawl.pid)
    finally:
        crawl.kill()
        crawl.wait()
    deadline = time.monotonic() + 30
    while alive(children):
        assert time.monotonic() < deadline, f"still alive after the crawl was killed: {alive(children)}"
        time.sleep(0.05)
