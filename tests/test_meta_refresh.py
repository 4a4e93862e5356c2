"""The meta-refresh middleware reads a page's bytes for a refresh; it decodes only pages that may
hold one, so the crawl process never keeps the text of every page in flight."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.settings import Settings

from crawl.redirects import REFRESH_HEAD_BYTES, GuardedMetaRefreshMiddleware, may_hold_meta_refresh

URL = "http://news.example/story"
REFRESH = '<meta http-equiv="Refresh" content="0; url=/moved">'


class CountingResponse(HtmlResponse):
    """An HTML response that counts how often its whole text is asked for."""

    decoded = 0

    @property
    def text(self) -> str:
        CountingResponse.decoded += 1
        return super().text


def middleware() -> GuardedMetaRefreshMiddleware:
    refresh = GuardedMetaRefreshMiddleware(Settings({"METAREFRESH_MAXDELAY": 100}))
    spider = SimpleNamespace(allowed_domains=["news.example"], handle_httpstatus_list=())
    refresh.crawler = SimpleNamespace(spider=spider)  # type: ignore[assignment]
    return refresh


def page(head: str, *, encoding: str = "utf-8", filler: int = 200_000) -> CountingResponse:
    paragraphs = "<p>Tide gauge.</p>" * (filler // 17)
    body = f"<html><head><title>Tide gauge</title>{head}</head><body>{paragraphs}</body></html>"
    return CountingResponse(URL, body=body.encode(encoding), encoding=encoding)


@pytest.fixture(autouse=True)
def _count_from_zero() -> None:
    CountingResponse.decoded = 0


def test_a_page_without_a_refresh_goes_on_undecoded() -> None:
    response = page("")
    assert middleware().process_response(Request(URL), response) is response
    assert CountingResponse.decoded == 0


def test_a_refresh_in_the_head_is_followed() -> None:
    result: Any = middleware().process_response(Request(URL), page(REFRESH))
    assert isinstance(result, Request)
    assert result.url == "http://news.example/moved"


def test_a_refresh_in_utf16_is_still_found() -> None:
    """No ASCII bytes spell "refresh" in UTF-16: such a page is left to Scrapy, which decodes it."""
    result: Any = middleware().process_response(Request(URL), page(REFRESH, encoding="utf-16", filler=2_000))
    assert isinstance(result, Request)
    assert result.url.startswith("http://news.example/moved")  # w3lib adds the BOM as a query


def test_a_page_that_names_refresh_in_its_text_is_read_by_scrapy() -> None:
    """ "Refresh" in an article's first lines is no refresh: Scrapy decodes it and follows nothing."""
    response = page("<p>Refresh the page for the latest figures.</p>")
    assert middleware().process_response(Request(URL), response) is response
    assert CountingResponse.decoded >= 1


def test_the_bytes_read_cover_the_characters_scrapy_reads() -> None:
    """Scrapy looks at the first 4,096 characters; in UTF-8 they can take four bytes each."""
    wide = "😀" * 4000 + REFRESH  # the refresh starts at character 4,000, byte 16,000
    assert may_hold_meta_refresh(wide.encode())
    assert len(("😀" * 4096).encode()) <= REFRESH_HEAD_BYTES
    assert not may_hold_meta_refresh(("😀" * 4096).encode() + REFRESH.encode())
