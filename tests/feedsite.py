"""A small news site written into a tmp directory, for the scheduler's tests and benchmarks.

Each source has an RSS feed at ``/feeds/<source>.xml`` listing its articles (``/<source>/<n>.html``).
Articles are self-written filler with enough distinct words to pass as articles. The server is
demo.server.SiteServer with one addition: per-path delays, to make a slow or a hung site.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import TYPE_CHECKING

from demo.server import SiteHandler, SiteServer

if TYPE_CHECKING:
    from pathlib import Path

WORDS = (
    "river",
    "harbour",
    "council",
    "budget",
    "station",
    "market",
    "bridge",
    "winter",
    "garden",
    "school",
    "library",
    "festival",
    "railway",
    "museum",
    "election",
    "court",
    "hospital",
    "farmer",
    "island",
    "village",
    "theatre",
    "orchestra",
    "mountain",
    "forest",
    "engineer",
    "teacher",
    "doctor",
    "nurse",
    "student",
    "mayor",
    "minister",
    "reporter",
    "editor",
    "painter",
    "sailor",
    "baker",
    "cyclist",
    "tram",
    "ferry",
    "lighthouse",
    "vineyard",
    "quarry",
    "observatory",
    "bakery",
    "canal",
    "meadow",
    "glacier",
    "archive",
    "parliament",
)


def article_html(source: str, number: int) -> str:
    """A page the pipeline stores as an article: a title, a date and ~240 words of its own."""
    rnd = random.Random(f"{source}/{number}")
    paragraphs = "".join(
        "<p>" + " ".join(" ".join(rnd.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(4)) + "</p>"
        for _ in range(5)
    )
    title = f"{source} story {number}: the {rnd.choice(WORDS)} and the {rnd.choice(WORDS)}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        '<meta property="og:type" content="article">'
        '<meta property="article:published_time" content="2025-01-06T10:00:00Z">'
        f'<link rel="canonical" href="{{{{BASE}}}}/{source}/{number}.html">'
        f"</head><body><article><h1>{title}</h1><p>By Ann Writer</p>{paragraphs}</article></body></html>"
    )


def feed_xml(source: str, numbers: list[int]) -> str:
    items = "".join(
        f"<item><title>{source} story {n}</title><link>{{{{BASE}}}}/{source}/{n}.html</link>"
        "<pubDate>Mon, 06 Jan 2025 10:00:00 GMT</pubDate></item>"
        for n in numbers
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{source}</title><link>{{{{BASE}}}}/</link><description>{source}</description>"
        f"{items}</channel></rss>"
    )


class DelayHandler(SiteHandler):
    """SiteHandler that first waits `server.delays[path]` seconds (a slow or hung endpoint)."""

    server: FeedSiteServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        delay = self.server.delays.get(path, 0.0)
        folder = path.rsplit("/", 1)[0] + "/"
        with self.server.lock:
            self.server.arrived.append(path)
            active = self.server.active[path] = self.server.active.get(path, 0) + 1
            self.server.most_active[path] = max(self.server.most_active.get(path, 0), active)
            active = self.server.active[folder] = self.server.active.get(folder, 0) + 1
            self.server.most_active[folder] = max(self.server.most_active.get(folder, 0), active)
        try:
            if delay:
                self.server.release.wait(delay)
            super().do_GET()
        finally:
            with self.server.lock:
                self.server.active[path] -= 1
                self.server.active[folder] -= 1


class FeedSiteServer(SiteServer):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.RequestHandlerClass = DelayHandler
        self.delays: dict[str, float] = {}
        self.active: dict[str, int] = {}
        self.arrived: list[str] = []  # every request's path as it arrived (answered or not)
        # path, or folder ("/sitemaps/"), -> most requests for it served at once
        self.most_active: dict[str, int] = {}
        self.release = threading.Event()  # set it to end every pending delay (at teardown)

    def stop(self) -> None:
        self.release.set()
        super().stop()


class FeedSite:
    """The site's files, and the server that serves them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.articles: dict[str, list[int]] = {}
        root.mkdir(parents=True, exist_ok=True)
        (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
        self.server = FeedSiteServer(root)

    def start(self) -> FeedSite:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def feed_path(self, source: str) -> str:
        return f"/feeds/{source}.xml"

    def add_source(self, source: str, articles: int = 2) -> None:
        self.articles[source] = []
        for _ in range(articles):
            self.add_article(source)
        if not articles:
            self._write_feed(source)

    def add_article(self, source: str) -> str:
        """Publish one more article in the source's feed; returns its URL."""
        number = len(self.articles[source]) + 1
        page = self.root / source / f"{number}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(article_html(source, number), encoding="utf-8")
        self.articles[source].append(number)
        self._write_feed(source)
        return self.article_url(source, number)

    def article_url(self, source: str, number: int) -> str:
        return f"{self.base_url}/{source}/{number}.html"

    def urls(self, source: str) -> set[str]:
        return {self.article_url(source, n) for n in self.articles[source]}

    def _write_feed(self, source: str) -> None:
        feed = self.root / "feeds" / f"{source}.xml"
        feed.parent.mkdir(parents=True, exist_ok=True)
        tmp = feed.with_suffix(".tmp")
        tmp.write_text(feed_xml(source, self.articles[source]), encoding="utf-8")
        tmp.replace(feed)  # never serve a half-written feed
        # ETag/Last-Modified come from the file: make sure the change is visible as one.
        now = time.time() + 1
        os.utime(feed, (now, now))

    def sources_toml(
        self,
        entries: dict[str, str],
        defaults: str = "",
        *,
        feeds: dict[str, list[str]] | None = None,
        sitemaps: dict[str, list[str]] | None = None,
    ) -> str:
        """A sources file: `entries` maps a source name to extra TOML lines for it.

        Each source reads its own feed, unless `feeds` gives it a list of paths on the site instead
        (an empty one for no feeds); `sitemaps` gives a source sitemap paths on the site to read too.
        """
        feeds = feeds or {}
        sitemaps = sitemaps or {}
        text = f'[defaults]\nallow_private = true\ndelay = "0s"\nmax_age = "100000d"\n{defaults}\n'
        for name, extra in entries.items():
            text += f'\n[[source]]\nname = "{name}"\n'
            for key, paths in (("feeds", feeds.get(name, [self.feed_path(name)])), ("sitemaps", sitemaps.get(name))):
                if paths:
                    urls = ", ".join(f'"{self.base_url}{path}"' for path in paths)
                    text += f"{key} = [{urls}]\n"
            text += f"{extra}\n"
        return text
