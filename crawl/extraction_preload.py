"""Imported only by the extraction pool's forkserver (see pipelines/extract.py), never by the crawl.

Everything a worker needs is loaded here, before the workers are forked from the forkserver, so
they share its memory instead of each loading its own copy: the language model (about 70 MB),
trafilatura, lxml and numpy. `gc.freeze()` then keeps the garbage collector from
writing to those objects in the workers, which would copy the shared pages one by one.
"""

from __future__ import annotations

import gc

import archive.near_duplicates  # noqa: F401
import crawl.extraction_worker  # noqa: F401
from extraction.language import _identifier

_identifier()
gc.freeze()
