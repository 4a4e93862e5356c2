"""The standfirst: the paragraph under the headline that sums the article up.

News templates put it in the article's `<header>` (or a paragraph, or its container, classed
"lead", "intro", "standfirst", "dek", "preamble", "ingress", "chapo", ...), next to the headline
and the byline. trafilatura's precision mode drops that header whole, standfirst included, and
its default mode often does too. This finds it again in the page, from the structure alone: a
real paragraph, in the article's header, before the first paragraph of the extracted body, in
the same `<article>` (or `<main>`), not in a figure, not classed as a notice, caption or byline,
and not mostly link text (a teaser of another story is).

Where the template names nothing (generated class names, a data attribute), the page's own summary
names it: a text block before the body's start, in the article's element or above it (a paragraph,
a subheading, a `<div>` holding its text), that says what the page's description says (its
`description`, og:description or twitter:description, word trigrams agreeing both ways) is the
standfirst shown under the headline, whatever its markup.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lxml.etree import Element

from extraction.body import block_text, blocks, linked_share, page_text
from extraction.candidates import coverage, trigrams, trigrams_of, words_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lxml.etree import _Element
    from lxml.html import HtmlElement

MIN_WORDS = 15  # shorter paragraphs in a header are bylines, datelines and captions
MAX_LINK_SHARE = 0.3
_HEADER_DEPTH = 6  # a header further up than this is the page's, not the article's
_BODY_START_BLOCKS = 3  # the body's first blocks tried when finding where it starts in the page
_LEAD_CLASS_RE = re.compile(
    r"lead|intro|standfirst|\bdek\b|teaser|summary|excerpt|subtitle|subline|preface|abstract|preamble|ingress|"
    r"chapo|chapeau|sapo|entradilla|bajada",
    re.IGNORECASE,
)
# A paragraph (or its container) classed as one of these is a notice or a label, not a standfirst.
_NOT_LEAD_CLASS_RE = re.compile(r"notice|disclaimer|alert|warning|caption|credit|byline|author", re.IGNORECASE)
_CLASS_DEPTH = 2  # the paragraph, or the container up to this many levels above it, carries the class
# A block and the page's description say the same when this share of each one's word trigrams is in the other.
DESCRIPTION_AGREEMENT = 0.8
# Where a standfirst's text is held: a paragraph, a subheading, or a <div> holding its text itself.
_TEXT_BLOCK_TAGS = frozenset({"p", "div", "h2", "h3", "h4"})
# A <div> with none of these in it holds its text itself: a text block, as a <p> is.
_BLOCK_TAGS = frozenset({"p", "div", "section", "article", "ul", "ol", "table", "figure", "h1", "h2", "h3", "h4"})


def _normalized(text: str) -> str:
    return " ".join(text.split())


def restore_standfirst(page: HtmlElement, body: _Element, descriptions: Sequence[str] = ()) -> int:
    """Put the page's standfirst paragraphs, when the body lacks them, at the top of `body`
    (trafilatura's block tree); return how many were added."""
    paragraphs = standfirst(page, body, descriptions)
    for position, text in enumerate(paragraphs):
        paragraph = Element("p")
        paragraph.text = text
        body.insert(position, paragraph)
    return len(paragraphs)


def standfirst(page: HtmlElement, body: _Element, descriptions: Sequence[str] = ()) -> list[str]:
    """The standfirst paragraphs of `page` missing from the extracted `body`, in page order;
    `descriptions` are the page's meta descriptions (PageData.descriptions)."""
    body_blocks = [_normalized(block_text(block)) for block in blocks(body)]
    start = _body_start(page, body_blocks[:_BODY_START_BLOCKS])
    if start is None:
        return []  # without knowing where the body starts, "before it" means nothing
    scope = next((a for a in start.iterancestors("article", "main")), None)
    in_body = _BodyText(body_blocks)
    summaries = [trigrams(text) for text in descriptions if len(text.split()) >= MIN_WORDS]
    found: list[tuple[str, bool]] = []  # (text, found by the description before the headline)
    in_scope = scope is None  # the elements from `scope` on, up to `start`, are all inside it
    under_headline = False
    # `start` is a <p>, `scope` an <article> or <main>: both are walked.
    for element in page.iter(*_TEXT_BLOCK_TAGS, "h1", "article", "main"):
        if element is start:
            break
        in_scope = in_scope or element is scope
        under_headline = under_headline or element.tag == "h1"
        by_class = in_scope and element.tag == "p" and _is_standfirst(element, scope)
        if by_class or _says_the_description(element, summaries):
            text = page_text(element)
            if len(text.split()) >= MIN_WORDS and text not in (t for t, _ in found) and not in_body.holds(text):
                found.append((text, not by_class and not under_headline))
    # A page summary shown above the headline (a masthead's tagline) is no standfirst.
    return [text for text, above_headline in found if not (above_headline and under_headline)]


class _BodyText:
    """The body's blocks, to tell whether a text is one of them: the same words, however spaced
    (the body's text puts a space at every tag edge, "harbour , after")."""

    def __init__(self, body_blocks: list[str]) -> None:
        self.texts = set(body_blocks)
        self._words: set[str] | None = None  # made only when a standfirst is found

    def holds(self, text: str) -> bool:
        if text in self.texts:
            return True
        if self._words is None:
            self._words = {" ".join(words_of(block)) for block in self.texts}
        return " ".join(words_of(text)) in self._words


def _body_start(page: HtmlElement, first_blocks: list[str]) -> HtmlElement | None:
    """The page's paragraph that the body's first paragraph came from."""
    for text in first_blocks:
        if len(text.split()) < 3:
            continue  # too short to find just one paragraph by
        matches = page.xpath("//p[starts-with(normalize-space(.), $prefix)]", prefix=text[:80])
        if matches:
            return matches[0]
    return None


def _is_standfirst(paragraph: HtmlElement, scope: HtmlElement | None) -> bool:
    in_header = any(
        ancestor.tag == "header" for ancestor, _ in zip(paragraph.iterancestors(), range(_HEADER_DEPTH), strict=False)
    )
    if not in_header and not _lead_classed(paragraph):
        return False
    if _classed(paragraph, _NOT_LEAD_CLASS_RE):
        return False
    if scope is None and not in_header:
        return False
    return linked_share(paragraph) <= MAX_LINK_SHARE  # a teaser of another story is more


def _lead_classed(paragraph: HtmlElement) -> bool:
    """The paragraph, or its container, is classed as a lead (a caption in a lead image is not)."""
    if any(ancestor.tag in ("figure", "figcaption") for ancestor in paragraph.iterancestors()):
        return False
    return _classed(paragraph, _LEAD_CLASS_RE)


def _classed(paragraph: HtmlElement, pattern: re.Pattern[str]) -> bool:
    """The paragraph, or a container up to _CLASS_DEPTH levels above it, has a class `pattern` finds."""
    element: HtmlElement | None = paragraph
    for _ in range(_CLASS_DEPTH + 1):
        if element is None:
            return False
        if pattern.search(element.get("class") or ""):
            return True
        element = element.getparent()
    return False


def _says_the_description(element: HtmlElement, descriptions: list[set[tuple[str, ...]]]) -> bool:
    """A text block (a paragraph, a subheading, a <div> with no blocks in it), not in a figure,
    not a notice and not mostly links, whose text and one of the page's descriptions each hold
    DESCRIPTION_AGREEMENT of the other's trigrams."""
    if not descriptions or element.tag not in _TEXT_BLOCK_TAGS or any(child.tag in _BLOCK_TAGS for child in element):
        # walked in document order, a <div> is met before the blocks in it: it is theirs to say
        return False
    words = words_of(element.text_content())
    # Trigram sets this far apart in size cannot agree both ways: most blocks end here, uncounted.
    if not any(
        DESCRIPTION_AGREEMENT * len(d) <= len(words) <= len(d) / DESCRIPTION_AGREEMENT + 2 for d in descriptions
    ):
        return False
    if any(ancestor.tag in ("figure", "figcaption") for ancestor in element.iterancestors()):
        return False
    if _classed(element, _NOT_LEAD_CLASS_RE) or linked_share(element) > MAX_LINK_SHARE:
        return False
    grams = trigrams_of(words)
    return any(
        coverage(grams, description) >= DESCRIPTION_AGREEMENT and coverage(description, grams) >= DESCRIPTION_AGREEMENT
        for description in descriptions
    )
