"""A second reader's main content as a witness to the body's short blocks (extraction/candidates.py).

resiliparse runs for real on made-up pages; the rule is also tested on body trees, where what
the witness holds is written out, so each side of each threshold is shown.
"""

from __future__ import annotations

from lxml.etree import Element, SubElement

from extraction.candidates import SHORT_BLOCK_WORDS, Candidate, drop_short_blocks_not_in, main_content_candidate
from extraction.core import extract_article

ARTICLE = [
    "The council debated the harbour plan for three hours on Tuesday. Members said the vote would follow"
    " next week, once the port authority has answered questions about dredging and the cost of new quays.",
    "Fishermen who moor in the old basin fear higher fees. Their association wrote to every councillor"
    " asking for a guarantee that small boats keep their berths when the container terminal grows.",
    "The finance committee still has to approve the loan. Its chair warned that interest rates had risen"
    " since the plan was drawn up and that the city might have to sell land near the railway station.",
    "Residents of the waterfront streets collected four hundred signatures against night-time lorry traffic,"
    " which the plan would route past two primary schools and a care home on Quay Road.",
]


def _paragraph(number: int) -> str:
    return f"<p>{ARTICLE[number]}</p>"


def _page(extra_in_article: str = "") -> str:
    return f"""<html><head><title>Harbour plan vote delayed</title></head><body>
<nav><a href="/">Home</a> <a href="/news">News</a></nav>
<article><h1>Harbour plan vote delayed</h1>
{_paragraph(0)}{_paragraph(1)}
<div class="recommended"><ul><li>Ferry fares to rise in spring</li><li>New mayor sworn in at city hall</li></ul></div>
<h2>Budget questions</h2>
{extra_in_article}{_paragraph(2)}{_paragraph(3)}
</article><footer>Contact us</footer></body></html>"""


def _body(*texts: str) -> Element:
    body = Element("body")
    for text in texts:
        SubElement(body, "p").text = text
    return body


def _texts(body: Element) -> list[str]:
    return [p.text or "" for p in body]


def test_a_teaser_list_inside_the_article_is_dropped_and_the_article_kept() -> None:
    fields = extract_article(_page(), "https://example.org/news/harbour-plan")
    assert "Ferry fares to rise" not in fields["text"]
    assert "New mayor sworn in" not in fields["text"]
    for paragraph in ARTICLE:
        assert paragraph in fields["text"]
    assert "Budget questions" in fields["text"]  # a two-word heading the second reader also has
    assert "2 not in main content" in fields["provenance"]["text"]


def test_an_article_line_worded_like_a_teaser_stays() -> None:
    """Look-alike: a short paragraph of the article reads like the teaser's headline."""
    line = "Ferry fares to rise in spring, the council said."
    fields = extract_article(_page(f"<p>{line}</p>"), "https://example.org/news/harbour-plan")
    assert line in fields["text"]
    assert "New mayor sworn in" not in fields["text"]


def test_the_second_reader_runs_on_the_page_and_keeps_the_article() -> None:
    witness = main_content_candidate(_page())
    assert ARTICLE[3] in witness.texts
    assert not any("Ferry fares" in text for text in witness.texts)
    assert main_content_candidate("<html><body></body></html>").texts == []


def test_only_short_blocks_the_witness_left_out_go() -> None:
    long_block = " ".join(["word"] * (SHORT_BLOCK_WORDS + 1))
    short_block = " ".join(["teaser"] * SHORT_BLOCK_WORDS)
    body = _body(*ARTICLE, long_block, short_block, "Budget questions")
    witness = Candidate("resiliparse", [*ARTICLE, "Budget questions"])
    assert drop_short_blocks_not_in(body, witness) == 1
    assert _texts(body) == [*ARTICLE, long_block, "Budget questions"]


def test_nothing_goes_when_the_witness_read_another_part_of_the_page() -> None:
    body = _body(*ARTICLE, "Most read today")
    witness = Candidate("resiliparse", [ARTICLE[0], "A list of other stories of the day, read by many people"])
    assert drop_short_blocks_not_in(body, witness) == 0
    assert drop_short_blocks_not_in(body, Candidate("resiliparse", [])) == 0
    assert _texts(body) == [*ARTICLE, "Most read today"]


def test_soft_hyphens_in_one_reader_do_not_hide_a_block() -> None:
    heading = "Steilere Zinskurve erwartet"
    body = _body(*ARTICLE, heading, "Zinskurve")
    hyphenated = ["Stei\u00adle\u00adre Zins\u00adkur\u00adve erwartet", "Zins\u00adkurve"]
    witness = Candidate("resiliparse", [*ARTICLE, *hyphenated])
    assert drop_short_blocks_not_in(body, witness) == 0
    assert _texts(body)[-2:] == [heading, "Zinskurve"]
