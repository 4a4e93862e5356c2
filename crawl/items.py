"""The one item that flows through the pipeline: a fetched page on its way to the `articles` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from w3lib.encoding import html_to_unicode

if TYPE_CHECKING:
    from archive.raw_html import CompressedHtml

# The columns of `articles` that extraction decides (and re-extraction rewrites).
EXTRACTED_COLUMNS = (
    "title",
    "authors",
    "published_at",
    "modified_at",
    "language",
    "sitename",
    "description",
    "categories",
    "tags",
    "image",
    "text",
    "markdown",
    "word_count",
    "provenance",
)
# The columns of `articles` that the pipeline fills from an item (see archive/schema.py).
ARTICLE_COLUMNS = (
    "url",
    "source",
    *EXTRACTED_COLUMNS,
    "body_hash",
    "discovered_via",
    "fetched_at",
    "version",
    "cluster_id",
)


@dataclass
class ArticleItem:
    # Set by the spider from the response.
    url: str  # the page's URL; becomes the canonical URL in CanonicalUrlPipeline
    source: str
    html: str  # the page's HTML text; "" while the page is still `body` (see page_html)
    fetched_at: str
    requested_url: str = ""
    fetched_url: str = ""  # the URL the page came from (after redirects; `url` becomes the canonical one)
    http_status: int = 200
    content_type: str = ""
    http_headers: list[tuple[str, str]] = field(default_factory=list)  # the response's, for its WARC record
    request_headers: list[tuple[str, str]] = field(default_factory=list)  # as sent, without secrets
    discovered_via: str = ""  # feed | sitemap | listing | url
    # What the feed or news sitemap said about this URL (title, published, authors).
    hints: dict[str, Any] = field(default_factory=dict)
    # The page as fetched, in `encoding`: the spider hands on the response's bytes and an
    # extraction worker decodes them, so the crawl process never holds a page twice (bytes and
    # text) while it waits for a worker; a page can be 2 MB, its text up to 4 bytes a character.
    body: bytes = b""
    encoding: str = ""

    # Set by ExtractPipeline.
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: str | None = None
    modified_at: str | None = None
    language: str | None = None
    sitename: str | None = None
    description: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    image: str | None = None
    text: str = ""
    markdown: str = ""
    word_count: int = 0
    page_type: str | None = None  # og:type / JSON-LD @type, used to tell articles from other pages
    page_words: int = 0  # words of the page's visible paragraphs in its article region (not stored)
    article_markup: bool = False  # the page marks itself up as an article (not stored)
    page_canonical: str | None = None  # <link rel=canonical> or og:url, absolute
    is_amp: bool = False
    provenance: dict[str, str] = field(default_factory=dict)  # field -> where its value came from
    signature: bytes = b""  # MinHash of the body (archive/near_duplicates.py), computed with the extraction
    line_keys: set[int] = field(default_factory=set)  # the body's line keys, counted per site (archive/site_chrome.py)
    raw_html: CompressedHtml | None = None  # `html` for raw_pages: the wire's gzip bytes, or zstd by a worker

    # Set by CanonicalUrlPipeline: other URLs of this article, with why they map to it.
    aliases: dict[str, str] = field(default_factory=dict)
    # Set by DedupePipeline.
    body_hash: str = ""
    status: str = ""  # new | updated | unchanged | duplicate | alias
    duplicate_of: str | None = None  # the stored article this page is a copy or variant of
    replaces: str | None = None  # a stored identical copy published later, which becomes our alias
    first_seen_at: str | None = None  # kept from the stored row when an article is updated
    previous: dict[str, Any] | None = None  # the stored row an update replaces (becomes a revision)
    version: int = 1  # 1 for a new article, +1 for each update
    cluster_id: int | None = None  # near-duplicate cluster (the same story published elsewhere)
    copy_similarity: float | None = None  # for a copy: how close its body is to the one it folds into

    def article_row(self) -> dict[str, Any]:
        """The item as a row of the `articles` table."""
        return {name: getattr(self, name) for name in ARTICLE_COLUMNS}

    def page_html(self) -> str:
        """The page's HTML text: `html`, or `body` decoded."""
        return self.html or (decode_page(self.body, self.encoding) if self.body else "")


def decode_page(body: bytes, encoding: str) -> str:
    """A page's bytes as text, as Scrapy's TextResponse.text decodes them (a BOM first, then
    `encoding`, the response's; undecodable bytes replaced)."""
    return html_to_unicode(f"charset={encoding}", body)[1]
