"""Imported only by the extraction pool's forkserver (see pipelines/extract.py), never by the crawl.

Loaded here, before the workers are forked from the forkserver, the language model (about 70 MB)
is shared by every worker instead of each worker loading its own copy on its first page.
"""

from __future__ import annotations

from extraction.language import _identifier

_identifier()
