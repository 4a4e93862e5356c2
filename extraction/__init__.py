"""Article extraction: trafilatura for the body, cross-checked with the page's structured data.

`extract_article(html, url, hints)` is a pure function (no I/O, picklable arguments and result)
so the extract pipeline can run it in worker processes.

The names are loaded on first use, so the crawl process, which only imports `crawl.extraction_worker`
to hand pages to the workers, never loads trafilatura itself.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExtractionError", "extract_article"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from extraction import core

        return getattr(core, name)
    raise AttributeError(f"module 'extraction' has no attribute {name!r}")
