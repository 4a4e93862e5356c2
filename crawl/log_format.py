"""ItemLogFormatter: Scrapy's log lines about items name the URL and the reason, never the page."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.logformatter import LogFormatter

if TYPE_CHECKING:
    from scrapy.http import Request, Response
    from scrapy.logformatter import LogFormatterResult
    from scrapy.spiders import Spider
    from twisted.python.failure import Failure


# A reason longer than this is cut: an exception's message can quote the page it choked on.
LOG_REASON_CHARS = 300


def item_url(item: Any, response: Response | Failure | None = None) -> str:
    """The URL an item stands for: its own, else the response it came from."""
    url = getattr(item, "url", None) or (item.get("url") if isinstance(item, dict) else None)
    if not url:
        url = getattr(response, "url", None) or type(item).__name__
    return str(url)


def one_line_reason(exception: BaseException, url: str) -> str:
    """An exception's message on one short line, without the URL the line names already."""
    reason = " ".join(str(exception).split()) or type(exception).__name__
    reason = reason.removesuffix(f": {url}")  # "not an article: too short (...): <url>"
    if len(reason) > LOG_REASON_CHARS:
        reason = reason[: LOG_REASON_CHARS - 3] + "..."
    return reason


class ItemLogFormatter(LogFormatter):
    """Scrapy's lines about items name the item's URL and the reason, never the item itself.

    Scrapy logs the whole item, and an ArticleItem carries the page's HTML: one dropped 10 MB page
    was a 10 MB log line. Tracebacks stay where Scrapy attaches them: an item error (an exception
    in a pipeline) and a download error (a request without an errback to record its failure) are
    our bugs. Set as LOG_FORMATTER in crawl/settings.py.
    """

    def scraped(self, item: Any, response: Response | Failure | None, spider: Spider) -> LogFormatterResult:
        return {"level": logging.DEBUG, "msg": "Scraped %(url)s", "args": {"url": item_url(item, response)}}

    def dropped(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        url = item_url(item, response)
        line = super().dropped(item, exception, response, spider)  # keeps Scrapy's choice of level
        return {
            "level": line["level"],
            "msg": "Dropped %(url)s: %(reason)s",
            "args": {"url": url, "reason": one_line_reason(exception, url)},
        }

    def item_error(
        self, item: Any, exception: BaseException, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult:
        url = item_url(item, response)
        return {
            "level": logging.ERROR,
            "msg": "Error processing %(url)s: %(reason)s",
            "args": {"url": url, "reason": one_line_reason(exception, url)},
        }

    def download_error(
        self, failure: Failure, request: Request, spider: Spider, errmsg: str | None = None
    ) -> LogFormatterResult:
        reason = " ".join((errmsg or failure.getErrorMessage()).split())
        return {
            "level": logging.ERROR,
            "msg": "Error downloading %(url)s: %(reason)s",
            "args": {"url": request.url, "reason": reason[:LOG_REASON_CHARS]},
        }
