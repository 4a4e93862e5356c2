"""The article body: which of the candidate texts (trafilatura's precise and default passes,
readability-lxml, the structured data's articleBody) becomes the body, and why (its origin)."""

from __future__ import annotations

from copy import copy
from typing import TYPE_CHECKING, cast

from trafilatura import bare_extraction

from extraction.body import block_text, blocks
from extraction.candidates import (
    BLOCK_AGREEMENT,
    Candidate,
    as_block_tree,
    choose,
    coverage,
    drop_unconfirmed_links,
    has_block,
    link_share,
    link_texts,
    readability_candidate,
    same_text,
    trigrams,
    trigrams_of,
    words_of,
)
from extraction.standfirst import DESCRIPTION_AGREEMENT, restore_standfirst

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lxml.etree import _Element
    from lxml.html import HtmlElement
    from trafilatura.settings import Document

# A JSON-LD articleBody shorter than this is no witness for a body, nor a body of its own.
ARTICLE_BODY_MIN_WORDS = 50
# A precise pass at least this long has the article: the default-mode pass is not run.
FULL_PASS_BELOW_WORDS = 300
# The precise pass keeping less than this share of the full pass's words lost the article itself
# (a page whose markup its stricter filters misjudge), not just boilerplate.
PRECISE_MIN_SHARE = 0.25
# A paragraph the full pass finds above the precise pass's first block is the article's lead when
# it is at least this long (shorter ones are labels, bylines and captions).
LEAD_MIN_WORDS = 15
# A body this much of which is, block for block, the text of the page's links is a menu or a
# list of teasers (a navigation table), not an article: the other candidates are consulted.
LINK_BODY_SHARE = 0.5
# A shorter precise pass that holds this much of the main-content reader's text (which keeps more
# than the article, seldom less) and misses no lead of it is taken to have the whole article: the
# default-mode pass is not run.
MAIN_CONTENT_HELD = 0.8


def _body_pass(tree: HtmlElement, url: str, *, precise: bool) -> _Element | None:
    # With as_dict left False trafilatura returns a Document (or None); its hint, one union for
    # both cases, has no overload that says so.
    document = cast(
        "Document | None",
        bare_extraction(
            tree,  # trafilatura works on its own copy
            url=url,
            with_metadata=False,  # the page's metadata is read by FieldPicker, trafilatura's only if needed
            include_comments=True,  # comments go to their own field (unused), not into the body
            include_formatting=True,
            output_format="markdown",
            favor_precision=precise,
            fast=precise,  # the precise pass needs no fallback extractors: they only add recall
        ),
    )
    return document.body if document is not None else None


def extract_body(
    tree: HtmlElement,
    url: str,
    article_body: str = "",
    descriptions: Sequence[str] = (),
    main_content: Candidate | None = None,
    headlines: Sequence[str] = (),
) -> tuple[_Element | None, str]:
    """The article body as a block tree like trafilatura's, and which candidate it came from.

    trafilatura's precision mode drops more of what surrounds an article (teasers of other
    stories, paywall offers, author boxes) than its default mode, and costs less (no fallback
    extractors): it runs first. Its body is kept, with the standfirst it drops put back (see
    standfirst.py), when it is long and nothing contradicts it: the structured data's
    articleBody, when the page has one, is the same text, and it is not mostly link text (a
    navigation table). Otherwise the default mode runs too. When the two passes find the same
    text, the precise one is kept (the default one when the precise pass kept only a small part
    of it: it lost the article), with lead paragraphs above its start put back. When they find
    different texts, readability-lxml runs as well, and the candidate whose blocks the other
    extractors confirm most is chosen (see candidates.py). The page's `descriptions` (its meta
    description tags) help find the standfirst. A shorter precise pass is kept without the
    default one when the page's `main_content` (a second reader's text, see main_content.py)
    shows that it holds the whole article, its lead included (the page's `headlines` above it are
    no lead, nor a description the standfirst rule puts back).
    """
    precise = _body_pass(tree, url, precise=True)
    ld = Candidate.from_text("json-ld articleBody", article_body)
    ld_witness = [ld] if ld.words >= ARTICLE_BODY_MIN_WORDS else []
    first = Candidate.from_tree("trafilatura precise", precise) if precise is not None else None
    links: set[str] | None = None
    if first is not None and first.words >= FULL_PASS_BELOW_WORDS:
        links = link_texts(tree)
        if not _contradicted(first, ld_witness, links):
            return _with_standfirst(tree, precise, "trafilatura precise", descriptions)
    elif (
        first is not None
        and main_content is not None
        and _holds_main_content(first, main_content, headlines, descriptions)
    ):
        links = link_texts(tree)
        if not _contradicted(first, ld_witness, links):
            return _with_standfirst(tree, precise, "trafilatura precise (holds the main content)", descriptions)
    full = _body_pass(tree, url, precise=False)
    if first is None or full is None:
        body, origin = (precise, "trafilatura precise") if full is None else (full, "trafilatura")
        return _with_standfirst(tree, body, origin, descriptions) if body is not None else (None, origin)
    second = Candidate.from_tree("trafilatura", full)
    if same_text(first, second):
        return _same_text_passes(tree, precise, full, first, second, descriptions)
    links = links if links is not None else link_texts(tree)
    return _by_agreement(tree, url, first, second, ld_witness, links, descriptions)


def _contradicted(candidate: Candidate, ld_witness: list[Candidate], links: set[str]) -> bool:
    """The structured data's articleBody is another text, or the body is mostly link text."""
    if ld_witness and not same_text(candidate, ld_witness[0]):
        return True
    return link_share(candidate, links) >= LINK_BODY_SHARE


def _holds_main_content(
    first: Candidate, main_content: Candidate, headlines: Sequence[str], descriptions: Sequence[str]
) -> bool:
    """As far as the main-content reader can tell, the precise pass has the whole article: it
    holds MAIN_CONTENT_HELD of the reader's text, and the reader has no lead the pass lacks above
    the pass's first block of its own. A lead is a run of LEAD_MIN_WORDS or more words in lines
    the pass lacks (the reader breaks a paragraph at each <br>); a headline is none, nor is a
    description the standfirst rule will put back (one that agrees both ways with the line)."""
    if not first.texts or coverage(main_content.grams, first.grams) < MAIN_CONTENT_HELD:
        return False
    shown = Candidate("headlines", list(headlines))
    summaries = [trigrams(text) for text in descriptions]

    def said_elsewhere(words: list[str], grams: set[tuple[str, ...]]) -> bool:
        return has_block(shown, words, grams) or any(
            coverage(grams, summary) >= DESCRIPTION_AGREEMENT and coverage(summary, grams) >= DESCRIPTION_AGREEMENT
            for summary in summaries
        )

    own = ((words, trigrams_of(words)) for words in map(words_of, first.texts))
    start = next((grams for words, grams in own if not said_elsewhere(words, grams)), None)
    if start is None:
        return False  # the pass holds nothing but the headline
    missing = 0  # words in the run of lines above the start that the pass lacks
    for line in main_content.texts:
        words = words_of(line)
        grams = trigrams_of(words)
        if coverage(start, grams) >= BLOCK_AGREEMENT:
            return True  # the reader's text reached the pass's first block with no lead missing
        if has_block(first, words, grams) or said_elsewhere(words, grams):
            missing = 0
            continue
        missing += len(words)
        if missing >= LEAD_MIN_WORDS:
            return False  # a lead paragraph the default pass may have
    return False  # the pass's first block is not in the reader's text: nothing lines up


def _same_text_passes(
    tree: HtmlElement,
    precise: _Element,
    full: _Element,
    first: Candidate,
    second: Candidate,
    descriptions: Sequence[str],
) -> tuple[_Element, str]:
    """Both passes found the same article: the precise one, unless it kept only a small part of
    what the default pass found (its stricter filters then lost the article itself)."""
    if first.words < PRECISE_MIN_SHARE * second.words:
        return _with_standfirst(tree, full, "trafilatura (precise pass lost the article)", descriptions)
    restored = _restore_lead(precise, full)
    if restored:
        return precise, f"trafilatura precise (+{restored} lead paragraphs)"
    return _with_standfirst(tree, precise, "trafilatura precise", descriptions)


_FAMILY = {
    "trafilatura precise": "trafilatura",
    "trafilatura": "trafilatura",
    "readability": "readability",
    "json-ld articleBody": "json-ld articleBody",
}


def _by_agreement(
    tree: HtmlElement,
    url: str,
    first: Candidate,
    second: Candidate,
    ld_witness: list[Candidate],
    links: set[str],
    descriptions: Sequence[str],
) -> tuple[_Element, str]:
    """trafilatura's passes disagree: readability-lxml runs too, and the body is the candidate
    most confirmed by the other extractors, without link-text blocks none of them found."""
    candidates = [first, second, *ld_witness]
    readable = readability_candidate(tree, url)
    if readable is not None:
        candidates.insert(2, readable)
    choice = choose(candidates, _FAMILY)
    if choice is None:  # nobody confirms anybody: the precise pass, as without a third opinion
        body, origin = (first.tree, "trafilatura precise (passes disagree, unconfirmed)")
        assert body is not None
        return _with_standfirst(tree, body, origin, descriptions)
    chosen = choice.candidate
    if chosen.tree is None:
        chosen.tree = as_block_tree(chosen)
    witnesses = [c for c in candidates if _FAMILY[c.name] != _FAMILY[chosen.name]]
    dropped = drop_unconfirmed_links(chosen, witnesses, links)
    origin = f"{chosen.name} ({choice.reason}" + (f", {dropped} link blocks dropped)" if dropped else ")")
    return _with_standfirst(tree, chosen.tree, origin, descriptions)


def _with_standfirst(
    tree: HtmlElement, body: _Element, origin: str, descriptions: Sequence[str]
) -> tuple[_Element, str]:
    restored = restore_standfirst(tree, body, descriptions)
    return body, origin + (f" (+{restored} standfirst paragraphs)" if restored else "")


def _restore_lead(precise: _Element, full: _Element) -> int:
    """Copy paragraphs that the full pass has above the precise pass's first paragraph (its
    first block that is no heading: a pass may start with the headline) into it, there."""
    start = next((b for b in blocks(precise) if b.tag != "head"), None)
    if start is None:
        return 0
    first = block_text(start)
    lead: list[_Element] = []
    for element in blocks(full):
        if block_text(element) == first:
            break
        if element.getparent() is full and element.tag != "head" and len(block_text(element).split()) >= LEAD_MIN_WORDS:
            lead.append(element)
    else:
        return 0  # the precise pass's start is not in the full pass: nothing to line up
    top = start
    while top.getparent() is not None and top.getparent() is not precise:
        top = top.getparent()
    at = precise.index(top) if top.getparent() is precise else 0
    for position, element in enumerate(lead, start=at):
        copied = copy(element)
        copied.tail = None
        precise.insert(position, copied)
    return len(lead)
