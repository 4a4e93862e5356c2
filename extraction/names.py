"""Site names: recognising a publisher's name in a headline segment or a byline.

A page names its site in several places (og:site_name, JSON-LD publisher, application-name) and
its URL carries the domain; a text "is the site" when its comparison key matches any of them.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Sequence

# Second-level labels under which registries sell names ("example.co.uk", "example.com.tr").
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "or", "ne", "go"}


def key(text: str | None) -> str:
    """A comparison key: accents and case dropped, letters and digits only."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isalnum()).casefold()


# How letters a domain name cannot hold are spelled in it: "Börsen-Zeitung" at boersen-zeitung.de.
_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe", "å": "aa"})


def keys(text: str | None) -> set[str]:
    """The text's key, and its key with umlauts and ligatures spelled out as in domain names."""
    plain = key(text)
    spelled = key((text or "").casefold().translate(_TRANSLITERATION))
    return {plain, spelled} - {""}


def domain_keys(url: str | None) -> set[str]:
    """Keys a site's own name may take from its host: "www.golem.de" -> {"golem", "golemde"}."""
    host = (urlsplit(url).hostname or "") if url else ""
    labels = [label for label in host.lower().split(".") if label and label not in ("www", "m", "amp")]
    if len(labels) < 2:
        return {key(label) for label in labels}
    registered = 2 if labels[-2] in _SECOND_LEVEL and len(labels) >= 3 else 1
    name = labels[-1 - registered]
    suffix = "".join(labels[-registered:])
    return {key(name), key(name + suffix), key("".join(labels))}


def path_sections(url: str | None) -> list[str]:
    """The folders of a URL's path that are words ("/sport/football/123-slug" -> sport, football)."""
    path = urlsplit(url).path if url else ""
    folders = [f for f in path.split("/")[:-1] if f]
    return [f.replace("-", " ") for f in folders if f.replace("-", "").isalpha()]


class SiteNames:
    """The names one page gives its site, and a test for whether a text is one of them."""

    def __init__(self, names: list[str], url: str | None, sections: Sequence[str] = ()) -> None:
        self.names = [n for n in names if n]
        self.keys = {k for n in self.names for k in keys(n) if len(k) >= 2}
        self.domain = {k for k in domain_keys(url) if len(k) >= 2}
        # Section names (articleSection, article:section, the URL's folders): a title segment
        # that is one of them, at the headline's start or end, is a section label.
        self.sections = {k for s in [*sections, *path_sections(url)] for k in keys(s) if len(k) >= 3}

    def by_domain_only(self) -> SiteNames:
        """These names without those the page gives: for when every headline the page has matched
        one of them (a page that gives its headline as a site name, too)."""
        plain = SiteNames([], None)
        plain.domain, plain.sections = self.domain, self.sections
        return plain

    def is_section(self, text: str) -> bool:
        return bool(keys(text) & self.sections)

    def matches(self, text: str) -> bool:
        """True if `text` is the site's name, its domain, or a short variant of either."""
        text_keys = {k for k in keys(text) if len(k) >= 2}
        if not text_keys:
            return False
        if text_keys & (self.keys | self.domain):
            return True
        if len(text.split()) > 4:
            return False
        # "Golem.de" for "golem", "Redaktion ndr.de" for "NDR", "Nieuwsblad" for "nieuwsblad.be".
        return any(
            k in text_key or text_key in k
            for text_key in text_keys
            if len(text_key) >= 3
            for k in self.keys | self.domain
            if len(k) >= 3
        )
