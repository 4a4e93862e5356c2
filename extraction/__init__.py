"""Article extraction: trafilatura for the body, cross-checked with the page's structured data.

`extract_article(html, url, hints)` is a pure function (no I/O, picklable arguments and result)
so the extract pipeline can run it in worker processes.
"""

from extraction.core import ExtractionError, extract_article

__all__ = ["ExtractionError", "extract_article"]
