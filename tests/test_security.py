"""Security: only http(s), no private addresses unless allowed, no credentials in logs or the database.

Unit tests drive the middlewares with a stub resolver; the end-to-end tests run real crawls
against the fault site (demo/faults.py), which also plays an authenticating HTTP proxy, so a
"public" site (news.example, resolved by `pretend_dns`) can be crawled without leaving 127.0.0.1.
Stored text being data (no markup from the page in the archive) is a case of the fault site.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import logging.handlers
from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse

from archive.sqlite import sqlite3
from config.redaction import Redactor, known_secrets, redact_credentials
from crawl.fetch_guard import FetchGuardMiddleware, address_kind
from crawl.redirects import GuardedRedirectMiddleware
from crawl.url_credentials import UrlCredentialsMiddleware, strip_credentials
from demo.faults import PLAIN_ARTICLES, FaultServer, basic_auth
from pipelines.sanitize import plain_text
from tests.conftest import scrapy_crawl

PUBLIC = "93.184.215.14"
DNS = {
    "news.example": [PUBLIC],
    "inside.news.example": ["127.0.0.1"],
    "mixed.example": [PUBLIC, "10.0.0.7"],
    "metadata.news.example": ["169.254.169.254"],  # a name pointing at a cloud metadata service
    "metadata6.news.example": ["fd00:ec2::254"],
    "lan.news.example": ["192.168.1.20"],
}


def pretend_dns(host: str) -> list[str]:
    """A resolver for tests (NEWS_RESOLVER): a few public-looking names, no network."""
    if host not in DNS:
        raise OSError(f"[Errno -2] Name or service not known: {host!r}")
    return DNS[host]


# --- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        (PUBLIC, None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(address) == kind


class StubResolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        return pretend_dns(host)


def guard(*, allow_private: bool = False, resolve: StubResolver | None = None) -> FetchGuardMiddleware:
    spider = SimpleNamespace(source=SimpleNamespace(allow_private=allow_private))
    crawler = SimpleNamespace(spider=spider, stats=SimpleNamespace(inc_value=lambda *a, **k: None))
    return FetchGuardMiddleware(crawler, resolve or StubResolver())  # type: ignore[arg-type]


def refusal(middleware: FetchGuardMiddleware, url: str) -> str | None:
    return asyncio.run(middleware.refusal(url))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://news.example/a.html", None),
        ("https://news.example:8443/a.html", None),
        (
            "http://inside.news.example/a.html",
            "inside.news.example resolves to 127.0.0.1, which is a loopback",
        ),
        ("http://mixed.example/", "mixed.example resolves to 10.0.0.7, which is a private"),
        ("http://127.0.0.1:8765/", "127.0.0.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://nowhere.example/", "cannot resolve nowhere.example"),
        ("file:///etc/passwd", "only http and https URLs are fetched, not file:"),
        ("ftp://news.example/feed.xml", "not ftp:"),
        ("data:text/html,hello", "not data:"),
        ("s3://bucket/key", "not s3:"),
    ],
)
def test_fetch_guard_judges_the_resolved_address(url: str, expected: str | None) -> None:
    reason = refusal(guard(), url)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason
        assert reason.startswith("refused: ")


def test_allow_private_opens_private_addresses_but_never_other_schemes() -> None:
    resolver = StubResolver()
    middleware = guard(allow_private=True, resolve=resolver)
    assert refusal(middleware, "http://127.0.0.1/") is None
    assert refusal(middleware, "http://inside.news.example/") is None
    assert "not file:" in (refusal(middleware, "file:///etc/passwd") or "")
    # Names are resolved even so (a name may point at a metadata service); literals and
    # other schemes need no lookup.
    assert resolver.asked == ["inside.news.example"]


def test_host_names_are_resolved_once_and_literals_never() -> None:
    resolver = StubResolver()
    middleware = guard(resolve=resolver)
    for url in ("http://news.example/a", "http://news.example/b", "http://203.0.113.9/", "http://[::1]/"):
        refusal(middleware, url)
    assert resolver.asked == ["news.example"]


def test_system_resolver_sees_through_spellings_of_loopback() -> None:
    middleware = FetchGuardMiddleware(guard().crawler)  # the real resolver: these need no network
    for url in ("http://localhost/", "http://2130706433/", "http://127.1/"):
        assert "loopback address" in (refusal(middleware, url) or ""), url


def test_a_public_page_redirecting_inward_is_refused() -> None:
    """Scrapy's redirect middleware hands the redirect back to the engine, which sends it through
    every downloader middleware again; the guard refuses it there."""
    spider = SimpleNamespace(allowed_domains=["news.example"], handle_httpstatus_list=())
    settings = SimpleNamespace(getbool=lambda *a: True, getint=lambda name: 10)
    redirect = GuardedRedirectMiddleware(settings)  # type: ignore[arg-type]
    redirect.crawler = SimpleNamespace(spider=spider)  # type: ignore[assignment]
    request = Request("http://news.example/story")
    response = HtmlResponse(
        "http://news.example/story", status=302, headers={"Location": "http://inside.news.example/admin"}
    )
    redirected = redirect.process_response(request, response)
    assert isinstance(redirected, Request)
    assert redirected.url == "http://inside.news.example/admin"
    with pytest.raises(IgnoreRequest, match=r"inside.news.example resolves to 127.0.0.1"):
        asyncio.run(guard().process_request(redirected))


# --- credentials --------------------------------------------------------------------------------


def test_credentials_leave_the_url_for_a_header() -> None:
    request = Request("https://reader:p%40ss@news.example:8443/feed.xml?x=1")
    clean = UrlCredentialsMiddleware().process_request(request)
    assert clean is not None
    assert clean.url == "https://news.example:8443/feed.xml?x=1"
    assert clean.headers[b"Authorization"] == basic_auth("reader", "p@ss").encode()
    assert UrlCredentialsMiddleware().process_request(clean) is None
    assert strip_credentials("http://u@h/p") == "http://h/p"


def test_redaction_masks_userinfo_and_known_secrets() -> None:
    assert redact_credentials("GET http://u:pw@h:80/a?b=c@d") == "GET http://***@h:80/a?b=c@d"
    assert redact_credentials("mail me at a@b.example, see http://h/x@y") == (
        "mail me at a@b.example, see http://h/x@y"
    )
    redact = Redactor()
    redact.secrets = {"hunter22"}
    assert redact("HTTPAUTH_PASS: 'hunter22', proxy http://bob:hunter22@p:3128") == (
        "HTTPAUTH_PASS: '***', proxy http://***@p:3128"
    )


def test_redaction_formats_only_records_a_handler_will_emit() -> None:
    formatted: list[str] = []

    class CountsRepr:
        def __repr__(self) -> str:
            formatted.append("repr")
            return "item with http://user:secret@host/"

    logger = logging.getLogger("tests.redaction")
    handler = logging.handlers.MemoryHandler(capacity=100, flushLevel=logging.CRITICAL + 1)
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        dropped = logger.makeRecord(logger.name, logging.DEBUG, __file__, 1, "scraped %r", (CountsRepr(),), None)
        Redactor().clean(dropped)
        assert formatted == []  # an item's repr is never built for a record no handler takes
        kept = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "scraped %r", (CountsRepr(),), None)
        Redactor().clean(kept)
        assert formatted == ["repr"]
        assert kept.getMessage() == "scraped item with http://***@host/"
    finally:
        logger.removeHandler(handler)


def test_known_secrets_come_from_settings_and_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://bob:pr0xy-pass@proxy.example:3128")
    settings = {"HTTPAUTH_PASS": "settings-pass"}
    assert known_secrets(SimpleNamespace(get=settings.get)) >= {"pr0xy-pass", "settings-pass"}  # type: ignore[arg-type]


def test_metadata_is_stored_as_plain_text() -> None:
    assert plain_text("Harbour news <script>alert(1)</script>") == "Harbour news"
    assert plain_text("<b onmouseover=alert(1)>Eve</b>  Harrow") == "Eve Harrow"
    assert plain_text("Why x < y and y > z") == "Why x < y and y > z"  # not tags
    assert plain_text("<script>only code") is None


# --- end to end -----------------------------------------------------------------------------------


def everything_stored(db: Path) -> str:
    """Every value in the database, as text, and every record of its raw pages' WARC files."""
    conn = sqlite3.connect(db)
    try:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dumped = "\n".join(repr(row) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"'))
    finally:
        conn.close()
    warc = [gzip.decompress(path.read_bytes()).decode("latin-1") for path in (db.parent / "warc").glob("*.warc.gz")]
    return "\n".join([dumped, *warc])


@pytest.fixture
def server() -> FaultServer:
    site = FaultServer().start()
    yield site
    site.stop()


def test_loopback_is_refused_unless_the_source_allows_it(server: FaultServer, tmp_path: Path) -> None:
    port = server.server_address[1]
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[[source]]\nname = "inward"\nevery = "1h"\ndelay = "0s"\n'
        f'feeds = ["http://127.0.0.1:{port}/feeds/one.xml", "http://localhost:{port}/feeds/one.xml"]\n'
        f'start_pages = ["http://127.0.0.1:{port}/"]\n',
        encoding="utf-8",
    )
    scrapy_crawl("inward", db=tmp_path / "news.db", sources=sources)
    db = sqlite3.connect(tmp_path / "news.db")
    failures = db.execute("SELECT url, stage, reason FROM failures").fetchall()
    (status,) = db.execute("SELECT status FROM crawl_runs").fetchone()
    assert server.requests == []  # not even robots.txt
    assert status == "ok"
    assert {url for url, _, _ in failures} == {
        f"http://127.0.0.1:{port}/feeds/one.xml",
        f"http://localhost:{port}/feeds/one.xml",
        f"http://127.0.0.1:{port}/",
    }
    for url, stage, reason in failures:
        assert stage == "fetch"
        assert "loopback address; set allow_private = true" in reason, (url, reason)


def test_proxy_credentials_and_a_redirect_inward(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """news.example, crawled through an authenticating proxy, redirects to a host that resolves
    to 127.0.0.1: the redirect is refused, and the proxy's password is nowhere."""
    secret = "pr0xy-s3cret"
    server.proxy_credentials = ("crawler", secret)
    monkeypatch.setenv("http_proxy", f"http://crawler:{secret}@127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("no_proxy", "")
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[[source]]\nname = "public"\nevery = "1h"\ndelay = "0s"\nfeeds = ["http://news.example/feeds/inward.xml"]\n',
        encoding="utf-8",
    )
    log = tmp_path / "crawl.log"
    result = scrapy_crawl(
        "public",
        db=tmp_path / "news.db",
        sources=sources,
        settings={
            "NEWS_RESOLVER": "tests.test_security.pretend_dns",
            "LOG_FILE": str(log),
            "LOG_LEVEL": "DEBUG",
        },
    )
    proxied = {(r.host, r.path.split("news.example", 1)[-1]) for r in server.requests}
    assert proxied == {
        ("news.example", "/robots.txt"),
        ("news.example", "/feeds/inward.xml"),
        ("news.example", "/redirect/inward"),
    }
    assert all(r.proxied and r.proxy_authorization == basic_auth("crawler", secret) for r in server.requests)
    db = sqlite3.connect(tmp_path / "news.db")
    target = "http://inside.news.example" + PLAIN_ARTICLES["from-small-feed"]
    (reason,) = db.execute("SELECT reason FROM failures WHERE url = ?", [target]).fetchone()
    assert "inside.news.example resolves to 127.0.0.1, which is a loopback address" in reason
    assert db.execute("SELECT count(*) FROM articles").fetchone() == (0,)
    for text in (
        log.read_text(encoding="utf-8"),
        result.stdout,
        result.stderr,
        everything_stored(tmp_path / "news.db"),
    ):
        assert secret not in text


def test_credentials_in_a_source_url_and_in_settings_are_never_logged_or_stored(
    server: FaultServer, tmp_path: Path
) -> None:
    base = server.base_url
    server.credentials = ("reader", "feed-s3cret")
    authed = base.replace("http://", "http://reader:feed-s3cret@")
    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[[source]]\nname = "members"\nevery = "1h"\ndelay = "0s"\nallow_private = true\n'
        f'feeds = ["{authed}/auth/feeds/one.xml", "{authed}/auth/feeds/missing.xml"]\n',
        encoding="utf-8",
    )
    log = tmp_path / "crawl.log"
    result = scrapy_crawl(
        "members",
        db=tmp_path / "news.db",
        sources=sources,
        settings={
            "LOG_FILE": str(log),
            "LOG_LEVEL": "DEBUG",
            "HTTPAUTH_USER": "archive",
            "HTTPAUTH_PASS": "settings-s3cret",
            "HTTPAUTH_DOMAIN": "127.0.0.1",
        },
    )
    feed = server.requests_for("/auth/feeds/one.xml")
    assert [r.status for r in feed] == [200]
    assert feed[0].authorization == basic_auth("reader", "feed-s3cret")
    db = sqlite3.connect(tmp_path / "news.db")
    assert db.execute("SELECT url FROM articles").fetchall() == [(base + PLAIN_ARTICLES["from-small-feed"],)]
    assert db.execute("SELECT url, reason FROM failures").fetchall() == [(f"{base}/auth/feeds/missing.xml", "HTTP 404")]
    (feeds,) = db.execute("SELECT feeds FROM sources").fetchone()
    assert f"http://***@127.0.0.1:{server.server_address[1]}/auth/feeds/one.xml" in feeds
    logged = log.read_text(encoding="utf-8")
    assert "'HTTPAUTH_PASS': '***'" in logged  # Scrapy's "Overridden settings" line, masked
    for text in (logged, result.stdout, result.stderr, everything_stored(tmp_path / "news.db")):
        assert "feed-s3cret" not in text
        assert "settings-s3cret" not in text
    stored = everything_stored(tmp_path / "news.db")
    assert "WARC-Type: request" in stored  # the article's request is recorded (its secrets: tests/test_warc.py)
    for header in (basic_auth("reader", "feed-s3cret"), basic_auth("archive", "settings-s3cret")):
        assert header.split()[-1] not in stored
