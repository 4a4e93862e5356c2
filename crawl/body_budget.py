"""BodyBudgetMiddleware: the pages held in the crawl process are bounded in bytes, not in number.

Extraction is slower than downloading, so downloaded pages wait in Scrapy's scraper for the
extraction workers. Scrapy stops *starting* downloads once the scraper holds
SCRAPER_SLOT_MAX_ACTIVE_SIZE bytes, but every download already under way (up to
CONCURRENT_REQUESTS of them) still lands on top: when they are the large pages of one site, the
crawl process held 42-60 MB of bodies for a moment (bench/RESULTS.md, session 19).

Here a download starts only while the bytes held in the scraper, plus an estimate of every download
under way, plus its own estimate fit in NEWS_BODY_BUDGET_MB. A page's estimate is what the pages of
its kind (its site's pages fetched for the same callback: articles, a feed ...) have weighed so
far; the first page of a kind is fetched alone, so its size is known before the others start. A
request waiting here is still the downloader's (Scrapy's engine pulls no more requests meanwhile),
and one page is always let through when nothing is held, so a page larger than the budget is
fetched too.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawl.downloader import crawl_is_stopping

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

# How often (seconds) a waiting download looks again: extraction frees bytes a page at a time.
RECHECK_EVERY = 0.02
# How much each new page moves its kind's estimate: the pages of a kind weigh alike.
SMOOTHING = 0.3
ESTIMATE_KEY = "news_body_estimate"  # (kind, bytes) of a download under way
FIRST_KIND_KEY = "news_body_kind"  # the kind a request had before its redirects


@dataclass
class PageSizes:
    """A running estimate of a page's size per kind of page (a site's articles, its feed ...),
    learned from the responses."""

    by_kind: dict[str, float] = field(default_factory=dict)
    overall: float = 0.0

    def learn(self, kinds: Iterable[str], size: int) -> None:
        """One page of `size` bytes came back, of these kinds (one, or two after a redirect)."""
        for kind in kinds:
            self.by_kind[kind] = _smoothed(self.by_kind.get(kind), size)
        self.overall = _smoothed(self.overall or None, size)

    def assume_typical(self, kind: str) -> None:
        """A kind whose first download failed: its pages are taken to weigh what pages do overall."""
        self.by_kind.setdefault(kind, self.overall)

    def estimate(self, kind: str) -> int | None:
        """The expected size of a page of this kind; None before the first one came back."""
        known = self.by_kind.get(kind)
        return None if known is None else round(known)


def _smoothed(previous: float | None, size: int) -> float:
    return float(size) if previous is None else previous + SMOOTHING * (size - previous)


def admits(*, held: int, in_flight: int, page: int, budget: int) -> bool:
    """Whether a download of `page` bytes may start now (all in bytes)."""
    if held + in_flight == 0:
        return True  # nothing else in memory: even a page larger than the budget
    return held + in_flight + page <= budget


@dataclass
class UnderWay:
    """The downloads let through and not back yet: their estimated bytes, and how many of each kind."""

    bytes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, page: int) -> None:
        self.bytes += page
        self.kinds[kind] += 1


@dataclass
class Waiting:
    request: Request
    kind: str
    ready: asyncio.Future[None]


class BodyBudgetMiddleware:
    """Holds a download back while the pages in the crawl process would exceed the byte budget.

    What is under way is read from Scrapy's downloader each time (the requests it holds that were let
    through here carry their estimate), so an estimate leaves with its request, whatever ended it.
    """

    def __init__(self, crawler: Crawler, budget: int) -> None:
        self.crawler = crawler
        self.budget = budget
        self.sizes = PageSizes()
        self.waiting: deque[Waiting] = deque()  # in the order they came
        self.poller: asyncio.Task[None] | None = None
        crawler.signals.connect(self._learn, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BodyBudgetMiddleware:
        budget_mb = crawler.settings.getfloat("NEWS_BODY_BUDGET_MB")
        if budget_mb <= 0:
            raise NotConfigured("NEWS_BODY_BUDGET_MB is 0: pages held are bounded by number only")
        return cls(crawler, int(budget_mb * 1024 * 1024))

    async def process_request(self, request: Request) -> None:
        # A retry or a redirect carries the meta of the download it follows, which is over.
        request.meta.pop(ESTIMATE_KEY, None)
        kind = self._kind(request)
        under_way = self._under_way()
        if not self.waiting and self._admits(kind, self._held(), under_way):
            self._let_through(request, kind, under_way)
            return
        waiting = Waiting(request, kind, asyncio.get_running_loop().create_future())
        self.waiting.append(waiting)
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll())
        self.crawler.stats.inc_value("news/body_budget/waited")
        await waiting.ready

    def process_exception(self, request: Request, exception: Exception) -> None:
        entry = request.meta.get(ESTIMATE_KEY)
        if entry is not None:
            self.sizes.assume_typical(entry[0])  # or its next pages would still go one at a time

    async def _poll(self) -> None:
        while self.waiting:
            await asyncio.sleep(RECHECK_EVERY)
            self._release_waiting()

    def _release_waiting(self) -> None:
        """Lets the waiting downloads through in order, while they fit. One whose kind's first page
        is under way is passed over: that page may take a timeout to come back."""
        stopping = crawl_is_stopping(self.crawler)  # then all go on, to be dropped by the downloader
        held, under_way = self._held(), self._under_way()
        for waiting in list(self.waiting):
            if not stopping and self._first_of_kind_under_way(waiting.kind, under_way):
                continue
            if not stopping and not self._admits(waiting.kind, held, under_way):
                break
            self.waiting.remove(waiting)
            self._let_through(waiting.request, waiting.kind, under_way)
            if not waiting.ready.done():  # cancelled if its crawl was stopped meanwhile
                waiting.ready.set_result(None)

    def _let_through(self, request: Request, kind: str, under_way: UnderWay) -> None:
        page = self._estimate(kind)
        request.meta[ESTIMATE_KEY] = (kind, page)
        request.meta.setdefault(FIRST_KIND_KEY, kind)
        under_way.add(kind, page)

    def _admits(self, kind: str, held: int, under_way: UnderWay) -> bool:
        if self._first_of_kind_under_way(kind, under_way):
            return False
        return admits(held=held, in_flight=under_way.bytes, page=self._estimate(kind), budget=self.budget)

    def _first_of_kind_under_way(self, kind: str, under_way: UnderWay) -> bool:
        """The first page of a kind is fetched alone: its size sets the estimate for the others."""
        return self.sizes.estimate(kind) is None and under_way.kinds[kind] > 0

    def _estimate(self, kind: str) -> int:
        """The kind's page size so far; before its first page, all pages' (0 before any page)."""
        known = self.sizes.estimate(kind)
        return known if known is not None else round(self.sizes.overall)

    def _under_way(self) -> UnderWay:
        under_way = UnderWay()
        engine = self.crawler.engine
        for request in engine.downloader.active if engine is not None else ():
            entry = request.meta.get(ESTIMATE_KEY)
            if entry is not None:
                under_way.add(*entry)
        return under_way

    def _held(self) -> int:
        """Bytes of the responses in Scrapy's scraper (waiting for, or in, the item pipelines)."""
        engine = self.crawler.engine
        slot = engine.scraper.slot if engine is not None else None
        return slot.active_size if slot is not None else 0

    def _learn(self, response: Response, request: Request) -> None:
        # Also for the kind before the redirects: a site whose articles all redirect (to www.)
        # would otherwise never learn it, and fetch them one at a time.
        kinds = {self._kind(request), request.meta.get(FIRST_KIND_KEY, "")} - {""}
        self.sizes.learn(kinds, len(response.body))

    def _kind(self, request: Request) -> str:
        """The request's site (download slot) and what it is fetched for (its callback)."""
        engine = self.crawler.engine
        assert engine is not None  # requests reach downloader middlewares only from a running engine
        purpose = getattr(request.callback, "__name__", "")  # parse_article, parse_feed, ... ("" robots.txt)
        return f"{engine.downloader.get_slot_key(request)} {purpose}"
