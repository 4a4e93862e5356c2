"""The daemon: every source on its schedule, crawls in child processes (or Redis rounds), jobs and
adaptive polling. It never imports Scrapy, spiders, pipelines or crawl/: crawls run in other processes."""
