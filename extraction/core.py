"""Per-field extraction: trafilatura first, structured data where trafilatura has nothing."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from trafilatura import bare_extraction
from trafilatura.utils import load_html
from trafilatura.xml import xmltotxt

from extraction.structured import PageData, jsonld_keywords, jsonld_names, jsonld_text, read_page_data

# \w runs, with each Han/Kana character counted on its own (as the evaluation does).
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


class ExtractionError(ValueError):
    """The page could not be parsed at all (not HTML, empty)."""

    stage = "extract"


def extract_article(html: str, url: str, hints: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract an article's fields from its HTML.

    Args:
        html: the page, decoded.
        url: the URL it was fetched from (resolves relative links, feeds trafilatura's heuristics).
        hints: what a feed or news sitemap said about this URL (title, published, authors).

    Returns:
        A dict with the `ArticleItem` fields set by extraction, plus `provenance` naming where
        each value came from. `text` is empty when trafilatura finds no main text.

    Raises:
        ExtractionError: the input is not a parseable HTML document.
    """
    if not html or not html.strip():
        raise ExtractionError("empty page")
    tree = load_html(html)
    if tree is None:
        raise ExtractionError("not a parseable HTML document")
    page = read_page_data(tree)
    document = bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_formatting=True,
        output_format="markdown",
    )
    hints = hints or {}
    picker = FieldPicker(page, document, hints)
    text = xmltotxt(document.body, False) if document is not None else ""
    markdown = xmltotxt(document.body, True) if document is not None else ""
    result = {
        "title": picker.title(),
        "authors": picker.authors(),
        "published_at": picker.published(),
        "modified_at": picker.modified(),
        "language": picker.language(),
        "sitename": picker.sitename(),
        "description": picker.description(),
        "categories": picker.categories(),
        "tags": picker.tags(),
        "image": _absolute(url, picker.image()),
        "text": text.strip(),
        "markdown": markdown.strip(),
        "page_type": picker.page_type(),
        "page_canonical": _absolute(url, page.canonical or page.first_meta("og:url")),
        "is_amp": page.amp_canonical,
    }
    result["word_count"] = len(WORD_RE.findall(result["text"]))
    result["provenance"] = picker.provenance
    return result


def _absolute(base: str, value: str | None) -> str | None:
    return urljoin(base, value) if value else None


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = re.sub(r"\s+", " ", value).strip()
    return value or None


class FieldPicker:
    """Chooses each field from the available signals and remembers which one it used."""

    def __init__(self, page: PageData, document: Any, hints: dict[str, Any]) -> None:
        self.page = page
        self.doc = document
        self.ld = page.jsonld
        self.hints = hints
        self.provenance: dict[str, str] = {}

    def _first(self, field: str, candidates: list[tuple[str, Any]]) -> Any:
        for origin, value in candidates:
            if value:
                self.provenance[field] = origin
                return value
        return None

    def _doc(self, name: str) -> Any:
        return getattr(self.doc, name, None) if self.doc is not None else None

    def title(self) -> str | None:
        return self._first(
            "title",
            [
                ("trafilatura", _clean(self._doc("title"))),
                ("json-ld", _clean(jsonld_text(self.ld.get("headline")))),
                ("opengraph", _clean(self.page.first_meta("og:title", "twitter:title"))),
                ("h1", self.page.h1[0] if self.page.h1 else None),
                ("feed", _clean(self.hints.get("title"))),
            ],
        )

    def authors(self) -> list[str]:
        trafilatura = [a.strip() for a in (self._doc("author") or "").split(";") if a.strip()]
        return (
            self._first(
                "authors",
                [
                    ("trafilatura", trafilatura),
                    ("json-ld", jsonld_names(self.ld.get("author"))),
                    ("meta", [a for a in self.page.all_meta("author") if a]),
                    ("feed", list(self.hints.get("authors") or [])),
                ],
            )
            or []
        )

    def published(self) -> str | None:
        structured = self._first(
            "published_at",
            [
                ("json-ld", _iso(jsonld_text(self.ld.get("datePublished")))),
                ("opengraph", _iso(self.page.first_meta("article:published_time", "og:published_time"))),
                (
                    "meta",
                    _iso(self.page.first_meta("pubdate", "publishdate", "date", "dc.date.issued", "dc.date")),
                ),
            ],
        )
        day = _clean(self._doc("date"))
        if day and (not structured or not structured.startswith(day)):
            # trafilatura (htmldate) disagrees with or fills in for the structured data: its day
            # wins, as it weighs every date on the page; the full timestamp is kept when they agree.
            self.provenance["published_at"] = "trafilatura"
            return day
        if structured:
            return structured
        return self._first("published_at", [("feed", _iso(self.hints.get("published")))])

    def modified(self) -> str | None:
        return self._first(
            "modified_at",
            [
                ("json-ld", _iso(jsonld_text(self.ld.get("dateModified")))),
                ("opengraph", _iso(self.page.first_meta("article:modified_time", "og:updated_time"))),
                ("feed", _iso(self.hints.get("modified"))),
            ],
        )

    def language(self) -> str | None:
        return self._first(
            "language",
            [
                ("json-ld", _lang(jsonld_text(self.ld.get("inLanguage")))),
                ("trafilatura", _lang(self._doc("language"))),
                ("html", _lang(self.page.html_lang)),
                ("opengraph", _lang(self.page.first_meta("og:locale"))),
                ("meta", _lang(self.page.first_meta("content-language", "language", "dc.language"))),
            ],
        )

    def sitename(self) -> str | None:
        return self._first(
            "sitename",
            [
                ("trafilatura", _clean(self._doc("sitename"))),
                ("opengraph", _clean(self.page.first_meta("og:site_name"))),
                ("json-ld", _clean(next(iter(jsonld_names(self.ld.get("publisher"))), None))),
            ],
        )

    def description(self) -> str | None:
        return self._first(
            "description",
            [
                ("trafilatura", _clean(self._doc("description"))),
                ("json-ld", _clean(jsonld_text(self.ld.get("description")))),
                ("opengraph", _clean(self.page.first_meta("og:description", "description"))),
            ],
        )

    def categories(self) -> list[str]:
        return (
            self._first(
                "categories",
                [
                    ("trafilatura", list(self._doc("categories") or [])),
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
                    ("trafilatura", list(self._doc("tags") or [])),
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
                ("trafilatura", _clean(self._doc("image"))),
                ("opengraph", self.page.first_meta("og:image", "twitter:image")),
                ("json-ld", jsonld_text(self.ld.get("image"))),
            ],
        )

    def page_type(self) -> str | None:
        return self.page.jsonld_type or self.page.first_meta("og:type") or _clean(self._doc("pagetype"))


def _iso(value: Any) -> str | None:
    """A date or datetime as ISO 8601, or None if it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _lang(value: Any) -> str | None:
    """The primary subtag of a language tag or locale ("en-GB", "de_DE" -> "en", "de")."""
    if not isinstance(value, str):
        return None
    primary = re.split(r"[-_\s]", value.strip().lower())[0]
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None
