"""Captions in the body: a block that repeats what the page says its image shows.

A caption set as a paragraph beside its image (not in a `<figcaption>`) passes for article text in
every reader. The page says what an image shows in the `<img>`'s alt text or title, and a caption
repeats it (often with a credit added, or the title does): a body block whose words are those of
an image's text is that image's caption, in any language and any markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extraction.body import block_text, blocks, remove_block
from extraction.candidates import coverage, trigrams, trigrams_of, words_of

if TYPE_CHECKING:
    from lxml.etree import _Element

# An image text shorter than this ("Photo", a name) says too little to recognise a paragraph by.
IMAGE_TEXT_MIN_WORDS = 5
# A block is an image's caption when one of the two holds this share of the other's word trigrams ...
CONTAINED = 0.9
# ... and the other at least this share of the first's (a credit or an agency added on either side).
OVERLAP = 0.6


def drop_captions(body: _Element, texts: list[str], summaries: list[str]) -> int:
    """Remove the blocks of `body` that repeat one of the image `texts`; return how many.

    An image text that says what one of the page's `summaries` says (its description: a CMS may
    fill the lead image's alt with it) tells no caption from the standfirst or the lead paragraph
    that repeat it, and is not used. (One that repeats the headline is used: a body block that
    repeats the headline is no article text either.)"""
    long_enough = [words for words in map(words_of, texts) if len(words) >= IMAGE_TEXT_MIN_WORDS]
    if not long_enough:
        return 0
    summary_grams = [trigrams(text) for text in summaries]
    image_grams = [
        grams
        for grams in map(trigrams_of, long_enough)
        if not any(_says_the_same(grams, summary) for summary in summary_grams)
    ]
    if not image_grams:
        return 0
    # Two trigram sets that each hold OVERLAP of the other are within 1 / OVERLAP of each other in
    # size: a block longer than that against the longest image text is never counted.
    longest = max(len(grams) for grams in image_grams) / OVERLAP + 2
    any_image_gram = set().union(*image_grams)
    dropped = 0
    for block in blocks(body):
        words = words_of(block_text(block))
        if len(words) > longest:
            continue
        grams = trigrams_of(words)
        if (
            grams
            and not grams.isdisjoint(any_image_gram)
            and any(_says_the_same(grams, image) for image in image_grams)
        ):
            remove_block(block)
            dropped += 1
    return dropped


def _says_the_same(block: set[tuple[str, ...]], image: set[tuple[str, ...]]) -> bool:
    shares = sorted((coverage(block, image), coverage(image, block)))
    return shares[0] >= OVERLAP and shares[1] >= CONTAINED
