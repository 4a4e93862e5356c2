"""The fault site: a local HTTP server whose pages break crawlers, and what the archive must make of each.

Every case below is something a real site does wrong (an error status, a hang, a redirect loop,
a gzip bomb, a page in windows-1251 that does not say so, a broken feed, a sitemap listing
itself, a link to ``file://``), served on purpose, plus what one crawl of the ``faults`` source
must leave behind: an article stored, a row in ``failures`` with the right stage, a pattern in the
server's request log. ``tests/test_faults.py`` asserts every case; ``bench/faults.py`` prints
them as a table.

The server reuses the demo server's machinery (127.0.0.1 on port 0, a thread, a request log);
its log entries also carry the time and the auth headers of each request. It also answers
proxy-style requests (``GET http://host/path``), so it can stand in as an HTTP proxy.

    python -m demo.faults [--port 0]     # serve it alone; the first line printed is its base URL
"""

# Russian text is written in Cyrillic letters, some of which look like Latin ones: that is the point.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import gzip
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from demo.server import DEFAULT_ROOT, LoggedRequest, SiteServer

if TYPE_CHECKING:
    from collections.abc import Callable

HTML = "text/html; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"
MB = 1024 * 1024

# --- page text (written for this site; no real news) ---------------------------------------

FILLER = (
    "Volunteers from the harbour workshop spent the morning checking the old tide gauges one by "
    "one. Each gauge was lifted out of the water, scraped clean of weed and barnacles, and tested "
    "against a new reference mark painted on the quay wall the week before.",
    "The readings went into a paper ledger first and were then typed into the shared spreadsheet "
    "that the fishing cooperative and the ferry office both use, so that skippers can compare "
    "them with their own notes from the season.",
    "Two of the gauges turned out to drift by several centimetres over a single tide, which "
    "explains a few puzzling entries from the summer. The workshop will replace both before the "
    "winter storms arrive and keep the old ones for spare parts.",
    "Until the new gauges are in place, the ferry office asks anyone who sees a water level that "
    "looks wrong to note the time and the berth and leave a message at the harbour desk, so that "
    "the volunteers can check it on their next round.",
)


def own_filler(seed: str) -> tuple[str, ...]:
    """FILLER with the words of each paragraph in an order of the page's own: every fault page is a
    story of its own, not a copy the archive would fold into another page of the site (#20)."""
    shuffle = random.Random(seed)
    out = []
    for paragraph in FILLER:
        words = paragraph.rstrip(".").lower().split()
        shuffle.shuffle(words)
        out.append(" ".join(words).capitalize() + ".")
    return tuple(out)


AUTHOR = "Ines Marlow"
PUBLISHED = "2026-11-10T08:00:00+00:00"


def article_html(
    title: str | None,
    lead: str,
    *,
    author: str | None = AUTHOR,
    published: str | None = PUBLISHED,
    head: str = "",
    charset: str | None = "utf-8",
    lang: str = "en",
    paragraphs: tuple[str, ...] | None = None,
) -> str:
    """A plain news article; each field left out (None) is absent from the page altogether."""
    meta = [f'<meta charset="{charset}">'] if charset else []
    if title:
        meta.append(f"<title>{title}</title>")
    if author:
        meta.append(f'<meta name="author" content="{author}">')
    if published:
        meta.append(f'<meta property="article:published_time" content="{published}">')
    body = [f"<h1>{title}</h1>"] if title else []
    if author:
        body.append(f'<p class="byline">By {author}</p>')
    body += [f"<p>{p}</p>" for p in (lead, *(paragraphs if paragraphs is not None else own_filler(lead)))]
    return (
        f'<!doctype html>\n<html lang="{lang}"><head>{"".join(meta)}{head}</head>\n'
        f"<body><article>\n{chr(10).join(body)}\n</article></body></html>\n"
    )


def lead(case: str) -> str:
    return f"This page is the fault site's {case} case, and the crawl is expected to cope with it."


# Article pages at /articles/<slug>.html: slug -> (title, the page).
ARTICLES: dict[str, tuple[str | None, str]] = {}


def _article(slug: str, title: str | None, **kwargs: Any) -> str:
    page = article_html(title, lead(slug.replace("-", " ")), **kwargs)
    ARTICLES[slug] = (title, page)
    return f"/articles/{slug}.html"


PLAIN_ARTICLES = {
    slug: _article(slug, title)
    for slug, title in (
        ("redirect-target", "Redirect chain ends at the tide gauge story"),
        ("refresh-target", "Meta refresh lands on the tide gauge story"),
        ("from-invalid-feed", "A story listed in a feed that is not well-formed XML"),
        ("offsite-target", "A story that must never be fetched from another host"),
        ("from-small-feed", "A story from a feed with a single item"),
    )
}
NO_DATE = _article("no-date", "Tide gauges checked, date unknown", published=None)
NO_AUTHOR = _article("no-author", "Tide gauges checked by nobody in particular", author=None)
NO_TITLE = _article("no-title", None)
NO_TITLE_FEED_TITLE = "Tide gauges checked, title from the feed"
# A page that closes no tag, and one whose markup is a mess.
TRUNCATED = article_html("Tide gauge story cut off in transit", lead("truncated"))[:1200]
MALFORMED = (
    "<html><head><title>Tide gauge story with broken markup</title><body><div class=story><p>"
    + lead("malformed")
    + "<b><i>"
    + "<p>".join(own_filler("malformed"))
    + "</b></div></span><table><p>stray cell</td></table></i>\n<p class=x y=>>"
    + "</body></body></html></html>"
)

# Markup where text belongs: in the title, a meta tag, an image URL and the body.
SCRIPTED = (
    "<!doctype html><html><head><title>Harbour news <script>alert('title')</script></title>"
    '<meta name="author" content="&lt;b onmouseover=alert(1)&gt;Eve Harrow&lt;/b&gt;">'
    '<meta name="description" content="&lt;script&gt;alert(2)&lt;/script&gt;Tide gauges, checked.">'
    '<meta property="og:image" content="javascript:alert(3)">'
    f'<meta property="article:published_time" content="{PUBLISHED}"></head>'
    "<body><article><p>"
    + lead("script")
    + " Its minutes quote &lt;script&gt; as plain text.</p><script>alert('body')</script>"
    + "".join(f'<p onclick="alert(4)">{p}</p>' for p in own_filler("script"))
    + '<img src="x" onerror="alert(5)"></article></body></html>'
)
SCRIPTED_TITLE = "Harbour news"

# Pages in legacy encodings, served as "text/html" without a charset and declaring none inside.
CHARSET_PAGES: dict[str, tuple[str, str, str]] = {
    # slug: (encoding, lang, phrase that the stored text must contain)
    "windows-1251": ("windows-1251", "ru", "новый читальный зал"),
    "shift-jis": ("shift_jis", "ja", "新しい読書室"),
    "iso-8859-1": ("iso-8859-1", "fr", "nouvelle salle de lecture"),
}
CHARSET_TEXT = {
    "windows-1251": (
        "Городская библиотека открыла новый читальный зал",
        (
            "В субботу городская библиотека открыла новый читальный зал на втором этаже старого "
            "здания у реки. Зал рассчитан на сорок мест, в нём есть большие столы, удобные лампы "
            "и полки с журналами за последние десять лет.",
            "Директор библиотеки рассказала, что ремонт занял почти год. Строители заменили окна, "
            "починили крышу и провели новое отопление, поэтому зимой в зале будет тепло даже в "
            "сильный мороз.",
            "Читатели уже оценили перемены. Многие пришли в первый же день, чтобы посидеть с книгой "
            "у окна, откуда видна набережная и мост. Библиотека работает каждый день, кроме "
            "понедельника, с девяти утра до восьми вечера.",
            "Следующим шагом станет детский уголок с настольными играми и мягкими креслами. Его "
            "планируют открыть весной, когда закончится ремонт первого этажа.",
        ),
    ),
    "shift-jis": (
        "港町の図書館に新しい読書室ができました",
        (
            "土曜日、港町の市立図書館に新しい読書室ができました。読書室は二階にあり、四十人が"
            "座れる大きな机と明るい照明があります。",
            "館長によると、工事には一年近くかかりました。窓を新しくし、屋根を直し、暖房も入れ"
            "替えたので、冬でも暖かい部屋で本を読むことができます。",
            "初日から多くの市民が訪れ、窓の近くの席で静かに本を読んでいました。窓からは海と橋が"
            "よく見えます。図書館は月曜日を除いて毎日、午前九時から午後八時まで開いています。",
            "春には子ども向けのコーナーも作る予定で、ボードゲームや柔らかいいすを置くそうです。",
        ),
    ),
    "iso-8859-1": (
        "La bibliothèque du port ouvre une nouvelle salle de lecture",
        (
            "Samedi matin, la bibliothèque municipale a ouvert une nouvelle salle de lecture au "
            "deuxième étage du vieux bâtiment près du quai. La salle compte quarante places, de "
            "grandes tables, des lampes agréables et des étagères de revues.",
            "Selon la directrice, les travaux ont duré presque un an. Les ouvriers ont changé les "
            "fenêtres, réparé la toiture et installé un nouveau chauffage : même en hiver, on "
            "pourra lire au chaud.",
            "Dès le premier jour, de nombreux lecteurs sont venus s'asseoir près des fenêtres, "
            "d'où l'on voit la jetée et le pont. La bibliothèque est ouverte tous les jours sauf "
            "le lundi, de neuf heures à vingt heures.",
            "Un coin pour les enfants, avec des jeux de société et des fauteuils moelleux, ouvrira "
            "au printemps, après la rénovation du rez-de-chaussée.",
        ),
    ),
}


@cache
def charset_page(slug: str) -> bytes:
    encoding, lang, _ = CHARSET_PAGES[slug]
    title, paragraphs = CHARSET_TEXT[slug]
    html = article_html(title, paragraphs[0], charset=None, lang=lang, paragraphs=paragraphs[1:])
    return html.encode(encoding)


# Feed entries whose pages carry no date: the date must come from the feed, read right.
ODD_DATES: dict[str, tuple[str, str]] = {
    # slug: (pubDate as the feed writes it, the instant it means in UTC)
    "rfc822-offset": ("Tue, 10 Nov 2026 08:00:00 +0530", "2026-11-10T02:30:00+00:00"),
    "rfc822-colon-offset": ("Tue, 10 Nov 2026 08:00:00 +05:30", "2026-11-10T02:30:00+00:00"),
    "rfc822-named-zone": ("Tue, 10 Nov 2026 08:00:00 PST", "2026-11-10T16:00:00+00:00"),
    "rfc850-two-digit-year": ("Tuesday, 10-Nov-26 08:00:00 EST", "2026-11-10T13:00:00+00:00"),
    "wrong-weekday": ("Mon, 10 Nov 2026 08:00:00 GMT", "2026-11-10T08:00:00+00:00"),
    "iso-negative-offset": ("2026-11-10T08:00:00-08:00", "2026-11-10T16:00:00+00:00"),
    "iso-fraction": ("2026-11-10T08:00:00.123456+01:00", "2026-11-10T07:00:00+00:00"),
    "iso-no-seconds": ("2026-11-10T08:00Z", "2026-11-10T08:00:00+00:00"),
}
ODD_DATE_PATHS = {
    slug: _article(f"date-{slug}", f"Tide gauges checked, dated {slug.replace('-', ' ')}", published=None)
    for slug in ODD_DATES
}

# --- what each path answers ----------------------------------------------------------------

HTTP_ARTICLES = {  # path -> title of the article it serves once it answers
    "/http/flaky-500.html": "Tide gauges checked after a server error",
    "/http/flaky-503.html": "Tide gauges checked after a busy server",
    "/http/retry-after.html": "Tide gauges checked after a polite wait",
    "/http/slow.html": "Tide gauges checked slowly",
}
RETRY_AFTER_SECONDS = 2
SLOW_SECONDS = 1.0
HUGE_BYTES = 20 * MB
BOMB_BYTES = 40 * MB
BIG_SITEMAP_URLS = 50_000
SECRET_FILE = "file:///etc/passwd"


def rss(items: list[dict[str, str]], title: str = "Fault site") -> str:
    def item(entry: dict[str, str]) -> str:
        return "<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in entry.items()) + "</item>"

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>{{{{BASE}}}}/</link>\n"
        + "\n".join(item(i) for i in items)
        + "\n</channel></rss>\n"
    )


def feed_entries() -> list[dict[str, str]]:
    """The main feed: every page the crawl must try as an article, with what the page itself says."""
    entries = []
    for path, title in HTTP_ARTICLES.items():
        entries.append({"title": title, "link": "{{BASE}}" + path})
    for path in (
        "/http/404.html",
        "/http/410.html",
        "/http/reset.html",
        "/http/hang.html",
        "/http/retry-after-too-long.html",
        "/redirect/chain-1",
        "/redirect/loop-a",
        "/redirect/to-file",
        "/redirect/offsite",
        "/content/empty.html",
        "/content/truncated.html",
        "/content/malformed.html",
        "/content/binary.html",
        "/content/huge.html",
        "/content/huge-streamed.html",
        "/content/gzip-bomb.html",
        "/content/refresh.html",
        "/content/refresh-loop.html",
        "/content/refresh-to-file.html",
        "/content/script.html",
        NO_DATE,
        NO_AUTHOR,
    ):
        entries.append({"link": "{{BASE}}" + path})
    entries.append({"title": NO_TITLE_FEED_TITLE, "link": "{{BASE}}" + NO_TITLE})
    entries += [{"link": "{{BASE}}" + f"/charset/{slug}.html"} for slug in CHARSET_PAGES]
    return entries


@cache
def gzip_bomb() -> bytes:
    """A few tens of KB on the wire that inflate to BOMB_BYTES of spaces."""
    return gzip.compress(b" " * BOMB_BYTES, compresslevel=9, mtime=0)


def sitemap_of(count: int, base: str = "{{BASE}}") -> bytes:
    """A sitemap of `count` article URLs (under /bulk/, which the fault source denies)."""
    urls = "".join(
        f"<url><loc>{base}/bulk/{n:05d}/tide-gauge-reading.html</loc><lastmod>2026-11-10</lastmod></url>\n"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + urls + "</urlset>\n"
    ).encode()


@cache
def big_sitemap() -> bytes:
    return sitemap_of(BIG_SITEMAP_URLS)


def sitemap_index(*locs: str) -> str:
    entries = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>\n'
    )


STATIC: dict[str, tuple[int, str, str, dict[str, str]]] = {
    # path -> (status, content type, body, extra headers); {{BASE}} is replaced when served
    "/": (
        200,
        HTML,
        '<!doctype html><html><head><title>Fault site</title><link rel="alternate" '
        'type="application/rss+xml" href="file:///etc/hostname"></head><body><h1>Fault site</h1>'
        f'<a href="{SECRET_FILE}">a local file</a> <a href="ftp://127.0.0.1/pub/">an FTP site</a> '
        '<a href="javascript:alert(1)">a script</a> <a href="data:text/html,hello">data</a>'
        "</body></html>",
        {},
    ),
    "/robots.txt": (200, "text/plain", f"User-agent: *\nDisallow: /private/\nSitemap: {SECRET_FILE}\n", {}),
    "/http/404.html": (404, HTML, "<html><body><h1>Not Found</h1></body></html>", {}),
    "/http/410.html": (410, HTML, "<html><body><h1>Gone</h1></body></html>", {}),
    "/http/retry-after-too-long.html": (
        429,
        HTML,
        "<html><body>Too many requests</body></html>",
        {"Retry-After": "3600"},
    ),
    "/redirect/chain-1": (301, HTML, "", {"Location": "/redirect/chain-2"}),
    "/redirect/chain-2": (302, HTML, "", {"Location": "{{BASE}}/redirect/chain-3"}),
    "/redirect/chain-3": (307, HTML, "", {"Location": PLAIN_ARTICLES["redirect-target"]}),
    "/redirect/loop-a": (302, HTML, "", {"Location": "/redirect/loop-b"}),
    "/redirect/loop-b": (302, HTML, "", {"Location": "/redirect/loop-a"}),
    "/redirect/to-file": (302, HTML, "", {"Location": SECRET_FILE}),
    "/redirect/offsite": (302, HTML, "", {"Location": "{{LOCALHOST}}" + PLAIN_ARTICLES["offsite-target"]}),
    "/content/empty.html": (200, HTML, "", {}),
    "/content/truncated.html": (200, HTML, TRUNCATED, {}),
    "/content/malformed.html": (200, HTML, MALFORMED, {}),
    "/content/script.html": (200, HTML, SCRIPTED, {}),
    "/content/refresh.html": (
        200,
        HTML,
        '<html><head><meta http-equiv="refresh" content="0; url='
        + PLAIN_ARTICLES["refresh-target"]
        + '"></head><body>Moved.</body></html>',
        {},
    ),
    "/content/refresh-loop.html": (
        200,
        HTML,
        '<html><head><meta http-equiv="refresh" content="0; url=/content/refresh-loop.html">'
        "</head><body>Reloading.</body></html>",
        {},
    ),
    "/content/refresh-to-file.html": (
        200,
        HTML,
        f'<html><head><meta http-equiv="refresh" content="0; url={SECRET_FILE}"></head><body>x</body></html>',
        {},
    ),
    "/feeds/articles.xml": (200, RSS, rss(feed_entries()), {}),
    "/feeds/odd-dates.xml": (
        200,
        RSS,
        rss(
            [
                {"title": f"Dated {slug}", "link": "{{BASE}}" + ODD_DATE_PATHS[slug], "pubDate": written}
                for slug, (written, _) in ODD_DATES.items()
            ]
        ),
        {},
    ),
    # Not well-formed (a bare "&", cut off mid-item), but its first entry can still be read.
    "/feeds/invalid.xml": (
        200,
        RSS,
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Fish & chips</title>'
        "<item><title>Salvaged</title><link>{{BASE}}"
        + PLAIN_ARTICLES["from-invalid-feed"]
        + "</link></item>\n<item><title>Cut o",
        {},
    ),
    "/feeds/garbage.xml": (200, RSS, '<?xml version="1.0"?>\n<<<>>> this is not XML </rss>', {}),
    "/feeds/html.xml": (200, RSS, "<!doctype html><html><body><h1>Our news</h1><p>Hi!</p></body></html>", {}),
    "/feeds/empty.xml": (200, RSS, rss([]), {}),
    # A public-looking site, reached through the server as a proxy, whose page redirects inward.
    "/feeds/inward.xml": (200, RSS, rss([{"link": "http://news.example/redirect/inward"}]), {}),
    "/redirect/inward": (
        302,
        HTML,
        "",
        {"Location": "http://inside.news.example" + PLAIN_ARTICLES["from-small-feed"]},
    ),
    # One item, for crawls about something else (credentials, proxies, private addresses).
    "/feeds/one.xml": (200, RSS, rss([{"link": "{{BASE}}" + PLAIN_ARTICLES["from-small-feed"]}]), {}),
    "/feeds/zero.xml": (200, RSS, "", {}),
    "/sitemaps/self.xml": (
        200,
        XML,
        sitemap_index("{{BASE}}/sitemaps/self.xml", "{{BASE}}/sitemaps/loop-b.xml"),
        {},
    ),
    "/sitemaps/loop-b.xml": (200, XML, sitemap_index("{{BASE}}/sitemaps/self.xml"), {}),
    "/sitemaps/schemes.xml": (
        200,
        XML,
        sitemap_index(SECRET_FILE, "ftp://127.0.0.1/sitemap.xml", "data:text/xml,%3Curlset/%3E"),
        {},
    ),
}
FLAKY = {"/http/flaky-500.html": 500, "/http/flaky-503.html": 503}
SOURCE_FEEDS = (
    "/feeds/articles.xml",
    "/feeds/odd-dates.xml",
    "/feeds/invalid.xml",
    "/feeds/garbage.xml",
    "/feeds/html.xml",
    "/feeds/empty.xml",
    "/feeds/zero.xml",
)
SOURCE_SITEMAPS = ("/sitemaps/self.xml", "/sitemaps/big.xml", "/sitemaps/schemes.xml")

# Settings for a fault crawl: a short timeout so the page that never answers costs seconds
# (three tries), and no AutoThrottle, which would slow every request down after the slow ones.
CRAWL_SETTINGS = {
    "DOWNLOAD_TIMEOUT": "4",
    "AUTOTHROTTLE_ENABLED": "0",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
}


def sources_toml(base_url: str, *, name: str = "faults") -> str:
    """The sources file for one crawl of the whole fault site."""

    def urls(paths: tuple[str, ...]) -> str:
        return ", ".join(f'"{base_url}{p}"' for p in paths)

    return (
        f'[[source]]\nname = "{name}"\nevery = "1h"\n'
        f"feeds = [{urls(SOURCE_FEEDS)}]\n"
        f"sitemaps = [{urls(SOURCE_SITEMAPS)}]\n"
        f'start_pages = ["{base_url}/"]\n'
        'allowed_domains = ["127.0.0.1"]\n'
        'article_deny = ["/bulk/"]  # the 50,000-URL sitemap is read, its pages never fetched\n'
        "robots_sitemaps = true\nfollow_depth = 0\n"
        'allow_private = true\ndelay = "0s"\n'
    )


# --- the server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultRequest(LoggedRequest):
    at: float = 0.0  # time.monotonic() when the request arrived
    host: str = ""  # the Host header
    authorization: str = ""  # the Authorization header, so tests can see credentials were sent
    proxy_authorization: str = ""
    proxied: bool = False  # asked as a proxy (absolute URL in the request line)


class FaultServer(SiteServer):
    """The demo server's thread, base URL and request log, answering with the fault pages."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(DEFAULT_ROOT, port)
        self.RequestHandlerClass = FaultHandler
        self.hits: Counter[str] = Counter()  # per path: flaky pages fail first, then answer
        self.released = threading.Event()  # set on stop: frees the handler that never answers
        # Basic auth, as (user, password): /auth/X answers X to those who have it, and so does
        # the proxy (absolute URL in the request line); None: open to all.
        self.credentials: tuple[str, str] | None = None
        self.proxy_credentials: tuple[str, str] | None = None
        # Built now, not on the first request: building them takes the GIL for a while, and
        # a server that stalls its own answers would turn every case into a timeout.
        gzip_bomb()
        big_sitemap()

    def stop(self) -> None:
        self.released.set()
        super().stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # crawlers hang up on these pages on purpose (timeouts, size caps)
        super().handle_error(request, client_address)

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] += 1
            return self.hits[path]

    def requests_for(self, path: str) -> list[FaultRequest]:
        with self.lock:
            return [r for r in self.requests if urlsplit(r.path).path == path]  # type: ignore[misc]


def basic_auth(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class FaultHandler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.arrived = time.monotonic()
        target = urlsplit(self.path)
        self.proxied = bool(target.scheme)
        path = target.path or "/"
        if self.proxied and not self._authorized("Proxy-Authorization", self.server.proxy_credentials):
            self._send(407, "text/plain", b"proxy credentials required", {"Proxy-Authenticate": "Basic"})
        elif path.startswith("/auth/") and not self._authorized("Authorization", self.server.credentials):
            self._send(401, "text/plain", b"credentials required", {"WWW-Authenticate": "Basic"})
        else:
            self._answer(path.removeprefix("/auth") if path.startswith("/auth/") else path)

    def _authorized(self, header: str, credentials: tuple[str, str] | None) -> bool:
        return credentials is None or self.headers.get(header) == basic_auth(*credentials)

    def _answer(self, path: str) -> None:
        special = SPECIAL.get(path)
        if special is not None:
            special(self, path)
        elif path in FLAKY and self.server.hit(path) == 1:
            self._send(FLAKY[path], HTML, b"<html><body>Try again</body></html>")
        elif path in HTTP_ARTICLES:
            self._send(200, HTML, self._html(HTTP_ARTICLES[path], path))
        elif path in STATIC:
            status, content_type, body, headers = STATIC[path]
            headers = {k: self._fill(v).decode() for k, v in headers.items()}
            self._send(status, content_type, self._fill(body), headers)
        elif (m := re.fullmatch(r"/articles/([a-z0-9-]+)\.html", path)) and m[1] in ARTICLES:
            self._send(200, HTML, self._fill(ARTICLES[m[1]][1]))
        elif (m := re.fullmatch(r"/charset/([a-z0-9-]+)\.html", path)) and m[1] in CHARSET_PAGES:
            self._send(200, "text/html", charset_page(m[1]))  # no charset: the point of the case
        else:
            self._send(404, HTML, b"<html><body><h1>Not Found</h1></body></html>")

    # --- special answers -------------------------------------------------------------------

    def _retry_after(self, path: str) -> None:
        if self.server.hit(path) == 1:
            self._send(429, HTML, b"<html>slow down</html>", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        else:
            self._send(200, HTML, self._html(HTTP_ARTICLES[path], path))

    def _slow(self, path: str) -> None:
        body = self._html(HTTP_ARTICLES[path], path)
        self._log(200)
        self._headers(200, HTML, {"Content-Length": str(len(body))})
        step = len(body) // 6 + 1
        for start in range(0, len(body), step):  # trickle the body out over SLOW_SECONDS
            time.sleep(SLOW_SECONDS / 6)
            self.wfile.write(body[start : start + step])
            self.wfile.flush()

    def _reset(self, path: str) -> None:
        """Accept the request, answer nothing, and reset the connection (RST, not FIN)."""
        self._log(0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _hang(self, path: str) -> None:
        """Accept the request and never answer (until the server stops)."""
        self._log(0)
        self.server.released.wait(60)
        self.close_connection = True

    def _huge(self, path: str) -> None:
        self._stream(HUGE_BYTES, {"Content-Length": str(HUGE_BYTES)})

    def _huge_streamed(self, path: str) -> None:
        self._stream(HUGE_BYTES, {"Connection": "close"})  # no length: the size shows only as it comes

    def _stream(self, size: int, headers: dict[str, str]) -> None:
        self._log(200)
        self._headers(200, HTML, headers)
        chunk = (b"<p>" + b"tide gauge " * 6000 + b"</p>\n")[: 64 * 1024]
        sent = 0
        try:
            self.wfile.write(b"<html><body>")
            while sent < size:  # written as it goes: no 20 MB page exists anywhere
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the crawler hung up once it had enough: the expected end
        self.close_connection = True

    def _bomb(self, path: str) -> None:
        self._send(200, HTML, gzip_bomb(), {"Content-Encoding": "gzip"})

    def _binary(self, path: str) -> None:
        png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 64
        self._send(200, HTML, png)

    def _big_sitemap(self, path: str) -> None:
        self._send(200, XML, self._fill_bytes(big_sitemap()))

    # --- plumbing --------------------------------------------------------------------------

    def _html(self, title: str, path: str) -> bytes:
        return self._fill(article_html(title, lead(path)))

    def _fill(self, text: str) -> bytes:
        return self._fill_bytes(text.encode("utf-8"))

    def _fill_bytes(self, body: bytes) -> bytes:
        port = self.server.server_address[1]
        return body.replace(b"{{BASE}}", self.server.base_url.encode()).replace(
            b"{{LOCALHOST}}", f"http://localhost:{port}".encode()
        )

    def _log(self, status: int) -> None:
        self.server.log(
            FaultRequest(
                "GET",
                self.path,
                status,
                self.headers.get("User-Agent", ""),
                at=self.arrived,
                host=self.headers.get("Host", ""),
                authorization=self.headers.get("Authorization", ""),
                proxy_authorization=self.headers.get("Proxy-Authorization", ""),
                proxied=self.proxied,
            )
        )

    def _headers(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._log(status)
        self._headers(status, content_type, {**(headers or {}), "Content-Length": str(len(body))})
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request log replaces stderr noise


SPECIAL: dict[str, Callable[[FaultHandler, str], None]] = {
    "/http/retry-after.html": FaultHandler._retry_after,
    "/http/slow.html": FaultHandler._slow,
    "/http/reset.html": FaultHandler._reset,
    "/http/hang.html": FaultHandler._hang,
    "/content/huge.html": FaultHandler._huge,
    "/content/huge-streamed.html": FaultHandler._huge_streamed,
    "/content/gzip-bomb.html": FaultHandler._bomb,
    "/content/binary.html": FaultHandler._binary,
    "/sitemaps/big.xml": FaultHandler._big_sitemap,
}


def serve(port: int = 0) -> FaultServer:
    """Start the fault site in a background thread; stop it with `.stop()`."""
    server = FaultServer(port)
    server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = any free port)")
    args = parser.parse_args(argv)
    server = FaultServer(args.port)
    print(server.base_url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.released.set()
        server.server_close()


# --- what one crawl of the fault site must leave behind ---------------------------------------------

STATS_RE = re.compile(r"'([\w/.\- ]+)': (\d+),?\n")


def read_stats(log: str) -> dict[str, int]:
    """The numeric stats from the "Dumping Scrapy stats" block of a crawl's log."""
    block = log.rpartition("Dumping Scrapy stats:")[2].partition("}\n")[0]
    return {name: int(value) for name, value in STATS_RE.findall(block + "\n")}


@dataclass
class Outcome:
    """What one crawl of the fault site left: rows in the archive, the site's log, Scrapy's stats.
    URLs on the fault site are shortened to their paths; others (file:, ftp:) stay whole."""

    base_url: str
    articles: dict[str, dict[str, Any]]
    aliases: dict[str, tuple[str, str]]  # alias -> (article, reason)
    failures: list[dict[str, Any]]
    requests: list[FaultRequest]
    stats: dict[str, int]
    runs: list[dict[str, Any]]

    @classmethod
    def read(cls, db_path: Any, server: FaultServer, log: str) -> Outcome:
        from archive.sqlite import sqlite3

        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            rows = {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t}")] for t in TABLES}
        finally:
            conn.close()
        short = cls.shortener(server.base_url)
        return cls(
            base_url=server.base_url,
            articles={short(a["url"]): a for a in rows["articles"]},
            aliases={short(a["alias"]): (short(a["url"]), a["reason"]) for a in rows["url_aliases"]},
            failures=[{**f, "path": short(f["url"] or "")} for f in rows["failures"]],
            requests=list(server.requests),  # type: ignore[arg-type]
            stats=read_stats(log),
            runs=rows["crawl_runs"],
        )

    @staticmethod
    def shortener(base_url: str) -> Callable[[str], str]:
        return lambda url: url[len(base_url) :] or "/" if url.startswith(base_url) else url

    def failures_at(self, path: str) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["path"] == path]

    def requests_to(self, path: str) -> list[FaultRequest]:
        return [r for r in self.requests if urlsplit(r.path).path == path]


TABLES = ("articles", "url_aliases", "failures", "crawl_runs")


@dataclass(frozen=True)
class Verdict:
    case: Case
    observed: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Case:
    """One fault, and what the archive must show for it after the crawl."""

    name: str
    group: str
    expected: str  # in words, for the report
    path: str  # where the fault is served (or the non-http URL it is about)
    stored: str | None = None  # the path the article must be stored under; None: nothing stored
    failure: tuple[str, str] | None = None  # (stage, text in the reason) of every failure at `path`
    status: int | None = None  # the HTTP status those failures record
    requests: tuple[int, int | None] = (0, None)  # how often `path` may be requested: min, max
    more: Callable[[Outcome], str | None] | None = field(default=None, compare=False)  # what is wrong

    def judge(self, outcome: Outcome) -> Verdict:
        problems: list[str] = []
        if self.stored and self.stored not in outcome.articles:
            problems.append(f"nothing stored at {self.stored}")
        if not self.stored and self.path in outcome.articles:
            problems.append("stored, and must not be")
        failures = outcome.failures_at(self.path)
        if self.failure is None and failures:
            problems.append("a failure was recorded")
        elif self.failure is not None:
            stage, text = self.failure
            if not failures:
                problems.append(f"no {stage} failure recorded")
            for f in failures:
                if f["stage"] != stage or text not in f["reason"] or f["http_status"] != self.status:
                    problems.append(f"recorded {f['stage']} failure {f['reason'][:80]!r} ({f['http_status']})")
        hits = len(outcome.requests_to(self.path))
        low, high = self.requests
        if hits < low or (high is not None and hits > high):
            problems.append(f"requested {hits} times, expected {low}..{high if high is not None else ''}")
        if self.more is not None and (problem := self.more(outcome)):
            problems.append(problem)
        return Verdict(self, self.describe(outcome), problems)

    def describe(self, outcome: Outcome) -> str:
        parts = []
        if self.stored and self.stored in outcome.articles:
            parts.append("stored" if self.stored == self.path else f"stored as {self.stored}")
        elif self.path in outcome.articles:
            parts.append("stored")
        for f in outcome.failures_at(self.path)[:2]:
            parts.append(f"{f['stage']} failure: {f['reason'][:70]}")
        if self.path.startswith("/"):
            hits = len(outcome.requests_to(self.path))
            parts.append(f"{hits} request{'s' if hits != 1 else ''}")
        return "; ".join(parts) or "nothing recorded"


def _article_field(path: str, name: str, want: Any) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        got = outcome.articles.get(path, {}).get(name)
        return None if got == want else f"{name} is {got!r}, expected {want!r}"

    return check


def _published(path: str, instant: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        got = outcome.articles.get(path, {}).get("published_at")
        same = got is not None and datetime.fromisoformat(got) == datetime.fromisoformat(instant)
        return None if same else f"published_at is {got!r}, expected the instant {instant}"

    return check


def _alias(alias: str, target: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        got = outcome.aliases.get(alias)
        return None if got == (target, "redirect") else f"alias {alias} -> {got}, expected {target} (redirect)"

    return check


def _charset(slug: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        article = outcome.articles.get(f"/charset/{slug}.html", {})
        title, phrase = CHARSET_TEXT[slug][0], CHARSET_PAGES[slug][2]
        if article.get("title") != title:
            return f"title decoded as {article.get('title')!r}"
        return None if phrase in (article.get("text") or "") else f"text lacks {phrase!r}"

    return check


def _waited(path: str, seconds: float) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        hits = outcome.requests_to(path)
        if len(hits) < 2:
            return "never retried"
        gap = hits[1].at - hits[0].at
        # 0.1 s of slack: the server stamps arrivals, the crawler times its wait from the answer
        return None if gap >= seconds - 0.1 else f"retried after {gap:.2f}s, before Retry-After ({seconds}s)"

    return check


def _answered_once(path: str, status: int) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        answers = [r for r in outcome.requests_to(path) if r.status == status]
        return None if len(answers) == 1 else f"asked again after the {status}: {len(answers)} answers"

    return check


def _never_requested(*paths: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        asked = [p for p in paths if outcome.requests_to(p)]
        return f"requested {', '.join(asked)}" if asked else None

    return check


def _no_markup(path: str) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        article = outcome.articles.get(path, {})
        metadata = " ".join(str(article.get(k) or "") for k in ("title", "authors", "description", "image"))
        body = f"{article.get('text')} {article.get('markdown')}"
        found = [m for m in MARKUP if m in metadata.lower()] + [m for m in CODE if m in body]
        if found:
            return f"stored {', '.join(found)}"
        return _article_field(path, "title", SCRIPTED_TITLE)(outcome) or _article_field(path, "image", None)(outcome)

    return check


MARKUP = ("<script", "<b", "javascript:", "onmouseover", "onclick", "onerror", "alert(")
CODE = ("alert('body')", "alert(4)", "alert(5)", "onclick", "onerror")


def _big_sitemap_read(outcome: Outcome) -> str | None:
    ignored = outcome.stats.get("news/discovery/ignored", 0)
    if ignored < BIG_SITEMAP_URLS:
        return f"only {ignored} sitemap entries were read"
    fetched = [r.path for r in outcome.requests if "/bulk/" in r.path]
    return f"{len(fetched)} denied pages fetched" if fetched else None


def _requests_at_most(prefix: str, most: int) -> Callable[[Outcome], str | None]:
    def check(outcome: Outcome) -> str | None:
        count = sum(1 for r in outcome.requests if urlsplit(r.path).path.startswith(prefix))
        return None if count <= most else f"{count} requests to {prefix}*"

    return check


REFUSED_SCHEME = ("fetch", "refused: only http and https")


def _cases() -> list[Case]:
    once, retried = (1, 2), (2, None)  # a second request can be a retry after a timeout under load
    tries = 1 + 2  # RETRY_TIMES = 2
    cases = [
        Case(
            "HTTP 404",
            "http",
            "fetch failure, HTTP 404",
            "/http/404.html",
            failure=("fetch", "HTTP 404"),
            status=404,
            requests=once,
        ),
        Case(
            "HTTP 410",
            "http",
            "fetch failure, HTTP 410",
            "/http/410.html",
            failure=("fetch", "HTTP 410"),
            status=410,
            requests=once,
        ),
        Case(
            "500, then 200",
            "http",
            "retried, then stored",
            "/http/flaky-500.html",
            stored="/http/flaky-500.html",
            requests=retried,
        ),
        Case(
            "503, then 200",
            "http",
            "retried, then stored",
            "/http/flaky-503.html",
            stored="/http/flaky-503.html",
            requests=retried,
        ),
        Case(
            "429 with Retry-After: 2",
            "http",
            "retried no sooner than 2 s later, then stored",
            "/http/retry-after.html",
            stored="/http/retry-after.html",
            requests=retried,
            more=_waited("/http/retry-after.html", RETRY_AFTER_SECONDS),
        ),
        Case(
            "429 with Retry-After: 3600",
            "http",
            "not retried this run; fetch failure, HTTP 429",
            "/http/retry-after-too-long.html",
            failure=("fetch", "HTTP 429 (Retry-After: 3600)"),
            status=429,
            requests=once,
            more=_answered_once("/http/retry-after-too-long.html", 429),
        ),
        Case(
            "connection reset",
            "http",
            "retried, then fetch failure",
            "/http/reset.html",
            failure=("fetch", "ConnectionLost"),
            requests=(tries, None),
        ),
        Case(
            "accepts, never answers",
            "http",
            "timed out 3 times, then fetch failure",
            "/http/hang.html",
            failure=("fetch", "DownloadTimeoutError"),
            requests=(tries, tries),
        ),
        Case(
            "slow page (1 s)",
            "http",
            "stored",
            "/http/slow.html",
            stored="/http/slow.html",
            requests=(1, None),
        ),
        Case(
            "redirect chain 301-302-307",
            "redirects",
            "followed; stored under the final URL, the first URL an alias",
            "/redirect/chain-1",
            stored=PLAIN_ARTICLES["redirect-target"],
            requests=once,
            more=_alias("/redirect/chain-1", PLAIN_ARTICLES["redirect-target"]),
        ),
        Case(
            "redirect loop a-b-a",
            "redirects",
            "stopped at the repeat; fetch failure",
            "/redirect/loop-b",
            failure=("fetch", "redirect loop"),
            requests=once,
            more=_requests_at_most("/redirect/loop-", 4),
        ),
        Case(
            "redirect to file://",
            "redirects",
            "refused; fetch failure",
            "/redirect/to-file",
            failure=("fetch", "refused: redirect to a file: URL"),
            requests=once,
        ),
        Case(
            "redirect to another host",
            "redirects",
            "refused; fetch failure; target never fetched",
            "/redirect/offsite",
            failure=("fetch", "outside the source's domains"),
            requests=once,
            more=_never_requested(PLAIN_ARTICLES["offsite-target"]),
        ),
        Case(
            "meta refresh",
            "redirects",
            "followed; stored under the target, the page an alias",
            "/content/refresh.html",
            stored=PLAIN_ARTICLES["refresh-target"],
            requests=once,
            more=_alias("/content/refresh.html", PLAIN_ARTICLES["refresh-target"]),
        ),
        Case(
            "meta refresh to itself",
            "redirects",
            "stopped; fetch failure",
            "/content/refresh-loop.html",
            failure=("fetch", "redirect loop"),
            requests=once,
        ),
        Case(
            "meta refresh to file://",
            "redirects",
            "refused; fetch failure",
            "/content/refresh-to-file.html",
            failure=("fetch", "refused: redirect to a file: URL"),
            requests=once,
        ),
        Case(
            "empty 200",
            "content",
            "extract failure",
            "/content/empty.html",
            failure=("extract", "empty page"),
            status=200,
            requests=once,
        ),
        Case("truncated HTML", "content", "stored", "/content/truncated.html", stored="/content/truncated.html"),
        Case("malformed HTML", "content", "stored", "/content/malformed.html", stored="/content/malformed.html"),
        Case(
            "PNG served as text/html",
            "content",
            "refused; fetch failure",
            "/content/binary.html",
            failure=("fetch", "a PNG image served as text/html"),
            requests=once,
        ),
        Case(
            "20 MB page (Content-Length)",
            "content",
            "cut at DOWNLOAD_MAXSIZE; fetch failure",
            "/content/huge.html",
            failure=("fetch", "larger than download max size"),
            requests=once,
        ),
        Case(
            "20 MB page (no length)",
            "content",
            "cut at DOWNLOAD_MAXSIZE; fetch failure",
            "/content/huge-streamed.html",
            failure=("fetch", "larger than DOWNLOAD_MAXSIZE"),
            requests=(1, tries),  # 10 MB takes a while on a busy machine: a timeout is retried
        ),
        Case(
            "gzip bomb (40 KB -> 40 MB)",
            "content",
            "cut at DOWNLOAD_MAXSIZE; fetch failure",
            "/content/gzip-bomb.html",
            failure=("fetch", "exceeded DOWNLOAD_MAXSIZE"),
            requests=once,
        ),
        Case(
            "<script> in title, meta and body",
            "content",
            "stored as text without the page's markup: no tags in metadata, no javascript: image",
            "/content/script.html",
            stored="/content/script.html",
            more=_no_markup("/content/script.html"),
        ),
        Case(
            "no date",
            "content",
            "stored, published_at empty",
            NO_DATE,
            stored=NO_DATE,
            more=_article_field(NO_DATE, "published_at", None),
        ),
        Case(
            "no author",
            "content",
            "stored, authors empty",
            NO_AUTHOR,
            stored=NO_AUTHOR,
            more=_article_field(NO_AUTHOR, "authors", "[]"),
        ),
        Case(
            "no title",
            "content",
            "stored, title from the feed",
            NO_TITLE,
            stored=NO_TITLE,
            more=_article_field(NO_TITLE, "title", NO_TITLE_FEED_TITLE),
        ),
    ]
    cases += [
        Case(
            f"{encoding}, undeclared",
            "encodings",
            f"decoded right: text has {phrase!r}",
            f"/charset/{slug}.html",
            stored=f"/charset/{slug}.html",
            more=_charset(slug),
        )
        for slug, (encoding, _, phrase) in CHARSET_PAGES.items()
    ]
    cases += [
        Case(
            "feed not well-formed",
            "feeds",
            "what can be read is read: its article stored",
            PLAIN_ARTICLES["from-invalid-feed"],
            stored=PLAIN_ARTICLES["from-invalid-feed"],
        ),
        Case(
            "feed not well-formed, recorded",
            "feeds",
            "parse failure naming the XML error",
            "/feeds/invalid.xml",
            failure=("parse", "not well-formed"),
            status=200,
        ),
        Case(
            "feed that is not XML",
            "feeds",
            "parse failure",
            "/feeds/garbage.xml",
            failure=("parse", "not a feed"),
            status=200,
            requests=once,
        ),
        Case(
            "HTML served as a feed",
            "feeds",
            "parse failure",
            "/feeds/html.xml",
            failure=("parse", "not a feed"),
            status=200,
            requests=once,
        ),
        Case("feed with no items", "feeds", "nothing to do, no failure", "/feeds/empty.xml", requests=once),
        Case(
            "feed of zero bytes",
            "feeds",
            "parse failure",
            "/feeds/zero.xml",
            failure=("parse", "not a feed"),
            status=200,
            requests=once,
        ),
        Case(
            "sitemap index listing itself",
            "feeds",
            "parse failure; each sitemap fetched once",
            "/sitemaps/self.xml",
            failure=("parse", "lists itself"),
            status=200,
            requests=once,
            more=_requests_at_most("/sitemaps/loop-b.xml", 2),
        ),
        Case(
            "sitemap of 50,000 URLs",
            "feeds",
            "every entry read (streamed), none fetched (denied)",
            "/sitemaps/big.xml",
            requests=once,
            more=_big_sitemap_read,
        ),
    ]
    cases += [
        Case(
            f"feed date {written}",
            "dates",
            f"published_at = {instant}",
            ODD_DATE_PATHS[slug],
            stored=ODD_DATE_PATHS[slug],
            more=_published(ODD_DATE_PATHS[slug], instant),
        )
        for slug, (written, instant) in ODD_DATES.items()
    ]
    cases += [
        Case(
            "sitemap and robots.txt name file://",
            "schemes",
            "refused, never read; fetch failure",
            SECRET_FILE,
            failure=REFUSED_SCHEME,
        ),
        Case(
            "page announces a file:// feed",
            "schemes",
            "refused, never read; fetch failure",
            "file:///etc/hostname",
            failure=REFUSED_SCHEME,
        ),
        Case(
            "sitemap names ftp://",
            "schemes",
            "refused; fetch failure",
            "ftp://127.0.0.1/sitemap.xml",
            failure=REFUSED_SCHEME,
        ),
        Case(
            "sitemap names data:",
            "schemes",
            "refused; fetch failure",
            "data:text/xml,%3Curlset/%3E",
            failure=REFUSED_SCHEME,
        ),
    ]
    return cases


CASES = _cases()


if __name__ == "__main__":
    main()
