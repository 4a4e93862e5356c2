"""What an extraction worker process does for one page.

Light to import: the crawl process imports it to hand pages over, and trafilatura, lxml's
cleaner and numpy load in the workers only (preloaded by crawl/extraction_preload.py). Nothing
here imports Scrapy, so neither do the workers.
"""

from __future__ import annotations

from typing import Any


def extract_page(html: str, url: str, hints: dict[str, Any], compress_html: bool = False) -> dict[str, Any]:
    """Extraction plus what else a page costs in CPU, done here in parallel rather than in the
    single-threaded crawl: the body's MinHash signature, and the page compressed for raw_pages."""
    from archive.near_duplicates import signature
    from archive.raw_html import compress
    from extraction.core import extract_with_evidence

    fields, evidence = extract_with_evidence(html, url, hints)
    fields.update(evidence)  # page_words, article_markup: for the not-article verdict (pipelines/classify.py)
    fields["signature"] = signature(fields["text"]) if fields["text"] else b""
    if compress_html:
        fields["raw_html"] = compress(html)
    return fields
