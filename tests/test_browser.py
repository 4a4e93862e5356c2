"""A real browser on a real `make serve`: headless Chromium (Debian's package) driven by Playwright.

It opens the articles table, searches for a word, opens an article and checks what a reader
sees, then the dashboard. Screenshots land in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

from archive.sqlite import sqlite3
from tests.test_datasette import search_word

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(db: Path, port: int) -> list[str]:
    """The command `make serve` runs (read from `make -n`, so the test runs exactly that)."""
    dry_run = subprocess.run(
        ["make", "-n", "serve", f"DB={db}", f"PORT={port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in dry_run.stdout.splitlines() if "datasette serve" in line]
    assert len(lines) == 1, dry_run.stdout
    return shlex.split(lines[0])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # our own server on 127.0.0.1
        return json.load(response)


def wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"datasette exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            get_json(f"{base_url}/-/versions.json")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"datasette did not answer within 60s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def served(demo_db: Path, tmp_path: Path) -> Iterator[str]:
    """`make serve` on the demo archive, on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    command = serve_command(demo_db, port)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    log = tmp_path / "datasette.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process, log)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("the browser test needs Debian's chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a real picture, not a blank page
    return path


def test_a_reader_searches_and_reads_an_article(served: str, page: Any, demo_db: Path) -> None:
    conn = sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    articles = [dict(row) for row in conn.execute("SELECT * FROM articles")]
    newest = conn.execute("SELECT title FROM articles ORDER BY published_at DESC LIMIT 1").fetchone()[0]
    conn.close()

    page.goto(f"{served}/news/articles")
    assert page.locator("table.headlines a.headline").first.inner_text() == newest
    assert page.locator(".facet-info").count() >= 4  # source, language, authors, published day
    screenshot(page, "articles")

    word = search_word(articles)
    page.fill("#news-q", word)
    page.press("#news-q", "Enter")
    page.wait_for_url("**/news/search?*")
    expected = get_json(f"{served}/news/search.json?{urlencode({'q': word, '_shape': 'objects'})}")["rows"]
    results = page.locator("ol.news-results li")
    assert results.count() == len(expected) > 1
    assert results.first.locator("a.headline").inner_text() == expected[0]["title"]
    marks = page.locator("ol.news-results mark").all_inner_texts()
    assert marks
    assert all(m.lower().startswith(word[:4]) for m in marks)
    screenshot(page, "search")

    results.first.locator("a.headline").click()
    page.wait_for_load_state()
    article = next(a for a in articles if a["title"] == expected[0]["title"])
    assert page.locator("article h1").inner_text() == article["title"]
    for author in json.loads(article["authors"]):
        assert author in page.locator("article .byline").inner_text()
    assert page.locator("article .original a").get_attribute("href") == article["url"]
    paragraphs = page.locator("article .body p").all_inner_texts()
    assert len(paragraphs) >= 2
    assert all(p.strip() in article["text"] for p in paragraphs[:2])
    screenshot(page, "article")


def test_the_dashboard_draws_its_charts(served: str, page: Any) -> None:
    page.goto(f"{served}/-/dashboards/news")
    for chart in ("articles-per-day", "runs-per-day", "run-durations", "failures-by-stage"):
        page.wait_for_selector(f"#chart-{chart} canvas, #chart-{chart} svg", timeout=30_000)
    total = page.locator("#chart-articles-total").inner_text()
    assert int(total) > 0
    screenshot(page, "dashboard")


def test_make_serve_uses_its_own_modules_before_others_of_the_same_names(demo_db: Path, tmp_path: Path) -> None:
    """Datasette loads plugins/news_archive.py by its path; the modules it imports (archive, and
    articles_search beside it) must be the project's even when other packages of those names come
    earlier on the path (here through PYTHONPATH, each one failing if imported)."""
    decoys = tmp_path / "decoys"
    for name in ("plugins", "archive", "articles_search"):
        (decoys / name).mkdir(parents=True)
        (decoys / name / "__init__.py").write_text(f"raise ImportError('the decoy {name} was imported')\n")
    port = free_port()
    log = tmp_path / "datasette.log"
    env = {**os.environ, "PYTHONPATH": str(decoys)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            serve_command(demo_db, port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process, log)
        assert "news_archive.py" in {p["name"] for p in get_json(f"{base_url}/-/plugins.json")}
        conn = sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        word = search_word([dict(row) for row in conn.execute("SELECT title, text FROM articles")])
        conn.close()
        found = get_json(f"{base_url}/news/articles.json?{urlencode({'_search': word, '_shape': 'objects'})}")
        assert found["rows"]
        assert found["filtered_table_rows_count"] == len(found["rows"])
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "decoy" not in log.read_text()
