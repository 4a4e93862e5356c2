"""Crawl workers on several machines, one SQLite writer, a coordinator: the parts that talk to Redis.

With a Redis URL, a crawl is shared. Three roles, each a `scheduler.py` command::

    scheduler.py run --redis URL          the coordinator (the daemon): opens a round of a source at
                                          its due time by pushing its seeds to the shared queue, and
                                          closes it once the workers have drained the queue
    scheduler.py worker --redis URL       any number, any machine: pull requests, fetch, extract,
                                          push items and run records to Redis; no database needed
    scheduler.py writer --redis URL       one per archive, next to the database: stores the items
                                          (dedupe, store) and the workers' run records

(`scheduler.py push NAME...` is the coordinator in the foreground, for one round, without the daemon.)

A round is one crawl of one source: one `crawl_runs` row, opened by the coordinator with the seeds
the spider's own `start()` builds (feeds, sitemaps, start pages, due re-visits), worked by every
worker serving the source, and closed when its queue has been empty and no worker has worked on it
for a grace period. scrapy-redis provides the queue format (a priority queue of pickled requests)
and the seen-set; pushes and pops are Lua scripts so that "seen" and "queued" never disagree, even
when Redis goes away between two calls.

The modules, one job each:

- `redis_link`: the Redis keys every role shares, the connection, and riding out outages
  (RedisLink, RedisDown, wait_for_redis)
- `shared_queue`: requests in a source's shared queue (the push and pop scripts, RedisScheduler)
- `leases`: a worker's claimed requests, released once handed on, taken over when it dies
- `worker`: a worker's settings and its part in the rounds (SharedRound, RedisArchive, the worker
  spider, the stored-article check, the run recorder, the pipeline that pushes items)
- `politeness`: per-host concurrency and delay across all workers
- `messages`: items as they travel from the workers to the writer
- `coordinator`: opening and closing rounds (Coordinator, SeedProcess)
- `seeds`: a round's first requests, computed in a child process so the daemon never imports Scrapy
  (`python -m distributed.seeds`, driven by SeedProcess)
- `writer`: storing the workers' items and run records in the archive (Writer)

Redis keys (all under ``news:``):

- ``news:<source>:requests``, ``news:<source>:seen``: scrapy-redis's queue and seen-set
- ``news:<source>:round``: the open round (hash: run_id, opened_ms); ``news:rounds``: sources with one
- ``news:<source>:busy``: worker id -> when it last worked on the source (Redis clock, ms)
- ``news:<source>:held:<worker>``, ``news:<source>:holders``: the requests a worker has claimed and
  not handed on yet, and the workers holding some; taken over when a worker's beat stops (leases)
- ``news:round:<run_id>:validators``: ETag/Last-Modified the workers found, kept if the round is clean
- ``news:worker:<host:pid>``, ``news:writer``: a live worker, the live writer (they expire a few
  seconds after their process stops beating)
- ``news:items``, ``news:items:processing``: items and run records for the writer, taken with LMOVE
  and deleted from the processing list only after the SQLite commit
- ``news:stored:<url>``: a stored article (or alias) as the workers see it, kept up to date by the
  writer (expires NEWS_REDIS_STORED_TTL after it was last seen); ``news:validators``: the archive's
  feed and sitemap validators, kept by the coordinator
- ``news:polite:<host>``, ``news:polite:<host>:delay``: the shared per-host limiter (slots are
  ``<worker>|<uuid>``, so a dead worker's are freed); ``news:polite:hosts``: the hosts' limiter keys

The package itself only re-exports the names of the writer's queues, for scripts that watch them
(``from distributed import ITEMS_KEY``); import everything else from its module. It imports
nothing heavier: spiders.news imports `distributed.worker`, which must not pull in the rest.
"""

from distributed.redis_link import ITEMS_KEY, PROCESSING_KEY, WRITER_KEY

__all__ = ["ITEMS_KEY", "PROCESSING_KEY", "WRITER_KEY"]
