"""Per-field extraction: every signal the page carries, cross-checked, with provenance per field.

trafilatura finds the body (and its own metadata, one signal among several); the page's JSON-LD,
OpenGraph/meta tags, <title>, <h1>, <time> elements and the feed's hints give the rest. Each
field's rule is in the module that decides it (titles, authors, dates, language, body) and
`provenance` records which signal each stored value came from.
"""

from __future__ import annotations

import functools
import re
from copy import copy
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from htmldate import find_date
from trafilatura.metadata import extract_metadata
from trafilatura.xml import xmltotxt

from extraction.authors import choose_authors
from extraction.body import body_heading, clean_body
from extraction.body_choice import ARTICLE_BODY_MIN_WORDS, extract_body
from extraction.captions import drop_captions
from extraction.dates import parse_date_iso
from extraction.language import choose_language
from extraction.layout_tables import unwrap_prose_tables, without_layout_columns
from extraction.main_content import main_content_candidate, read_with_main_content
from extraction.names import SiteNames
from extraction.page_evidence import WORD_RE, has_article_markup, is_cut_off, visible_article_words
from extraction.parsing import parse_page
from extraction.repair import close_raw_text, remove_control_characters, swallowed
from extraction.structured import (
    PageData,
    clean_text,
    jsonld_keywords,
    jsonld_names,
    jsonld_people,
    jsonld_text,
    read_page_data,
)
from extraction.titles import choose_title, shown_headline, shown_texts, url_slug_title

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lxml.etree import _Element
    from lxml.html import HtmlElement

    from extraction.candidates import Candidate

# JSON-LD articleBody replaces trafilatura's text only when trafilatura found less than this
# share of it (text rendered by scripts, or a page trafilatura misreads).
ARTICLE_BODY_FALLBACK_RATIO = 0.3

# Title tags other than OpenGraph's: Dublin Core, and the tags analytics and recommendation
# services read (they usually carry the editorial headline rather than the social-media one).
_TITLE_META = (
    "headline",
    "dc.title",
    "dcterms.title",
    "parsely-title",
    "sailthru.title",
    "cxenseparse:title",
)
_AUTHOR_META = ("author", "article:author", "dc.creator", "dcterms.creator", "parsely-author", "byl")
_PUBLISHED_META = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "publishdate",
    "publish-date",
    "pubdate",
    "dc.date.issued",
    "dcterms.issued",
    "dcterms.created",
    "parsely-pub-date",
    "sailthru.date",
    "date",
    "dc.date",
)
_MODIFIED_META = ("article:modified_time", "og:updated_time", "datemodified", "dcterms.modified")


class ExtractionError(ValueError):
    """The page could not be parsed at all (not HTML, empty)."""

    stage = "extract"


def extract_article(html: str, url: str, hints: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract an article's fields from its HTML.

    Args:
        html: the page, decoded.
        url: the URL it was fetched from (resolves relative links, feeds trafilatura's heuristics).
        hints: what a feed or news sitemap said about this URL (title, published, modified, authors).

    Returns:
        A dict with the `ArticleItem` fields set by extraction, plus `provenance` naming where
        each value came from. `text` is empty when no main text is found.

    Raises:
        ExtractionError: the input is not a parseable HTML document.
    """
    return extract_with_evidence(html, url, hints)[0]


def extract_with_evidence(
    html: str, url: str, hints: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`extract_article`'s fields, and what the not-article verdict weighs besides them:
    `page_words` (the words of the page's visible paragraphs in its article region, so a body
    cut short by extraction is not what makes a page "too short") and `article_markup` (the page
    marks itself up as an article: NewsArticle-like structured data, og:type article, or an
    <article> element with a publication time)."""
    if not html or not html.strip():
        raise ExtractionError("empty page")
    html, repairs = remove_control_characters(html)
    tree = parse_page(html)
    if tree is not None and swallowed(tree):
        mended, closed = close_raw_text(html)
        reparsed = parse_page(mended) if closed else None
        if reparsed is not None:
            tree, repairs = reparsed, repairs + closed
    if tree is None:
        tree = _forgiving_parse(html)
        repairs.append("read by lxml's recovering parser")
    if tree is None:
        raise ExtractionError("not a parseable HTML document")
    page = read_page_data(tree)  # before trafilatura, which prunes the tree
    evidence: dict[str, Any] = {
        "page_words": visible_article_words(tree),
        # A page cut off in transit may carry article markup around two sentences: it is no brief.
        "article_markup": has_article_markup(tree, page) and not is_cut_off(html),
    }
    article_body = _article_body(page.jsonld.get("articleBody"))
    reading, columns = without_layout_columns(tree)
    main_content = main_content_candidate(html)
    headlines = [*page.h1[:3], *page.all_meta("og:title"), page.title_tag or ""]
    body, body_origin = extract_body(reading, url, article_body, page.descriptions(), main_content, headlines)
    if columns:
        body_origin += f" ({columns} layout-table cells beside the article not read)"
    picker = FieldPicker(page, tree, url, hints or {})
    picker.provenance["text"] = body_origin
    if repairs:
        picker.provenance["html"] = "repaired: " + ", ".join(repairs)
    title = picker.title()
    authors = picker.authors()
    text, markdown = picker.body(body, title, authors, main_content)
    if not title and text:
        title = picker.fallback_title(body)
    result: dict[str, Any] = {
        "title": title,
        "authors": authors,
        "published_at": picker.published(),
        "modified_at": picker.modified(),
        "language": picker.language(title, text),
        "sitename": picker.sitename(),
        "description": picker.description(),
        "categories": picker.categories(),
        "tags": picker.tags(),
        "image": _absolute(url, picker.image()),
        "text": text,
        "markdown": markdown,
        "page_type": picker.page_type(),
        "page_canonical": _absolute(url, page.canonical or page.first_meta("og:url")),
        "is_amp": page.amp_canonical,
    }
    result["word_count"] = len(WORD_RE.findall(text))
    result["provenance"] = picker.provenance
    evidence["page_words"] = max(evidence["page_words"], result["word_count"])
    return result, evidence


def _forgiving_parse(html: str) -> HtmlElement | None:
    """The page read by lxml's recovering parser as a document, when trafilatura's loader refuses
    it (it rejects a document whose first bytes do not say "html" and that parses to one block)."""
    from lxml.etree import ParserError
    from lxml.html import HTMLParser, document_fromstring

    try:
        return document_fromstring(html.encode("utf-8", "replace"), parser=HTMLParser(recover=True, encoding="utf-8"))
    except (ParserError, ValueError):
        return None


def _absolute(base: str, value: str | None) -> str | None:
    return urljoin(base, value) if value else None


def title_signals(page: PageData, hints: dict[str, Any]) -> dict[str, list[str]]:
    """Every headline the page (and the feed) gives, by signal, for `choose_title`."""
    ld_headline = jsonld_text(page.jsonld.get("headline")) or (
        jsonld_text(page.jsonld.get("name")) if page.jsonld_type else None
    )
    signals: dict[str, Sequence[str | None]] = {
        "json-ld": [ld_headline],
        "h1": page.h1[:5],
        "feed": [hints.get("title")],
        "meta": [page.first_meta(*_TITLE_META)],
        "opengraph": [page.first_meta("og:title"), page.first_meta("twitter:title")],
        "title": [page.title_tag],
    }
    return {k: [v for v in values if isinstance(v, str) and v.strip()] for k, values in signals.items()}


class FieldPicker:
    """Chooses each field from the available signals and remembers which one it used."""

    def __init__(self, page: PageData, tree: HtmlElement, url: str, hints: dict[str, Any]) -> None:
        self.page = page
        self.tree = tree
        self.url = url
        self.ld = page.jsonld
        self.hints = hints
        self.provenance: dict[str, str] = {}
        sections = [*jsonld_keywords(page.jsonld.get("articleSection")), *page.all_meta("article:section")]
        self.sites = SiteNames(page.site_names(), url, sections)

    @functools.cached_property
    def _trafilatura(self) -> Any:
        """trafilatura's own metadata (htmldate's date among it), read only when a field has no
        better source: it costs as much as the body extraction."""
        return extract_metadata(copy(self.tree), self.url)

    def _first(self, field: str, candidates: list[tuple[str, Any]]) -> Any:
        """The first candidate with a value; a callable candidate is only called when reached."""
        for origin, candidate in candidates:
            value = candidate() if callable(candidate) else candidate
            if value:
                self.provenance[field] = origin
                return value
        return None

    def _htmldate(self) -> str | None:
        """htmldate's reading of every date on the page, as trafilatura would call it."""
        return parse_date_iso(find_date(copy(self.tree), url=self.url, original_date=True, extensive_search=True))

    def _doc(self, name: str) -> Any:
        return getattr(self._trafilatura, name, None)

    # --- title, authors -------------------------------------------------------------------

    def title(self) -> str | None:
        signals = title_signals(self.page, self.hints)
        if not any(signals.values()):
            signals["trafilatura"] = [t for t in [self._doc("title")] if isinstance(t, str)]
        title, origin, support = choose_title(signals, self.sites)
        if origin:
            others = support.get(origin, 1) - 1
            self.provenance["title"] = origin if others <= 0 else f"{origin} (+{others:g} agreeing)"
        if origin in ("title", "trafilatura") and title:
            # Only the <title> gave the headline (site names cut): the part of it that the page
            # shows on its own is the headline, without the section, city or date around it.
            shown = shown_headline(title, shown_texts(self.tree))
            if shown:
                title, self.provenance["title"] = shown, f"{origin} (the part the page shows)"
        return title

    def fallback_title(self, body: _Element | None) -> str | None:
        """A title for a page whose headline signals gave none: trafilatura's (unless it is only
        the site's name), the body's first heading, or the words of the URL's last path segment
        ("harbour-plan-approved")."""
        heading = body_heading(body) if body is not None else None
        return self._first(
            "title",
            [
                ("trafilatura", lambda: self._unless_site_name(clean_text(self._doc("title")))),
                ("body heading", heading),
                ("url slug", url_slug_title(self.url)),
            ],
        )

    def _unless_site_name(self, title: str | None) -> str | None:
        return None if title is None or self.sites.matches(title) else title

    def authors(self) -> list[str]:
        people = jsonld_people(self.ld.get("author")) or jsonld_people(self.ld.get("creator"))
        meta = [v for name in _AUTHOR_META for v in self.page.all_meta(name) if not _is_link(v)]
        hinted = self.hints.get("authors") or []
        signals = [
            ("json-ld", [n for n, _ in people], {n for n, kind in people if kind == "organization"}),
            ("meta", meta, set()),
            ("feed", [a for a in hinted if isinstance(a, str)], set()),
            ("byline", lambda: self.page.bylines[:3], set()),  # looked for only if reached
        ]
        authors, origin = choose_authors(signals, self.sites)
        if not authors:
            fallback = [("trafilatura", (self._doc("author") or "").split(";"), set[str]())]
            authors, origin = choose_authors(fallback, self.sites)
        if origin:
            self.provenance["authors"] = origin
        return authors

    # --- dates ----------------------------------------------------------------------------

    def published(self) -> str | None:
        """Structured dates first (the publisher's own claim); htmldate, which weighs every date
        on the page, only when the page states none; the feed's date before htmldate's guess."""
        marked_times = [value for value, published in self.page.times if published]
        return self._first(
            "published_at",
            [
                ("json-ld", parse_date_iso(jsonld_text(self.ld.get("datePublished")))),
                ("json-ld", parse_date_iso(jsonld_text(self.ld.get("dateCreated")))),
                ("meta", next(filter(None, (parse_date_iso(v) for v in self._metas(_PUBLISHED_META))), None)),
                ("time", next(filter(None, (parse_date_iso(v) for v in marked_times)), None)),
                ("feed", parse_date_iso(self.hints.get("published"))),
                ("htmldate", self._htmldate),
            ],
        )

    def modified(self) -> str | None:
        return self._first(
            "modified_at",
            [
                ("json-ld", parse_date_iso(jsonld_text(self.ld.get("dateModified")))),
                ("meta", next(filter(None, (parse_date_iso(v) for v in self._metas(_MODIFIED_META))), None)),
                ("feed", parse_date_iso(self.hints.get("modified"))),
            ],
        )

    def _metas(self, names: tuple[str, ...]) -> list[str]:
        return [v for name in names for v in self.page.all_meta(name)]

    # --- body and language ----------------------------------------------------------------

    def body(
        self, body: _Element | None, title: str | None, authors: list[str], main_content: Candidate
    ) -> tuple[str, str]:
        """The body's text and markdown, cleaned; a second reader's `main_content` of the page is
        a witness to its blocks (see main_content.py)."""
        text = markdown = ""
        if body is not None:
            headlines = [title, *self.page.h1[:3], self.page.first_meta("og:title"), self.page.title_tag]
            labels = [*jsonld_keywords(self.ld.get("articleSection")), *self.page.all_meta("article:section")]
            unwrap_prose_tables(body)
            removed = clean_body(body, headlines=[h for h in headlines if h], authors=authors, labels=labels)
            removed["caption"] = drop_captions(body, self.page.image_texts, self.page.descriptions())
            removed["not in main content"], restored = read_with_main_content(self.tree, body, main_content)
            removed = +removed  # only the rules that removed something
            text, markdown = xmltotxt(body, False).strip(), xmltotxt(body, True).strip()
            if restored:
                self.provenance["text"] += f" (+{restored} paragraphs among the article's, also in the main content)"
            if removed:
                self.provenance["text"] += " (removed " + ", ".join(f"{n} {r}" for r, n in removed.items()) + ")"
        article_body = _article_body(self.ld.get("articleBody"))
        words = len(WORD_RE.findall(text))
        ld_words = len(WORD_RE.findall(article_body))
        if ld_words >= ARTICLE_BODY_MIN_WORDS and words < ARTICLE_BODY_FALLBACK_RATIO * ld_words:
            self.provenance["text"] = "json-ld articleBody"
            return article_body, article_body
        return text, markdown

    def language(self, title: str | None, text: str) -> str | None:
        declared = [
            ("json-ld", jsonld_text(self.ld.get("inLanguage"))),
            ("html", self.page.html_lang),
            ("opengraph", self.page.first_meta("og:locale")),
            ("meta", self.page.first_meta("content-language", "language", "dc.language")),
        ]
        language, origin = choose_language(declared, f"{title or ''}\n{text}")
        if origin:
            self.provenance["language"] = origin
        return language

    # --- the rest -------------------------------------------------------------------------

    def sitename(self) -> str | None:
        return self._first(
            "sitename",
            [
                ("opengraph", clean_text(self.page.first_meta("og:site_name"))),
                ("json-ld", clean_text(next(iter(jsonld_names(self.ld.get("publisher"))), None))),
                ("site", lambda: next(iter(self.sites.names), None)),
                ("url", lambda: _host(self.url)),
            ],
        )

    def description(self) -> str | None:
        return self._first(
            "description",
            [
                ("json-ld", clean_text(jsonld_text(self.ld.get("description")))),
                ("opengraph", clean_text(self.page.first_meta("og:description", "description"))),
            ],
        )

    def categories(self) -> list[str]:
        return (
            self._first(
                "categories",
                [
                    ("json-ld", jsonld_keywords(self.ld.get("articleSection"))),
                    ("opengraph", self.page.all_meta("article:section")),
                ],
            )
            or []
        )

    def tags(self) -> list[str]:
        return (
            self._first(
                "tags",
                [
                    ("opengraph", self.page.all_meta("article:tag")),
                    ("json-ld", jsonld_keywords(self.ld.get("keywords"))),
                    ("meta", jsonld_keywords(self.page.first_meta("keywords", "news_keywords"))),
                ],
            )
            or []
        )

    def image(self) -> str | None:
        return self._first(
            "image",
            [
                ("opengraph", self.page.first_meta("og:image", "twitter:image")),
                ("json-ld", jsonld_text(self.ld.get("image"))),
            ],
        )

    def page_type(self) -> str | None:
        return self.page.jsonld_type or self.page.first_meta("og:type")


def _host(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


def _is_link(value: str) -> bool:
    return value.startswith(("http://", "https://", "/")) or "www." in value


def _article_body(value: Any) -> str:
    """JSON-LD articleBody as plain text with one paragraph per line."""
    if not isinstance(value, str):
        return ""
    text = re.sub(r"<[^>]+>", "\n", value)  # some CMSs put HTML in it
    from html import unescape

    lines = (" ".join(line.split()) for line in unescape(text).splitlines())
    return "\n".join(line for line in lines if line)
