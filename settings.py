"""Scrapy settings for the news archive.

Scrapy's own settings are grouped below, polite by default. Project settings carry a
``NEWS_`` prefix; override any of them per run with ``-s NAME=VALUE`` (the scheduler does).
https://docs.scrapy.org/en/latest/topics/settings.html
"""

from __future__ import annotations

import os

BOT_NAME = "news-archive"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# --- Politeness -------------------------------------------------------------------------
# https://docs.scrapy.org/en/latest/topics/practices.html#avoiding-getting-banned
USER_AGENT = "news-archive/0.1 (+https://github.com/news-archive/news-archive; personal news archive bot)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5  # each delay varies by ±50%
# https://docs.scrapy.org/en/latest/topics/autothrottle.html
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# --- Limits -----------------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024  # a news page is < 1 MB; anything above is not an article
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2  # 5xx, 408, 429 and timeouts (Scrapy's RETRY_HTTP_CODES)
REDIRECT_MAX_TIMES = 10
METAREFRESH_ENABLED = True
# A hung crawl is also killed from outside by the scheduler; this is the in-process guard.
CLOSESPIDER_TIMEOUT = 3600

# --- Components -------------------------------------------------------------------------
# https://docs.scrapy.org/en/latest/topics/item-pipeline.html
ITEM_PIPELINES = {
    "pipelines.extract.ExtractPipeline": 200,
    "pipelines.classify.ArticleFilterPipeline": 300,
    "pipelines.canonical.CanonicalUrlPipeline": 400,
    "pipelines.dedupe.DedupePipeline": 500,
    "pipelines.store.StorePipeline": 800,
}
SPIDER_MIDDLEWARES = {
    "middlewares.SkipStoredArticlesMiddleware": 950,
}
EXTENSIONS = {
    "extensions.CrawlRunRecorder": 100,
}
# Scrapy's own per-domain errors are logged; ours also land in the `failures` table.
HTTPERROR_ALLOW_ALL = False

# --- Runtime ----------------------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False

# --- Project settings (NEWS_*) ----------------------------------------------------------
NEWS_DB_PATH = os.environ.get("NEWS_DB_PATH", "data/news.db")
NEWS_SOURCES_FILE = os.environ.get("NEWS_SOURCES_FILE", "sources.toml")
# Extraction runs in this many worker processes (0 = in the crawl process, for debugging).
NEWS_EXTRACT_WORKERS = os.cpu_count() or 1
# Pages with fewer words in the extracted body are not articles (listings, consent walls, errors).
NEWS_MIN_WORDS = 80
# Keep the fetched HTML (zlib-compressed) so the archive can be re-extracted later.
NEWS_KEEP_RAW_HTML = True
# Articles are written in transactions of this many rows (or at the end of the crawl).
NEWS_STORE_BATCH_SIZE = 50
