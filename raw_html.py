"""Fetched HTML as the archive keeps it (`raw_pages`): zstd-compressed, for re-extraction.

Light to import (no Scrapy, no SQLite): the extraction workers compress each page they extract,
so the crawl process, which is single-threaded, only copies the compressed bytes into SQLite.
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

try:
    from compression import zstd  # Python 3.14+
except ImportError:
    from backports import zstd

# On the bench site's pages: level 1, 0.31 ms a page at 3.8x; level 3 (zstd's default), 0.42 ms
# at 4.0x; zlib level 1, as stored before, 0.84 ms at 3.3x.
ZSTD_LEVEL = 1


class CompressedHtml(NamedTuple):
    size: int  # bytes of the UTF-8 HTML
    zstd: bytes


def compress(html: str) -> CompressedHtml:
    data = html.encode("utf-8")
    return CompressedHtml(len(data), zstd.compress(data, ZSTD_LEVEL))


def raw_page_row(
    url: str,
    html: str,
    *,
    fetched_at: str,
    http_status: int,
    content_type: str,
    compressed: CompressedHtml | None = None,
) -> dict[str, Any]:
    """A `raw_pages` row; `compressed` is `compress(html)` when a worker already did it."""
    size, data = compressed or compress(html)
    return {
        "url": url,
        "fetched_at": fetched_at,
        "http_status": http_status,
        "content_type": content_type,
        "size": size,
        # A third of zlib level 1's CPU and 12% fewer bytes; pages stored before keep html_zlib.
        "html_zstd": data,
        "html_zlib": None,  # an updated page's older zlib copy must not outlive it
    }


def raw_html(row: dict[str, Any]) -> str:
    """Decompress the HTML stored in a `raw_pages` row (zstd, or zlib for older rows)."""
    if row.get("html_zstd") is not None:
        return zstd.decompress(row["html_zstd"]).decode("utf-8")
    return zlib.decompress(row["html_zlib"]).decode("utf-8")
