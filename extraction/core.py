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
from trafilatura import bare_extraction
from trafilatura.metadata import extract_metadata
from trafilatura.utils import load_html
from trafilatura.xml import xmltotxt

from extraction.authors import choose_authors
from extraction.body import block_text, blocks, clean_body
from extraction.candidates import (
    Candidate,
    as_block_tree,
    choose,
    drop_unconfirmed_links,
    link_share,
    link_texts,
    readability_candidate,
    same_text,
)
from extraction.dates import parse_date_iso
from extraction.language import choose_language
from extraction.names import SiteNames
from extraction.repair import close_raw_text, remove_control_characters, swallowed
from extraction.standfirst import restore_standfirst
from extraction.structured import (
    PageData,
    clean_text,
    jsonld_keywords,
    jsonld_names,
    jsonld_people,
    jsonld_text,
    read_page_data,
)
from extraction.titles import choose_title, url_slug_title

if TYPE_CHECKING:
    from lxml.etree import _Element
    from lxml.html import HtmlElement

# \w runs, with each Han/Kana character counted on its own (as the evaluation does).
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
# JSON-LD articleBody replaces trafilatura's text only when trafilatura found less than this
# share of it (text rendered by scripts, or a page trafilatura misreads).
ARTICLE_BODY_FALLBACK_RATIO = 0.3
ARTICLE_BODY_MIN_WORDS = 50
# A precise pass at least this long has the article: the default-mode pass is not run.
FULL_PASS_BELOW_WORDS = 300
# The precise pass keeping less than this share of the full pass's words lost the article itself
# (a page whose markup its stricter filters misjudge), not just boilerplate.
PRECISE_MIN_SHARE = 0.25
# A paragraph the full pass finds above the precise pass's first block is the article's lead when
# it is at least this long (shorter ones are labels, bylines and captions).
LEAD_MIN_WORDS = 15
# A body this much of which is, block for block, the text of the page's links is a menu or a
# list of teasers (a navigation table), not an article: the other candidates are consulted.
LINK_BODY_SHARE = 0.5

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
    tree = load_html(html)
    if tree is not None and swallowed(tree):
        mended, closed = close_raw_text(html)
        reparsed = load_html(mended) if closed else None
        if reparsed is not None:
            tree, repairs = reparsed, repairs + closed
    if tree is None:
        tree = _forgiving_parse(html)
        repairs.append("read by lxml's recovering parser")
    if tree is None:
        raise ExtractionError("not a parseable HTML document")
    page = read_page_data(tree)  # before trafilatura, which prunes the tree
    evidence = {
        "page_words": visible_article_words(tree),
        # A page cut off in transit may carry article markup around two sentences: it is no brief.
        "article_markup": has_article_markup(tree, page) and not is_cut_off(html),
    }
    article_body = _article_body(page.jsonld.get("articleBody"))
    body, body_origin = extract_body(tree, url, article_body)
    picker = FieldPicker(page, tree, url, hints or {})
    picker.provenance["text"] = body_origin
    if repairs:
        picker.provenance["html"] = "repaired: " + ", ".join(repairs)
    title = picker.title()
    authors = picker.authors()
    text, markdown = picker.body(body, title, authors)
    if not title and text:
        title = picker.fallback_title(body)
    result = {
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


# Structured-data types and og:type values by which a page says it is an article.
ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "reviewnewsarticle",
    "blogposting",
    "liveblogposting",
    "report",
    "scholarlyarticle",
}
# Containers whose paragraphs are not the article's, when counting the page's own words.
_NOT_ARTICLE_CONTAINERS = {"nav", "aside", "footer", "form", "figure", "menu", "template", "noscript"}


def has_article_markup(tree: HtmlElement, page: PageData) -> bool:
    """The page calls itself an article: structured data or og:type, or an <article> element
    that carries a publication time (a <time> in it, or itemprop datePublished)."""
    declared = [page.jsonld_type, page.first_meta("og:type")]
    if any(isinstance(t, str) and t.strip().casefold() in ARTICLE_TYPES for t in declared):
        return True
    for article in tree.iter("article"):
        if article.find(".//time") is not None or article.find(".//*[@itemprop='datePublished']") is not None:
            return True
    return False


def is_cut_off(html: str) -> bool:
    """The document stops before its end: neither `</body>` nor `</html>` in its last 4 KB.

    HTML lets both be left out, but pages of news sites write them; one without them is almost
    always a download cut short, and what it shows of its article is no whole brief."""
    tail = html[-4096:].casefold()
    return "</body" not in tail and "</html" not in tail


def visible_article_words(tree: HtmlElement) -> int:
    """Words of the visible paragraphs in the page's article region: the <article> (or, without
    one, the <main>) holding the most paragraph words; 0 for a page with neither (its paragraphs
    could be anything). Paragraphs in navigation, asides, footers, forms and figures, and those
    that are mostly link text (teasers), are not counted. Read before trafilatura prunes the tree."""
    regions = list(tree.iter("article")) or list(tree.iter("main"))
    return max((_paragraph_words(region) for region in regions), default=0)


def _paragraph_words(region: HtmlElement) -> int:
    words = 0
    for paragraph in region.iter("p"):
        if any(a.tag in _NOT_ARTICLE_CONTAINERS or a.get("hidden") is not None for a in paragraph.iterancestors()):
            continue
        text = paragraph.text_content()
        linked = sum(len(a.text_content()) for a in paragraph.iter("a"))
        if linked * 2 >= len(text.strip()):
            continue  # a teaser or a list of links
        words += len(WORD_RE.findall(text))
    return words


def _body_pass(tree: HtmlElement, url: str, *, precise: bool) -> _Element | None:
    document = bare_extraction(
        tree,  # trafilatura works on its own copy
        url=url,
        with_metadata=False,  # the page's metadata is read by FieldPicker, trafilatura's only if needed
        include_comments=True,  # comments go to their own field (unused), not into the body
        include_formatting=True,
        output_format="markdown",
        favor_precision=precise,
        fast=precise,  # the precise pass needs no fallback extractors: they only add recall
    )
    return document.body if document is not None else None


def extract_body(tree: HtmlElement, url: str, article_body: str = "") -> tuple[_Element | None, str]:
    """The article body as a block tree like trafilatura's, and which candidate it came from.

    trafilatura's precision mode drops more of what surrounds an article (teasers of other
    stories, paywall offers, author boxes) than its default mode, and costs less (no fallback
    extractors): it runs first. Its body is kept, with the standfirst it drops put back (see
    standfirst.py), when it is long and nothing contradicts it: the structured data's
    articleBody, when the page has one, is the same text, and it is not mostly link text (a
    navigation table). Otherwise the default mode runs too. When the two passes find the same
    text, the precise one is kept (the default one when the precise pass kept only a small part
    of it: it lost the article), with lead paragraphs above its start put back. When they find
    different texts, readability-lxml runs as well, and the candidate whose blocks the other
    extractors confirm most is chosen (see candidates.py).
    """
    precise = _body_pass(tree, url, precise=True)
    ld = Candidate.from_text("json-ld articleBody", article_body)
    ld_witness = [ld] if ld.words >= ARTICLE_BODY_MIN_WORDS else []
    first = Candidate.from_tree("trafilatura precise", precise) if precise is not None else None
    links: set[str] | None = None
    if first is not None and first.words >= FULL_PASS_BELOW_WORDS:
        links = link_texts(tree)
        if not _contradicted(first, ld_witness, links):
            return _with_standfirst(tree, precise, "trafilatura precise")
    full = _body_pass(tree, url, precise=False)
    if first is None or full is None:
        body, origin = (precise, "trafilatura precise") if full is None else (full, "trafilatura")
        return _with_standfirst(tree, body, origin) if body is not None else (None, origin)
    second = Candidate.from_tree("trafilatura", full)
    if same_text(first, second):
        return _same_text_passes(tree, precise, full, first, second)
    return _by_agreement(tree, url, first, second, ld_witness, links if links is not None else link_texts(tree))


def _contradicted(candidate: Candidate, ld_witness: list[Candidate], links: set[str]) -> bool:
    """The structured data's articleBody is another text, or the body is mostly link text."""
    if ld_witness and not same_text(candidate, ld_witness[0]):
        return True
    return link_share(candidate, links) >= LINK_BODY_SHARE


def _same_text_passes(
    tree: HtmlElement, precise: _Element, full: _Element, first: Candidate, second: Candidate
) -> tuple[_Element, str]:
    """Both passes found the same article: the precise one, unless it kept only a small part of
    what the default pass found (its stricter filters then lost the article itself)."""
    if first.words < PRECISE_MIN_SHARE * second.words:
        return _with_standfirst(tree, full, "trafilatura (precise pass lost the article)")
    restored = _restore_lead(precise, full)
    if restored:
        return precise, f"trafilatura precise (+{restored} lead paragraphs)"
    return _with_standfirst(tree, precise, "trafilatura precise")


_FAMILY = {
    "trafilatura precise": "trafilatura",
    "trafilatura": "trafilatura",
    "readability": "readability",
    "json-ld articleBody": "json-ld articleBody",
}


def _by_agreement(
    tree: HtmlElement, url: str, first: Candidate, second: Candidate, ld_witness: list[Candidate], links: set[str]
) -> tuple[_Element, str]:
    """trafilatura's passes disagree: readability-lxml runs too, and the body is the candidate
    most confirmed by the other extractors, without link-text blocks none of them found."""
    candidates = [first, second, *ld_witness]
    readable = readability_candidate(tree, url)
    if readable is not None:
        candidates.insert(2, readable)
    choice = choose(candidates, _FAMILY)
    if choice is None:  # nobody confirms anybody: the precise pass, as without a third opinion
        body, origin = (first.tree, "trafilatura precise (passes disagree, unconfirmed)")
        assert body is not None
        return _with_standfirst(tree, body, origin)
    chosen = choice.candidate
    if chosen.tree is None:
        chosen.tree = as_block_tree(chosen)
    witnesses = [c for c in candidates if _FAMILY[c.name] != _FAMILY[chosen.name]]
    dropped = drop_unconfirmed_links(chosen, witnesses, links)
    origin = f"{chosen.name} ({choice.reason}" + (f", {dropped} link blocks dropped)" if dropped else ")")
    return _with_standfirst(tree, chosen.tree, origin)


def _with_standfirst(tree: HtmlElement, body: _Element, origin: str) -> tuple[_Element, str]:
    restored = restore_standfirst(tree, body)
    return body, origin + (f" (+{restored} standfirst paragraphs)" if restored else "")


def _words(body: _Element | None) -> int:
    return len(WORD_RE.findall(" ".join(body.itertext()))) if body is not None else 0


def _restore_lead(precise: _Element, full: _Element) -> int:
    """Copy paragraphs that the full pass has above the precise pass's first block into it."""
    precise_blocks = blocks(precise)
    if not precise_blocks:
        return 0
    first = block_text(precise_blocks[0])
    lead: list[_Element] = []
    for element in blocks(full):
        if block_text(element) == first:
            break
        if element.getparent() is full and len(block_text(element).split()) >= LEAD_MIN_WORDS:
            lead.append(element)
    else:
        return 0  # the precise pass's start is not in the full pass: nothing to line up
    for position, element in enumerate(lead):
        copied = copy(element)
        copied.tail = None
        precise.insert(position, copied)
    return len(lead)


def _absolute(base: str, value: str | None) -> str | None:
    return urljoin(base, value) if value else None


def title_signals(page: PageData, hints: dict[str, Any]) -> dict[str, list[str]]:
    """Every headline the page (and the feed) gives, by signal, for `choose_title`."""
    ld_headline = jsonld_text(page.jsonld.get("headline")) or (
        jsonld_text(page.jsonld.get("name")) if page.jsonld_type else None
    )
    signals = {
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
        return title

    def fallback_title(self, body: _Element | None) -> str | None:
        """A title for a page whose headline signals gave none: trafilatura's, the body's first
        heading, or the words of the URL's last path segment ("harbour-plan-approved")."""
        heading = next((block_text(h) for h in blocks(body) if h.tag == "head"), None) if body is not None else None
        return self._first(
            "title",
            [
                ("trafilatura", lambda: clean_text(self._doc("title"))),
                ("body heading", heading if heading and len(heading.split()) >= 3 else None),
                ("url slug", url_slug_title(self.url)),
            ],
        )

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

    def body(self, body: _Element | None, title: str | None, authors: list[str]) -> tuple[str, str]:
        text = markdown = ""
        if body is not None:
            headlines = [title, *self.page.h1[:3], self.page.first_meta("og:title"), self.page.title_tag]
            labels = [*jsonld_keywords(self.ld.get("articleSection")), *self.page.all_meta("article:section")]
            removed = clean_body(body, headlines=[h for h in headlines if h], authors=authors, labels=labels)
            text, markdown = xmltotxt(body, False).strip(), xmltotxt(body, True).strip()
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
