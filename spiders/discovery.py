"""How news sites announce their articles: feeds, sitemaps, robots.txt and HTML link tags.

Pure functions from bytes to plain values, so each format is tested on small fixtures
without a crawl. The spider (spiders/news.py) turns their results into requests.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.sax import SAXException

import feedparser
from lxml import etree
from scrapy.utils.gz import gunzip

from config.dates import parse_datetime

if TYPE_CHECKING:
    import time
    from collections.abc import Iterator

logger = logging.getLogger(__name__)

NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
FEED_CONTENT_TYPES = ("rss", "atom", "rdf", "application/xml", "text/xml")


class DiscoveryError(ValueError):
    """A feed or sitemap that cannot be read; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class Entry:
    """An article URL announced by a feed or sitemap, with what the announcement said about it."""

    url: str
    title: str | None = None
    published: str | None = None  # ISO 8601
    modified: str | None = None  # ISO 8601 (sitemap lastmod, feed updated)
    authors: tuple[str, ...] = ()

    def hints(self) -> dict[str, object]:
        return {
            k: v
            for k, v in (
                ("title", self.title),
                ("published", self.published),
                ("modified", self.modified),
                ("authors", list(self.authors)),
            )
            if v
        }

    def newest_date(self) -> datetime | None:
        for value in (self.modified, self.published):
            if value and (parsed := parse_datetime(value)):
                return parsed
        return None


# --- content sniffing ---------------------------------------------------------------------


def sniff_kind(body: bytes, content_type: str = "") -> str:
    """Tell a feed, a sitemap and an HTML page apart from what the server returned."""
    head = body[:2048].lstrip().lower()
    if head.startswith(b"\x1f\x8b"):
        return "sitemap"  # gzip: news sites only gzip sitemaps
    if b"<urlset" in head or b"<sitemapindex" in head:
        return "sitemap"
    if b"<rss" in head or b"<feed" in head or b"<rdf:rdf" in head:
        return "feed"
    if head.startswith(b"<?xml") and any(t in content_type.lower() for t in FEED_CONTENT_TYPES):
        # XML declaration first and the root later: look a little further
        more = body[:16384].lower()
        if b"<urlset" in more or b"<sitemapindex" in more:
            return "sitemap"
        return "feed"
    return "html"


# --- dates --------------------------------------------------------------------------------


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    return parsed.isoformat() if parsed else None


# --- feeds --------------------------------------------------------------------------------


def parse_feed(body: bytes, base_url: str = "", problems: list[str] | None = None) -> list[Entry]:
    """Entries of an RSS 2.0, RSS 1.0 (RDF) or Atom feed.

    feedparser is lenient with broken XML: the entries it could read are returned, and what
    was wrong is appended to `problems`. A document it cannot read as a feed at all (HTML, an
    error page, random bytes) raises DiscoveryError.
    """
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": base_url})
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception") or "no feed elements found"
        raise DiscoveryError(f"not a feed: {reason}")
    # Only broken XML is worth a failure row; feedparser also flags a missing content type.
    if isinstance(parsed.get("bozo_exception"), SAXException) and problems is not None:
        problems.append(f"feed is not well-formed XML, read leniently: {parsed['bozo_exception']}")
    entries = []
    for item in parsed.entries:
        link = item.get("link") or _atom_alternate(item)
        if not link:
            continue
        # dict.get: FeedParserDict.get maps a missing "updated" to "published" (with a warning)
        published = _struct_time_iso(dict.get(item, "published_parsed")) or _iso(dict.get(item, "published"))
        updated = _struct_time_iso(dict.get(item, "updated_parsed")) or _iso(dict.get(item, "updated"))
        authors = tuple(a["name"] for a in item.get("authors", []) if a.get("name"))
        entries.append(
            Entry(
                url=link.strip(),
                title=(item.get("title") or "").strip() or None,
                published=published or updated,
                modified=updated,
                authors=authors,
            )
        )
    return entries


def _atom_alternate(item: feedparser.FeedParserDict) -> str | None:
    for link in item.get("links", []):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link["href"]
    return None


def _struct_time_iso(value: time.struct_time | None) -> str | None:
    """feedparser's `*_parsed` dates: a struct_time in UTC."""
    if not value:
        return None
    return datetime(
        value.tm_year, value.tm_mon, value.tm_mday, value.tm_hour, value.tm_min, value.tm_sec, tzinfo=UTC
    ).isoformat()


# --- sitemaps -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SitemapLink:
    """A child sitemap named by a sitemap index."""

    url: str
    modified: str | None = None


def sitemap_xml(body: bytes, max_size: int) -> bytes:
    """A sitemap's XML: its body, gunzipped when it came gzipped (a .xml.gz served as it is).
    Raises DiscoveryError for a broken gzip, or one larger than `max_size` once decompressed."""
    if body[:2] != b"\x1f\x8b":
        return body
    try:
        return gunzip(body, max_size=max_size)
    except ValueError:  # Scrapy's decompression-size guard (a gzip bomb)
        raise DiscoveryError("gzipped sitemap larger than DOWNLOAD_MAXSIZE once decompressed") from None
    except OSError as exc:
        raise DiscoveryError(f"broken gzip: {exc}") from None


def iter_sitemap(body: bytes) -> Iterator[Entry | SitemapLink]:
    """Stream the entries of a sitemap or sitemap index (Google News extensions included).

    Fed to a pull parser a slice at a time and each element freed once read, so a 50,000-URL
    sitemap costs the memory of one slice's entries. Real sitemaps often break half-way: every
    entry before the XML error is yielded, then the error is raised. The pull parser keeps the
    events it produced before an error, so this holds whatever lxml's own read-ahead is (lxml 6.2's
    `iterparse` reads so far ahead that an early error lost every entry). Entities are not resolved
    and nothing is fetched (XXE-safe).
    """
    parser = etree.XMLPullParser(
        events=("start", "end"), resolve_entities=False, no_network=True, huge_tree=True, recover=False
    )
    root_seen = False
    error: etree.XMLSyntaxError | None = None
    for offset in range(0, max(len(body), 1), _SITEMAP_SLICE):
        try:
            parser.feed(body[offset : offset + _SITEMAP_SLICE])
            if offset + _SITEMAP_SLICE >= len(body):
                parser.close()
        except etree.XMLSyntaxError as exc:
            error = exc
        for event, elem in parser.read_events():
            name = etree.QName(elem).localname
            if event == "start":
                if not root_seen:
                    root_seen = True
                    if name not in ("urlset", "sitemapindex"):
                        raise DiscoveryError(f"not a sitemap: root element is <{name}>")
                continue
            if name == "url":
                if entry := _url_entry(elem):
                    yield entry
                _free(elem)
            elif name == "sitemap":
                loc = _child_text(elem, "loc")
                if loc:
                    yield SitemapLink(url=loc, modified=_iso(_child_text(elem, "lastmod")))
                _free(elem)
        if error is not None:
            raise DiscoveryError(f"invalid sitemap XML: {error}")
    if not root_seen:
        raise DiscoveryError("not a sitemap: empty document")


# Bytes fed to the parser at a time: small enough that one slice's entries are few, large enough that
# the feeding loop costs nothing next to the parse.
_SITEMAP_SLICE = 64 * 1024


def _url_entry(elem: etree._Element) -> Entry | None:
    loc = _child_text(elem, "loc")
    if not loc:
        return None
    news = elem.find(f"{{{NEWS_NS}}}news")
    title = published = None
    if news is not None:
        title = _child_text(news, "title", NEWS_NS)
        published = _iso(_child_text(news, "publication_date", NEWS_NS))
    return Entry(url=loc, title=title, published=published, modified=_iso(_child_text(elem, "lastmod")))


def _child_text(elem: etree._Element, name: str, namespace: str | None = None) -> str | None:
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if qname.localname == name and (namespace is None or qname.namespace == namespace):
            return (child.text or "").strip() or None
    return None


def _free(elem: etree._Element) -> None:
    elem.clear()
    while elem.getprevious() is not None:
        del elem.getparent()[0]


# --- HTML ---------------------------------------------------------------------------------

# JSON Feed (application/feed+json) is left out: feedparser does not read it.
FEED_LINK_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")


def is_feed_link(rel: str, type_: str) -> bool:
    """A <link rel="alternate" type="application/rss+xml"> that announces a feed."""
    return "alternate" in rel.lower().split() and type_.lower().strip() in FEED_LINK_TYPES
