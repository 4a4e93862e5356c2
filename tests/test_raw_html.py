"""A raw page is kept as the gzip bytes it came in when it can, and gives back the very text the
extractor read, whatever the page's charset; otherwise it is compressed with zstd. (Where a crawl
keeps it, in WARC files: tests/test_warc.py.)"""

from __future__ import annotations

import gzip

import pytest
from scrapy.http import HtmlResponse

from archive.raw_html import compress, from_wire, raw_html, raw_page_row

URL = "https://news.example/2026/11/20/ferry"
LATIN = "<html><head><title>Ferry</title></head><body><p>Caf\u00e9 \u00bfqu\u00e9? \u00e6\u00f8\u00e5</p></body></html>"
HTML = LATIN.replace("?", "? \u2014 \u20ac5")  # beyond Latin-1


def stored_row(response: HtmlResponse, wire: bytes) -> dict:
    compressed = from_wire(b"gzip", wire, response.body, response.encoding)
    assert compressed is not None
    assert compressed.codec == "gzip"
    assert compressed.data is wire  # stored as sent, not recompressed
    return raw_page_row(URL, "", fetched_at="", http_status=200, content_type="", compressed=compressed)


@pytest.mark.parametrize(
    ("body", "headers", "encoding"),
    [
        (HTML.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"}, None),
        (b"\xef\xbb\xbf" + HTML.encode("utf-8"), {"Content-Type": "text/html"}, None),  # a BOM
        (LATIN.encode("iso-8859-1"), {"Content-Type": "text/html; charset=iso-8859-1"}, None),
        # no charset declared: CharsetMiddleware settles on one by replacing the response
        (HTML.encode("cp1252"), {"Content-Type": "text/html"}, "cp1252"),  # cp1252 has \u2014 and \u20ac
    ],
    ids=["utf-8", "utf-8 with BOM", "latin-1 declared", "cp1252 guessed"],
)
def test_gzip_from_the_wire_reads_back_as_the_response_text(body: bytes, headers: dict, encoding: str | None) -> None:
    response = HtmlResponse(URL, body=body, headers=headers)
    if encoding:
        response = response.replace(encoding=encoding)
    row = stored_row(response, gzip.compress(body, mtime=0))
    assert row["html_gzip"] is not None
    assert row["html_zstd"] is None
    assert raw_html(row) == response.text
    assert "Caf\u00e9" in raw_html(row)


def test_wire_bytes_that_do_not_stand_for_the_body_are_not_kept() -> None:
    body = HTML.encode("utf-8")
    wire = gzip.compress(body, mtime=0)
    assert from_wire(b"gzip", wire[:-9] + wire[-8:], body, "utf-8") is not None  # damage inside: CRC only
    assert from_wire(b"gzip", wire[: len(wire) // 2], body[:40], "utf-8") is None  # truncated stream
    assert from_wire(b"br", b"\x0b" * 40, body, "utf-8") is None  # only gzip is kept as sent
    assert from_wire(b"gzip, gzip", wire, body, "utf-8") is None  # stacked codings


def test_damaged_stored_bytes_are_a_clear_error() -> None:
    row = raw_page_row(URL, HTML, fetched_at="", http_status=200, content_type="", compressed=compress(HTML))
    assert raw_html(row) == HTML
    with pytest.raises(ValueError, match="cannot be decompressed"):
        raw_html({**row, "html_zstd": row["html_zstd"][:-5]})
    gz = {**row, "html_zstd": None, "html_gzip": gzip.compress(b"x" * 100)[:-6], "charset": "utf-8"}
    with pytest.raises(ValueError, match="cannot be decompressed"):
        raw_html(gz)
