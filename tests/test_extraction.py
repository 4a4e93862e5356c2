"""extract_article on self-written pages, and the rules it is made of, one at a time."""

from __future__ import annotations

import json
import pickle
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from lxml.etree import fromstring

from crawl.settings import NEWS_MIN_WORDS
from extraction import ExtractionError, extract_article
from extraction.authors import choose_authors, split_byline
from extraction.body import clean_body, is_dateline, is_prompt
from extraction.dates import parse_date_iso
from extraction.language import choose_language, normalize
from extraction.names import SiteNames, domain_keys
from extraction.titles import choose_title, strip_site_name

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASES = sorted(p.stem for p in FIXTURES.glob("article_*.json"))
ARTICLE_KEYS = {
    "title",
    "authors",
    "published_at",
    "modified_at",
    "language",
    "sitename",
    "description",
    "categories",
    "tags",
    "image",
    "text",
    "markdown",
    "word_count",
    "page_type",
    "page_canonical",
    "is_amp",
    "provenance",
}


def extract_fixture(name: str) -> tuple[dict, dict]:
    spec = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    html = (FIXTURES / f"{name}.html").read_text(encoding="utf-8")
    return extract_article(html, spec["url"], spec["hints"]), spec


# --- whole pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_fixture_fields(name: str) -> None:
    result, spec = extract_fixture(name)
    expected = spec["expected"]
    assert result["title"] == expected["title"]
    assert result["authors"] == expected["authors"]
    assert (result["published_at"] or "")[:10] == expected["published_day"]
    assert result["language"] == expected["language"]
    if "sitename" in expected:
        assert result["sitename"] == expected["sitename"]


@pytest.mark.parametrize("name", CASES)
def test_fixture_provenance(name: str) -> None:
    result, spec = extract_fixture(name)
    for field, origin in spec["provenance"].items():
        assert result["provenance"][field].startswith(origin), (field, result["provenance"])


@pytest.mark.parametrize("name", CASES)
def test_fixture_body(name: str) -> None:
    result, spec = extract_fixture(name)
    for wanted in spec["text_contains"]:
        assert wanted in result["text"]
    for unwanted in spec["text_excludes"]:
        assert unwanted not in result["text"], unwanted
    assert result["word_count"] >= NEWS_MIN_WORDS
    assert result["markdown"]


def test_result_has_every_article_key_and_pickles() -> None:
    result, _ = extract_fixture("article_jsonld")
    assert set(result) == ARTICLE_KEYS
    assert pickle.loads(pickle.dumps(result)) == result


def test_extract_article_runs_in_a_worker_process() -> None:
    html = (FIXTURES / "article_meta.html").read_text(encoding="utf-8")
    url = "https://nordkurier-beispiel.example/region/faehre-suedholm"
    with ProcessPoolExecutor(max_workers=1) as pool:
        remote = pool.submit(extract_article, html, url, {}).result(timeout=120)
    assert remote == extract_article(html, url, {})


def test_listing_page_gives_little_text() -> None:
    html = (FIXTURES / "article_listing.html").read_text(encoding="utf-8")
    result = extract_article(html, "https://harbourpost.example/sport", {})
    assert result["word_count"] < NEWS_MIN_WORDS
    assert result["page_type"] == "website"
    assert result["published_at"] is None
    assert result["authors"] == []


def test_jsonld_organization_author_dropped_beside_people() -> None:
    result, _ = extract_fixture("article_jsonld")
    assert "The Harbour Post" not in result["authors"]


def test_empty_page_is_an_extraction_error() -> None:
    with pytest.raises(ExtractionError):
        extract_article("   ", "https://example.org/", {})


# --- titles ---------------------------------------------------------------------------------

SITES = SiteNames(["The Harbour Post", "harbourpost"], "https://www.harbourpost.example/news/a")


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Tidal barrier opens | The Harbour Post", "Tidal barrier opens"),
        ("The Harbour Post - Tidal barrier opens", "Tidal barrier opens"),
        ("Tidal barrier opens – harbourpost.example", "Tidal barrier opens"),  # noqa: RUF001
        ("Tidal barrier opens | Harbour Post | 05.03.2024", "Tidal barrier opens"),
        ("Tidal barrier opens：The Harbour Post", "Tidal barrier opens"),  # noqa: RUF001
        ("COVID-19 rules - what changes on Monday", "COVID-19 rules - what changes on Monday"),
        ("Ferry strike ends", "Ferry strike ends"),
    ],
)
def test_site_name_is_cut_from_titles(raw: str, cleaned: str) -> None:
    assert strip_site_name(raw, SITES) == cleaned


def test_domain_keys_cover_second_level_registries() -> None:
    assert {"golem", "golemde"} <= domain_keys("https://www.golem.de/news/x")
    assert "mirror" in domain_keys("https://www.mirror.co.uk/news/x")


def test_json_ld_wins_a_tie() -> None:
    title, origin, _ = choose_title({"json-ld": ["Headline A"], "h1": ["Headline B"]}, SITES)
    assert (title, origin) == ("Headline A", "json-ld")


def test_agreeing_signals_outvote_json_ld() -> None:
    signals = {
        "json-ld": ["Short SEO headline"],
        "h1": ["The visible headline"],
        "opengraph": ["The visible headline"],
    }
    title, origin, support = choose_title(signals, SITES)
    assert (title, origin) == ("The visible headline", "h1")
    assert support["h1"] == 2


def test_title_tag_section_segments_lend_half_support() -> None:
    signals = {"h1": ["Headline"], "title": ["Headline | Local | The Harbour Post"], "json-ld": ["Other"]}
    title, origin, support = choose_title(signals, SITES)
    assert (title, origin, support["h1"]) == ("Headline", "h1", 1.5)


def test_meta_and_h1_precedence_without_json_ld() -> None:
    title, origin, _ = choose_title({"h1": ["From the h1"], "opengraph": ["From og"]}, SITES)
    assert (title, origin) == ("From the h1", "h1")


def test_site_name_with_umlauts_matches_its_transliterated_domain() -> None:
    sites = SiteNames([], "https://www.boersen-blatt.example/maerkte/a")
    assert strip_site_name("Zinsen steigen | Börsen-Blatt", sites) == "Zinsen steigen"
    assert sites.matches("Börsen-Blatt")
    assert not sites.matches("Bürgerblatt")


def test_version_keeping_the_separator_wins_over_a_concatenated_h1() -> None:
    # The <h1> joins a kicker element and the headline element without the separator that the
    # tags keep; the <title> agrees with the <h1>, so the vote alone would pick the <h1>.
    signals = {
        "h1": ["Harbour row Council backs the new quay"],
        "opengraph": ["Harbour row / Council backs the new quay"],
        "title": ["Harbour row Council backs the new quay - The Harbour Post"],
    }
    title, origin, _ = choose_title(signals, SITES)
    assert (title, origin) == ("Harbour row / Council backs the new quay", "opengraph")


def test_punctuation_rule_leaves_other_wordings_alone() -> None:
    signals = {"h1": ["Council backs the new quay"], "opengraph": ["Council backs the new quay!?"]}
    assert choose_title(signals, SITES)[0] == "Council backs the new quay!?"
    signals = {"h1": ["Council backs the new quay"], "opengraph": ["Council backs a new quay: report"]}
    assert choose_title(signals, SITES)[0] == "Council backs the new quay"


def test_site_name_h1_is_not_a_headline() -> None:
    title, origin, _ = choose_title({"h1": ["The Harbour Post"], "opengraph": ["Real headline"]}, SITES)
    assert (title, origin) == ("Real headline", "opengraph")


# --- authors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byline", "names"),
    [
        ("By Jane Doe and John Roe", ["Jane Doe", "John Roe"]),
        ("Von Anna Beispiel und Ben Muster", ["Anna Beispiel", "Ben Muster"]),
        ("Por Lucía Ferrer y Marta Gil", ["Lucía Ferrer", "Marta Gil"]),
        ("Jane Doe, Senior Political Correspondent", ["Jane Doe"]),
        ("Jane Doe | Reporter", ["Jane Doe"]),
        ("Jane Doe (jd)", ["Jane Doe"]),
        ("jane.doe@example.org", []),
        ("(Image: Getty Images)", []),
        ("Journalist", []),
        ("by Jane Doe June 19, 2023", ["Jane Doe"]),
        ("Jane Doe, updated 5 March", ["Jane Doe"]),
        ("Veröffentlicht am 27.04.24 um 07:39 Uhr", []),
        ("Published on Monday", []),
        ("Autoren", []),
        ("Theresa May", ["Theresa May"]),
    ],
)
def test_byline_cleaning(byline: str, names: list[str]) -> None:
    assert split_byline(byline) == names


def test_agency_credit_in_a_byline_is_dropped() -> None:
    authors, origin = choose_authors([("meta", ["By Jane Doe and John Roe, Reuters"], set())], SITES)
    assert (authors, origin) == (["Jane Doe", "John Roe"], "meta")


def test_agency_in_a_json_ld_author_list_is_kept() -> None:
    signals = [("json-ld", ["Jane Doe und John Roe, dpa"], set()), ("meta", ["Jane Doe"], set())]
    assert choose_authors(signals, SITES) == (["Jane Doe", "John Roe", "dpa"], "json-ld")
    # The same credit in a meta tag or a visible byline is a credit line.
    assert choose_authors([("meta", ["Jane Doe und John Roe, dpa"], set())], SITES)[0] == ["Jane Doe", "John Roe"]


def test_byline_signal_may_be_a_callable_read_only_when_reached() -> None:
    calls: list[int] = []

    def bylines() -> list[str]:
        calls.append(1)
        return ["By John Roe"]

    assert choose_authors([("meta", ["Jane Doe"], set()), ("byline", bylines, set())], SITES) == (["Jane Doe"], "meta")
    assert calls == []
    assert choose_authors([("meta", [], set()), ("byline", bylines, set())], SITES) == (["John Roe"], "byline")
    assert calls == [1]


def test_agency_listed_as_its_own_author_is_kept() -> None:
    authors, _ = choose_authors([("json-ld", ["Jane Doe", "dpa"], set())], SITES)
    assert authors == ["Jane Doe", "dpa"]


def test_site_name_as_author_dropped_when_a_person_is_named() -> None:
    authors, _ = choose_authors([("json-ld", ["The Harbour Post", "Jane Doe"], set())], SITES)
    assert authors == ["Jane Doe"]


def test_organisation_only_byline_is_kept() -> None:
    authors, _ = choose_authors([("json-ld", ["The Harbour Post"], {"The Harbour Post"})], SITES)
    assert authors == ["The Harbour Post"]


def test_first_signal_with_names_wins() -> None:
    signals = [("json-ld", [], set()), ("meta", ["Jane Doe"], set()), ("byline", ["By John Roe"], set())]
    assert choose_authors(signals, SITES) == (["Jane Doe"], "meta")


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2024-03-05T22:30:00Z", "2024-03-05T22:30:00+00:00"),
        ("2024-03-05T22:30:00.123456789+0100", "2024-03-05T22:30:00.123456+01:00"),
        ("2024-03-05 22:30:00", "2024-03-05T22:30:00"),
        ("2024-03-05", "2024-03-05"),
        ("Tue, 05 Mar 2024 22:30:00 +0000", "2024-03-05T22:30:00+00:00"),
        ("Fri Apr 28 19:20:36 CEST 2023", "2023-04-28T19:20:36"),
        ("1709677800000", "2024-03-05T22:30:00+00:00"),
        ("yesterday", None),
        ("0001-01-01", None),
    ],
)
def test_parse_date(value: str, parsed: str | None) -> None:
    assert parse_date_iso(value) == parsed


# --- language -------------------------------------------------------------------------------

GERMAN = (
    "Die Reederei stellt die Fährverbindung zwischen dem Festland und der Insel zum Jahresende ein. "
    "Für die Einwohner der Insel bedeutet das einen tiefen Einschnitt, viele pendeln täglich zur Arbeit. "
    "Der Bürgermeister kündigte an, gemeinsam mit dem Landkreis nach einem neuen Betreiber zu suchen."
)


def test_language_codes_are_normalised() -> None:
    assert [normalize(v) for v in ("en-GB", "de_DE", "eng", "iw", "x-default", None)] == [
        "en",
        "de",
        "en",
        "he",
        None,
        None,
    ]


def test_language_from_content_when_the_page_says_none() -> None:
    assert choose_language([("html", None)], GERMAN) == ("de", "content")


def test_language_from_content_when_the_page_says_wrong() -> None:
    assert choose_language([("html", "en")], GERMAN) == ("de", "content (page said en)")


def test_declared_language_kept_for_a_close_relative() -> None:
    danish = (
        "Regeringen har besluttet at forlænge aftalen om færgeforbindelsen til øen, så beboerne fortsat "
        "kan pendle til arbejde på fastlandet hver morgen. Borgmesteren kalder beslutningen en stor lettelse "
        "for de familier, der har boet på øen i generationer."
    )
    assert choose_language([("html", "nb")], danish) == ("nb", "html")


def test_declared_language_kept_for_short_text() -> None:
    assert choose_language([("html", "en")], "Die Fähre") == ("en", "html")


# --- body -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Advertisement",
        "Read more: Ferry timetable changes",
        "Share this article",
        "Sign up for our newsletter",
        "Scroll to Top",
        "Foto: dpa",
        "STR/AFP via Getty Images",
        "We use cookies. Click accept to enable them or change your settings.",
        "|",
        "Comments (12)",
    ],
)
def test_prompts_are_recognised(text: str) -> None:
    assert is_prompt(text)


@pytest.mark.parametrize(
    "text",
    [
        "Share prices rose by five percent after the announcement on Monday.",
        "Comments by the minister caused an uproar in parliament.",
        "The ferry will run again from Monday.",
        "Readers can send questions to the council, which promised answers by Friday.",
        "The figures for 2023 show a rise of four percent. Quelle: Statistisches Bundesamt",
        "The commission said it would earn back its costs within a decade.",
        "The harbour was first published in maps of 1602, the archivist said.",
        "The report, published in March, is a translation of the Danish survey into plain English.",
        "The video ran for 0:21 min before the feed cut out.",
    ],
)
def test_article_sentences_are_not_prompts(text: str) -> None:
    assert not is_prompt(text)


@pytest.mark.parametrize(
    "text",
    [
        "When you purchase through links on our site, we may earn an affiliate commission. Here's how it works.",
        "You are using an outdated browser. Please update your browser for the best experience.",
        "Please enable JavaScript to view this page.",
        "Do you have a story to tell? Email: newsdesk@harbourpost.example",
        "Seen something in your area? Get in touch at tips@harbourpost.example",
        "The new quay seen from the harbour wall at dusk. Foto: Jane Doe",
        "Engineers at work on the gates. Photo: Harbour Authority",
        "The council met again after the storm. 18.04.2024 | 0:21 min",
        "First published in The Harbour Review.",
        "This article was originally published on The Conversation. Read the original article.",
        "Dies ist eine maschinelle Übersetzung eines Artikels unserer US-Kollegen.",
        "Dieser Artikel ist eine Übersetzung, im Original ist er im Harbour Herald erschienen.",
        "Empfohlener redaktioneller Inhalt",
        "Link zum YouTube-Inhalt",
    ],
)
def test_notices_contact_calls_and_captions_are_prompts(text: str) -> None:
    assert is_prompt(text)


def _paragraphs(count: int, first: int = 0) -> str:
    return "".join(
        f"<p>{_SENTENCES[i % 4]} Paragraph {i} adds its own detail here.</p>" for i in range(first, first + count)
    )


def test_clean_body_removes_an_embedded_post() -> None:
    body = fromstring(
        f"<body>{_paragraphs(3)}<quote><p>Buses will not run on the quay road tonight. pic.example/x1</p>"
        "— Harbour Buses (@harbourbus) August 5, 2024</quote>"
        "<quote>We will not give up the harbour, the mayor said.</quote>"
        f"{_paragraphs(2, first=3)}</body>"
    )
    removed = clean_body(body, headlines=[], authors=[])
    assert removed == {"embedded post": 1}
    assert "the mayor said" in " ".join(body.itertext())
    assert "Harbour Buses" not in " ".join(body.itertext())


def test_clean_body_cuts_the_appeal_after_the_article() -> None:
    body = fromstring(
        f"<body>{_paragraphs(6)}<p>Did you like this article?</p><p>Average rating: 4.5</p>"
        "<p>Independent local journalism costs money. Support us with a subscription and read every story "
        "on the harbour, the council and the fleet without limits.</p></body>"
    )
    removed = clean_body(body, headlines=[], authors=[])
    assert removed == {"appeal": 3}
    assert len(body) == 6


def test_appeal_marker_early_in_the_body_is_not_a_cut() -> None:
    body = fromstring(f"<body><p>Did you like this article?</p>{_paragraphs(6)}</body>")
    removed = clean_body(body, headlines=[], authors=[])
    assert "appeal" not in removed
    assert len(body) >= 6


def test_a_subheading_that_starts_like_an_appeal_is_not_a_cut() -> None:
    # "Rate this ..." asks for a rating only when "this" is the article; here it is a section.
    body = fromstring(
        f"<body>{_paragraphs(4)}<head>Rate this season's harbour repairs</head>{_paragraphs(3, first=4)}</body>"
    )
    removed = clean_body(body, headlines=[], authors=[])
    assert "appeal" not in removed
    assert len(body) == 8


def test_clean_body_drops_the_authors_biography_and_a_dangling_introduction() -> None:
    body = fromstring(
        f"<body>{_paragraphs(4)}"
        "<p>A veteran of twenty winters on the coast, Jane has covered the harbour since 2004.</p>"
        "<p>Jane Doe is the Harbour Post's maritime correspondent.</p>"
        "<p>Follow the council debate in our live blog:</p></body>"
    )
    removed = clean_body(body, headlines=[], authors=["Jane Doe"])
    assert removed == {"author bio": 2, "trailing": 1}
    assert len(body) == 4


def test_biography_rule_needs_the_authors_name() -> None:
    closing = "<p>Jane has covered the harbour since 2004, and John Roe joined her in 2010.</p>"
    body = fromstring(f"<body>{_paragraphs(4)}{closing}</body>")
    assert clean_body(body, headlines=[], authors=["Ann Lee"]) == {}
    body = fromstring(f"<body>{_paragraphs(4)}{closing}</body>")
    assert clean_body(body, headlines=[], authors=["John Roe"]) == {"author bio": 1}


def test_datelines() -> None:
    assert is_dateline("Stand: 22.04.2024, 06:00 Uhr")
    assert is_dateline("Updated 5 March 2024, 10:30 GMT")
    assert not is_dateline("Five people were hurt on 5 March in the harbour.")


def test_clean_body_removes_lead_metadata_repeats_and_trailing_links() -> None:
    body = fromstring(
        "<body><head rend='h1'>Tidal barrier opens</head><p>By Jane Doe</p>"
        "<p>Stand: 22.04.2024, 06:00 Uhr</p>"
        "<p>The tidal barrier at the mouth of the old harbour opened on Tuesday evening, two years late.</p>"
        "<p>Externer Inhalt nicht verfügbar</p>"
        "<p>Engineers closed the twin steel gates for the first time at high tide on Tuesday night.</p>"
        "<p>Externer Inhalt nicht verfügbar</p><p>Externer Inhalt nicht verfügbar</p>"
        "<p>Related:</p><list><item>Ferry strike ends</item><item>New bridge planned</item></list></body>"
    )
    removed = clean_body(body, headlines=["Tidal barrier opens"], authors=["Jane Doe"])
    left = [" ".join(el.itertext()) for el in body]
    assert left == [
        "The tidal barrier at the mouth of the old harbour opened on Tuesday evening, two years late.",
        "Engineers closed the twin steel gates for the first time at high tide on Tuesday night.",
    ]
    assert removed == {"lead metadata": 3, "repeated": 3, "prompt": 1, "trailing": 2}


def test_clean_body_drops_the_headline_run_together_with_its_kicker() -> None:
    body = fromstring(
        '<body><p>Storm season "It will hold"Tidal barrier opens</p>'
        "<p>The tidal barrier at the mouth of the old harbour opened on Tuesday evening, two years late.</p>"
        "<p>Tidal barrier opens a new chapter for the town, whose fishermen waited twenty years for it.</p></body>"
    )
    removed = clean_body(body, headlines=['"It will hold": Tidal barrier opens'], authors=[])
    assert removed == {"lead metadata": 1}
    assert len(body) == 2


def test_clean_body_strips_screen_reader_hints_of_links() -> None:
    body = fromstring(
        "<body><p>The council published the <ref>tide tables(opens in a new window)</ref> and the "
        "<ref>budget (öffnet im neuen Fenster)</ref> on Monday (in print) for the fleet.</p></body>"
    )
    clean_body(body, headlines=[], authors=[])
    assert " ".join(" ".join(body.itertext()).split()) == (
        "The council published the tide tables and the budget on Monday (in print) for the fleet."
    )


def test_clean_body_drops_a_second_copy_and_repeated_teaser_labels() -> None:
    quote = "Appearing before the court, the delegation said the harbour had to stay open for ships."
    body = fromstring(
        f"<body><p>{quote}</p><p>Other paragraph of the article with enough words to be a paragraph.</p>"
        f"<p>{quote}</p><p>FUNDA OLUNYE UDABA | Headline one</p>"
        "<p>FUNDA OLUNYE UDABA | Headline two</p></body>"
    )
    removed = clean_body(body, headlines=[], authors=[])
    assert len(body) == 2
    assert removed == {"repeated": 1, "prompt": 2}


# --- the standfirst -------------------------------------------------------------------------

_SENTENCES = [
    "The harbour authority approved the new quay after a long night of debate in the council chamber.",
    "Fishermen had argued for years that the old wall could not hold another winter of storms.",
    "Engineers will begin driving piles in the spring, once the herring season is over.",
    "The cost, shared between the town and the regional fund, is put at four million pounds.",
]
STANDFIRST = (
    "Councillors voted nine to two for a quay that fishermen say will save the harbour, after a winter of storms."
)


def _article_page(header_extra: str = "", before_article: str = "") -> str:
    body = "".join(f"<p>{_SENTENCES[i % 4]} Paragraph {i} adds its own detail here.</p>" for i in range(24))
    return (
        "<html lang='en'><head><title>Harbour gets its quay</title></head><body>"
        f"{before_article}"
        "<article><header><h1>Harbour gets its quay</h1>"
        f"{header_extra}<p class='byline'>By Ann Lee</p></header>"
        f"<div class='article-body'>{body}</div></article></body></html>"
    )


def test_standfirst_in_the_article_header_is_kept() -> None:
    result = extract_article(_article_page(f"<p class='standfirst'>{STANDFIRST}</p>"), "https://example.org/a")
    assert result["text"].startswith(STANDFIRST)
    assert "standfirst" in result["provenance"]["text"]
    assert result["text"].count(STANDFIRST) == 1


def test_standfirst_in_a_lead_classed_container_is_kept() -> None:
    page = _article_page().replace(
        "<div class='article-body'>",
        f"<div class='article__preamble'><p>{STANDFIRST}</p></div><div class='article-body'>",
    )
    result = extract_article(page, "https://example.org/a")
    assert result["text"].startswith(STANDFIRST)
    assert "standfirst" in result["provenance"]["text"]


def test_notice_in_the_article_header_is_not_a_standfirst() -> None:
    notice = "This report was taken over automatically from a news agency and was not edited by our newsroom today."
    page = _article_page(f"<div class='article-notice'><p class='article-notice__text'>{notice}</p></div>")
    assert notice not in extract_article(page, "https://example.org/a")["text"]


def test_standfirst_is_restored_on_a_short_article_too() -> None:
    paragraphs = "".join(f"<p>{sentence}</p>" for sentence in _SENTENCES)
    page = (
        "<html lang='en'><body><article><header><h1>Harbour gets its quay</h1>"
        f"<p class='standfirst'>{STANDFIRST}</p><p class='byline'>By Ann Lee</p></header>"
        f"<div class='article-body'>{paragraphs}</div></article></body></html>"
    )
    result = extract_article(page, "https://example.org/short")
    assert result["text"].startswith(STANDFIRST)
    assert result["text"].count(STANDFIRST) == 1


def test_teaser_of_another_story_is_not_a_standfirst() -> None:
    teaser = "Elsewhere: the ferry company announced that its winter timetable will start a week early this year."
    aside = f"<aside><article><header><p class='standfirst'>{teaser}</p></header></article></aside>"
    result = extract_article(_article_page(before_article=aside), "https://example.org/a")
    assert teaser not in result["text"]
    assert "standfirst" not in result["provenance"]["text"]


def test_link_list_in_the_header_is_not_a_standfirst() -> None:
    links = "<p>" + " ".join(f"<a href='/t{i}'>Topic number {i} of the day's news</a>" for i in range(4)) + "</p>"
    result = extract_article(_article_page(links), "https://example.org/a")
    assert "Topic number" not in result["text"]


def _described_page(block: str, description: str = STANDFIRST) -> str:
    """An article whose standfirst `block` sits under the header in markup that names nothing."""
    meta = f"<meta property='og:description' content='{description}'>" if description else ""
    return _article_page().replace("<title>", f"{meta}<title>").replace("</header>", f"</header>{block}")


@pytest.mark.parametrize(
    "block",
    [
        f"<div class='dcr-1teqwow'><p>{STANDFIRST}</p></div>",
        f"<div class='RichText'>{STANDFIRST}</div>",
        f"<h2 class='detail-sub-title'>{STANDFIRST}</h2>",
    ],
    ids=["paragraph", "div", "subheading"],
)
def test_a_block_under_the_headline_that_says_the_description_is_the_standfirst(block: str) -> None:
    result = extract_article(_described_page(block), "https://example.org/a")
    assert result["text"].startswith(STANDFIRST)
    assert result["text"].count(STANDFIRST) == 1
    assert "standfirst" in result["provenance"]["text"]


def test_a_block_that_says_the_description_above_the_article_element_is_the_standfirst() -> None:
    """Some templates wrap only the body in <article>: the standfirst sits above it, outside."""
    page = _described_page("").replace("<article><header>", "<header>").replace("</header>", "</header><article>")
    page = page.replace("<h1>Harbour gets its quay</h1>", f"<h1>Harbour gets its quay</h1><p>{STANDFIRST}</p>")
    result = extract_article(page, "https://example.org/a")
    assert result["text"].startswith(STANDFIRST)
    assert result["text"].count(STANDFIRST) == 1


def test_a_standfirst_the_body_holds_with_other_spacing_is_not_added_twice() -> None:
    """The body's text puts a space at each tag edge ("harbour , after"): still the same text."""
    from lxml.etree import Element, SubElement
    from lxml.html import document_fromstring

    from extraction.body import block_text
    from extraction.standfirst import standfirst
    from extraction.structured import read_page_data

    marked = STANDFIRST.replace("the harbour, after", "the <b>harbour</b>, after")
    page = document_fromstring(_described_page(f"<div class='RichText'>{marked}</div>"))
    body = Element("body")
    SubElement(body, "p").text = block_text(page.find_class("RichText")[0])  # as trafilatura kept it
    assert "harbour , after" in body[0].text
    for paragraph in page.find_class("article-body")[0].iter("p"):
        SubElement(body, "p").text = paragraph.text_content()
    assert standfirst(page, body, read_page_data(page).descriptions()) == []


def test_a_tagline_above_the_headline_that_says_the_description_is_no_standfirst() -> None:
    page = _described_page("").replace("<article>", f"<div class='masthead'><p>{STANDFIRST}</p></div><article>")
    assert STANDFIRST not in extract_article(page, "https://example.org/a")["text"]


def test_a_linked_teaser_that_says_the_description_is_no_standfirst() -> None:
    teaser = f"<div class='RichText'><a href='/other'>{STANDFIRST}</a></div>"
    assert STANDFIRST not in extract_article(_described_page(teaser), "https://example.org/a")["text"]


def test_the_description_is_read_whatever_the_case_of_its_meta_name() -> None:
    page = _described_page(f"<div class='RichText'>{STANDFIRST}</div>").replace(
        "property='og:description'", "name='Description'"
    )
    assert extract_article(page, "https://example.org/a")["text"].startswith(STANDFIRST)


def test_the_same_block_is_no_standfirst_when_the_description_says_something_else() -> None:
    other = "A new quay for the harbour: what the council decided, what it costs and when the work will begin."
    for description in ("", other):
        result = extract_article(
            _described_page(f"<div class='RichText'>{STANDFIRST}</div>", description), "https://example.org/a"
        )
        assert STANDFIRST not in result["text"], description


def test_a_caption_that_says_the_description_is_no_standfirst() -> None:
    figure = f"<figure><img src='/quay.jpg'><figcaption><div>{STANDFIRST}</div></figcaption></figure>"
    result = extract_article(_described_page(figure), "https://example.org/a")
    assert STANDFIRST not in result["text"]


def test_a_description_that_repeats_the_first_paragraph_adds_nothing() -> None:
    first = f"{_SENTENCES[0]} Paragraph 0 adds its own detail here."
    result = extract_article(_described_page("", first), "https://example.org/a")
    assert result["text"].count(first) == 1
    assert "standfirst" not in result["provenance"]["text"]


def _count_passes(monkeypatch: pytest.MonkeyPatch, precise_drops: slice | None = None) -> list[bool]:
    """Record which trafilatura passes run (True: the precise one); with `precise_drops`, the
    precise pass loses those of its paragraphs (a pass that lost part of the article)."""
    import extraction.body_choice

    passes: list[bool] = []
    real_pass = extraction.body_choice._body_pass

    def counting_pass(tree: object, url: str, *, precise: bool) -> object:
        passes.append(precise)
        body = real_pass(tree, url, precise=precise)
        if precise and precise_drops is not None and body is not None:
            for element in [e for e in body if e.tag == "p"][precise_drops]:
                body.remove(element)
        return body

    monkeypatch.setattr(extraction.body_choice, "_body_pass", counting_pass)
    return passes


# A headline of more than a lead paragraph's length: above the body, but no lead.
_LONG_HEADLINE = "Harbour gets its quay after councillors vote nine to two in a long night of debate at the town hall"


def _short_page(lead: str = "", description: str = "") -> str:
    """A short article (four paragraphs) under a long headline, with a `lead` paragraph first
    (its markup as given) and a meta `description`, if given."""
    meta = f"<meta name='description' content='{description}'>" if description else ""
    return (
        f"<html lang='en'><head><title>{_LONG_HEADLINE}</title>{meta}</head><body><article>"
        f"<h1>{_LONG_HEADLINE}</h1>{f'<p>{lead}</p>' if lead else ''}"
        + "".join(f"<p>{s}</p>" for s in _SENTENCES)
        + "</article></body></html>"
    )


def test_default_mode_pass_does_not_run_for_a_long_body(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = _count_passes(monkeypatch)
    extract_article(_article_page(), "https://example.org/long")
    assert passes == [True]  # 24 paragraphs: the precise pass has the article


def test_a_short_body_that_holds_the_main_content_runs_no_default_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = _count_passes(monkeypatch)
    result = extract_article(_short_page(), "https://example.org/short")
    assert passes == [True]
    assert "holds the main content" in result["provenance"]["text"]
    assert all(sentence in result["text"] for sentence in _SENTENCES)


def test_a_description_above_a_short_body_is_no_lead_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = _count_passes(monkeypatch, precise_drops=slice(0, 1))  # the precise pass drops the standfirst
    result = extract_article(_short_page(STANDFIRST, description=STANDFIRST), "https://example.org/short")
    assert passes == [True]
    assert result["text"].startswith(STANDFIRST)
    assert "+1 standfirst" in result["provenance"]["text"]  # the standfirst rule put it back


# A lead paragraph that resembles the description (the same story) but says it otherwise.
_LEAD = "The council voted for the new quay late on Tuesday, and fishermen who had waited years for it cheered."


@pytest.mark.parametrize(
    ("lead", "description"),
    [
        (_LEAD, STANDFIRST),
        # a lead broken by <br> (the main-content reader gives each piece its own short line)
        (_LEAD.replace(", and ", ",<br>and ").replace(" late ", "<br>late "), ""),
        # the description is the lead cut short: the standfirst rule would not put it back
        (_LEAD, " ".join(_LEAD.split()[:15]) + " ..."),
    ],
    ids=["lead", "lead-with-line-breaks", "description-cut-from-the-lead"],
)
def test_a_short_body_missing_its_lead_paragraph_runs_the_default_pass(
    monkeypatch: pytest.MonkeyPatch, lead: str, description: str
) -> None:
    passes = _count_passes(monkeypatch, precise_drops=slice(0, 1))  # the precise pass drops the lead
    result = extract_article(_short_page(lead, description=description), "https://example.org/short")
    assert passes == [True, False]
    assert " ".join(result["text"].split()).startswith(_LEAD), result["provenance"]


def test_a_short_body_that_lost_the_article_runs_the_default_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = _count_passes(monkeypatch, precise_drops=slice(2, None))  # two paragraphs of 24 left
    result = extract_article(_article_page(), "https://example.org/lost")
    assert passes == [True, False]
    assert "Paragraph 23 adds its own detail here." in result["text"]
    assert "lost the article" in result["provenance"]["text"]


def _pass_tree(blocks: list[tuple[str, str]]) -> object:
    from lxml.etree import Element, SubElement

    body = Element("body")
    for tag, text in blocks:
        SubElement(body, tag).text = text
    return body


def test_a_lead_goes_below_the_headline_the_precise_pass_starts_with() -> None:
    from extraction.body_choice import _restore_lead

    subheading = "A subheading that runs on for more than fifteen words, as some long ones on news pages do"
    precise = _pass_tree([("head", _LONG_HEADLINE), ("p", _SENTENCES[0])])
    full = _pass_tree([("head", _LONG_HEADLINE), ("head", subheading), ("p", _LEAD), ("p", _SENTENCES[0])])
    assert _restore_lead(precise, full) == 1
    assert [(e.tag, e.text) for e in precise] == [("head", _LONG_HEADLINE), ("p", _LEAD), ("p", _SENTENCES[0])]


def test_a_lead_goes_above_a_first_paragraph_nested_in_the_pass() -> None:
    from lxml.etree import SubElement

    from extraction.body_choice import _restore_lead

    precise = _pass_tree([("head", _LONG_HEADLINE)])
    SubElement(SubElement(precise, "quote"), "p").text = _SENTENCES[0]
    full = _pass_tree([("head", _LONG_HEADLINE), ("p", _LEAD), ("p", _SENTENCES[0])])
    assert _restore_lead(precise, full) == 1
    assert [e.tag for e in precise] == ["head", "p", "quote"]
    assert precise[1].text == _LEAD


def test_prompt_patterns_run_on_lowercased_text_match_as_the_case_blind_ones() -> None:
    from extraction.body import _CREDIT_RE, _for_lowercase

    fast = _for_lowercase(_CREDIT_RE)
    for text in ("Photo: Getty Images", "© Reuters 2024", "A ferry crossed the harbour."):
        assert bool(fast.search(text.lower())) == bool(_CREDIT_RE.search(text))
    assert is_prompt("ADVERTISEMENT")
    assert is_prompt("Read more: The harbour's new timetable")
    with pytest.raises(ValueError, match="upper-case"):
        _for_lowercase(re.compile(r"\WGetty", re.IGNORECASE))  # \W is fine, G would never match


# --- body candidates chosen by agreement (extraction/candidates.py) -------------------------

_NAV = [f"Harbour news section {name}" for name in ("Ferries", "Weather", "Sport", "Jobs", "Letters", "Archive")]
# An article sentence that looks like the menu: it opens like a menu item and names its sections.
_LOOKALIKE = "Harbour news section editors said the ferries, the weather and the jobs board would all move online."


def _tree(texts: list[str]) -> object:
    from lxml.etree import Element, SubElement

    body = Element("body")
    for text in texts:
        SubElement(body, "p").text = text
    return body


def test_candidate_no_other_extractor_confirms_loses_to_one_they_do() -> None:
    from extraction.candidates import Candidate, choose

    family = {"trafilatura precise": "t", "trafilatura": "t", "readability": "r"}
    article = [*_SENTENCES, _LOOKALIKE]
    precise = Candidate("trafilatura precise", _NAV * 10)  # longer, but only its own pass has it
    full = Candidate("trafilatura", article)
    readable = Candidate("readability", [*article, "Share this article"])
    choice = choose([precise, full, readable], family)
    assert choice is not None
    assert choice.candidate is full
    assert choice.reason == "agreed by r"
    assert choice.scores["trafilatura precise"] == 0.0


def test_two_passes_of_one_extractor_do_not_confirm_each_other() -> None:
    from extraction.candidates import Candidate, choose

    family = {"trafilatura precise": "t", "trafilatura": "t", "readability": "r"}
    first = Candidate("trafilatura precise", _NAV)
    second = Candidate("trafilatura", _NAV)
    other = Candidate("readability", _SENTENCES)
    assert choose([first, second, other], family) is None


def test_unconfirmed_link_blocks_go_and_a_lookalike_sentence_stays() -> None:
    from extraction.candidates import Candidate, drop_unconfirmed_links

    chosen = Candidate.from_tree("trafilatura", _tree([*_SENTENCES, _LOOKALIKE, *_NAV]))
    witness = Candidate("readability", [*_SENTENCES, _LOOKALIKE])
    links = {t.casefold() for t in _NAV} | {_LOOKALIKE.casefold()}  # the sentence is a link, too
    assert drop_unconfirmed_links(chosen, [witness], links) == len(_NAV)
    kept = [p.text for p in chosen.tree]
    assert kept == [*_SENTENCES, _LOOKALIKE]  # confirmed by readability: it stays


def _nav_table_page() -> str:
    cells = "".join(f"<tr><td><a href='/s{i}'>{name}</a></td></tr>" for i, name in enumerate(_NAV * 8))
    paragraphs = "".join(f"<p>{_SENTENCES[i % 4]} Detail number {i} of the story.</p>" for i in range(12))
    return (
        "<html lang='en'><head><title>Harbour gets its quay</title></head><body><table>"
        f"<tr><td><table class='menu'>{cells}</table></td>"
        f"<td><h1>Harbour gets its quay</h1>{paragraphs}<p>{_LOOKALIKE}</p></td></tr></table></body></html>"
    )


def test_a_precise_pass_that_returned_a_navigation_table_is_outvoted(monkeypatch: pytest.MonkeyPatch) -> None:
    """trafilatura's precise pass returning the menu (as it does on some table layouts) is
    simulated; the default pass and readability-lxml run for real on the page."""
    import extraction.body_choice

    real_pass = extraction.body_choice._body_pass

    def menu_for_precise(tree: object, url: str, *, precise: bool) -> object:
        if precise:
            from lxml.etree import Element, SubElement

            body = Element("body")
            listing = SubElement(body, "list")
            for name in _NAV * 8:
                SubElement(listing, "item").text = name
            return body
        return real_pass(tree, url, precise=precise)

    monkeypatch.setattr(extraction.body_choice, "_body_pass", menu_for_precise)
    result = extract_article(_nav_table_page(), "https://example.org/news/harbour-gets-its-quay")
    assert _SENTENCES[0] in result["text"]
    assert _LOOKALIKE in result["text"]
    assert not any(name in result["text"] for name in _NAV)
    assert re.match(r"trafilatura \(agreed by readability", result["provenance"]["text"]), result["provenance"]


def test_a_long_precise_body_nothing_contradicts_runs_no_other_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    import extraction.candidates

    calls: list[str] = []
    monkeypatch.setattr(extraction.candidates, "readability_candidate", lambda *a: calls.append("r"))
    result = extract_article(_article_page(), "https://example.org/long")
    assert calls == []
    assert result["provenance"]["text"].startswith("trafilatura precise")


# --- damaged pages (extraction/repair.py) ---------------------------------------------------

_PARAGRAPHS = "".join(f"<p>{_SENTENCES[i % 4]} Detail number {i} of the story.</p>" for i in range(12))


@pytest.mark.parametrize(
    ("html", "repair"),
    [
        (
            "<html><head><title>Harbour gets its quay\n<meta name='description' content='x'></head>"
            f"<body><h1>Harbour gets its quay</h1>{_PARAGRAPHS}</body></html>",
            "unclosed <title>",
        ),
        (
            f"<html><head><meta charset='utf-8'><ti\x00\x00tle>Harbour</head><body><h1>Harbour gets its quay</h1>"
            f"{_PARAGRAPHS}</body></html>",
            "control characters",
        ),
        (
            f"<html><head><style>body {{ margin: 0 }}\n<body><h1>Harbour gets its quay</h1>{_PARAGRAPHS}</body></html>",
            "unclosed <style>",
        ),
    ],
)
def test_damaged_head_is_repaired_and_the_article_kept(html: str, repair: str) -> None:
    result = extract_article(html, "https://example.org/news/harbour-gets-its-quay")
    assert _SENTENCES[0] in result["text"]
    assert result["title"] == "Harbour gets its quay"
    assert repair in result["provenance"]["html"]


def test_markup_inside_a_script_string_or_an_svg_title_is_not_damage() -> None:
    html = (
        "<html><head><title>Harbour gets its quay</title>"
        "<script>var frame = '<html><head></head><body>x</body></html>';</script></head>"
        "<body><svg><title>Share</title></svg><h1>Harbour gets its quay</h1>"
        f"{_PARAGRAPHS}</body></html>"
    )
    result = extract_article(html, "https://example.org/news/harbour-gets-its-quay")
    assert "html" not in result["provenance"]
    assert _SENTENCES[0] in result["text"]


# --- titles: section labels, affixes, a headline given as a site name ------------------------


def test_a_section_label_h1_loses_to_the_headline_the_other_signals_agree_on() -> None:
    headline = "Harbour gets its quay after a winter of storms"
    signals = {"h1": ["Politics"], "opengraph": [headline], "title": [f"{headline} | The Harbour Post"]}
    assert choose_title(signals, SITES)[:2] == (headline, "opengraph")


def test_a_two_word_headline_h1_the_others_confirm_stays() -> None:
    signals = {"h1": ["Quay approved"], "opengraph": ["Quay approved"], "title": ["Quay approved | Politics"]}
    assert choose_title(signals, SITES)[:2] == ("Quay approved", "h1")


def test_section_affix_is_cut_by_the_urls_folder_and_a_headline_word_is_not() -> None:
    sites = SiteNames(["The Harbour Post"], "https://harbourpost.example/sport/quay-opens", ["Local"])
    assert strip_site_name("Sport | Quay opens for the season | The Harbour Post", sites) == "Quay opens for the season"
    assert strip_site_name("Quay opens for the season - Local", sites) == "Quay opens for the season"
    assert strip_site_name("Sport clubs get a new quay", sites) == "Sport clubs get a new quay"


def test_a_headline_the_page_also_gives_as_its_site_name_is_kept() -> None:
    headline = "Ferry company names its new chief engineer"
    sites = SiteNames([headline, "Harbour Post"], "https://harbourpost.example/a/ferry-chief")
    signals = {"h1": [headline], "opengraph": [headline], "title": [headline]}
    assert choose_title(signals, sites)[0] == headline


def test_a_long_body_without_any_headline_signal_takes_its_title_from_the_url() -> None:
    html = f"<html><body><article>{_PARAGRAPHS}</article></body></html>"
    result = extract_article(html, "https://example.org/2024/05/harbour-gets-its-quay.html")
    assert result["title"] == "Harbour gets its quay"
    assert result["provenance"]["title"] == "url slug"


# --- not-article verdict (pipelines/classify.py) from what extraction reports --------------


def _verdict(html: str, url: str = "https://example.org/news/brief") -> str | None:
    from crawl.items import ArticleItem
    from extraction.core import extract_with_evidence
    from pipelines.classify import not_article_reason

    fields, evidence = extract_with_evidence(html, url, {})
    item = ArticleItem(url=url, source="t", html=html, fetched_at="")
    for name, value in {**fields, **evidence}.items():
        setattr(item, name, value)
    return not_article_reason(item, NEWS_MIN_WORDS)


_BRIEF = " ".join(_SENTENCES[:2])  # 33 words


def test_a_short_brief_marked_up_as_an_article_is_one() -> None:
    brief = f"<h1>Quay approved</h1><p>{_BRIEF}</p>"
    og = "<meta property='og:type' content='article'>"
    assert _verdict(f"<html><head>{og}</head><body><article>{brief}</article></body></html>") is None
    timed = f"<article><time datetime='2024-05-03'>3 May</time>{brief}</article>"
    assert _verdict(f"<html><body>{timed}</body></html>") is None
    assert (_verdict(f"<html><body><div>{brief}</div></body></html>") or "").startswith("too short")


def test_a_marked_up_page_cut_off_in_transit_is_no_brief() -> None:
    og = "<meta property='og:type' content='article'>"
    whole = f"<html><head>{og}</head><body><article><h1>Quay approved</h1><p>{_BRIEF}</p></article></body></html>"
    assert _verdict(whole) is None
    cut = whole[: whole.index("</p>") - 10]  # stops inside the paragraph, as a download cut short does
    assert (_verdict(cut) or "").startswith("too short")


def test_the_word_floor_counts_the_pages_own_paragraphs() -> None:
    from extraction.core import extract_with_evidence

    html = f"<html><body><article><h1>Quay approved</h1>{_PARAGRAPHS}</article></body></html>"
    _, evidence = extract_with_evidence(html, "https://example.org/a")
    assert evidence["page_words"] >= 12 * 20
    links = "".join(f"<p><a href='/{i}'>{_SENTENCES[i % 4]}</a></p>" for i in range(12))
    _, listing = extract_with_evidence(f"<html><body><main>{links}</main></body></html>", "https://example.org/")
    assert listing["page_words"] < NEWS_MIN_WORDS  # teasers are link text: not the page's own words
