"""A second reader of every page, resiliparse's main-content text, as a witness to the body's blocks.

resiliparse reads a page in some 2.5 ms (C++), where a trafilatura pass costs 12 to 37 ms, so it
can run on every page. Alone it keeps more than the article (body precision 0.86 on the tune half
of bench/extraction.py's pages, recall 0.99): what it leaves out is rarely article text, and what
it keeps is not always. So it decides nothing alone, only where it and the body found the same
article (it holds MAIN_CONTENT_AGREEMENT of the body's trigrams), and only together with a second
sign:

- a short block of the body (SHORT_BLOCK_WORDS or fewer: a box's heading, a teaser headline, a
  browser notice) that it left out is dropped; a longer one is a paragraph, which a reader's
  heuristics may misjudge, and stays;
- a long paragraph of the page that the body lacks is put back when it sits among the article's
  own paragraphs (between the first and the last the body kept, in an element of the same tag
  and class as one holding them: some templates wrap each paragraph in its own `<div>`) and it
  was found too: trafilatura's precision mode drops such a paragraph now and then, while
  captions, teasers and comments sit in other elements;
- a shorter paragraph (RESTORED_LINKED_WORDS or more) is put back on the same terms when it is
  built exactly like the article's own (the paragraph and its container of the same kind as a
  paragraph the body kept and its container) and carries a link of at most half its text: the
  precision mode drops short paragraphs for their links, and a box in the article (a newsletter
  sign-up, a teaser) is built unlike the article's paragraphs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml.etree import Element

from extraction.body import block_text, blocks, is_prompt, linked_share, page_text, remove_block
from extraction.candidates import BLOCK_AGREEMENT, Candidate, coverage, has_block, trigrams, trigrams_of, words_of

if TYPE_CHECKING:
    from lxml.etree import _Element
    from lxml.html import HtmlElement

# The body and the main-content reader found the same article when this much of the body is in it.
MAIN_CONTENT_AGREEMENT = 0.9
# A block of up to this many words that the main-content reader left out is dropped.
SHORT_BLOCK_WORDS = 30
# A paragraph of at least this many words among the article's own, which the body lacks, is put back.
RESTORED_PARAGRAPH_WORDS = 30
# A shorter one of at least this many words is put back when it is built like the article's own and linked.
RESTORED_LINKED_WORDS = 10
# ... and its links are at most this share of its text (a teaser or a "read more" is mostly link).
RESTORED_LINK_SHARE = 0.5


def main_content_candidate(html: str) -> Candidate:
    """resiliparse's main-content text of the page, line by line (empty if it finds none)."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    text = extract_plain_text(
        HTMLTree.parse(html), main_content=True, alt_texts=False, links=False, form_fields=False, noscript=False
    )
    return Candidate.from_text("resiliparse", text)


def read_with_main_content(page: HtmlElement, body: _Element, witness: Candidate) -> tuple[int, int]:
    """Where the body and the witness found the same article, drop the body's short blocks the
    witness left out and put back the long paragraphs it confirms; return how many of each.
    Where they disagree (the witness took another part of the page), the body stays as it is."""
    if not witness.texts:
        return 0, 0
    found = [_Block(element, text, words_of(text)) for element in blocks(body) if (text := block_text(element))]
    body_grams: set[tuple[str, ...]] = set().union(*(block.grams for block in found))
    if coverage(body_grams, witness.grams) < MAIN_CONTENT_AGREEMENT:
        return 0, 0
    kept = _drop_short_blocks(found, witness)
    return len(found) - len(kept), _restore_paragraphs(page, body, kept, body_grams, witness)


@dataclass
class _Block:
    element: _Element
    text: str
    words: list[str]

    @functools.cached_property
    def grams(self) -> set[tuple[str, ...]]:
        return trigrams_of(self.words)


def _drop_short_blocks(found: list[_Block], witness: Candidate) -> list[_Block]:
    """Remove the short blocks the witness does not have; return the blocks left."""
    kept = []
    for block in found:
        if 0 < len(block.words) <= SHORT_BLOCK_WORDS and not has_block(witness, block.words, block.grams):
            remove_block(block.element)
        else:
            kept.append(block)
    return kept


def _restore_paragraphs(
    page: HtmlElement, body: _Element, kept: list[_Block], body_grams: set[tuple[str, ...]], witness: Candidate
) -> int:
    """Put back, each after the kept paragraph before it, the page's paragraphs that sit among
    the article's own, are built like them, and that the witness found too."""
    kept_texts = {block.text for block in kept}
    paragraphs = [(p, text) for p in page.iter("p") if (text := block_text(p))]
    kept_at = [i for i, (_, text) in enumerate(paragraphs) if text in kept_texts]
    if len(kept_at) < 2:
        return 0
    template = _Template.of([paragraphs[i][0] for i in kept_at])
    restored = 0
    anchor: _Element | None = None  # the body element the next paragraph put back goes after
    previous_kept = ""  # the text of the last paragraph the body kept (its element found lazily)
    for i in range(kept_at[0], kept_at[-1]):
        paragraph, text = paragraphs[i]
        if text in kept_texts:
            anchor, previous_kept = None, text
            continue
        words = words_of(text)
        grams = trigrams_of(words)
        if coverage(grams, body_grams) >= BLOCK_AGREEMENT:
            # The body holds it a little changed (trafilatura's text is not always the page's
            # letter for letter): it is kept, not to be put back twice, and what follows goes after it.
            anchor, previous_kept = None, text
            continue
        if not template.fits(paragraph, len(words)):
            continue
        if coverage(grams, witness.grams) < BLOCK_AGREEMENT or is_prompt(text):
            continue  # not found by the witness, or what the body's cleaning takes out (a notice)
        anchor = anchor if anchor is not None else _body_block_of(previous_kept, kept, body)
        if anchor is None:
            continue
        restored_block = Element("p")
        restored_block.text = page_text(paragraph)
        anchor.addnext(restored_block)
        anchor = restored_block
        restored += 1
    return restored


@dataclass
class _Template:
    """How the article's paragraphs that the body kept are built in the page."""

    parent_kinds: set[tuple[str, str] | None]
    paragraph_kinds: set[tuple[tuple[str, str] | None, tuple[str, str] | None]]

    @classmethod
    def of(cls, kept: list[HtmlElement]) -> _Template:
        return cls(
            parent_kinds={_kind(paragraph.getparent()) for paragraph in kept},
            paragraph_kinds={(_kind(paragraph), _kind(paragraph.getparent())) for paragraph in kept},
        )

    def fits(self, paragraph: HtmlElement, words: int) -> bool:
        """A paragraph of `words` words sits among the article's own: long, in one of their
        containers or one of the same kind; or shorter, built exactly like one and sparingly linked."""
        parent = paragraph.getparent()
        if parent is None or _kind(parent) not in self.parent_kinds:
            return False
        if words >= RESTORED_PARAGRAPH_WORDS:
            return True
        return (
            words >= RESTORED_LINKED_WORDS
            and (_kind(paragraph), _kind(parent)) in self.paragraph_kinds
            and 0 < linked_share(paragraph) <= RESTORED_LINK_SHARE
        )


def _kind(element: _Element | None) -> tuple[str, str] | None:
    """What an element is built as in the page's template: its tag and its class."""
    return None if element is None else (str(element.tag), element.get("class") or "")


def _body_block_of(text: str, kept: list[_Block], body: _Element) -> _Element | None:
    """The body's top-level element holding the block that has `text`, or None."""
    grams = trigrams(text)
    for block in kept:
        if block.text == text or coverage(grams, block.grams) >= BLOCK_AGREEMENT:
            element = block.element
            while element.getparent() is not None and element.getparent() is not body:
                element = element.getparent()
            return element if element.getparent() is body else None
    return None
