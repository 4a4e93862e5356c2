"""Response bodies that are not what they claim, and the faults the crawl survives there.

- WireBodyMiddleware: an article page's gzip bytes are kept as they came, before Scrapy
  decompresses them, so the page's WARC record keeps them without compressing the page again.
- BinaryBodyMiddleware: a binary file served as text/html is refused, not parsed.
- CharsetMiddleware: HTML that declares no encoding is decoded by what its text looks like.
"""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING

from charset_normalizer import from_bytes
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response


BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "gzip data",
    b"\x7fELF": "an executable",
    b"OggS": "Ogg media",
    b"ID3": "MP3 audio",
    b"wOFF": "a web font",
    b"wOF2": "a web font",
}
TEXT_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def binary_kind(body: bytes) -> str | None:
    """What a body is if it is not text ("a PNG image", "binary data"), or None for text."""
    head = body[:1024]
    for signature, kind in BINARY_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    if head.startswith(TEXT_BOMS):  # UTF-16 text is full of NUL bytes
        return None
    return "binary data" if b"\x00" in head else None


class WireBodyMiddleware:
    """Keeps the compressed body of an article page in ``meta["news_wire_body"]`` as
    (Content-Encoding, bytes): the spider stores it as raw_pages' copy when it is gzip
    (raw_html.from_wire). It sits just before HttpCompressionMiddleware on the way back.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        coding = response.headers.get(b"Content-Encoding")
        if coding and request.meta.get("news_kind") == "article" and 200 <= response.status < 300:
            request.meta["news_wire_body"] = (coding, response.body)  # a reference: no copy
        return response


class BinaryBodyMiddleware:
    """A page served as text/html that is really an image, an archive or other binary data
    is refused: parsed as HTML it is garbage at best. Feeds and sitemaps (``news_kind`` seed)
    are left alone: a gzipped sitemap served with the wrong type is still read.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        # Must return the Response, or raise IgnoreRequest (the errback records why).
        if (
            not isinstance(response, HtmlResponse)
            or not 200 <= response.status < 300  # an error page stays an HTTP error
            or request.meta.get("news_kind") == "seed"
        ):
            return response
        kind = binary_kind(response.body)
        if kind is not None:
            content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
            raise IgnoreRequest(f"refused: {kind} served as {content_type or 'HTML'}")
        return response


# --- pages that do not say their encoding ---------------------------------------------------------

MARKUP_RE = re.compile(rb"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL)
DETECT_BYTES = 64 * 1024


def guess_encoding(body: bytes) -> str | None:
    """The encoding of an HTML body that declares none, guessed from its text alone.

    Markup is left out first: tags and scripts are ASCII and dilute the evidence, which is how
    French in ISO-8859-1 comes out as Czech in cp1250. Among equally good guesses windows-1252
    wins, as in browsers (HTML's default for an undeclared Western page; ISO-8859-1 is read as it).
    """
    results = from_bytes(MARKUP_RE.sub(b" ", body[: DETECT_BYTES * 4])[:DETECT_BYTES])
    best = results.best()
    if best is None:
        return None
    ties = {m.encoding for m in results if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    return "cp1252" if "cp1252" in ties else best.encoding


class CharsetMiddleware:
    """Decodes HTML that declares no encoding (no charset in Content-Type, no BOM, no ``<meta>``)
    and is not UTF-8, by guessing from the text; Scrapy's own guess reads the markup too and
    picks the wrong Latin encoding for Western European pages.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        # Must return a Response: this one, or a copy with its encoding set.
        if not isinstance(response, HtmlResponse) or self._declared(response):
            return response
        try:
            response.body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return response  # ASCII or UTF-8: Scrapy reads it right
        encoding = guess_encoding(response.body)
        return response.replace(encoding=encoding) if encoding else response

    @staticmethod
    def _declared(response: HtmlResponse) -> bool:
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        return bool(
            http_content_type_encoding(content_type)
            or read_bom(response.body)[0]
            or html_body_declared_encoding(response.body)
        )
