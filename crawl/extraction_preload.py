"""Imported only by the extraction pool's forkserver (see pipelines/extract.py), never by the crawl.

Everything a worker needs is loaded here, before the workers are forked from the forkserver, so
they share its memory instead of each loading its own copy: the language model (about 70 MB),
trafilatura, lxml and numpy. `gc.freeze()` then keeps the garbage collector from
writing to those objects in the workers, which would copy the shared pages one by one. The
collector is off until then, as Python's gc docs advise for fork without exec: objects it would
free during the imports leave holes in shared pages, and the workers' first allocations fill them,
copying the page (bench/throughput.py, 2,000 real pages: the forkserver's pages no longer shared
with any worker 33 MB before, 20 MB after). The workers turn it on again as they start.

First of all, the forkserver asks to die with the crawl that started it (crawl/extraction_pool.py):
a crawl killed with SIGKILL must not leave it, and the pool processes it forks, behind.
"""

from __future__ import annotations

import gc

gc.disable()  # until the workers are forked: collections leave freed holes that workers then fill

from crawl.extraction_pool import die_with_crawl_from_env  # noqa: E402

die_with_crawl_from_env()

from archive.warc_files import HttpResponse  # noqa: E402
from crawl.extraction_worker import extract_page  # noqa: E402
from crawl.memory import WORKER_GIVE_BACK_PAST, WORKER_OWN_MAPPING_FROM, keep_heap_small  # noqa: E402
from extraction.warm_up import SAMPLE_PAGE, SAMPLE_URL, load_lazy_data  # noqa: E402

keep_heap_small(WORKER_OWN_MAPPING_FROM, WORKER_GIVE_BACK_PAST)  # the workers inherit it
load_lazy_data()
# The sample once through a worker's whole path, extraction and all: besides what extraction
# loads, what a worker imports on first use, the WARC writer and numpy.ma (numpy.unique imports it
# for the signature: 20-55 ms and some MB in each worker).
sample = HttpResponse(SAMPLE_URL, "2026-03-04T08:00:00Z", 200, [], b"")
extract_page(SAMPLE_PAGE.encode(), SAMPLE_URL, {}, sample, "utf-8")
gc.freeze()
