"""A round's seeds, built in a child process so that the process that opens rounds (the daemon, or
`scheduler.py push`) never imports Scrapy or the spider:

    python -m distributed.seeds --db DB --sources FILE

reads source names on stdin, one a line, and answers each with one line of JSON on stdout:
``{"revisits": N, "seeds": [[fingerprint, score, data], ...]}``, the seeds the news spider's own
`start()` builds against the archive (feeds, sitemaps and start pages, with the validators of the
last clean run, and the stored articles whose re-visit is due), each encoded as the shared queue
stores it (data in base64); or ``{"error": "why"}``. Its first line, once Scrapy is
imported, is ``{"ready": true}``. The process lives as long as its coordinator, so
Scrapy is imported once, not once per round.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy import Request, Spider


def seed_requests(settings: Any, name: str) -> tuple[list[Request], int, Spider]:
    """The seeds of source `name`, built by the news spider's own `start()` against the archive.
    Returns (requests, re-visits among them, the spider)."""
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import MemoryStatsCollector

    from spiders.news import NewsSpider

    crawler = Crawler(NewsSpider, settings)  # never started: it only carries settings and stats
    crawler.stats = MemoryStatsCollector(crawler)
    spider = NewsSpider.from_crawler(crawler, source=name)
    crawler.spider = spider

    async def collect() -> list[Request]:
        return [request async for request in spider.start()]

    requests = asyncio.run(collect())
    return requests, int(crawler.stats.get_value("news/articles/revisited", 0)), spider


def encoded_seeds(db: Path, sources: Path, name: str) -> dict[str, Any]:
    """The seeds of `name` as the shared queue stores them, in a JSON-ready dict."""
    from crawl.process import project_settings
    from distributed.shared_queue import encode_request

    requests, revisits, spider = seed_requests(project_settings(db, sources), name)
    seeds = []
    for request in requests:
        fingerprint, score, data = encode_request(request, spider)
        seeds.append([fingerprint, score, base64.b64encode(data).decode("ascii")])
    return {"revisits": revisits, "seeds": seeds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distributed.seeds", description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sources", type=Path, required=True)
    args = parser.parse_args(argv)
    import spiders.news  # noqa: F401  (Scrapy and the spider, imported before the first request)

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        try:
            found = encoded_seeds(args.db, args.sources, name)
        except Exception as exc:  # the coordinator records the run as failed with this line
            found = {"error": str(exc).replace("\n", " ")}
        print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
