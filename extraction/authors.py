"""Bylines into clean author names.

A byline string is split into names ("A and B", "A, B & C", "A; B"), and each name loses what is
not a name: "By"/"Von"/"Por" prefixes, roles ("Senior Reporter"), e-mail addresses, links and
handles, trailing dates and publication notes ("June 19, 2023", "Veröffentlicht am ...").
Names that are organisations (the site itself, a news agency, a JSON-LD Organization,
"... Redaktion") are kept only when no person is named: "By Jane Doe, Reuters" is Jane Doe, while
a byline that only says "dpa" is dpa. A JSON-LD author list, the publisher's structured credit,
that names an agency beside people keeps it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from extraction.names import key
from extraction.structured import clean_text

if TYPE_CHECKING:
    from extraction.names import SiteNames

_PREFIX_RE = re.compile(
    r"^(?:(?:written|reported|text|words|story|analysis|commentary|interview|ein kommentar|"
    r"eine analyse|ein gastbeitrag|ein interview|eine reportage)\s+)?"
    r"(?:by|from|von|vom|por|par|door|av|af|przez|autor(?:in)?|author|authors|text|texto|tekst|"
    r"reportage|bearbeitet von|aufgezeichnet von)\b\s*[:\-]?\s*",
    re.IGNORECASE,
)
# Between names: "A and B", "A, B & C", "A; B", "A | B", "A og B".
_SPLIT_RE = re.compile(
    r"\s*(?:[;|,、，]|\s&\s|\s(?:and|und|og|och|en|et|y|e|i|ve|und von|und mit)\s)\s*",  # noqa: RUF001
    re.IGNORECASE,
)
_NOISE_RE = re.compile(
    r"\S+@\S+|https?://\S+|www\.\S+|(?<!\w)@\w+|\(\s*\)|\d{1,2}[./]\d{1,2}[./]\d{2,4}.*$|"
    # A date or a publication note after the name: "Jane Doe June 19, 2023", "Published on ...".
    r"\b(?:updated?|published|posted|veröffentlicht|aktualisiert|publicado|actualizado|publié)\b.*$|"
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?\b.*$",
    re.IGNORECASE,
)
# Words that make up a role or a job title, never a name.
ROLE_WORDS = {
    "journalist", "journalistin", "reporter", "reporterin", "correspondent", "korrespondent",
    "korrespondentin", "editor", "redakteur", "redakteurin", "writer", "contributor",
    "columnist", "kolumnist", "kolumnistin", "photographer", "fotograf", "fotografin", "author",
    "autor", "autorin", "autoren", "authors", "auteur", "auteurs", "autori", "staff", "senior",
    "chief", "deputy", "political", "politics", "foreign",
    "business", "economics", "science", "sports", "sport", "health", "technology", "tech",
    "culture", "news", "editorial", "contributing", "freelance", "freier", "freie", "special",
    "associate", "assistant", "managing", "executive", "digital", "online", "video", "data",
    "investigative", "global", "international", "national", "local", "affairs", "desk", "at",
    "large", "producer", "produzentin", "produzent", "moderator", "moderatorin", "analyst",
    "kommentator", "kommentatorin", "redaktør", "journalisten", "for", "the", "and", "of",
    "in", "und", "der", "die", "des", "für", "de", "la", "el", "del", "periodista", "redactor",
    "redactora", "rédacteur", "rédactrice", "journaliste", "giornalista", "dziennikarz",
    "correspondente", "jornalista", "muhabir", "muhabiri", "gazeteci", "기자", "記者",
}  # fmt: skip
# News agencies: credited like people, but organisations.
AGENCIES = {
    "afp", "agencefrancepresse", "dpa", "deutschepresseagentur", "reuters", "ap",
    "associatedpress", "apa", "sda", "keystonesda", "kna", "epd", "ansa", "efe", "europapress",
    "pa", "pamedia", "pressassociation", "bloomberg", "xinhua", "kyodo", "yonhap", "tt", "ntb",
    "ritzau", "belga", "anp", "upi", "lusa", "tass", "ria", "aap", "thecanadianpress", "cp",
    "aa", "anadoluagency", "anadoluajansi", "dha", "iha", "ians", "pti", "ani", "sid", "kap",
    "ots", "apa-ots", "aptn", "cna", "bernama", "antara", "efe/dpa", "dpa-afx", "awp", "rtr",
}  # fmt: skip
_ORG_WORDS_RE = re.compile(
    r"\b(?:redaktion|redaction|rédaction|redacción|redazione|redaksjon|redaktionen|newsroom|"
    r"news|nachrichten|staff|online|zeitung|verlag|media|medien|gmbh|ag|ltd|inc|llc|agency|"
    r"agentur|press|presse|desk|team|service|tv|radio|group|editors|editorial)\b|\.\w{2,3}\b",
    re.IGNORECASE,
)
_CREDIT_RE = re.compile(
    r"^(?:image|photo|foto|bild|picture|credit|quelle|source)\s*:|getty images|shutterstock|istock",
    re.IGNORECASE,
)
_TRAILING_PAREN_RE = re.compile(r"\s*\([^()]{1,12}\)?$")  # "Jane Doe (jd)": initials after a name
_MAX_NAME_WORDS = 6
_MAX_NAME_LENGTH = 60


def split_byline(text: str | None) -> list[str]:
    """The names in one byline string, cleaned; roles and noise dropped."""
    text = clean_text(text)
    if not text:
        return []
    names: list[str] = []
    for part in _SPLIT_RE.split(_NOISE_RE.sub(" ", text)):
        name = clean_name(part)
        if name and key(name) not in {key(n) for n in names}:
            names.append(name)
    return names


def clean_name(text: str | None) -> str | None:
    text = clean_text(text)
    if not text:
        return None
    if _CREDIT_RE.search(text.strip("() ")):
        return None
    if len(text.split()) >= 3:
        text = _TRAILING_PAREN_RE.sub("", text)
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX_RE.sub("", text).strip(" \t-–—:·|/,.()[]")  # noqa: RUF001
    words = text.split()
    if not words or len(words) > _MAX_NAME_WORDS or len(text) > _MAX_NAME_LENGTH:
        return None
    if all(w.casefold().strip(".,") in ROLE_WORDS for w in words):
        return None
    digits = sum(ch.isdigit() for ch in text)
    if digits > len(text) / 3 or not any(ch.isalpha() for ch in text):
        return None
    return text


def is_organization(name: str, sites: SiteNames, *, agencies: bool = True) -> bool:
    """The site itself or a body of people rather than a person; news agencies only if asked."""
    if key(name) in AGENCIES:
        return agencies
    return sites.matches(name) or _ORG_WORDS_RE.search(name) is not None


def choose_authors(
    signals: list[tuple[Any, ...]], sites: SiteNames, *, structured: str = "json-ld"
) -> tuple[list[str], str | None]:
    """Authors from the first signal that names anyone, with its organisations dropped when it also
    names a person.

    `signals` holds (origin, byline strings or a callable giving them, names the source itself
    marks as organisations), most trustworthy first. A news agency that is an author entry of its
    own (a JSON-LD author, one meta tag) or is named in the `structured` signal (the publisher's
    JSON-LD author list) is kept beside people, as the publisher credits it; inside any other
    byline that names people ("By Jane Doe, Reuters") it is a credit line and goes.
    """
    for origin, bylines, organizations in signals:
        names: list[str] = []
        for byline in bylines() if callable(bylines) else bylines:
            parts = split_byline(byline)
            if origin != structured and len(parts) > 1 and any(not is_organization(p, sites) for p in parts):
                parts = [p for p in parts if key(p) not in AGENCIES]
            for name in parts:
                if key(name) not in {key(n) for n in names}:
                    names.append(name)
        if not names:
            continue
        org_keys = {key(o) for o in organizations}
        people = [n for n in names if key(n) not in org_keys and not is_organization(n, sites, agencies=False)]
        return (people or names), origin
    return [], None
