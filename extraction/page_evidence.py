"""What a page says about itself besides its fields, for the not-article verdict: whether it
marks itself up as an article, whether it was cut off in transit, and how many words its
visible article paragraphs hold. Read before trafilatura prunes the tree."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml.html import HtmlElement

    from extraction.structured import PageData

# \w runs, with each Han/Kana character counted on its own (as the evaluation does).
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


# Structured-data types and og:type values by which a page says it is an article.
ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "reviewnewsarticle",
    "blogposting",
    "liveblogposting",
    "report",
    "scholarlyarticle",
}
# Containers whose paragraphs are not the article's, when counting the page's own words.
_NOT_ARTICLE_CONTAINERS = {"nav", "aside", "footer", "form", "figure", "menu", "template", "noscript"}


def has_article_markup(tree: HtmlElement, page: PageData) -> bool:
    """The page calls itself an article: structured data or og:type, or an <article> element
    that carries a publication time (a <time> in it, or itemprop datePublished)."""
    declared = [page.jsonld_type, page.first_meta("og:type")]
    if any(isinstance(t, str) and t.strip().casefold() in ARTICLE_TYPES for t in declared):
        return True
    for article in tree.iter("article"):
        if article.find(".//time") is not None or article.find(".//*[@itemprop='datePublished']") is not None:
            return True
    return False


def is_cut_off(html: str) -> bool:
    """The document stops before its end: neither `</body>` nor `</html>` in its last 4 KB.

    HTML lets both be left out, but pages of news sites write them; one without them is almost
    always a download cut short, and what it shows of its article is no whole brief."""
    tail = html[-4096:].casefold()
    return "</body" not in tail and "</html" not in tail


def visible_article_words(tree: HtmlElement) -> int:
    """Words of the visible paragraphs in the page's article region: the <article> (or, without
    one, the <main>) holding the most paragraph words; 0 for a page with neither (its paragraphs
    could be anything). Paragraphs in navigation, asides, footers, forms and figures, and those
    that are mostly link text (teasers), are not counted. Read before trafilatura prunes the tree."""
    regions = list(tree.iter("article")) or list(tree.iter("main"))
    return max((_paragraph_words(region) for region in regions), default=0)


def _paragraph_words(region: HtmlElement) -> int:
    words = 0
    for paragraph in region.iter("p"):
        if any(a.tag in _NOT_ARTICLE_CONTAINERS or a.get("hidden") is not None for a in paragraph.iterancestors()):
            continue
        text = paragraph.text_content()
        linked = sum(len(a.text_content()) for a in paragraph.iter("a"))
        if linked * 2 >= len(text.strip()):
            continue  # a teaser or a list of links
        words += len(WORD_RE.findall(text))
    return words
