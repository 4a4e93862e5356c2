"""What an extraction worker process does for one page.

Light to import: the crawl process imports it to hand pages over, and trafilatura, lxml's
cleaner and numpy load in the workers only (preloaded by extraction/preload.py). Nothing
here imports Scrapy, so neither do the workers.
"""

from __future__ import annotations

from typing import Any


def extract_page(html: str, url: str, hints: dict[str, Any]) -> dict[str, Any]:
    """Extraction plus the body's MinHash signature (computed here, in parallel, not in the crawl)."""
    from extraction.core import extract_article
    from near_duplicates import signature

    fields = extract_article(html, url, hints)
    fields["signature"] = signature(fields["text"]) if fields["text"] else b""
    return fields
