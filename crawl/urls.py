"""URL rules: one canonical form per article URL, and telling article URLs from the rest.

Pure functions on strings, shared by the spider, the middleware and the pipelines.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urldefrag, urlsplit

from courlan import normalize_url
from courlan.filters import is_not_crawlable

# Paths that are neither articles nor worth following: tags, authors, search, accounts, feeds.
SKIP_PATH_RE = re.compile(
    r"/(?:tags?|topics?|authors?|autor|auteur|people|profiles?|search|suche|login|log-in|signin|sign-in|"
    r"signup|sign-up|register|account|subscribe|subscription|newsletters?|user|users|cart|shop|"
    r"feeds?|rss|comments?|print|share|privacy|cookies?|terms|impressum|imprint|contact|about|help|faq)"
    r"(?:/|$|\.)",
    re.IGNORECASE,
)
# Paging and section indexes: followed as listings (within the source's depth), never articles.
PAGING_PATH_RE = re.compile(r"/(?:page|seite|p)/\d+/?$|/(?:category|categories|section|archives?)(?:/|$)", re.I)
PAGING_QUERY_RE = re.compile(r"(?:^|&)(?:page|p|pg|offset|start)=\d+", re.IGNORECASE)
MEDIA_EXTENSION_RE = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|css|js|json|xml|gz|zip|pdf|mp[34]|m4a|mov|avi|woff2?|ttf|rss|atom)$",
    re.IGNORECASE,
)
DATE_IN_PATH_RE = re.compile(r"/(?:19|20)\d\d[/-](?:0?[1-9]|1[0-2])(?:[/-]|$)|/(?:19|20)\d\d(?:0[1-9]|1[0-2])\d\d/")
LONG_ID_RE = re.compile(r"(?:^|[/_.-])\d{5,}(?:[/_.-]|$)|-[a-z]?\d{6,}")
_PERCENT_ESCAPE_RE = re.compile(r"%[0-9a-f][0-9A-Fa-f]|%[0-9A-F][a-f]")
SLUG_RE = re.compile(r"[A-Za-z0-9\u00c0-\uffff]+(?:[-_][A-Za-z0-9\u00c0-\uffff]+){2,}")


# A URL is canonicalised a few times within moments (discovery, redirects, the canonical stage);
# a larger cache kept every URL of a big sitemap alive, about 0.5 KB each, and cost 8 µs a miss.
@lru_cache(maxsize=4096)
def canonical_url(url: str) -> str:
    """The form under which an article URL is stored and looked up.

    Lower-case scheme and host, default port and tracking parameters (utm_*, fbclid, gclid, ...)
    dropped, remaining query sorted, fragment removed, percent-escapes in upper case. Paths are
    kept as they are: on news sites `/a` and `/a/` are almost always the same page, but not always.
    """
    try:
        normalized = normalize_url(url.strip())
    except ValueError:
        normalized = url.strip()
    # %d0 and %D0 are one byte (RFC 3986 6.2.2.1): sites link with either, pages declare the other.
    return _PERCENT_ESCAPE_RE.sub(lambda m: m[0].upper(), urldefrag(normalized).url)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def in_domains(url: str, domains: tuple[str, ...]) -> bool:
    """True if the URL's host is one of the domains or a subdomain of one."""
    host = host_of(url)
    return any(host == d or host.endswith("." + d) for d in domains)


def is_http_url(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def http_url_problem(url: str) -> str | None:
    """Why `url`, as a user typed it, is not an http(s) URL that can be crawled, or None."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as exc:  # "http://[::1", "http://h:99999/"
        return f"not a valid URL ({exc})"
    if not parts.scheme:
        return "not a URL (no scheme); give one such as https://news.example/"
    if parts.scheme not in ("http", "https"):  # urlsplit lower-cases the scheme
        return f"only http and https URLs are crawled, not {parts.scheme}:"
    if not host:
        return "the URL has no host"
    return None


def url_kind(url: str) -> str:
    """Classify a link found on a listing page: "article", "listing" or "skip".

    Articles have a dated path, a long numeric id or a multi-word slug. Section fronts and
    paging URLs are listings. Tag, author, search, login, feed and media URLs are skipped.
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    if not is_http_url(url) or MEDIA_EXTENSION_RE.search(path) or SKIP_PATH_RE.search(path):
        return "skip"
    if is_not_crawlable(url):
        return "skip"
    if PAGING_PATH_RE.search(path) or PAGING_QUERY_RE.search(parts.query):
        return "listing"
    last = path.rstrip("/").rsplit("/", 1)[-1]
    last = re.sub(r"\.(?:s?html?|php|aspx?|cms)$", "", last, flags=re.IGNORECASE)
    if DATE_IN_PATH_RE.search(path) and last:
        return "article"
    if LONG_ID_RE.search(path) or SLUG_RE.fullmatch(last):
        return "article"
    return "listing"
