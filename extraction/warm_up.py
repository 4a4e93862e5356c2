"""Load now what extraction would load on its first pages: for a process that forks workers.

The extraction pool's forkserver (crawl/extraction_preload.py) calls load_lazy_data() once, then
runs SAMPLE_PAGE through a worker's whole path, so that its workers share this data instead of
each loading a copy of its own on its first pages. Measured with tracemalloc over one cycle of
real news pages, a worker otherwise loaded: jusText's stoplists of every language (12 MB, when
trafilatura falls back to jusText), dateparser's language data, the public-suffix list behind
courlan, and the language model (70 MB).

What the sample page does not reach is loaded by name: on its first page without a declared
language, jusText lower-cases the stoplists of every language into one set (0.11 s); on its
first text without a year, htmldate reads the month names of every dateparser locale (0.2 s); and
the public-suffix list is read on the first domain trafilatura looks up (0.13 s). A worker
replaced every few dozen pages paid for them again (bench/RESULTS.md, session 22).
"""

from __future__ import annotations

from courlan import extract_domain
from htmldate.extractors import month_words
from justext.core import define_stoplist
from trafilatura.external import jt_stoplist_init

from extraction.language import _identifier

# A short article: short enough that trafilatura also runs its fallbacks (jusText, readability)
# on it, dated and signed so that the date and author readers run too.
SAMPLE_URL = "https://news.example.com/2026/03/04/harbour-bridge-reopens"
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
    """What the sample page does not reach; the caller runs the sample itself."""
    _identifier()
    define_stoplist(jt_stoplist_init())  # both cached: the stoplist of every language, and its lower-cased set
    month_words()
    extract_domain(SAMPLE_URL)  # the public-suffix list, read on the first look-up (0.13 s)
