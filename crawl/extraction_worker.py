"""What an extraction worker process does for one page.

Light to import: the crawl process imports it to hand pages over, and trafilatura, lxml's
cleaner and numpy load in the workers only (preloaded by crawl/extraction_preload.py). Nothing
here imports Scrapy, so neither do the workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archive.warc_files import HttpResponse


def extract_page(
    page: str | bytes, url: str, hints: dict[str, Any], response: HttpResponse | None = None, encoding: str = ""
) -> dict[str, Any]:
    """Extraction plus what else a page costs in CPU, done here in parallel rather than in the
    single-threaded crawl: decoding the page (bytes in `encoding`, or text already), the body's
    MinHash signature, and, given the `response` (its payload left empty), the page's WARC records
    (a page that came gzipped is recorded as those bytes in the crawl process, which costs it
    nothing)."""
    from archive.near_duplicates import signature
    from archive.raw_html import CompressedHtml
    from archive.warc_files import page_records, utf8_response
    from crawl.items import decode_page
    from extraction.core import extract_with_evidence

    html = page if isinstance(page, str) else decode_page(page, encoding)

    fields, evidence = extract_with_evidence(html, url, hints)
    fields.update(evidence)  # page_words, article_markup: for the not-article verdict (pipelines/classify.py)
    fields["signature"] = signature(fields["text"]) if fields["text"] else b""
    if response is not None:
        recorded = utf8_response(response, html)
        fields["raw_html"] = CompressedHtml(len(recorded.payload), page_records(recorded), "warc", "utf-8")
    return fields
