"""What a page says about itself in machine-readable form: JSON-LD, OpenGraph and meta tags.

Read once per page from the parsed tree, before trafilatura (which rewrites the tree).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lxml.html import HtmlElement

logger = logging.getLogger(__name__)

ARTICLE_TYPES = {
    "Article",
    "NewsArticle",
    "ReportageNews",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "BackgroundNewsArticle",
    "ReviewNewsArticle",
    "AskPublicNewsArticle",
    "BlogPosting",
    "LiveBlogPosting",
    "Report",
    "ScholarlyArticle",
    "SatiricalArticle",
    "TechArticle",
    "SocialMediaPosting",
}


@dataclass
class PageData:
    """Signals from structured data, each None when the page does not give it."""

    jsonld: dict[str, Any] = field(default_factory=dict)  # the page's article object, if any
    meta: dict[str, list[str]] = field(default_factory=dict)  # property/name -> contents, lower-cased keys
    canonical: str | None = None
    amp_canonical: bool = False  # <html amp>: the canonical link points to the real article
    html_lang: str | None = None
    h1: list[str] = field(default_factory=list)

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
        types = _as_list(self.jsonld.get("@type"))
        return str(types[0]) if types else None


def read_page_data(tree: HtmlElement) -> PageData:
    data = PageData()
    data.jsonld = _article_jsonld(tree)
    for node in tree.iterfind(".//meta"):
        key = (node.get("property") or node.get("name") or node.get("itemprop") or "").strip().lower()
        content = node.get("content")
        if key and content is not None:
            data.meta.setdefault(key, []).append(content)
    for node in tree.iterfind(".//link"):
        rel = (node.get("rel") or "").lower().split()
        if "canonical" in rel and node.get("href") and data.canonical is None:
            data.canonical = node.get("href").strip()
    root = tree.getroottree().getroot()
    data.amp_canonical = root.get("amp") is not None or root.get("\u26a1") is not None
    data.html_lang = (root.get("lang") or root.get("xml:lang") or "").strip() or None
    data.h1 = [re.sub(r"\s+", " ", h.text_content()).strip() for h in tree.iterfind(".//h1")]
    return data


def _article_jsonld(tree: HtmlElement) -> dict[str, Any]:
    """The first JSON-LD object whose @type is an article type (searching @graph and lists)."""
    for script in tree.iterfind(".//script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            payload = json.loads(script.text.strip().rstrip(";"))
        except ValueError:
            logger.debug("unreadable JSON-LD block skipped")
            continue
        for obj in _walk(payload):
            if any(str(t) in ARTICLE_TYPES for t in _as_list(obj.get("@type"))):
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
                stack.extend(_as_list(node["@graph"]))
            if isinstance(node.get("mainEntity"), dict | list):
                stack.extend(_as_list(node["mainEntity"]))
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def jsonld_names(value: Any) -> list[str]:
    """Names from a JSON-LD author/publisher value: a string, a Person, or a list of either."""
    names = []
    for item in _as_list(value):
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
    return [re.sub(r"\s+", " ", n).strip() for n in names if n and n.strip()]


def jsonld_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("url") or value.get("@id")
    return value.strip() if isinstance(value, str) and value.strip() else None


def jsonld_keywords(value: Any) -> list[str]:
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    return [str(k).strip() for k in _as_list(value) if str(k).strip()]
