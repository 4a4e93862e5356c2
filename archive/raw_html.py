"""Fetched HTML as the archive keeps it (`raw_pages`): compressed, for re-extraction.

A page that came gzip-compressed off the wire (as nearly every news site sends its pages) is
kept as those very bytes, with the charset it was decoded with: storing it costs no CPU, and
`raw_html` decodes it exactly as Scrapy did. For any other page the extraction worker builds its
WARC records (codec "warc"); `raw_pages` rows stored before the WARC files hold zstd (or zlib).
Light to import (no Scrapy, no SQLite): the workers import it too.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any, NamedTuple

from w3lib.encoding import html_to_unicode

try:
    from compression import zstd  # Python 3.14+
except ImportError:
    from backports import zstd

# On the bench site's pages: level 1, 0.31 ms a page at 3.8x; level 3 (zstd's default), 0.42 ms
# at 4.0x; zlib level 1, as stored before, 0.84 ms at 3.3x.
ZSTD_LEVEL = 1
# Content-Encoding values whose bytes are stored as they came (html_gzip).
GZIP_CODINGS = (b"gzip", b"x-gzip")


class CompressedHtml(NamedTuple):
    size: int  # bytes of the HTML uncompressed (UTF-8 for zstd; the page's own charset for gzip)
    data: bytes
    # "zstd": UTF-8 text compressed by us; "gzip": the body as the server sent it; "warc": the page's
    # WARC records as an extraction worker built them (archive/warc_files.py page_records)
    codec: str = "zstd"
    charset: str | None = None  # for "gzip": the encoding the page was decoded with


def compress(html: str) -> CompressedHtml:
    data = html.encode("utf-8")
    return CompressedHtml(len(data), zstd.compress(data, ZSTD_LEVEL))


def from_wire(content_encoding: bytes, wire: bytes, body: bytes, charset: str) -> CompressedHtml | None:
    """The gzip bytes a page came in, to store as they are; None if they cannot stand for `body`.

    `body` is what Scrapy decompressed them to. Scrapy's gunzip returns what it can of a damaged
    stream, so the gzip trailer's length must match `body`'s, or the page is compressed afresh.
    """
    if content_encoding.strip().lower() not in GZIP_CODINGS or len(wire) < 18:
        return None
    if int.from_bytes(wire[-4:], "little") != len(body) % (1 << 32):
        return None
    return CompressedHtml(len(body), wire, "gzip", charset)


def raw_page_row(
    url: str,
    html: str,
    *,
    fetched_at: str,
    http_status: int,
    content_type: str,
    compressed: CompressedHtml | None = None,
) -> dict[str, Any]:
    """A `raw_pages` row; `compressed` is the page as the wire or a worker already compressed it."""
    size, data, codec, charset = compressed or compress(html)
    row = {"url": url, "fetched_at": fetched_at, "http_status": http_status, "content_type": content_type, "size": size}
    if codec == "warc":  # not a raw_pages row any more: the store appends the records as they are
        return {**row, "charset": "utf-8", "warc_records": data}
    return {
        **row,
        # Exactly one copy per row: an updated page's older copy must not outlive it.
        "html_zstd": data if codec == "zstd" else None,
        "html_gzip": data if codec == "gzip" else None,
        "charset": charset if codec == "gzip" else None,
        "html_zlib": None,
    }


def raw_html(row: dict[str, Any]) -> str:
    """The HTML stored in a `raw_pages` row, as the extractor saw it when the page was fetched.

    Raises ValueError if the stored bytes are damaged.
    """
    try:
        if row.get("html_gzip") is not None:
            # Decoded as Scrapy's TextResponse.text did: BOM first, then the charset it settled on.
            return html_to_unicode(f"charset={row['charset'] or 'utf-8'}", gzip.decompress(row["html_gzip"]))[1]
        if row.get("html_zstd") is not None:
            return zstd.decompress(row["html_zstd"]).decode("utf-8")
        return zlib.decompress(row["html_zlib"]).decode("utf-8")
    except (OSError, EOFError, zlib.error, zstd.ZstdError) as exc:
        raise ValueError(f"stored HTML of {row.get('url')} cannot be decompressed: {exc}") from exc
