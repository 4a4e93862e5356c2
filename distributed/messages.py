"""What travels from the workers to the writer through ``news:items``: items, and run records.

Each message is a JSON object with a ``kind``: ``item`` (an ArticleItem, below), or a run record
the worker's SharedRound sends (``failure``, ``counts``, ``seen``, ``taken_down``); the writer
(distributed.writer.Writer.apply) takes each kind into its batch.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from archive.raw_html import CompressedHtml
from crawl.items import ArticleItem


def encode_item(item: ArticleItem, run_id: int | None = None) -> str:
    row = dataclasses.asdict(item)
    del row["line_keys"]  # the writer's chrome step computes them (archive/site_chrome.py)
    del row["body"], row["encoding"]  # the page travels as text (`html`) or as `raw_html`, below
    row["signature"] = base64.b64encode(item.signature).decode("ascii")
    if item.raw_html is not None:  # compressed already (wire gzip or a worker's zstd): the HTML travels as that
        size, data, codec, charset = item.raw_html
        row["html"] = ""
        row["raw_html"] = [size, base64.b64encode(data).decode("ascii"), codec, charset]
    else:
        row["html"] = item.page_html()
    row["kind"], row["run_id"] = "item", run_id
    return json.dumps(row, ensure_ascii=False)


def decode_item(row: dict[str, Any]) -> ArticleItem:
    fields = {name: value for name, value in row.items() if name not in ("kind", "run_id")}
    fields["signature"] = base64.b64decode(fields["signature"])
    if fields.get("raw_html") is not None:
        size, data, *codec_and_charset = fields["raw_html"]  # [size, data] from before gzip was kept
        fields["raw_html"] = CompressedHtml(size, base64.b64decode(data), *codec_and_charset)
    return ArticleItem(**fields)
