"""NewsSpider: one spider for every source. It finds article URLs and hands article pages on.

Discovery follows how news sites publish: RSS/RDF/Atom feeds, sitemaps (index, gzip, Google
News), and home/section pages followed to `follow_depth`. Everything it yields is a raw
`ArticleItem`; extraction, filtering, deduplication and storage are the pipelines' job.

    scrapy crawl news -a source=NAME          # a source from the sources file
    scrapy crawl news -a url=URL              # try a feed, sitemap or home page ad hoc
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Self

from scrapy import Request, Spider, signals
from scrapy.http import TextResponse
from scrapy.utils.misc import load_object

from archive.store import Archive
from config.sources import SourceConfigError, adhoc_source, find_source, load_sources
from crawl.archive_access import article_lookup, crawl_archive
from crawl.failures import count_failed_page, report_failure
from crawl.revisits import oldest_relevant, parse_schedule, revisit_due
from crawl.skip_stored import listing_failed, take_also_article
from crawl.urls import canonical_url
from spiders.articles import article_item, content_type, stale, wanted
from spiders.conditional import conditional_headers, fresh_validators
from spiders.discovery import DiscoveryError, Entry, parse_feed, sniff_kind
from spiders.fetch_errors import fetch_error
from spiders.listing import listing_links
from spiders.sitemap_callbacks import SitemapCallbacks
from spiders.sitemap_turns import SitemapTurns

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from archive.interfaces import ArticleLookup
    from config.sources import Source
    from crawl.items import ArticleItem


class SharedRound(Protocol):
    """A crawler's part in the rounds of a shared crawl: the class NEWS_SHARED_ROUND names
    (distributed.worker.SharedRound, set by `scheduler.py worker`), made with the crawler and the
    source's name. Named in a setting so that spiders/ imports nothing from distributed/."""

    def claim(self) -> bool:
        """Whether this crawler pushes the seeds."""
        ...

    def spider_idle(self) -> None:
        """Connected to spider_idle: hand everything over, then wait for the next round (or close)."""
        ...


# The statuses of a robots.txt that mean "no rules" (RFC 9309 2.3.1.3): 4xx but 429.
ROBOTS_NO_RULES = [status for status in range(400, 500) if status != 429]


class NewsSpider(SitemapCallbacks, Spider):
    name = "news"
    source: Source  # set by from_crawler, from the sources file or the ad-hoc URL
    allowed_domains: list[str]  # Scrapy's OffsiteMiddleware reads it

    def __init__(
        self,
        source: str | None = None,
        url: str | None = None,
        allow_private: str = "0",
        max_articles: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if bool(source) == bool(url):
            raise ValueError("give exactly one of -a source=NAME or -a url=URL")
        self.source_name = source
        self.adhoc_url = url
        self.adhoc_allow_private = allow_private.lower() in ("1", "true", "yes")
        self.adhoc_max_articles = int(max_articles) if max_articles else None
        self.articles_requested = 0
        # ETag / Last-Modified of the feeds and sitemaps fetched this run, saved when it ends well.
        self.fresh_validators: dict[str, dict[str, Any]] = {}
        self.round: SharedRound | None = None
        self.sitemap_turns: SitemapTurns | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.source = spider._resolve_source(crawler.settings.get("NEWS_SOURCES_FILE"))
        # Scrapy's OffsiteMiddleware reads this; seeds may live elsewhere (allow_offsite).
        spider.allowed_domains = list(spider.source.allowed_domains)
        if spider.source.delay is not None:  # AutoThrottle starts there too (it never lowers it on a 304)
            for name in ("DOWNLOAD_DELAY", "AUTOTHROTTLE_START_DELAY"):
                crawler.settings.set(name, spider.source.delay.total_seconds(), priority="spider")
        if round_class := crawler.settings.get("NEWS_SHARED_ROUND"):
            spider.round = load_object(round_class)(crawler, spider.source.name)
            crawler.signals.connect(spider.round.spider_idle, signal=signals.spider_idle)
        else:  # a shared crawl's workers share one queue: there the turns would not be seen
            spider.sitemap_turns = SitemapTurns(crawler)
            crawler.signals.connect(spider.sitemap_turns.spider_idle, signal=signals.spider_idle)
        return spider

    def _resolve_source(self, sources_file: str) -> Source:
        if self.adhoc_url:
            return adhoc_source(
                self.adhoc_url, allow_private=self.adhoc_allow_private, max_articles=self.adhoc_max_articles
            )
        try:
            return find_source(load_sources(sources_file), self.source_name or "", sources_file)
        except SourceConfigError as exc:
            raise ValueError(str(exc)) from None

    # --- seeds ------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        # A worker of a shared crawl (NEWS_SHARED_ROUND) never seeds: claim() is always False and
        # its requests come from the shared queue. The seeds of each round are built by this very
        # method, on a spider without a round, by the coordinator that opens it
        # (distributed.coordinator.seed_requests).
        if self.round is not None and not self.round.claim():
            return
        for url in self.source.feeds:
            yield self._seed(url, self.parse_feed, conditional=True)
        for url in self.source.sitemaps:
            if self.sitemap_turns is not None:
                self.sitemap_turns.seed(url)
            yield self._seed(url, self.parse_sitemap, conditional=True)
        for url in self.source.start_pages:
            yield self._seed(url, self.parse_start, conditional=True, depth=0)
        for url in self._due_revisits():
            yield Request(
                url,
                callback=self.parse_article,
                errback=self.on_error,
                cb_kwargs={"via": "revisit", "hints": {}},
                meta={"news_kind": "article", "news_revisit": True},
            )

    def _seed(self, url: str, callback: Callable[..., Any], *, conditional: bool = False, **kwargs: Any) -> Request:
        """A feed, sitemap or start page. Feeds and sitemaps are asked for only if changed
        (spiders/conditional.py)."""
        meta: dict[str, Any] = {"news_kind": "seed", "allow_offsite": True}
        headers: dict[str, str] = {}
        if conditional:
            meta["handle_httpstatus_list"] = [304]
            headers = conditional_headers(self.archive.validators(url))
        return Request(url, callback=callback, errback=self.on_error, cb_kwargs=kwargs, meta=meta, headers=headers)

    @property
    def archive(self) -> ArticleLookup:
        """What the spider reads stored articles and validators from (a worker's is in Redis)."""
        return article_lookup(self.crawler)

    def _due_revisits(self) -> list[str]:
        """Stored articles of this source whose scheduled re-visit is due."""
        schedule = parse_schedule(self.crawler.settings.get("NEWS_REVISIT_AFTER", ""))
        if not schedule:
            return []
        recent = crawl_archive(self.crawler).recent_articles(self.source.name, oldest_relevant(schedule))
        due = [a["url"] for a in recent if revisit_due(a["first_seen_at"], a["fetched_at"], schedule)]
        self.crawler.stats.inc_value("news/articles/revisited", len(due))
        return due

    def _not_modified(self, response: Response) -> bool:
        """A 304 for a conditional request (counted by failures.PageCounter); otherwise remember
        the new validators."""
        if response.status == 304:
            return True
        if "handle_httpstatus_list" in response.meta and (fresh := fresh_validators(response)):
            self.fresh_validators[response.url] = fresh
        return False

    def closed(self, reason: str) -> None:
        """Keep the feeds' and sitemaps' new validators only after a complete run that stored
        everything: otherwise the next run's 304s would hide the articles this run lost."""
        stats = self.crawler.stats
        if reason != "finished" or stats.get_value("news/failures/store", 0) or stats.get_value("news/storage_error"):
            return
        for url, known in self.fresh_validators.items():
            crawl_archive(self.crawler).save_validators(url, **known)

    # --- callbacks --------------------------------------------------------------------------

    def parse_start(self, response: Response, depth: int = 0) -> Iterator[Any]:
        """A start or listing page may be a feed, a sitemap or an HTML page: decide from the
        response. An unchanged one (304) is not read again, but the listing pages it led to are
        asked for again (conditionally): they may have changed."""
        if self._not_modified(response):
            known = self.archive.validators(response.url)
            for url in Archive.json_list(known["children"] if known else None):
                yield self._listing_request(url, depth + 1)
            return
        kind = sniff_kind(response.body, content_type(response))
        if kind == "feed":
            yield from self.parse_feed(response)
        elif kind == "sitemap":
            yield from self.parse_sitemap(response)
        else:
            if self.source.robots_sitemaps and depth == 0:
                yield Request(
                    response.urljoin("/robots.txt"),
                    callback=self.parse_robots,
                    errback=self.on_error,
                    # A 4xx robots.txt is RFC 9309's "no rules": no sitemaps here, and no failure.
                    meta={"news_kind": "seed", "allow_offsite": True, "handle_httpstatus_list": ROBOTS_NO_RULES},
                    dont_filter=True,
                )
            yield from self.parse_listing(response, depth=depth)

    def parse_feed(self, response: Response) -> Iterator[Any]:
        if self._not_modified(response):
            return
        problems: list[str] = []
        try:
            entries = parse_feed(response.body, response.url, problems)
        except DiscoveryError as exc:
            self._parse_failure(response, str(exc))
            return
        for problem in problems:  # recorded, but the entries that could be read are still crawled
            self._parse_failure(response, problem)
        self.crawler.stats.inc_value("news/discovery/feeds")
        for entry in entries:
            yield from self._article_request(response.urljoin(entry.url), via="feed", entry=entry)

    def parse_listing(self, response: Response, depth: int = 0) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            self._parse_failure(response, "start page is not text")
            return
        asked_for = (response.meta.get("redirect_urls") or [response.url])[0]
        if (article := take_also_article(asked_for)) is not None:  # a feed listed it too
            yield article_item(response, self.source.name, article["via"] or "listing", article["hints"] or {})
        children: list[str] = []  # asked for again when this page answers 304 next time
        for link in listing_links(response, self.source, depth):
            if link.kind == "feed":
                children.append(link.url)
                yield self._seed(link.url, self.parse_feed, conditional=True)
            elif link.kind == "article":
                yield from self._article_request(link.url, via="listing")
            else:
                children.append(link.url)
                yield self._listing_request(link.url, depth + 1)
        if response.url in self.fresh_validators:
            self.fresh_validators[response.url]["children"] = children

    def _listing_request(self, url: str, depth: int) -> Request:
        """A home, section or paging page, asked for only if it changed. After the articles already
        queued (lower priority): a page both listed in a feed and linked as a listing is then
        usually an article request first, and its listing request is dropped (crawl/skip_stored.py)."""
        return Request(
            url,
            callback=self.parse_start,
            errback=self.on_error,
            cb_kwargs={"depth": depth},
            meta={"news_kind": "listing", "handle_httpstatus_list": [304]},
            headers=conditional_headers(self.archive.validators(url)),
            priority=-1,
        )

    def parse_article(self, response: Response, via: str, hints: dict[str, Any]) -> Iterator[ArticleItem]:
        if not isinstance(response, TextResponse):
            count_failed_page(self.crawler)
            self._report(
                response.url,
                "fetch",
                f"not an HTML page ({content_type(response) or 'no type'})",
                response.status,
            )
            return
        yield article_item(response, self.source.name, via, hints)

    # --- requests ---------------------------------------------------------------------------

    def _article_request(self, url: str, *, via: str, entry: Entry | None = None) -> Iterator[Request]:
        url = canonical_url(url)
        if not wanted(self.source, url):
            self.crawler.stats.inc_value("news/discovery/ignored")
            return
        if entry is not None and stale(self.source, entry):
            self.crawler.stats.inc_value("news/discovery/stale")
            return
        limit = self.source.max_articles
        if limit is not None and self.articles_requested >= limit:
            return
        self.articles_requested += 1
        yield Request(
            url,
            callback=self.parse_article,
            errback=self.on_error,
            cb_kwargs={"via": via, "hints": entry.hints() if entry else {}},
            meta={"news_kind": "article"},
        )

    # --- failures ---------------------------------------------------------------------------

    def on_error(self, failure: Failure) -> list[Request]:
        """Records the failure; a failed sitemap hands its turn on to the next one."""
        request = failure.request  # type: ignore[attr-defined]
        if request.meta.get("news_kind") == "listing":
            listing_failed(request.url)
        self._record_error(failure, request)
        return list(self._sitemap_read(request))

    def _record_error(self, failure: Failure, request: Request) -> None:
        error = fetch_error(failure, self.settings.getint("DOWNLOAD_MAXSIZE"))
        if error.refused:
            self.crawler.stats.inc_value("news/requests/ignored")
        if error.reason is not None:
            self._report(request.url, "fetch", error.reason, error.status)
        if error.status in (404, 410) and request.meta.get("news_revisit"):
            self._taken_down(request.url)
        elif error.status in (404, 410) and request.meta.get("news_kind") == "article":
            # Remembered like a page that is no article: asked for again after a day, then two...
            self.archive.pending.not_articles[request.url] = {"source": self.source.name, "reason": error.reason or ""}

    def _taken_down(self, url: str) -> None:
        """A stored article that now answers 404/410 is marked, never deleted."""
        self.archive.pending.taken_down.add(url)
        self.crawler.stats.inc_value("news/articles/taken_down")

    def _parse_failure(self, response: Response, reason: str) -> None:
        self._report(response.url, "parse", reason, response.status)

    def _report(self, url: str, stage: str, reason: str, status: int | None = None) -> None:
        report_failure(self.crawler, url=url, stage=stage, reason=reason, http_status=status)
