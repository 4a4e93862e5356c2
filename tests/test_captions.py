"""Captions set as paragraphs beside their image (extraction/captions.py), on whole pages."""

from __future__ import annotations

from lxml.etree import Element, SubElement

from extraction.captions import drop_captions
from extraction.core import extract_article

PARAGRAPHS = [
    "The harbour authority approved the new quay after a long night of debate in the council chamber.",
    "Fishermen had argued for years that the old wall could not hold another winter of storms.",
    "Engineers will begin driving piles in the spring, once the herring season is over.",
    "The cost, shared between the town and the regional fund, is put at four million pounds.",
]
ALT = "Harbour master Ines Okafor walks along the old wall at low tide"
CAPTION = f"{ALT} Coastal News Agency / Ann Lee"


def _page(caption: str, alt: str = ALT) -> str:
    """Twelve paragraphs, and after the fourth an image with `caption` beside it (not in a <figure>)."""
    paragraphs = [f"<p>{PARAGRAPHS[i % 4]} Paragraph {i} adds its own detail.</p>" for i in range(12)]
    image = f"<div class='pic'><img src='/wall.jpg' alt='{alt}'><div class='pic__info'><p>{caption}</p></div></div>"
    return (
        "<html lang='en'><head><title>Harbour gets its quay</title></head><body><article>"
        f"<h1>Harbour gets its quay</h1>{''.join(paragraphs[:4])}{image}{''.join(paragraphs[4:])}"
        "</article></body></html>"
    )


def test_a_paragraph_that_repeats_an_images_alt_text_is_its_caption() -> None:
    result = extract_article(_page(CAPTION), "https://example.org/quay")
    assert "Ines Okafor" not in result["text"]
    assert "1 caption" in result["provenance"]["text"]
    assert result["text"].count("Paragraph") == 12


def test_an_article_sentence_about_what_the_image_shows_stays() -> None:
    """It shares the image's words but says more than it: article text, not a caption."""
    sentence = (
        "Harbour master Ines Okafor walks along the old wall at low tide every morning, counting the"
        " cracks that the last storm opened and reporting them to the council's engineers."
    )
    result = extract_article(_page(sentence), "https://example.org/quay")
    assert sentence in result["text"]
    assert "caption" not in result["provenance"]["text"]


def test_an_alt_text_too_short_to_recognise_a_paragraph_by_drops_nothing() -> None:
    body = Element("body")
    for text in ["Photo: the old wall", *PARAGRAPHS]:
        SubElement(body, "p").text = text
    assert drop_captions(body, ["Photo: the old wall"], []) == 0
    assert len(body) == 5
    assert drop_captions(body, [ALT], []) == 0  # no block says it
    SubElement(body, "p").text = CAPTION
    assert drop_captions(body, ["", ALT], []) == 1
    assert [p.text for p in body] == ["Photo: the old wall", *PARAGRAPHS]


def test_a_credit_with_dashes_and_slashes_still_marks_a_caption() -> None:
    """Words are counted as the trigrams count them: punctuation between words is no word."""
    body = Element("body")
    SubElement(body, "p").text = PARAGRAPHS[0]
    SubElement(body, "p").text = f"{ALT} — Photo / AFP"
    assert drop_captions(body, [ALT], []) == 1
    assert [p.text for p in body] == [PARAGRAPHS[0]]


def test_an_alt_text_that_repeats_the_description_marks_no_caption() -> None:
    """A CMS may fill the lead image's alt with the page's summary: the standfirst repeating it stays."""
    standfirst = "Councillors voted nine to two for a quay that fishermen say will save the harbour."
    body = Element("body")
    for text in [standfirst, *PARAGRAPHS]:
        SubElement(body, "p").text = text
    assert drop_captions(body, [standfirst], [standfirst]) == 0
    assert drop_captions(body, [standfirst], []) == 1


def test_the_standfirst_stays_when_the_lead_images_alt_repeats_it() -> None:
    summary = "Harbour master Ines Okafor says the old wall will not hold another winter of storms at all"
    page = _page(CAPTION, alt=summary).replace("<head>", f"<head><meta name='description' content='{summary}'>")
    page = page.replace(
        "<h1>Harbour gets its quay</h1>", f"<h1>Harbour gets its quay</h1><div class='x'>{summary}</div>"
    )
    result = extract_article(page, "https://example.org/quay")
    assert result["text"].startswith(summary)
