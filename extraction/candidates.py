"""Body candidates, and a choice between them by agreement block by block.

trafilatura's two passes, readability-lxml and the structured data's articleBody each propose a
body. Two passes of one extractor are not independent witnesses (they often share a mistake), so
a candidate is judged by how much of it the *other* extractors also found: a navigation table or
a "related stories" box that one pass returns is found by no other candidate, while the
article's paragraphs are. Agreement is counted over word trigrams, block by block, so a long
text never wins by its length alone; a block that no other candidate has and that the page
shows as link text (a menu, a list of teasers) is dropped from the chosen body.
"""

from __future__ import annotations

import functools
import logging
import re
from copy import deepcopy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxml.etree import Element, SubElement

from extraction.body import block_text, blocks

if TYPE_CHECKING:
    from lxml.etree import _Element
    from lxml.html import HtmlElement

_WORD_RE = re.compile(r"\w+")
# Soft hyphens and zero-width characters: one reader keeps them inside words, another drops them.
_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
# A block shares this much of its trigrams with another candidate: that candidate found it too.
BLOCK_AGREEMENT = 0.6
# A candidate body at least this much of which the other extractors found is the article.
TEXT_AGREEMENT = 0.5
# Two candidates this similar (either way round) are the same text.
SAME_TEXT = 0.8
# A block whose words are this much link text is a menu or teaser line, unless confirmed.
LINK_TEXT_SHARE = 0.5
_BLOCK_TAGS_HTML = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "dd", "div")

logger = logging.getLogger(__name__)


def words_of(text: str) -> list[str]:
    """The words of `text` as they are compared: case-blind, invisible characters taken out."""
    return _WORD_RE.findall(_INVISIBLE_RE.sub("", text).casefold())


def trigrams(text: str) -> set[tuple[str, ...]]:
    """Word trigrams of `text`, case-blind (a text shorter than three words is one gram)."""
    return trigrams_of(words_of(text))


def trigrams_of(words: list[str]) -> set[tuple[str, ...]]:
    if len(words) < 3:
        return {tuple(words)} if words else set()
    return set(zip(words, words[1:], words[2:], strict=False))


def coverage(part: set[tuple[str, ...]], whole: set[tuple[str, ...]]) -> float:
    """The share of `part`'s trigrams that `whole` also has (0 for an empty part)."""
    return len(part & whole) / len(part) if part else 0.0


@dataclass
class Candidate:
    """One extractor's body as text blocks (the trafilatura passes keep their block tree too)."""

    name: str
    texts: list[str]
    tree: _Element | None = None

    @functools.cached_property
    def grams(self) -> set[tuple[str, ...]]:
        """All its trigrams (computed when first compared: a body nothing contradicts never is)."""
        return set().union(*(trigrams(t) for t in self.texts)) if self.texts else set()

    @functools.cached_property
    def running_words(self) -> str:
        """Its words in order, space-separated and space-framed: a short block is looked up in it."""
        return " " + " ".join(word for text in self.texts for word in words_of(text)) + " "

    @property
    def words(self) -> int:
        return sum(len(_WORD_RE.findall(t)) for t in self.texts)

    @classmethod
    def from_tree(cls, name: str, tree: _Element) -> Candidate:
        return cls(name, [t for t in (block_text(b) for b in blocks(tree)) if t], tree)

    @classmethod
    def from_text(cls, name: str, text: str) -> Candidate:
        return cls(name, [line for line in text.splitlines() if line.strip()])


def same_text(a: Candidate, b: Candidate) -> bool:
    """Either candidate is (nearly) contained in the other: they found the same article."""
    return coverage(a.grams, b.grams) >= SAME_TEXT or coverage(b.grams, a.grams) >= SAME_TEXT


def has_block(witness: Candidate, words: list[str], grams: set[tuple[str, ...]] | None = None) -> bool:
    """The witness found the block of these words (words_of; `grams` their trigrams, if known)
    too: most of its trigrams, or, under three words, the words in a row."""
    if len(words) < 3:
        return bool(words) and f" {' '.join(words)} " in witness.running_words
    return coverage(grams if grams is not None else trigrams_of(words), witness.grams) >= BLOCK_AGREEMENT


def supported_share(candidate: Candidate, witnesses: list[Candidate]) -> float:
    """The share of the candidate's words in blocks that at least one witness also found."""
    total = supported = 0
    for text in candidate.texts:
        words = len(_WORD_RE.findall(text))
        total += words
        grams = trigrams(text)
        if any(coverage(grams, w.grams) >= BLOCK_AGREEMENT for w in witnesses):
            supported += words
    return supported / total if total else 0.0


def link_texts(page: HtmlElement) -> set[str]:
    """The page's link texts, normalised as block_text normalises a block."""
    return {" ".join(" ".join(a.itertext()).split()).casefold() for a in page.iter("a")} - {""}


def link_share(candidate: Candidate, links: set[str]) -> float:
    """The share of the candidate's words in blocks that are, whole, the text of a link."""
    total = linked = 0
    for text in candidate.texts:
        words = len(_WORD_RE.findall(text))
        total += words
        linked += words if text.casefold() in links else 0
    return linked / total if total else 0.0


def readability_candidate(page: HtmlElement, url: str) -> Candidate | None:
    """readability-lxml's body as blocks, or None if it finds none (it works on its own copy)."""
    from lxml.html import fragment_fromstring
    from readability import Document
    from readability.readability import Unparseable

    try:
        summary = Document(deepcopy(page), url=url).summary(html_partial=True)
        fragment = fragment_fromstring(summary)
    except (Unparseable, ValueError, TypeError) as exc:
        logger.debug("readability found no body in %s: %s", url, exc)
        return None
    texts: list[str] = []
    for element in fragment.iter(_BLOCK_TAGS_HTML):
        if any(True for _ in element.iterdescendants(_BLOCK_TAGS_HTML)):
            continue  # a container: its blocks are taken one by one
        text = " ".join(element.text_content().split())
        if text:
            texts.append(text)
    return Candidate("readability", texts) if texts else None


def as_block_tree(candidate: Candidate) -> _Element:
    """A body tree like trafilatura's (one <p> per block) for a candidate that has none."""
    body = Element("body")
    for text in candidate.texts:
        SubElement(body, "p").text = text
    return body


def drop_unconfirmed_links(candidate: Candidate, witnesses: list[Candidate], links: set[str]) -> int:
    """Remove from the candidate's tree the blocks that are link text and that no witness found
    (a menu or a teaser list inside the chosen body); return how many went."""
    if candidate.tree is None or not witnesses:
        return 0
    dropped = 0
    for element in blocks(candidate.tree):
        text = block_text(element)
        if text.casefold() not in links:
            continue
        if any(coverage(trigrams(text), w.grams) >= BLOCK_AGREEMENT for w in witnesses):
            continue
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
            dropped += 1
    return dropped


@dataclass
class Choice:
    """The chosen candidate, why, and its share of words that the other extractors confirm."""

    candidate: Candidate
    reason: str
    support: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)


def choose(candidates: list[Candidate], family: dict[str, str]) -> Choice | None:
    """The candidate whose blocks the other extractors confirm most, or None if none reaches
    TEXT_AGREEMENT. `family` names each candidate's extractor: a candidate is only confirmed by
    candidates of other families (trafilatura's second pass does not confirm its first)."""
    scores: dict[str, float] = {}
    for candidate in candidates:
        witnesses = [w for w in candidates if family[w.name] != family[candidate.name]]
        scores[candidate.name] = supported_share(candidate, witnesses)
    best = max(candidates, key=lambda c: scores[c.name])  # first wins a tie: candidates come cheapest first
    if scores[best.name] < TEXT_AGREEMENT:
        return None
    agreeing = sorted(
        {family[w.name] for w in candidates if family[w.name] != family[best.name] and same_text(best, w)}
    )
    reason = f"agreed by {', '.join(agreeing)}" if agreeing else f"{scores[best.name]:.0%} confirmed"
    return Choice(best, reason, scores[best.name], scores)
