"""Requests queued on disk (crawl/request_queue.py) keep their callbacks, named the way Scrapy names them."""

from __future__ import annotations

from pathlib import Path

from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from crawl.request_queue import PickleLifoDiskQueue, request_to_dict


class Base(Spider):
    name = "queued"

    def on_error(self, failure: object) -> None: ...


class QueuedSpider(Base):
    evaluated = 0

    @property
    def expensive(self) -> int:  # Scrapy's own lookup evaluates every property of the spider
        type(self).evaluated += 1
        return 0

    def parse_article(self, response: object) -> None: ...


def test_callback_names_are_scrapys_and_the_spider_is_not_inspected() -> None:
    spider = QueuedSpider()
    request = Request("https://a.example/story", callback=spider.parse_article, errback=spider.on_error, priority=3)
    ours = request_to_dict(request, spider)
    assert QueuedSpider.evaluated == 0
    assert ours == request.to_dict(spider=spider)
    assert QueuedSpider.evaluated > 0  # the lookup ours replaces
    assert (ours["callback"], ours["errback"]) == ("parse_article", "on_error")


def test_a_request_comes_back_from_the_disk_queue_bound_to_the_spider(tmp_path: Path) -> None:
    crawler = get_crawler(QueuedSpider)
    crawler.spider = crawler._create_spider()
    queue = PickleLifoDiskQueue.from_crawler(crawler, str(tmp_path / "queue"))
    queue.push(Request("https://a.example/1", callback=crawler.spider.parse_article, meta={"via": "feed"}))
    queue.push(Request("https://a.example/2", errback=crawler.spider.on_error))
    second, first = queue.pop(), queue.pop()
    queue.close()
    assert second.url == "https://a.example/2"
    assert second.callback is None
    assert second.errback == crawler.spider.on_error
    assert first.callback == crawler.spider.parse_article
    assert first.callback.__self__ is crawler.spider
    assert first.meta == {"via": "feed"}
