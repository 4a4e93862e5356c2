"""The headline: site names cut off, then the version most of the page's signals agree on.

Rules, in order:

1. Every signal proposes a headline: JSON-LD `headline`, the visible <h1> (kicker and screen-reader
   spans left out), the feed's title for this URL, og:title/twitter:title (one signal: they are
   usually copies), <title>, and trafilatura's title.
2. Site names are cut from each: a leading or trailing segment after a separator (" | ", " - ",
   en and em dashes, full-width bars and colons) that names the site (og:site_name, JSON-LD
   publisher, domain), with everything beyond it; and trailing date segments ("| 28.04.2023").
3. A proposal is supported by each signal that gives the same text, or gives it as a whole segment
   run of a longer title ("Headline | Section" supports "Headline"); an <h1> signal supports any of
   the page's <h1>s.
4. The best-supported proposal wins; ties go to the more specific signal, in the order above.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from extraction.structured import clean_text

if TYPE_CHECKING:
    from collections.abc import Container, Iterator

    from lxml.html import HtmlElement

    from extraction.names import SiteNames

# Separators between a headline and a site or section name. Surrounding spaces are required for
# ASCII hyphens and slashes so "COVID-19" or "24/7" never split; full-width forms need none.
_SEPARATOR_RE = re.compile(r"(\s+[|\-–—·•~»/]\s+|\s*[｜：|]\s*|\s+::\s+)")  # noqa: RUF001
_DATE_SEGMENT_RE = re.compile(r"^[\d\s./\-:]+$|^\d{1,2}\.\s?\w+\s\d{4}$")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})  # noqa: RUF001
_MIN_LENGTH = 3

# Signals, most specific first: the tie-break order.
PRECEDENCE = ("json-ld", "h1", "feed", "meta", "opengraph", "title", "trafilatura")
# Signals whose titles often carry a section or site segment we could not recognise: they lend
# half a vote to a proposal that is a whole segment run of theirs.
_SECTIONED = {"title", "opengraph"}
_RUN_SUPPORT = 0.5
# trafilatura's title is read from the same tags as the others: it is not a vote of its own.
_FALLBACK_ONLY = {"trafilatura"}


def compare_key(text: str) -> str:
    """Texts that differ only in Unicode form, quote style, case or spacing compare equal."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return re.sub(r"\s+", " ", text).strip()


def strip_site_name(title: str | None, sites: SiteNames) -> str | None:
    """`title` without a leading or trailing site name (or trailing date) segment."""
    title = clean_text(title)
    if not title:
        return None
    parts = _SEPARATOR_RE.split(title)
    segments, separators = parts[0::2], parts[1::2]
    if len(segments) == 1:
        return title
    start, end = 0, len(segments)
    # Trailing: the first segment (after the first) naming the site ends the headline.
    for index in range(1, len(segments)):
        if sites.matches(segments[index]):
            end = index
            break
    while end - start > 1 and _DATE_SEGMENT_RE.match(segments[end - 1].strip()):
        end -= 1
    # Leading: the last site-naming segment before the end starts it.
    for index in range(end - 2, -1, -1):
        if sites.matches(segments[index]):
            start = index + 1
            break
    # Section labels next to the headline: "Sport | Headline", "Headline - Football".
    while end - start > 1 and sites.is_section(segments[start]):
        start += 1
    while end - start > 1 and sites.is_section(segments[end - 1]):
        end -= 1
    kept = [segments[start]]
    for index in range(start + 1, end):
        kept += [separators[index - 1], segments[index]]
    result = "".join(kept).strip()
    return result if len(result) >= _MIN_LENGTH else title


def _runs(title: str, separator: re.Pattern[str]) -> Iterator[tuple[str, bool]]:
    """Every contiguous run of `title`'s segments, as the title spells it, and whether it is the
    whole title."""
    parts = separator.split(title)
    segments, separators = parts[0::2], parts[1::2]
    for first in range(len(segments)):
        text = segments[first]
        yield text, len(segments) == 1
        for last in range(first + 1, len(segments)):
            text += separators[last - 1] + segments[last]
            yield text, first == 0 and last == len(segments) - 1


def segment_runs(title: str) -> set[str]:
    """Compare keys of every contiguous run of `title`'s separator-delimited segments."""
    return {compare_key(text) for text, _ in _runs(title, _SEPARATOR_RE)}


# A <title> split wider than for the other signals ("Headline : Local News : The Times",
# "Times: Headline"): a run of its segments is only taken when the page shows it on its own.
_WIDE_SEPARATOR_RE = re.compile(_SEPARATOR_RE.pattern.removesuffix(")") + r"|\s*:\s+)")


_SHOWN_MIN_WORDS = 3


def shown_headline(title: str, shown: Container[str]) -> str | None:
    """The longest run of `title`'s segments (in words) that the page shows as the whole text of
    an element (`shown` holds their compare keys), if it is shorter than the whole title: the
    headline, with the site, section, city or date segments around it left out. An older page's
    <title> is often the only headline signal it has, and its headline is set in <b> or <font>,
    not in an <h1>."""
    found = [run.strip() for run, whole in _runs(title, _WIDE_SEPARATOR_RE) if not whole and compare_key(run) in shown]
    best = max(found, key=lambda run: len(run.split()), default=None)
    return best if best and len(best.split()) >= _SHOWN_MIN_WORDS else None


# Longer texts are paragraphs, not headlines.
_SHOWN_MAX_WORDS = 40
_UNSHOWN = ("script", "style", "noscript", "template", "title")


def shown_texts(tree: HtmlElement) -> set[str]:
    """Compare keys of the short texts the page's body shows as an element's whole text (its
    own text, or all of it for an element with at most two children: <b><font>Headline</font></b>)."""
    body = tree.find("body") if tree.tag == "html" else tree
    shown: set[str] = set()
    for element in body.iter() if body is not None else ():
        if not isinstance(element.tag, str) or element.tag in _UNSHOWN:
            continue
        texts = [element.text] if len(element) == 0 or len(element) > 2 else [element.text, element.text_content()]
        for text in texts:
            if text and text.strip() and len(text.split()) <= _SHOWN_MAX_WORDS:
                shown.add(compare_key(text))
    return shown


def choose_title(signals: dict[str, list[str]], sites: SiteNames) -> tuple[str | None, str | None, dict[str, float]]:
    """The headline, the signal it came from, and how many signals support it.

    `signals` maps a signal name in PRECEDENCE to its texts (the h1 signal may hold several, the
    first being its proposal; the others only lend support).
    """
    cleaned = _cleaned_signals(signals, sites)
    if not cleaned:
        # Every headline matched a name the page gives its site: the page gave its headline as
        # one (application-name, a WebSite object's name). Only the domain tells the site then.
        cleaned = _cleaned_signals(signals, sites.by_domain_only())
    if not cleaned:
        return None, None, {}
    exact = {origin: {compare_key(t) for t in texts} for origin, texts in cleaned.items()}
    runs = {
        origin: set().union(*(segment_runs(t) for t in texts))
        for origin, texts in cleaned.items()
        if origin in _SECTIONED
    }
    support_of: dict[str, float] = {}
    for origin in PRECEDENCE:
        if origin not in cleaned or (origin in _FALLBACK_ONLY and len(cleaned) > 1):
            continue
        wanted = compare_key(cleaned[origin][0])
        support = 0.0
        for other in cleaned:
            if other in _FALLBACK_ONLY:
                continue
            if wanted in exact[other]:
                support += 1
            elif wanted in runs.get(other, ()):
                support += _RUN_SUPPORT
        support_of[origin] = support
    best: tuple[float, int, str, str] | None = None
    for rank, origin in enumerate(PRECEDENCE):
        if origin not in support_of:
            continue
        if origin == "h1" and _is_section_label(cleaned["h1"][0], cleaned, support_of, sites, signals.get("title", [])):
            continue  # it still lent its support to the headline the other signals agree on
        support = support_of[origin]
        if best is None or support > best[0] or (support == best[0] and rank < best[1]):
            best = (support, rank, cleaned[origin][0], origin)
    assert best is not None  # an h1 is only passed over for another proposal
    title, origin = _best_punctuated(best[2], best[3], cleaned)
    if origin != best[3]:
        support_of[origin] = support_of.get(best[3], 0.0)
    return title, origin, support_of


def _cleaned_signals(signals: dict[str, list[str]], sites: SiteNames) -> dict[str, list[str]]:
    """Each signal's texts with site names cut, leaving out those that are only a site name."""
    cleaned: dict[str, list[str]] = {}
    for origin in PRECEDENCE:
        stripped = [strip_site_name(t, sites) for t in signals.get(origin, [])]
        texts = [t for t in stripped if t and len(t) >= _MIN_LENGTH and not sites.matches(t)]
        if texts:
            cleaned[origin] = texts
    return cleaned


# An <h1> of this many words or fewer is a section label or a box heading ("Politik", "Most
# read") when a longer headline is given by the structured data, a meta tag, og:title or <title>.
_LABEL_WORDS = 2
_HEADLINE_SIGNALS = ("json-ld", "meta", "opengraph", "title")


def _is_section_label(
    h1: str, cleaned: dict[str, list[str]], support_of: dict[str, float], sites: SiteNames, titles: list[str]
) -> bool:
    """A short <h1> (a section name, a box heading) where the structured data, a meta tag,
    og:title or <title> gives a longer headline that another signal agrees on, or when the
    <title> (`titles`, as the page gives it) shows the <h1> between two other segments
    ("Headline - Local News - The Gazette"), or the page names it as one of its sections
    (articleSection, article:section, a folder of its URL)."""
    if len(h1.split()) > _LABEL_WORDS:
        return False
    longer = [o for o in _HEADLINE_SIGNALS if o in cleaned and len(cleaned[o][0].split()) > _LABEL_WORDS]
    if not longer:
        return False
    if any(support_of.get(o, 0) > 1 for o in longer) or sites.is_section(h1):
        return True
    return any(_label_between_segments(h1, title) for title in titles)


def _label_between_segments(h1: str, title: str) -> bool:
    """`title` has `h1` as a segment between two others, one of them longer than a label. Only
    between: a short headline first or last in the <title> sits beside the site's name, which
    the page may spell in a way its domain does not tell ("Bridge closes | The Harbour Post")."""
    segments = [compare_key(part) for part in _SEPARATOR_RE.split(title)[0::2]]
    key = compare_key(h1)
    return key in segments[1:-1] and any(s != key and len(s.split()) > _LABEL_WORDS for s in segments)


_SLUG_ID_RE = re.compile(r"^(?:\d+|[a-z]?\d[\w]*|[0-9a-f]{8,})$", re.IGNORECASE)


def url_slug_title(url: str) -> str | None:
    """The words of a URL's last path segment as a title, when it has at least three words
    ("/2024/05/harbour-plan-approved.html" -> "Harbour plan approved"); ids are left out."""
    from urllib.parse import unquote, urlsplit

    segment = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    segment = re.sub(r"\.\w{2,5}$", "", segment)
    words = [w for w in re.split(r"[-_+\s]+", segment) if w and not _SLUG_ID_RE.match(w)]
    if len(words) < 3:
        return None
    text = " ".join(words)
    return text[0].upper() + text[1:]


def letters_key(text: str) -> str:
    """Texts that differ only in punctuation, spacing, case or Unicode form compare equal."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def _punctuation(text: str) -> int:
    return sum(1 for ch in text if not ch.isalnum() and not ch.isspace())


def _best_punctuated(title: str, origin: str, cleaned: dict[str, list[str]]) -> tuple[str, str]:
    """Of the signals' versions of the chosen headline that differ from it only in punctuation,
    the one that keeps the most: an <h1> assembled from a kicker and a headline element, or a
    tag written by a template, loses the separator between them ("Kicker / Headline"), nobody
    adds one."""
    wanted = letters_key(title)
    for other in PRECEDENCE:
        if other in _FALLBACK_ONLY or other not in cleaned:
            continue
        text = cleaned[other][0]
        if letters_key(text) == wanted and _punctuation(text) > _punctuation(title):
            title, origin = text, other
    return title, origin
