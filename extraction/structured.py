"""What a page says about itself: JSON-LD, OpenGraph and meta tags, <title>, <h1>, <time>, bylines.

Read once per page from the parsed tree, before trafilatura (which rewrites the tree).
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lxml.html import HtmlElement

logger = logging.getLogger(__name__)

# schema.org types of an article that are not named "...Article" or "...Posting".
ARTICLE_TYPES = {"Report", "ReportageNews", "Review", "LiveBlogPosting", "Blog"}
# Objects that carry dates and names of their own but are never the page's article.
NOT_ARTICLE_TYPES = {
    "ImageObject",
    "VideoObject",
    "AudioObject",
    "MediaObject",
    "Organization",
    "NewsMediaOrganization",
    "Person",
    "BreadcrumbList",
    "ListItem",
    "WebSite",
    "SiteNavigationElement",
    "SearchAction",
    "Comment",
}
# Children of an <h1> that are not the headline: kickers, section labels, screen-reader text.
_H1_EXTRA_CLASS = re.compile(
    r"kicker|overline|topline|roofline|eyebrow|dachzeile|spitzmarke|supertitle|pretitle|rubric|"
    r"label|category|flag|offscreen|sr-only|screen-reader|visually-hidden|visuallyhidden",
    re.IGNORECASE,
)
_BYLINE_ATTR = re.compile(r"byline", re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")


def clean_text(value: Any) -> str | None:
    """A string with HTML entities decoded and whitespace collapsed; None if nothing is left."""
    if not isinstance(value, str):
        return None
    value = _SPACE_RE.sub(" ", html.unescape(value)).strip()
    return value or None


# Meta tags in which a page sums itself up.
DESCRIPTION_META = ("description", "og:description", "twitter:description")


@dataclass
class PageData:
    """Signals from the page's markup, each empty when the page does not give it."""

    jsonld: dict[str, Any] = field(default_factory=dict)  # the page's article object, if any
    jsonld_objects: list[dict[str, Any]] = field(default_factory=list)  # every JSON-LD object
    meta: dict[str, list[str]] = field(default_factory=dict)  # property/name -> contents, lower-cased keys
    canonical: str | None = None
    amp_canonical: bool = False  # <html amp>: the canonical link points to the real article
    html_lang: str | None = None
    title_tag: str | None = None
    h1: list[str] = field(default_factory=list)  # visible headline text, kickers left out
    times: list[tuple[str, bool]] = field(default_factory=list)  # <time datetime>, marked as published
    image_texts: list[str] = field(default_factory=list)  # what the page's images show: alt texts, titles
    tree: HtmlElement | None = field(default=None, repr=False, compare=False)  # the page, for bylines

    @functools.cached_property
    def bylines(self) -> list[str]:
        """Text of author/byline elements, in page order; looked for only when asked (most pages
        name their authors in JSON-LD or meta tags)."""
        return _bylines(self.tree) if self.tree is not None else []

    def descriptions(self) -> list[str]:
        """The page's summaries of itself in meta tags (for search engines and social cards)."""
        return list(dict.fromkeys(value for name in DESCRIPTION_META for value in self.all_meta(name)))

    def first_meta(self, *names: str) -> str | None:
        for name in names:
            for value in self.meta.get(name, []):
                if value.strip():
                    return value.strip()
        return None

    def all_meta(self, name: str) -> list[str]:
        return [v.strip() for v in self.meta.get(name, []) if v.strip()]

    @property
    def jsonld_type(self) -> str | None:
        types = as_list(self.jsonld.get("@type"))
        return str(types[0]) if types else None

    def site_names(self) -> list[str]:
        """Every name the page gives for its site or publisher."""
        names = [
            self.first_meta("og:site_name"),
            self.first_meta("application-name"),
            self.first_meta("apple-mobile-web-app-title"),
            (self.first_meta("twitter:site") or "").lstrip("@") or None,
        ]
        names += jsonld_names(self.jsonld.get("publisher"))
        for obj in self.jsonld_objects:
            if _types(obj) & {"WebSite", "NewsMediaOrganization", "Organization"}:
                names.append(jsonld_text(obj.get("name")))
                names += [n for n in as_list(obj.get("alternateName")) if isinstance(n, str)]
        seen: list[str] = []
        for name in names:
            name = clean_text(name)
            if name and name not in seen:
                seen.append(name)
        return seen


def read_page_data(tree: HtmlElement) -> PageData:
    data = PageData()
    data.jsonld_objects = _jsonld_objects(tree)
    data.jsonld = _article_object(data.jsonld_objects)
    for node in tree.iterfind(".//meta"):
        key = node.get("property") or node.get("name") or node.get("itemprop") or node.get("http-equiv") or ""
        content = node.get("content")
        if key.strip() and content is not None:
            data.meta.setdefault(key.strip().lower(), []).append(html.unescape(content))
    for node in tree.iterfind(".//link"):
        rel = (node.get("rel") or "").lower().split()
        if "canonical" in rel and node.get("href") and data.canonical is None:
            data.canonical = node.get("href").strip()
    root = tree.getroottree().getroot()
    data.amp_canonical = root.get("amp") is not None or root.get("\u26a1") is not None
    data.html_lang = (root.get("lang") or root.get("xml:lang") or "").strip() or None
    title = tree.find(".//title")
    data.title_tag = clean_text(title.text_content()) if title is not None else None
    data.h1 = [text for text in (_headline_text(h) for h in tree.iterfind(".//h1")) if text]
    for node in tree.iterfind(".//time"):
        value = (node.get("datetime") or "").strip()
        if value:
            published = node.get("itemprop") == "datePublished" or node.get("pubdate") is not None
            data.times.append((value, published))
    texts = (clean_text(image.get(name)) for image in tree.iterfind(".//img") for name in ("alt", "title"))
    data.image_texts = list(dict.fromkeys(text for text in texts if text))
    data.tree = tree
    return data


def _headline_text(h1: HtmlElement) -> str | None:
    """The <h1>'s text without kicker or screen-reader spans (unless that would leave nothing)."""
    full = clean_text(h1.text_content())
    if not full:
        return None
    parts: list[str] = [h1.text or ""]
    for child in h1:
        attrs = f"{child.get('class', '')} {child.get('id', '')}"
        if not _H1_EXTRA_CLASS.search(attrs) and child.get("aria-hidden") != "true":
            parts.append(child.text_content())
        parts.append(child.tail or "")
    headline = clean_text(" ".join(parts))
    # A kicker the headline runs on from ("Kicker: rest") is part of it.
    if not headline or headline[0] in ":,;.–—-|/":  # noqa: RUF001
        return full
    return headline


def _bylines(tree: HtmlElement) -> list[str]:
    """Short texts of elements marked as an author or byline (rel, itemprop, class or id)."""
    found: list[str] = []
    for node in tree.iter("a", "span", "div", "p", "address", "li"):
        marked = (
            node.get("rel") == "author"
            or node.get("itemprop") == "author"
            or _BYLINE_ATTR.search(f"{node.get('class', '')} {node.get('id', '')}") is not None
        )
        if not marked:
            continue
        text = clean_text(node.text_content())
        if text and len(text) <= 120 and text not in found:
            found.append(text)
        if len(found) >= 8:
            break
    return found


def _jsonld_objects(tree: HtmlElement) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for script in tree.iterfind(".//script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            payload = json.loads(script.text.strip().rstrip(";"), strict=False)
        except ValueError:
            logger.debug("unreadable JSON-LD block skipped")
            continue
        objects += _walk(payload)
    return objects


def _types(obj: dict[str, Any]) -> set[str]:
    return {str(t).rsplit("/", 1)[-1] for t in as_list(obj.get("@type"))}


def is_article_type(name: str) -> bool:
    return name.endswith(("Article", "Posting")) or name in ARTICLE_TYPES


def _article_object(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The page's article: the first article-typed object with a headline, else one without, else
    the first untyped or generic object with a headline (some CMSs leave @type out)."""
    articles = [o for o in objects if any(is_article_type(t) for t in _types(o))]
    for obj in articles:
        if obj.get("headline") or obj.get("name"):
            return obj
    if articles:
        return articles[0]
    for obj in objects:
        if obj.get("headline") and not (_types(obj) & NOT_ARTICLE_TYPES):
            return obj
    return {}


def _walk(payload: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = [payload]
    while stack:
        node = stack.pop(0)
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            out.append(node)
            if "@graph" in node:
                stack.extend(as_list(node["@graph"]))
            if isinstance(node.get("mainEntity"), dict | list):
                stack.extend(as_list(node["mainEntity"]))
    return out


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def jsonld_people(value: Any) -> list[tuple[str, str]]:
    """(name, kind) pairs from a JSON-LD author value; kind is "person", "organization" or ""."""
    out: list[tuple[str, str]] = []
    for item in as_list(value):
        raw_name: Any  # a JSON-LD name may be a string, a list of them, or anything a site puts there
        if isinstance(item, str):
            raw_name, kind = item, ""
        elif isinstance(item, dict):
            raw_name = item.get("name")
            if isinstance(raw_name, list):
                raw_name = raw_name[0] if raw_name else None
            if not isinstance(raw_name, str) and isinstance(item.get("givenName"), str):
                raw_name = f"{item['givenName']} {item.get('familyName') or ''}"
            types = _types(item)
            kind = "organization" if types & {"Organization", "NewsMediaOrganization"} else ""
            kind = "person" if "Person" in types else kind
        else:
            continue
        name = clean_text(raw_name)
        if name:
            out.append((name, kind))
    return out


def jsonld_names(value: Any) -> list[str]:
    """Names from a JSON-LD author/publisher value: a string, a Person, or a list of either."""
    return [name for name, _ in jsonld_people(value)]


def jsonld_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("url") or value.get("@id")
    return clean_text(value) if isinstance(value, str) else None


def jsonld_keywords(value: Any) -> list[str]:
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    return [str(k).strip() for k in as_list(value) if str(k).strip()]
