"""Items as they travel from a worker to the writer through Redis (distributed/messages.py)."""

from __future__ import annotations

import gzip
import json

import pytest

from archive.raw_html import CompressedHtml, compress, from_wire, raw_html, raw_page_row
from crawl.items import ArticleItem
from distributed.messages import decode_item, encode_item

HTML = "<html><body><article><h1>Ferry</h1><p>The evening crossing.</p></article></body></html>"


def item(**fields: object) -> ArticleItem:
    return ArticleItem(url="https://news.example/a", source="gazette", html=HTML, fetched_at="2026-11-26", **fields)


LATIN = HTML.replace("Ferry", "Caf\u00e9").encode("cp1252")


@pytest.mark.parametrize(
    ("compressed", "text"),
    [(compress(HTML), HTML), (from_wire(b"gzip", gzip.compress(LATIN), LATIN, "cp1252"), LATIN.decode("cp1252"))],
    ids=["zstd by its extraction worker", "gzip from the wire"],
)
def test_a_compressed_page_travels_compressed(compressed: CompressedHtml, text: str) -> None:
    sent = item(signature=b"\x00\x01sig", raw_html=compressed, authors=["Ada Brook"])
    message = encode_item(sent, run_id=7)
    row = json.loads(message)
    assert row["kind"] == "item"
    assert row["run_id"] == 7
    assert row["html"] == ""  # the page is not sent twice
    received = decode_item(row)
    assert received.raw_html == sent.raw_html
    assert received.signature == sent.signature
    assert received.authors == ["Ada Brook"]
    stored = raw_page_row(
        received.url, received.html, fetched_at="", http_status=200, content_type="", compressed=received.raw_html
    )
    assert raw_html(stored) == text


def test_a_message_from_before_gzip_was_kept_still_decodes() -> None:
    row = json.loads(encode_item(item(signature=b"sig", raw_html=compress(HTML))))
    row["raw_html"] = row["raw_html"][:2]  # [size, data], as workers of the version before sent it
    received = decode_item(row)
    assert received.raw_html == compress(HTML)


def test_an_item_extracted_in_the_crawl_process_travels_with_its_html() -> None:
    received = decode_item(json.loads(encode_item(item(signature=b"sig"))))
    assert received.html == HTML
    assert received.raw_html is None
