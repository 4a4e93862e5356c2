"""Load now what extraction would load on its first pages: for a process that forks workers.

The extraction pool's forkserver (crawl/extraction_preload.py) calls load_lazy_data() once, so
that its workers share this data instead of each loading a copy of its own on its first pages.
Measured with tracemalloc over one cycle of real news pages, a worker otherwise loaded: jusText's
stoplists of every language (12 MB, when trafilatura falls back to jusText), dateparser's
language data, the public-suffix list behind courlan, and the language model (70 MB).
"""

from __future__ import annotations

import logging

from trafilatura.external import jt_stoplist_init

from extraction.core import extract_with_evidence
from extraction.language import _identifier

logger = logging.getLogger(__name__)

# A short article: short enough that trafilatura also runs its fallbacks (jusText, readability)
# on it, dated and signed so that the date and author readers run too.
SAMPLE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Harbour bridge reopens after repairs - The Example Courier</title>
<meta property="og:type" content="article">
<meta property="og:title" content="Harbour bridge reopens after repairs">
<meta name="author" content="Jane Example">
<meta property="article:published_time" content="2026-03-04T08:00:00+01:00">
<link rel="canonical" href="https://news.example.com/2026/03/04/harbour-bridge-reopens">
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle",
"headline": "Harbour bridge reopens after repairs", "datePublished": "2026-03-04T08:00:00+01:00",
"author": {"@type": "Person", "name": "Jane Example"}}</script>
</head><body>
<nav><a href="/">Home</a> <a href="/local">Local</a></nav>
<article><h1>Harbour bridge reopens after repairs</h1>
<p class="byline">By Jane Example, 4 March 2026</p>
<p>The harbour bridge opened to traffic again on Wednesday morning after four months of repairs
to its steel deck, the city council said.</p>
<p>Engineers replaced corroded plates and resurfaced both lanes. Cyclists get a separate lane
from next week, when the last barriers are taken down.</p>
</article>
<footer>Copyright 2026 The Example Courier</footer>
</body></html>"""


def load_lazy_data() -> None:
    _identifier()
    jt_stoplist_init()
    extract_with_evidence(SAMPLE_PAGE, "https://news.example.com/2026/03/04/harbour-bridge-reopens", {})
