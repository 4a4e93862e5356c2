"""What a URL serves, before it becomes a source: the feeds and sitemaps of `scheduler.py add`.

ProbeSpider is the news spider of `crawl --url` (the same sniffing of a feed, a sitemap or an
HTML page, the same <link rel="alternate"> feeds and robots.txt sitemaps, the same guards on
what may be fetched) with its last step left out: it counts the articles each feed or sitemap
announces instead of fetching them, and reads no sitemap index further than its own list.
The crawl's bookkeeping goes to a throw-away database, so probing never touches the archive.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawl.process import CrawlRequest, build_process, project_settings
from spiders.articles import content_type
from spiders.discovery import sniff_kind
from spiders.news import NewsSpider

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

    from spiders.discovery import Entry, SitemapLink

# A probe fetches a handful of URLs: it need not wait as long between them as a crawl.
PROBE_SETTINGS: dict[str, Any] = {
    "ITEM_PIPELINES": {},  # it yields no articles: no extraction processes to start
    "NEWS_REVISIT_AFTER": "",
    "DOWNLOAD_DELAY": 0.25,
    "AUTOTHROTTLE_START_DELAY": 0.25,
    "CLOSESPIDER_TIMEOUT": 300,
}


@dataclass
class Found:
    """A feed or sitemap the probe read: how many articles and child sitemaps it lists."""

    url: str
    articles: int = 0
    sitemaps: int = 0


@dataclass
class Probe:
    """What a URL serves: its kind, the feeds and sitemaps found through it, what went wrong."""

    url: str
    kind: str | None = None  # feed, sitemap or html; None when it could not be fetched
    feeds: list[Found] = field(default_factory=list)
    sitemaps: list[Found] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "URL: reason", one per failure

    @property
    def seeds(self) -> list[str]:
        return [f.url for f in self.feeds + self.sitemaps]


class ProbeSpider(NewsSpider):
    name = "probe"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probe = Probe(url=self.adhoc_url or "")
        self.counting: Found | None = None  # the feed or sitemap being read, while it is

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ProbeSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        # The page itself and what it announces; listing pages further in tell nothing more.
        spider.source = dataclasses.replace(spider.source, follow_depth=0, max_age=None, max_articles=None)
        return spider

    def parse_start(self, response: Response, depth: int = 0) -> Iterator[Any]:
        self.probe.kind = sniff_kind(response.body, content_type(response))
        yield from super().parse_start(response, depth)

    def parse_feed(self, response: Response) -> Iterator[Any]:
        yield from self._read(response, super().parse_feed, self.probe.feeds)

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        yield from self._read(response, super().parse_sitemap, self.probe.sitemaps)

    def _read(self, response: Response, parse: Any, found: list[Found]) -> list[Any]:
        """Run the news spider's parser, counting what it announces; kept if it read as one:
        entries came out, or nothing was wrong with it (an empty feed is still a feed)."""
        self.counting = Found(url=response.url)
        problems = len(self.probe.problems)
        requests = list(parse(response))  # consumed now: the counts are this response's alone
        if self.counting.articles or self.counting.sitemaps or len(self.probe.problems) == problems:
            found.append(self.counting)
        self.counting = None
        return requests

    def _article_request(self, url: str, *, via: str, entry: Entry | None = None) -> Iterator[Request]:
        if self.counting is not None:
            self.counting.articles += 1
        yield from ()

    def _sitemap_request(self, link: SitemapLink, response: Response) -> Iterator[Request]:
        if self.counting is not None:
            self.counting.sitemaps += 1
        yield from ()

    def _report(self, url: str, stage: str, reason: str, status: int | None = None) -> None:
        self.probe.problems.append(f"{url}: {reason}")
        super()._report(url, stage, reason, status)


def probe(url: str, *, allow_private: bool = False, log_level: str = "ERROR") -> Probe:
    """Fetch `url` and what it announces, in this process (a Scrapy crawl: once per process).

    Failures come back in the Probe, to be shown once: the log gets errors only."""
    with tempfile.TemporaryDirectory(prefix="news-probe-") as scratch:
        overrides = {**PROBE_SETTINGS, "LOG_LEVEL": log_level}
        settings = project_settings(Path(scratch) / "probe.db", Path(scratch) / "sources.toml", overrides)
        request = CrawlRequest(url=url, allow_private=allow_private)
        process, [crawler] = build_process([request], settings, spider_class=ProbeSpider)
        process.start()
        spider = crawler.spider
        if not isinstance(spider, ProbeSpider):  # None: the crawl did not start (logged by Scrapy)
            return Probe(url=url, problems=[f"{url}: the probe crawl did not start"])
        return spider.probe
