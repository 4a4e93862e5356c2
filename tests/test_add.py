"""`scheduler.py add URL`: a real probe of a local site, a sources file with comments kept as they
were, and a real daemon that crawls the new source once it gets SIGHUP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from config.sources import find_source, load_sources
from tests.feedsite import FeedSite
from tests.test_daemon import (  # noqa: F401 (daemons and feedsite are fixtures)
    EVERY_SECOND,
    DaemonProcess,
    daemons,
    feedsite,
    runs,
    stored_urls,
    wait_for,
    write,
)

ROOT = Path(__file__).resolve().parent.parent
HAND_WRITTEN = """\
# My sources. Keep this comment.
[defaults]
delay = "0s"      # a local site
max_age = "100000d"

[[source]]
name = "elsewhere"   # not the demo site
feeds = ["https://news.example/feed.xml"]
every = "5m"
"""


def add(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scheduler.py", "add", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_add_a_home_page_appends_its_feeds_and_sitemaps_and_keeps_the_file(site: object, tmp_path: Path) -> None:
    base = site.base_url  # type: ignore[attr-defined]
    sources = write(tmp_path / "sources.toml", HAND_WRITTEN)
    result = add(f"{base}/", "--name", "courier", "--allow-private", "--sources", str(sources))
    assert result.returncode == 0, result.stderr
    # What it found, as the demo home page announces it: two <link rel="alternate"> feeds and the
    # sitemap index its robots.txt names.
    assert result.stdout.splitlines() == [
        f"{base}/: html",
        f"  feed     {base}/feeds/rss.xml (20 articles)",
        f"  feed     {base}/feeds/atom.xml (10 articles)",
        f"  sitemap  {base}/sitemap_index.xml (index of 3 sitemaps)",
        f'added source "courier" to {sources}; a running daemon reads it on SIGHUP (kill -HUP <pid>)',
    ]
    text = sources.read_text(encoding="utf-8")
    assert text.startswith(HAND_WRITTEN + "\n# Added on ")  # the file as it was, then the new table
    courier = find_source(load_sources(sources), "courier", sources)
    assert courier.feeds == (f"{base}/feeds/rss.xml", f"{base}/feeds/atom.xml")
    assert courier.sitemaps == (f"{base}/sitemap_index.xml",)
    assert courier.start_pages == ()
    assert courier.allow_private
    assert courier.schedule == "every 1h"  # the file's [defaults] have no schedule
    assert [p.name for p in tmp_path.iterdir()] == ["sources.toml"]  # nothing staged left behind


def test_add_a_feed_with_a_schedule_and_refuse_what_is_there(site: object, tmp_path: Path) -> None:
    base = site.base_url  # type: ignore[attr-defined]
    sources = write(tmp_path / "sources.toml", HAND_WRITTEN)
    result = add(
        f"{base}/feeds/rdf.xml", "--name", "rdf", "--every", "30m", "--allow-private", "--sources", str(sources)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"{base}/feeds/rdf.xml: feed",
        f"  feed     {base}/feeds/rdf.xml (5 articles)",
    ]
    rdf = find_source(load_sources(sources), "rdf", sources)
    assert (rdf.feeds, rdf.schedule) == ((f"{base}/feeds/rdf.xml",), "every 30m")
    after_first = sources.read_text(encoding="utf-8")

    taken_name = add(f"{base}/feeds/atom.xml", "--name", "rdf", "--allow-private", "--sources", str(sources))
    assert taken_name.returncode == 2
    assert taken_name.stderr.splitlines() == [
        f'error: add: {sources} has a source named "rdf" already (choose another --name)'
    ]
    taken_url = add(f"{base}/feeds/rdf.xml", "--name", "rdf2", "--allow-private", "--sources", str(sources))
    assert taken_url.returncode == 2
    assert taken_url.stderr.splitlines() == [
        f'error: add: source "rdf" in {sources} reads {base}/feeds/rdf.xml already'
    ]
    assert taken_url.stdout == ""  # refused before anything was fetched
    assert sources.read_text(encoding="utf-8") == after_first


def test_add_writes_nothing_when_the_url_cannot_be_read(site: object, tmp_path: Path) -> None:
    base = site.base_url  # type: ignore[attr-defined]
    sources = write(tmp_path / "sources.toml", HAND_WRITTEN)
    refused = add(f"{base}/feeds/rss.xml", "--name", "loopback", "--sources", str(sources))
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"error: add: could not read {base}/feeds/rss.xml: nothing added; give --allow-private"
    )
    missing = add(f"{base}/no/such/feed.xml", "--name", "missing", "--allow-private", "--sources", str(sources))
    assert missing.returncode == 1
    assert f"  problem: {base}/no/such/feed.xml: HTTP 404" in missing.stdout.splitlines()
    not_http = add("ftp://example.org/feed.xml", "--sources", str(sources))
    assert not_http.returncode == 2
    assert len(not_http.stderr.splitlines()) == 1
    assert "Traceback" not in refused.stderr + missing.stderr + not_http.stderr
    assert sources.read_text(encoding="utf-8") == HAND_WRITTEN


def test_the_daemon_crawls_an_added_source_after_sighup(
    feedsite: FeedSite,  # noqa: F811
    tmp_path: Path,
    daemons: list[DaemonProcess],  # noqa: F811
) -> None:
    feedsite.add_source("alpha", articles=1)
    feedsite.add_source("beta", articles=2)
    sources = write(tmp_path / "sources.toml", feedsite.sources_toml({"alpha": EVERY_SECOND}, 'jitter = "1s"'))
    db = tmp_path / "data" / "news.db"
    daemon = DaemonProcess(tmp_path, sources, db)
    daemons.append(daemon)
    wait_for(lambda: runs(db, "alpha", "ok"), 60, "a first run of alpha", daemon.output)

    beta_feed = feedsite.base_url + feedsite.feed_path("beta")
    result = add(beta_feed, "--name", "beta", "--every", "1s", "--sources", str(sources), "--db", str(db))
    assert result.returncode == 0, result.stderr  # no --allow-private: the file's [defaults] allow it
    assert "allow_private" not in sources.read_text(encoding="utf-8").rsplit("[[source]]", 1)[1]
    daemon.send(signal.SIGHUP)
    wait_for(lambda: runs(db, "beta", "ok"), 60, "a run of the added source", daemon.output)
    assert daemon.stop() == 0
    assert feedsite.urls("beta") <= set(stored_urls(db))
