"""Pages of older sites: laid out in tables (extraction/layout_tables.py), their headline given
only by <title> (extraction/titles.py `shown_headline`); through the real extractors."""

from __future__ import annotations

from lxml.etree import fromstring, tostring

from extraction import extract_article
from extraction.layout_tables import unwrap_prose_tables, without_layout_columns
from extraction.parsing import parse_page

URL = "http://gazette.example/news/2003/03/12/bridge.html"
_STORY = [
    "The council voted on Tuesday to close the old harbour bridge for repairs after engineers found cracks "
    "in two of its supporting piers.",
    "Residents who cross the bridge every day said the closure would add half an hour to their journeys into "
    "the town centre.",
    "The mayor said the repairs were expected to take eight months and would cost about four million pounds.",
    "A temporary ferry will run every twenty minutes from the north quay while the work is carried out.",
    "Engineers first raised concerns about the piers three years ago, but the inspection that found the "
    "cracks took place last month.",
    "Shop owners on the south bank fear they will lose customers while the bridge is closed to all traffic.",
    "The harbour master said fishing boats would still be able to pass under the bridge during the works.",
]
# Sidebar text that reads like the article (same town, same kind of sentence): it must still go.
_RELATED = [
    ("Fire crews called to blaze at farm near the ring road", "Firefighters spent the night at a barn fire."),
    ("Harbour bridge toll to rise next year", "The council said the toll on the harbour bridge would rise."),
    ("New ferry timetable for the north quay", "The ferry company published its winter timetable on Monday."),
]
_NAV = ["Home", "News", "Sport", "Jobs", "Letters", "Archive"]
# A results table inside the article: data, which must stay whole.
_RESULTS = (
    "<table><tr><th>Ward</th><th>For</th><th>Against</th></tr>"
    + "".join(
        f"<tr><td>{ward} ward</td><td>{4 + i}</td><td>{3 - i}</td></tr>"
        for i, ward in enumerate(("North", "Quay", "Mill"))
    )
    + "</table>"
)


def _story(paragraphs: str = "p") -> str:
    if paragraphs == "br":
        return "<font face='arial'>" + "<br><br>".join(_STORY) + "</font>"
    return "".join(f"<p>{s}</p>" for s in _STORY)


def _columns_page(article: str, *, header_row: bool = False) -> str:
    nav = "<table>" + "".join(f"<tr><td><a href='/{n.lower()}'>{n}</a></td></tr>" for n in _NAV) + "</table>"
    related = (
        "<b>Related stories</b><table>"
        + "".join(
            f"<tr><td><a href='/r{i}'><b>{head}</b></a><br>{teaser}</td></tr>"
            for i, (head, teaser) in enumerate(_RELATED)
        )
        + "</table>"
    )
    header = "<tr><td colspan=3><img src='/logo.gif' alt='Town Gazette'></td></tr>" if header_row else ""
    return (
        "<html><head><title>Harbour bridge to close for repairs - Town Gazette</title></head><body>"
        f"<table width='100%'>{header}<tr><td width=150 valign=top>{nav}</td>"
        f"<td valign=top><font size=5><b>Harbour bridge to close for repairs</b></font><br>"
        f"<font size=2>By Jane Smith, 12 March 2003</font>{article}</td>"
        f"<td width=200 valign=top>{related}</td></tr></table></body></html>"
    )


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_columns_beside_the_article_are_not_read_and_its_paragraphs_stay_paragraphs() -> None:
    for layout in ("p", "br"):
        result = extract_article(_columns_page(_story(layout), header_row=True), URL)
        text = result["text"]
        assert all(sentence in text for sentence in _STORY), layout
        assert not any(head in text or teaser in text for head, teaser in _RELATED), layout
        assert not any(line.strip("| ") in _NAV for line in _lines(text)), layout
        assert "|" not in text, layout  # no table row: the article's own paragraphs
        assert len(_lines(text)) >= len(_STORY), layout
        assert "layout-table cells beside the article not read" in result["provenance"]["text"]


def test_without_the_rule_trafilatura_keeps_the_sidebars() -> None:
    """What the rule is for: the same page as trafilatura alone reads it."""
    from trafilatura import extract

    text = extract(_columns_page(_story()), favor_precision=True) or ""
    assert _STORY[0] in text
    assert _RELATED[1][1] in text


def test_a_table_of_data_inside_the_article_stays_whole() -> None:
    article = _story()[: -len(f"<p>{_STORY[-1]}</p>")] + _RESULTS + f"<p>{_STORY[-1]}</p>"
    result = extract_article(_columns_page(article), URL)
    assert "| North ward | 4 | 3 |" in result["markdown"]  # still a table, row by row
    assert all(f"{ward} ward" in result["text"] for ward in ("North", "Quay", "Mill"))
    assert _STORY[-1] in result["text"]
    assert _RELATED[1][1] not in result["text"]


def test_a_modern_page_with_a_data_table_is_left_alone() -> None:
    html = (
        "<html><head><title>Vote on the bridge</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>Vote on the bridge</h1>{_story()}{_RESULTS}</article>"
        "<aside><table><tr><td>Weather</td><td>Rain, 9 degrees</td></tr></table></aside></body></html>"
    )
    tree = parse_page(html)
    assert tree is not None
    assert without_layout_columns(tree) == (tree, 0)
    text = extract_article(html, URL)["text"]
    assert "North ward" in text
    assert all(sentence in text for sentence in _STORY)


def test_a_column_with_the_pages_headline_is_never_dropped() -> None:
    """A short article beside a longer column of reader comments: the comments hold most of the
    words, but the article's cell carries the <h1>, so it stays."""
    comments = "".join(
        f"<p>Reader {i} wrote that the ferry will be too slow for commuters and that the council "
        f"should have repaired the bridge years ago, before the cracks spread to the piers.</p>"
        for i in range(8)
    )
    html = (
        "<html><head><title>Bridge</title></head><body><table><tr>"
        f"<td><h1>Harbour bridge to close</h1><p>{_STORY[0]}</p><p>{_STORY[1]}</p></td>"
        f"<td>{comments}</td></tr></table></body></html>"
    )
    tree = parse_page(html)
    assert tree is not None
    assert without_layout_columns(tree) == (tree, 0)


def test_only_the_cells_beside_the_article_go_not_the_rows_around_it() -> None:
    lead = "Engineers found cracks in two piers of the old harbour bridge, which will close on Monday."
    html = (
        "<html><body><table><tr><td><a href='/'>Home</a> <a href='/news'>News</a></td><td>"
        f"<table><tr><td><b>Harbour bridge to close</b></td></tr><tr><td><i>{lead}</i></td></tr>"
        f"<tr><td>{_story()}</td><td>Advertisement: quay flats for sale</td></tr></table>"
        "</td><td>Weather: rain</td></tr></table></body></html>"
    )
    tree = parse_page(html)
    assert tree is not None
    reading, dropped = without_layout_columns(tree)
    assert dropped == 3  # the advert, the menu and the weather column
    assert "Weather" in " ".join(tree.itertext())  # the page itself stays whole
    kept = " ".join(reading.itertext())
    assert lead in kept
    assert "Harbour bridge to close" in kept
    assert not any(word in kept for word in ("Advertisement", "Weather", "Home"))


def test_one_column_prose_tables_become_paragraphs_and_data_tables_do_not() -> None:
    body = fromstring(
        "<body><table><row><cell><p>First paragraph.</p>Loose text<lb/>after a break"
        "<p>Last paragraph.</p></cell></row></table>"
        "<table><row><cell><p>Ward</p></cell><cell><p>For</p></cell></row></table></body>"
    )
    assert unwrap_prose_tables(body) == 1
    assert [el.tag for el in body] == ["p", "p", "p", "p", "table"]
    assert [el.text for el in body[:4]] == ["First paragraph.", "Loose text", "after a break", "Last paragraph."]
    assert b"<cell><p>Ward</p></cell>" in tostring(body)
    odd = b"<body><table>Text in the table<row><cell><p>A paragraph.</p></cell></row></table></body>"
    body = fromstring(odd)
    assert unwrap_prose_tables(body) == 0  # its text would be lost: left as it is
    assert tostring(body) == odd


def _two_cells(first: str, second: str) -> str:
    return f"<html><body><table><tr><td>{first}</td><td>{second}</td></tr></table></body></html>"


def test_cells_that_are_more_of_the_article_stay() -> None:
    """A second column of text, a short article beside a longer column of letters (no <h1>):
    each holds a good share of the prose, so nothing is dropped."""
    first = "".join(f"<p>{s}</p>" for s in _STORY[:4])
    second = "".join(f"<p>{s}</p>" for s in _STORY[4:])
    for html in (_two_cells(first, second), _two_cells(f"<b>Harbour bridge</b>{second}", first + first)):
        tree = parse_page(html)
        assert tree is not None
        assert without_layout_columns(tree) == (tree, 0)


def test_bookmarks_menus_and_hidden_text_are_not_the_pages_prose() -> None:
    """An unclosed <a name> wraps the article (it is no link); an archive's drop-down menu and a
    hidden block hold many words: none of that makes the menu column the article."""
    menu = (
        "<select>" + "".join(f"<option>Archive edition of March {d}, 2003</option>" for d in range(1, 60)) + "</select>"
    )
    hidden = "<div style='display: none'>" + " ".join(_STORY * 3) + "</div>"
    article = "<a name='story'><font size=5><b>Harbour bridge to close</b></font>" + _story()
    tree = parse_page(_two_cells(f"<a href='/'>Home</a>{menu}{hidden}", article))
    assert tree is not None
    reading, dropped = without_layout_columns(tree)
    assert dropped == 1
    assert all(sentence in " ".join(reading.itertext()) for sentence in _STORY)
    assert "Archive edition" not in " ".join(reading.itertext())


def test_a_date_in_a_column_beside_the_article_is_still_read() -> None:
    html = _columns_page(_story()).replace(
        "<a href='/home'>Home</a>", "<a href='/home'>Home</a> Published: 12 March 2003"
    )
    result = extract_article(html, "http://gazette.example/story.php?id=123")
    assert result["published_at"] == "2003-03-12"
    assert "Published" not in result["text"]


def test_a_table_inside_a_marked_up_article_keeps_its_cells() -> None:
    answer = " ".join(_STORY)
    html = (
        "<html><body><article><h1>Questions on the bridge</h1><table>"
        f"<tr><th>Question</th><td>{answer}</td></tr></table></article></body></html>"
    )
    tree = parse_page(html)
    assert tree is not None
    assert without_layout_columns(tree) == (tree, 0)


def test_unwrapped_cells_keep_the_spaces_around_inline_elements() -> None:
    body = fromstring(
        "<body><table><row><cell>Lead text <hi>bold</hi> end<p>Para.</p>after <ref>link</ref> tail </cell></row>"
        "</table></body>"
    )
    unwrap_prose_tables(body)
    assert (
        tostring(body)
        == b"<body><p>Lead text <hi>bold</hi> end</p><p>Para.</p><p>after <ref>link</ref> tail</p></body>"
    )


# --- an older page's headline: the part of its <title> that the page shows ------------------


def _titled_page(title: str, shown_headline: str, head_extra: str = "") -> str:
    return (
        _columns_page(_story())
        .replace(
            "<title>Harbour bridge to close for repairs - Town Gazette</title>", f"<title>{title}</title>{head_extra}"
        )
        .replace("<b>Harbour bridge to close for repairs</b>", f"<b>{shown_headline}</b>")
    )


def test_the_titles_section_city_and_date_segments_go_when_the_page_shows_the_headline() -> None:
    headline = "Harbour bridge to close for repairs"
    for title, url in (
        (f"BBC NEWS | UK | England | {headline}", "http://news.bbc.example/1/hi/england/2845123.stm"),
        (f"{headline} | Springfield | Town Gazette", URL),
        (f"{headline} : Local News : The Springfield Times", "http://www.springfieldtimes.example/news/b.html"),
        (f"CNN.com - {headline} - Mar 12, 2003", "http://www.cnn.example/2003/US/03/12/bridge/"),
        (f"Local: {headline}", "http://www.springfieldtimes.example/story/123"),
    ):
        result = extract_article(_titled_page(title, headline), url)
        assert result["title"] == headline, title
        assert result["provenance"]["title"] == "title (the part the page shows)", title


def test_a_headline_with_a_colon_stays_whole_when_the_page_shows_it_whole() -> None:
    headline = "Bridge vote: what the closure means for the harbour"
    result = extract_article(_titled_page(f"{headline} | Town Gazette", headline), URL)
    assert result["title"] == headline


def test_the_shown_part_is_not_looked_for_when_other_signals_give_the_headline() -> None:
    og = '<meta property="og:title" content="Springfield: Harbour bridge to close for repairs">'
    page = _titled_page("Springfield: Harbour bridge to close for repairs", "Harbour bridge to close for repairs", og)
    result = extract_article(page, URL)
    assert result["title"] == "Springfield: Harbour bridge to close for repairs"  # og:title and <title> agree
    assert "the part the page shows" not in result["provenance"]["title"]


_HEADLINE = "Harbour bridge to close for repairs"
_SECTION_URL = "http://www.towngazette.example/news/local/story.php?id=123"


def _older_page(title: str | None, h1: str | None, bold: str | None) -> str:
    html = _columns_page(_story())
    html = html.replace(
        "<title>Harbour bridge to close for repairs - Town Gazette</title>",
        f"<title>{title}</title>" if title is not None else "",
    )
    shown = (f"<h1>{h1}</h1>" if h1 else "") + (f"<font size=5><b>{bold}</b></font>" if bold else "")
    return html.replace(f"<font size=5><b>{_HEADLINE}</b></font>", shown)


def test_a_section_label_h1_loses_to_the_headline_its_title_shows_beside_it() -> None:
    for title, h1, bold in (
        (f"{_HEADLINE} - Local News - Town Gazette", "Local News", _HEADLINE),  # a label beside it in <title>
        (f"{_HEADLINE} | Local", "Local", None),  # a folder of the URL: one of the site's sections
    ):
        assert extract_article(_older_page(title, h1, bold), _SECTION_URL)["title"] == _HEADLINE, title


def test_a_page_whose_title_is_only_its_sites_name_takes_its_bold_headline() -> None:
    for title in ("Town Gazette", None):
        result = extract_article(_older_page(title, None, _HEADLINE), _SECTION_URL)
        assert result["title"] == _HEADLINE, title
        assert result["provenance"]["title"] == "body heading", title


def test_a_bold_sentence_or_label_is_no_body_heading() -> None:
    from extraction.body import body_heading

    sentence = _STORY[0]  # bold, but a paragraph: more than 20 words
    body = fromstring(
        f"<body><p><hi rend='#b'>Related</hi></p><p><hi rend='#b'>{sentence}</hi></p><p>{_STORY[1]}</p></body>"
    )
    assert body_heading(body) is None
    body = fromstring("<body><p><hi rend='#b'>Bridge to close</hi> for repairs, the council says</p></body>")
    assert body_heading(body) is None  # bold words inside a line: not a heading


def test_a_short_headline_first_in_the_title_beside_an_unknown_site_name_stays() -> None:
    """Look-alike of a section label: a two-word headline whose <title> adds a site name the
    address does not tell (a page served from a bare IP address)."""
    from extraction.names import SiteNames
    from extraction.titles import choose_title

    signals = {
        "h1": ["Bridge closes"],
        "title": ["Bridge closes | Morning Courier Online Edition"],
        "opengraph": ["The council closes the harbour bridge for eight months of repairs"],
    }
    title, origin, _ = choose_title(signals, SiteNames([], "http://127.0.0.7:8080/c3/news/bridge"))
    assert (title, origin) == ("Bridge closes", "h1")
