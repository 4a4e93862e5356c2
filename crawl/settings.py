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
NEWS_ROBOTSTXT_RETRY = 300  # seconds a host stays refused after its robots.txt could not be read
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
# A 429/503 asking to come back within this many seconds is retried then; later: not this run.
NEWS_RETRY_AFTER_MAX = 120
# A hung crawl is also killed from outside by the scheduler; this is the in-process guard.
CLOSESPIDER_TIMEOUT = 3600

# --- Components -------------------------------------------------------------------------
# Outputs of one response processed at once. Scrapy 2.19 starts this many asyncio tasks for every
# response, whatever it yields: 100 (the default) cost 1.2 ms of the reactor's CPU per article
# (bench/throughput.py). An article page yields one item; feeds and listings yield requests,
# which are scheduled without waiting, so one at a time loses nothing.
CONCURRENT_ITEMS = 1
# https://docs.scrapy.org/en/latest/topics/item-pipeline.html
ITEM_PIPELINES = {
    "pipelines.extract.ExtractPipeline": 200,
    "pipelines.sanitize.SanitizePipeline": 250,  # stored text is data: no markup in metadata
    "pipelines.classify.ArticleFilterPipeline": 300,
    "pipelines.canonical.CanonicalUrlPipeline": 400,
    "pipelines.dedupe.DedupePipeline": 500,
    "pipelines.store.StorePipeline": 800,
}
SPIDER_MIDDLEWARES = {
    "crawl.skip_stored.SkipStoredArticlesMiddleware": 950,
}
# https://docs.scrapy.org/en/latest/topics/downloader-middleware.html (ours: one module each in crawl/)
DOWNLOADER_MIDDLEWARES = {
    "crawl.url_credentials.UrlCredentialsMiddleware": 30,  # first: nothing after it sees a password
    "crawl.fetch_guard.FetchGuardMiddleware": 40,  # before robots.txt is fetched for a refused host
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawl.robots.StrictRobotsTxtMiddleware": 100,  # an unreadable robots.txt refuses, not allows
    "crawl.retry_after.RetryAfterMiddleware": 555,  # waits, then Scrapy's RetryMiddleware (550) retries
    # Responses come back down the numbers: an article's gzip bytes kept for raw_pages (595),
    # decompressed (590), checked for binary content (586), decoded (584), and only then is the
    # text read for a meta refresh (580).
    "crawl.bodies.WireBodyMiddleware": 595,
    "crawl.bodies.BinaryBodyMiddleware": 586,
    "crawl.bodies.CharsetMiddleware": 584,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawl.redirects.GuardedMetaRefreshMiddleware": 580,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawl.redirects.GuardedRedirectMiddleware": 600,
    # Just before the download (and before a shared crawl's politeness slot, 950): a download
    # waits while the pages held in memory would exceed NEWS_BODY_BUDGET_MB.
    "crawl.body_budget.BodyBudgetMiddleware": 890,
}
# Only http and https are ever fetched (FetchGuardMiddleware refuses the rest first).
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None}
# How FetchGuardMiddleware resolves a host to judge its addresses: host -> list of IPs.
NEWS_RESOLVER = "crawl.fetch_guard.system_resolve"
EXTENSIONS = {
    # malloc hands back what large pages took (crawl/memory.py), set before the first page
    "crawl.memory.HeapSettings": 0,
    "crawl.run_records.CrawlRunRecorder": 100,
    # pending requests on disk: a 50,000-URL sitemap must not sit in memory as Request objects
    "crawl.disk_queue.DiskRequestQueue": 0,
}
# Scrapy's pickle LIFO disk queue, naming callbacks without inspecting the spider (crawl/request_queue.py)
SCHEDULER_DISK_QUEUE = "crawl.request_queue.PickleLifoDiskQueue"
# Scrapy's duplicate filter, leaving article requests to the archive's check (crawl/dupefilter.py)
DUPEFILTER_CLASS = "crawl.dupefilter.ArticleAwareDupeFilter"
# Scrapy's downloader, dropping the requests still queued once the crawl is told to stop (crawl/downloader.py)
DOWNLOADER = "crawl.downloader.StoppingDownloader"
# Scrapy's own per-domain errors are logged; ours also land in the `failures` table.
HTTPERROR_ALLOW_ALL = False

# --- Runtime ----------------------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
# Logs are kept for months: one line per event, naming the URL and the reason.
# Lines about items name the URL, never the item (which carries the page's HTML).
LOG_FORMATTER = "crawl.log_format.ItemLogFormatter"
# A request that failed after its retries is one line from the spider's errback (failure [fetch]
# URL: reason), and an unreadable robots.txt one from StrictRobotsTxtMiddleware: Scrapy's own
# "Gave up retrying" line would say the same again.
RETRY_GIVE_UP_LOG_LEVEL = "DEBUG"
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # Scrapy 2.19's code-running HTTP console: never wanted here

# --- Project settings (NEWS_*) ----------------------------------------------------------
NEWS_DB_PATH = os.environ.get("NEWS_DB_PATH", "data/news.db")
NEWS_SOURCES_FILE = os.environ.get("NEWS_SOURCES_FILE", "sources.toml")
# Extraction runs in this many worker processes (0 = in the crawl process, for debugging).
NEWS_EXTRACT_WORKERS = os.cpu_count() or 1
# An extraction worker that pages have grown by more than this many MB (its heap, after trimming)
# is replaced by a fresh one after the page that grew it (crawl/worker_pool.py). With what a
# worker's first pages loaded now loaded once in the forkserver, a worker lasts some 1,700 real
# pages at 32, and the peak of all processes was 422 MB at 5,000 and 476 MB at 100,000 real pages
# (bench/RESULTS.md, session 22; at 48, before that, the peak was 514 MB at 100,000).
NEWS_EXTRACT_WORKER_GROWTH_MB = 32.0
# Pages downloaded and not yet extracted, plus those being downloaded (estimated from their site's
# pages so far), are held to this many MB in the crawl process (crawl/body_budget.py; 0: no limit
# but Scrapy's own, which counts downloads, not bytes).
NEWS_BODY_BUDGET_MB = 16.0
# Pages with fewer words in the extracted body are not articles (listings, consent walls, errors).
NEWS_MIN_WORDS = 80
# Keep each fetched article page (a WARC record in <archive dir>/warc/, referenced from
# raw_page_refs) so the archive can be re-extracted; keep_raw in the sources file says how long.
NEWS_KEEP_RAW_HTML = True
# Stored articles are fetched again this long after they were first seen, to catch updates
# and take-downs ("" turns re-visits off). A changed sitemap lastmod or feed date also triggers one.
NEWS_REVISIT_AFTER = "1h,6h,24h"
# Articles are written in transactions of this many rows, or when the first of them has waited
# NEWS_STORE_MAX_WAIT seconds, or at the end of the crawl. Bigger batches cost less as the archive
# grows: the near-duplicate index is updated at random places (bench/RESULTS.md, storage).
NEWS_STORE_BATCH_SIZE = 200
NEWS_STORE_MAX_WAIT = 10.0

# --- Several machines (distributed/) ----------------------------------------------------
# The Redis of a crawl shared by several machines. `scheduler.py run` (the coordinator), `worker`,
# `writer` and `push` take it from --redis, whose default is this environment variable; a worker's
# crawlers read it here. Empty: one machine, no Redis; `scheduler.py crawl` never uses it.
NEWS_REDIS_URL = os.environ.get("NEWS_REDIS_URL", "")
NEWS_REDIS_WORKER = False  # set by `scheduler.py worker` (distributed.worker.apply_worker_settings)
# A worker's crawler of a source closes after this many idle seconds (0: it serves round after
# round until it is stopped). Set by `scheduler.py worker --exit-when-idle`.
NEWS_REDIS_EXIT_WHEN_IDLE = 0.0
# How long workers remember a stored article (news:stored:<url>, kept by the writer) after it was
# last seen in a feed, sitemap or page: an article listed again after that is downloaded once more
# (and found unchanged). About 250 bytes of Redis memory per article or alias.
NEWS_REDIS_STORED_TTL = 30 * 86400
