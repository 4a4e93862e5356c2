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

from items import ArticleItem
from raw_html import CompressedHtml


def encode_item(item: ArticleItem, run_id: int | None = None) -> str:
    row = dataclasses.asdict(item)
    row["signature"] = base64.b64encode(item.signature).decode("ascii")
    if item.raw_html is not None:  # compressed by the extraction worker: the HTML travels as that
        row["html"] = ""
        row["raw_html"] = [item.raw_html.size, base64.b64encode(item.raw_html.zstd).decode("ascii")]
    row["kind"], row["run_id"] = "item", run_id
    return json.dumps(row, ensure_ascii=False)


def decode_item(row: dict[str, Any]) -> ArticleItem:
    fields = {name: value for name, value in row.items() if name not in ("kind", "run_id")}
    fields["signature"] = base64.b64decode(fields["signature"])
    if fields.get("raw_html") is not None:
        size, data = fields["raw_html"]
        fields["raw_html"] = CompressedHtml(size, base64.b64decode(data))
    return ArticleItem(**fields)
