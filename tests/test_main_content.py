"""A second reader's main content as a witness to the body's blocks (extraction/main_content.py).

resiliparse runs for real on made-up pages; the rules are also tested on body trees, where what
the witness holds is written out, so each side of each threshold is shown.
"""

from __future__ import annotations

from lxml.etree import Element, SubElement
from lxml.html import HtmlElement, document_fromstring

from extraction.candidates import Candidate
from extraction.core import extract_article
from extraction.main_content import SHORT_BLOCK_WORDS, main_content_candidate, read_with_main_content

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


NO_PAGE: HtmlElement = document_fromstring("<html><body></body></html>")


def _dropped(body: Element, witness: Candidate) -> int:
    return read_with_main_content(NO_PAGE, body, witness)[0]


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
    assert _dropped(body, witness) == 1
    assert _texts(body) == [*ARTICLE, long_block, "Budget questions"]


def test_nothing_goes_when_the_witness_read_another_part_of_the_page() -> None:
    body = _body(*ARTICLE, "Most read today")
    witness = Candidate("resiliparse", [ARTICLE[0], "A list of other stories of the day, read by many people"])
    assert _dropped(body, witness) == 0
    assert _dropped(body, Candidate("resiliparse", [])) == 0
    assert _texts(body) == [*ARTICLE, "Most read today"]


def test_soft_hyphens_in_one_reader_do_not_hide_a_block() -> None:
    heading = "Steilere Zinskurve erwartet"
    body = _body(*ARTICLE, heading, "Zinskurve")
    hyphenated = ["Stei\u00adle\u00adre Zins\u00adkur\u00adve erwartet", "Zins\u00adkurve"]
    witness = Candidate("resiliparse", [*ARTICLE, *hyphenated])
    assert _dropped(body, witness) == 0
    assert _texts(body)[-2:] == [heading, "Zinskurve"]


# --- paragraphs put back --------------------------------------------------------------------

DROPPED = (
    "Harbour master Ines Okafor told the meeting that two of the four cranes were older than the"
    " harbour's own records, and that nobody could say how much longer their motors would run without"
    " a full overhaul of the electrics."
)
CAPTION = (
    "Cranes at the container terminal on a grey morning in March, seen from the ferry pier; the"
    " council wants to replace two of them with electric ones before the new quay opens to ships"
    " next year."
)


def _article_page(*, dropped_in: str = "article") -> HtmlElement:
    """The article's paragraphs in one <div>; DROPPED among them (or in a <figure>), CAPTION in one."""
    dropped = f"<p>{DROPPED}</p>"
    return document_fromstring(f"""<html><body><div class="story">
<p>{ARTICLE[0]}</p><p>{ARTICLE[1]}</p>{dropped if dropped_in == "article" else ""}
<figure><p>{CAPTION}</p></figure>
<p>{ARTICLE[2]}</p><p>{ARTICLE[3]}</p></div>
{dropped if dropped_in == "after" else ""}
</body></html>""")


def test_a_long_paragraph_among_the_articles_own_is_put_back_in_its_place() -> None:
    body = _body(*ARTICLE)
    witness = Candidate("resiliparse", [*ARTICLE[:2], DROPPED, CAPTION, *ARTICLE[2:]])
    assert read_with_main_content(_article_page(), body, witness) == (0, 1)
    assert _texts(body) == [ARTICLE[0], ARTICLE[1], DROPPED, ARTICLE[2], ARTICLE[3]]  # the caption is elsewhere


def test_a_paragraph_the_witness_did_not_find_or_after_the_article_stays_out() -> None:
    body = _body(*ARTICLE)
    assert read_with_main_content(_article_page(), body, Candidate("resiliparse", ARTICLE)) == (0, 0)
    witness = Candidate("resiliparse", [*ARTICLE, DROPPED])
    assert read_with_main_content(_article_page(dropped_in="after"), body, witness) == (0, 0)
    assert _texts(body) == ARTICLE


def test_a_paragraph_the_body_has_in_other_words_is_not_put_back_twice() -> None:
    """trafilatura's text of a paragraph can differ a little from the page's (a changed word)."""
    reworded = DROPPED.replace("two of the four", "two out of four")
    body = _body(ARTICLE[0], ARTICLE[1], reworded, ARTICLE[2], ARTICLE[3])
    witness = Candidate("resiliparse", [*ARTICLE, DROPPED])
    assert read_with_main_content(_article_page(), body, witness) == (0, 0)


def test_a_notice_among_the_paragraphs_is_not_put_back_though_the_witness_has_it() -> None:
    """What the body's cleaning takes out (here a consent notice) stays out when it is long too."""
    notice = (
        "We use cookies and similar tracking technologies to show you external content from third-party"
        " providers in this article; click the button below to load it and accept that your data may"
        " be transferred to them."
    )
    page = document_fromstring(
        f"<html><body><div><p>{ARTICLE[0]}</p><p>{notice}</p><p>{ARTICLE[1]}</p></div></body></html>"
    )
    body = _body(ARTICLE[0], ARTICLE[1])
    assert read_with_main_content(page, body, Candidate("resiliparse", [ARTICLE[0], notice, ARTICLE[1]])) == (0, 0)
    assert _texts(body) == ARTICLE[:2]


# --- paragraphs put back where each paragraph has its own container ----------------------------

LINKED = (
    'The port also <a href="/news/dredging">dredged the old basin in 2019</a>, at a cost the council never published.'
)
UNLINKED = "The council has met in the old customs house since the town hall burned down."
CONSENT = 'By signing up you agree to our <a href="/terms">terms and privacy policy</a> for this newsletter.'


def _block(text: str, *, box: str = "text-block", paragraph: str = "para") -> str:
    return f'<div class="{box}"><p class="{paragraph}">{text}</p></div>'


def _template_page(*extra: str) -> HtmlElement:
    """Each paragraph in its own <div>, as some templates build them; `extra` between the second and third."""
    return document_fromstring(f"""<html><body><article>
{_block(ARTICLE[0])}{_block(ARTICLE[1])}{"".join(extra)}{_block(ARTICLE[2])}{_block(ARTICLE[3])}
</article></body></html>""")


def _plain(html: str) -> str:
    return document_fromstring(f"<html><body><p>{html}</p></body></html>").text_content()


def test_a_long_paragraph_in_its_own_container_of_the_articles_kind_is_put_back() -> None:
    body = _body(*ARTICLE)
    witness = Candidate("resiliparse", [*ARTICLE[:2], DROPPED, *ARTICLE[2:]])
    assert read_with_main_content(_template_page(_block(DROPPED)), body, witness) == (0, 1)
    assert _texts(body) == [ARTICLE[0], ARTICLE[1], DROPPED, ARTICLE[2], ARTICLE[3]]
    body = _body(*ARTICLE)  # a container of another kind is not the article's
    assert read_with_main_content(_template_page(_block(DROPPED, box="promo")), body, witness) == (0, 0)


def test_a_short_linked_paragraph_built_like_the_articles_own_is_put_back() -> None:
    """trafilatura's precision mode drops a short paragraph for its link; the template and the witness keep it."""
    body = _body(*ARTICLE)
    witness = Candidate("resiliparse", [*ARTICLE[:2], _plain(LINKED), *ARTICLE[2:]])
    assert read_with_main_content(_template_page(_block(LINKED)), body, witness) == (0, 1)
    assert _texts(body) == [ARTICLE[0], ARTICLE[1], _plain(LINKED), ARTICLE[2], ARTICLE[3]]


def test_short_paragraphs_unlinked_or_built_unlike_the_articles_own_stay_out() -> None:
    """A sign-up box in the article has a linked sentence too, but not the article's markup; a short
    unlinked paragraph is not what the precision mode drops for its links."""
    for extra, text in [
        (_block(CONSENT, box="signup", paragraph="small"), _plain(CONSENT)),
        (_block(CONSENT, paragraph="small"), _plain(CONSENT)),
        (_block(UNLINKED), UNLINKED),
        (_block(f'<a href="/more">{UNLINKED}</a>'), UNLINKED),  # all link: a teaser
    ]:
        body = _body(*ARTICLE)
        witness = Candidate("resiliparse", [*ARTICLE[:2], text, *ARTICLE[2:]])
        assert read_with_main_content(_template_page(extra), body, witness) == (0, 0), text
        assert _texts(body) == ARTICLE


def test_a_paragraph_put_back_keeps_its_line_breaks_as_spaces() -> None:
    broken = DROPPED.replace("were older than", "were older<br>than")
    body = _body(*ARTICLE)
    witness = Candidate("resiliparse", [*ARTICLE[:2], DROPPED, *ARTICLE[2:]])
    assert read_with_main_content(_template_page(_block(broken)), body, witness) == (0, 1)
    assert _texts(body)[2] == DROPPED


def test_a_classless_container_like_the_articles_own_counts_as_theirs() -> None:
    """Article paragraphs each in a classless <div>: a dropped one in another such <div> comes back
    (the witness and the place among the article's paragraphs guard it; on news-pages' tune half,
    asking for a class lost a page and won none)."""
    page = document_fromstring(
        "<html><body><article>"
        + "".join(f"<div><p>{text}</p></div>" for text in ARTICLE[:2])
        + f"<div><p>{DROPPED}</p></div>"
        + "".join(f"<div><p>{text}</p></div>" for text in ARTICLE[2:])
        + "</article></body></html>"
    )
    body = _body(*ARTICLE)
    witness = Candidate("resiliparse", [*ARTICLE[:2], DROPPED, *ARTICLE[2:]])
    assert read_with_main_content(page, body, witness) == (0, 1)
    assert read_with_main_content(page, _body(*ARTICLE), Candidate("resiliparse", ARTICLE)) == (0, 0)
