"""Scrapy parts that are neither spiders nor pipelines: middlewares, run and failure recording, the
log formatter, request queues, the downloader, revisit rules, and the extraction workers' job."""
