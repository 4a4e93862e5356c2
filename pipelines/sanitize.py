"""SanitizePipeline: what the archive keeps from a page is data, never markup that could run.

- Metadata (title, authors, description, site name, categories, tags) is one line of plain
  text. Markup that reached it is removed, script and style elements with their content: a
  ``<title>`` holding a ``<script>``, entity-escaped tags in a meta tag or in JSON-LD.
- URL fields (image, canonical link) keep only http and https URLs: a ``javascript:`` or
  ``data:`` image is dropped.
- The body (``text``, ``markdown``) is kept as extracted: trafilatura drops script and style
  elements, event handlers and ``javascript:`` links, and escapes ``<`` in the Markdown. A
  literal "<script>" that the page shows its readers is part of the article's text.

Whatever renders these columns (Datasette) must still escape them: this removes markup that
came from the page's code, it does not make text safe to paste into HTML.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from crawl.urls import is_http_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem

# A tag starts with "<" and a letter (or "/" and a letter), as in HTML: "x < y" is not one.
TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>")
SCRIPT_RE = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
TEXT_FIELDS = ("title", "description", "sitename")
LIST_FIELDS = ("authors", "categories", "tags")
URL_FIELDS = ("image", "page_canonical")


def plain_text(value: str | None) -> str | None:
    """`value` without markup, on one line; None if nothing is left."""
    if not value:
        return value
    text = " ".join(TAG_RE.sub(" ", SCRIPT_RE.sub(" ", value)).split())
    return text or None


class SanitizePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SanitizePipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        changed = False
        for name in TEXT_FIELDS:
            value = getattr(item, name)
            if value != (clean := plain_text(value)):
                setattr(item, name, clean)
                changed = True
        for name in LIST_FIELDS:
            values = getattr(item, name)
            clean_list = [c for v in values if (c := plain_text(v))]
            if clean_list != values:
                setattr(item, name, clean_list)
                changed = True
        for name in URL_FIELDS:
            value = getattr(item, name)
            if value and not is_http_url(value):
                setattr(item, name, None)
                changed = True
        if changed:
            self.crawler.stats.inc_value("news/sanitize/pages")
        return item
