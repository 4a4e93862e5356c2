"""What extractors leave in the body that is not the article, removed block by block.

trafilatura's body is a tree of blocks (<p>, <head>, <list><item>, <quote>, ...). A block goes when:

- it has no words at all ("|", "•");
- it is a short prompt or label: "Read more", "Advertisement", share/follow/newsletter/comment
  prompts, "Scroll to top", photo credits ("Foto: dpa", "X/Getty Images");
- it is an image caption ending with its credit ("... Foto: Jane Doe") or a video's ending with
  its date and running time ("... 18.04.2024 | 0:21 min"), a notice about the page (affiliate-link
  disclosure, outdated-browser warning, "First published in ...", a translation note) or a call
  to e-mail the newsroom;
- it is a consent placeholder: a cookie/privacy/external-content notice asking for a click, or
  the label left where an embed did not load ("Empfohlener redaktioneller Inhalt");
- it is an embedded social-media post (a quote ending "— Name (@handle) March 5, 2024");
- it repeats: a block seen three times or more is template (every copy goes), a second copy of a
  block goes;
- it precedes the article's first real paragraph and only repeats the headline (after its
  kicker too, the two often run together), the byline or the date ("Von Jane Doe",
  "Stand: 22.04.2024, 06:00 Uhr");
- it ends the body and is an agency sign-off, a "Sources:"/"Related" label, a date, a list of
  short items (links to other articles), a short line introducing something not extracted
  ("Read our live blog:"), or a biography of one of the article's authors (names one in full;
  the paragraph before such a one may name them by first or last name only);
- it is, or follows, the publisher's appeal in the body's second half: a rating widget ("Did you
  like this article?"), a call for support or subscription, a log-in wall.
"""

from __future__ import annotations

import re
from collections import Counter
from copy import copy
from typing import TYPE_CHECKING

from extraction.titles import compare_key, letters_key

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lxml.etree import _Element
    from lxml.html import HtmlElement

_BLOCK_TAGS = {"p", "head", "quote", "item", "code"}
_WORD_RE = re.compile(r"\w", re.UNICODE)
_SHORT_BLOCK_WORDS = 25
_LEAD_BLOCKS = 6  # the byline/date/headline lines an extractor picks up sit in the first few blocks
_REAL_PARAGRAPH_WORDS = 15
_LINK_ITEM_WORDS = 14  # list items this short, closing the body, are headlines of other articles

# Prompts, matched at the start of a short block.
_PROMPT_RE = re.compile(
    r"^(?:"
    r"read (?:more|also|next|the full)|see also|also read|more on this|related (?:articles?|stories)|"
    r"lesen sie (?:auch|mehr|hier)|mehr zum thema|mehr dazu|weiterlesen|"
    r"czytaj (?:więcej|też|także|również)|leia (?:mais|também)|lee (?:más|también)|lire (?:aussi|plus)|"
    r"à lire aussi|leggi anche|les også|les mer|läs (?:mer|också)|lees (?:ook|meer)|devamını oku|"  # noqa: RUF001
    r"ilgili haberler|scroll to top|back to top|zurück nach oben|"
    r"(?:share|teilen|compartir|partager|condividi|udostępnij) (?:this|on|via|the article|den artikel)\b|"
    r"follow (?:us|\w+ on)\b|folgen sie uns|sign up (?:for|to)\b|subscribe (?:to|for|now)\b|"
    r"jetzt abonnieren|abonnez-vous|suscríbete|get (?:the|our) newsletter|"
    r"you must confirm your public display name|please log ?out and then log ?in|log ?in to comment|"
    r"leave a comment|join (?:our|the) (?:commenting|conversation|discussion)|"
    r"this (?:is a|story is) (?:breaking|developing)|more to follow|click here|hier klicken|"
    r"with (?:additional )?(?:reporting|reports|files|material) (?:from|by)|"
    r"(?:das könnte sie auch interessieren|you may also like|recommended for you|most read|meistgelesen)|"
    r"(?:photo|foto|bild|image|picture|credit|quelle|source|bildquelle|fotos|photos|grafik)\s*:|"
    r"(?:mit|with|unter verwendung von) (?:agentur|agency|material)|"
    # Japanese, Chinese and Korean: read on, member sign-up, copyright notices.
    r"続きを読む|詳しくはこちら|有料会員|無料会員|会員登録|ログインして|关注我们|责任编辑|"
    r"관련기사|무단 전재|저작권자"
    r")",
    re.IGNORECASE,
)
# Labels that are the whole block.
_LABEL_RE = re.compile(
    r"^(?:advertisement|anzeige|werbung|publicité|publicidad|pubblicità|reklame|annonse|annons|"
    r"advertentie|reklama|sponsored|gesponsert|ad|ads|loading|wird geladen|copyright|"
    r"sources?|quellen?|fuentes?|credits?|share|teilen|compartir|partager|newsletter|"
    r"comments?|kommentare|read more|mehr lesen|nach oben|related|related articles|more|mehr|"
    r"ähnliche|ähnliche artikel|weitere artikel|mehr zum thema|empfehlungen|recommended|"
    r"zum thema|auch interessant|lesen sie auch|see also|read also|"
    # Placeholders of an embed the reader has not allowed to load.
    r"empfohlener redaktioneller inhalt|externer inhalt|link zum [\w-]+-inhalt)\s*(?:\(\d+\))?\s*:?$",
    re.IGNORECASE,
)
_CREDIT_RE = re.compile(
    r"getty images|shutterstock|imago|picture alliance|picture-alliance|dpa-bildfunk|keystone|"
    r"ap photo\b|afp via|reuters/|/reuters|/afp|/dpa|©|\(c\) ",
    re.IGNORECASE,
)
# Notices about the page rather than the article, anywhere in a short block: affiliate-link
# disclosures, an outdated-browser warning, a call to send the newsroom a tip by e-mail.
_NOTICE_RE = re.compile(
    r"(?:we|may) (?:may )?earn (?:an? )?(?:small )?(?:affiliate )?commission|affiliate links?\b|"
    r"you are using an? (?:\w+ )?browser|(?:outdated|unsupported|older) browser|update your browser|"
    r"(?:enable|turn on|activate) javascript|javascript is (?:disabled|turned off)|"
    # Where the article came from: a republication or translation note.
    r"republished (?:from|with permission)|read the original article|originalartikel|"
    r"maschinelle übersetzung|automatisiert übersetzt|machine[- ]translated|"
    r"^(?:(?:this|dieser|der) (?:article|story|piece|artikel|beitrag|text) (?:was|is|has been|ist|wurde) )?"
    r"(?:(?:first|originally) (?:published|appeared)|zuerst erschienen|ursprünglich erschienen)\b|"
    r"^(?:this|dieser) (?:article|story|artikel|beitrag|text) (?:is a|ist eine) (?:translation|übersetzung)\b",
    re.IGNORECASE,
)
_LINK_HINT_RE = re.compile(
    r"\s?\((?:öffnet (?:im|in einem) neuen (?:fenster|tab)|opens? in (?:a )?new (?:window|tab)|"
    r"s'ouvre dans (?:un|une) nouv(?:el|elle) (?:fenêtre|onglet)|se abre en una nueva (?:ventana|pestaña)|"
    r"external link|externer link)\)",
    re.IGNORECASE,
)
# A video's caption ending in its date and running time: "... 18.04.2024 | 0:21 min".
_VIDEO_CAPTION_RE = re.compile(r"\|\s*\d{1,2}:\d{2}\s*min\.?$")
# An image caption: ends with its photo credit ("... Bild: Jane Doe", "... Foto: picture alliance").
_CAPTION_RE = re.compile(
    r"(?:^|\W)(?:foto|fotos|bild|photo|photos|image|picture|credit|bildquelle)\s*:\s*[^.!?:]{2,60}$", re.IGNORECASE
)
_CAPTION_WORDS = 50
_CONTACT_RE = re.compile(r"\S+@\S+\.\w+")
_CONTACT_WORDS_RE = re.compile(
    r"e-?mail|get in touch|contact|tell us|send|kontakt|schreiben sie|melden sie|tips?\b|story to tell", re.IGNORECASE
)
# The start of the publisher's appeal that follows an article: a rating widget, a request for
# support or a subscription, a log-in wall. Such a short block late in the body ends the article.
_END_MARKER_RE = re.compile(
    r"^(?:(?:did|do) you (?:like|enjoy)|enjoy(?:ed|ing) (?:this|our|the)|how (?:did you like|would you rate)|"
    r"rate this (?:article|story|post|piece|page)\b|"
    r"(?:wie )?hat ihnen (?:dieser|der|unser) (?:artikel|beitrag|text) gefallen|"
    r"(?:support|fund|back) (?:independent|quality|our) journalism|"
    r"\w+ journalismus braucht (?:deine|ihre|eure) unterstützung|unterstützen sie (?:uns|unabhängigen)|"
    r"\d+ (?:wochen|tage|weeks|days|monate|months) (?:kostenlos|gratis|free)|(?:start|begin) (?:your|a) free trial|"
    r"log ?in or (?:create|register|sign up)|(?:create|register) (?:an|a free|your) account to (?:continue|read)|"
    r"already (?:a )?subscriber|become a (?:member|subscriber|supporter))",
    re.IGNORECASE,
)
_END_MARKER_WORDS = 25
_BIO_WORDS = 80
_CONSENT_RE = re.compile(
    r"cookie|consent|privacy settings|datenschutz|privatsphäre|externe[rnms]? inhalt|external content|"
    r"third[- ]party content|drittanbieter|tracking",
    re.IGNORECASE,
)
_CONSENT_ACTION_RE = re.compile(
    r"aktivier|enable|accept|akzeptier|zustimm|klick|click|einstellung|settings|laden|load|anzeig|display",
    re.IGNORECASE,
)
_BYLINE_RE = re.compile(
    r"^(?:by|von|por|par|door|av|af|przez|text|texto|tekst|autor(?:in)?|author)\s*:?\s+\S", re.IGNORECASE
)
# An embedded post's attribution line: "— Name (@handle) February 11, 2025".
_EMBED_RE = re.compile(r"^[—–-] .{0,80}\(@\w+\) \w+ \d{1,2}, \d{4}$")  # noqa: RUF001
# An embedded post quoted whole: its text, then that attribution line.
_EMBED_END_RE = re.compile(r"[—–] [^—–]{0,80}\(@\w+\) \w+ \d{1,2}, \d{4}$")  # noqa: RUF001
# "Read more: <headline>", "FUNDA OLUNYE UDABA LAPHA | <headline>": a label of two or more words.
_TEASER_PREFIX_RE = re.compile(r"^(\S+(?: \S+){1,5}) ?[:|] ")
_TEASER_WORDS = 25
_SIGN_OFF_RE = re.compile(r"^\(?[\w/ .,&-]{2,40}\)$")
# What a dateline is made of, once its digits are gone.
_DATE_WORDS_RE = re.compile(
    r"\b(?:stand|updated?|published|posted|aktualisiert|veröffentlicht|erschienen|am|um|uhr|min|"
    r"minuten?|lesezeit|read|reading|time|verfügbar|bis|last|modified|on|at|de|le|el|publicado|"
    r"actualizado|publié|mis à jour|jan\w*|feb\w*|febr\w*|mär\w*|mar\w*|apr\w*|ma[iy]\w*|jun\w*|"
    r"jul\w*|aug\w*|sep\w*|o[ck]t\w*|nov\w*|de[cz]\w*|gmt|utc|cet|cest|bst|est|edt|pst|am|pm|"
    r"mon\w*|tue\w*|wed\w*|thu\w*|fri\w*|sat\w*|sun\w*|montag|dienstag|mittwoch|donnerstag|"
    r"freitag|samstag|sonntag)\b|[年月日時分秒更新]",
    re.IGNORECASE,
)


def block_text(element: _Element) -> str:
    return " ".join(" ".join(element.itertext()).split())


def page_text(element: HtmlElement) -> str:
    """An element's text as the page shows it: inline markup joined as written (no space put
    before a comma after a link, as `block_text` does), a line break as a space."""
    if element.find(".//br") is None:
        return " ".join(element.text_content().split())
    spaced = copy(element)
    for line_break in spaced.iter("br"):
        line_break.tail = " " + (line_break.tail or "")
    return " ".join(spaced.text_content().split())


def linked_share(element: HtmlElement) -> float:
    """The share of an element's text that is link text (1.0 for an element with no text)."""
    text_length = len(element.text_content())
    if not text_length:
        return 1.0
    return sum(len(link.text_content()) for link in element.iter("a")) / text_length


def _for_lowercase(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """`pattern` without IGNORECASE, to run on text lowercased once. Under IGNORECASE Python's re
    lowercases every character it compares: is_prompt, which runs these on every block of every
    page, was 3 to 5 times slower and 2.8 % of the whole pipeline's CPU (bench/throughput.py's
    py-spy profile)."""
    letters = re.sub(r"\\.", "", pattern.pattern)  # escapes such as \W and \S keep their case
    if letters != letters.lower():
        raise ValueError(f"an upper-case letter would never match lowercased text: {pattern.pattern[:60]}")
    return re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)


_LABEL_LC, _PROMPT_LC, _CREDIT_LC, _CAPTION_LC, _NOTICE_LC, _CONTACT_WORDS_LC, _CONSENT_LC, _CONSENT_ACTION_LC = (
    _for_lowercase(pattern)
    for pattern in (
        _LABEL_RE,
        _PROMPT_RE,
        _CREDIT_RE,
        _CAPTION_RE,
        _NOTICE_RE,
        _CONTACT_WORDS_RE,
        _CONSENT_RE,
        _CONSENT_ACTION_RE,
    )
)


def is_prompt(text: str) -> bool:
    """A short block that is a prompt, label or credit rather than article text."""
    if not _WORD_RE.search(text) or _EMBED_RE.match(text):
        return True
    words = len(text.split())
    lowered = text.lower()
    if words <= 3 and _LABEL_LC.match(lowered):
        return True
    if words <= _SHORT_BLOCK_WORDS and _PROMPT_LC.match(lowered):
        return True
    if words <= 12 and _CREDIT_LC.search(lowered):
        return True
    if words <= _CAPTION_WORDS and (_CAPTION_LC.search(lowered) or _VIDEO_CAPTION_RE.search(lowered)):
        return True
    if words <= 40 and _NOTICE_LC.search(lowered):
        return True
    if words <= _SHORT_BLOCK_WORDS and _CONTACT_RE.search(text) and _CONTACT_WORDS_LC.search(lowered):
        return True
    return words <= 80 and bool(_CONSENT_LC.search(lowered)) and bool(_CONSENT_ACTION_LC.search(lowered))


def is_dateline(text: str) -> bool:
    """A line that only gives a date or time ("Stand: 22.04.2024, 06:00 Uhr")."""
    if not any(ch.isdigit() for ch in text) or len(text.split()) > 14:
        return False
    letters = sum(ch.isalpha() for ch in text)
    rest = _DATE_WORDS_RE.sub("", text)
    return sum(ch.isalpha() for ch in rest) <= max(2, letters // 5)


def _is_lead_metadata(text: str, title_keys: set[str], label_keys: set[str]) -> bool:
    """A line above the article that only repeats the headline, an author, a section name or a
    kicker ("POLL:"), or gives a byline or a date."""
    key = compare_key(text)
    if any(key.startswith(t) and len(key) <= len(t) + 25 for t in title_keys):
        return True
    # The headline after its kicker, the two often run together ("KickerHeadline").
    letters = letters_key(text)
    if any(letters.endswith(t) and len(letters) <= len(t) + 40 for t in map(letters_key, title_keys) if t):
        return True
    if key in label_keys or (len(text.split()) <= 3 and text.endswith(":")):
        return True
    if len(text.split()) <= 10 and _BYLINE_RE.match(text) and not text.rstrip().endswith((".", "!", "?")):
        return True
    return is_dateline(text)


def blocks(body: _Element) -> list[_Element]:
    """The body's text blocks in order (list items rather than their list)."""
    return [el for el in body.iter() if el.tag in _BLOCK_TAGS and not _inside_block(el)]


# A heading found in the body has this many words (fewer is a label, more is a paragraph).
_HEADING_WORDS = (3, 20)


def body_heading(body: _Element) -> str | None:
    """The body's headline, for a page that gives none elsewhere: a line set wholly in bold
    before the first real paragraph (an older page's <b> or <font> headline), else its first
    heading; None if neither has 3 to 20 words."""
    found = blocks(body)
    for block in found:
        text = block_text(block)
        if len(text.split()) >= _REAL_PARAGRAPH_WORDS:
            break
        if _wholly_bold(block) and _heading_length(text):
            return text
    heading = next((block_text(b) for b in found if b.tag == "head"), None)
    return heading if heading and _heading_length(heading) else None


def _heading_length(text: str) -> bool:
    return _HEADING_WORDS[0] <= len(text.split()) <= _HEADING_WORDS[1]


def _wholly_bold(block: _Element) -> bool:
    children = list(block)
    return (
        len(children) == 1
        and children[0].tag == "hi"
        and "#b" in (children[0].get("rend") or "")
        and not (block.text or "").strip()
        and not (children[0].tail or "").strip()
    )


def _inside_block(element: _Element) -> bool:
    parent = element.getparent()
    while parent is not None:
        if parent.tag in _BLOCK_TAGS:
            return True
        parent = parent.getparent()
    return False


def remove_block(element: _Element) -> None:
    """Take a block out of the body, keeping the text that follows it (its tail)."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail and element.tail.strip():
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
    # A list or table left empty goes too.
    if parent.tag in ("list", "table", "row") and len(parent) == 0 and parent.getparent() is not None:
        remove_block(parent)


def _wrap_loose_text(body: _Element) -> None:
    """Text lying directly in the body (outside any block) becomes a <p> of its own."""
    from lxml.etree import SubElement

    if body.text and body.text.strip():
        paragraph = SubElement(body, "p")
        paragraph.text, body.text = body.text.strip(), None
        body.insert(0, paragraph)
    for child in list(body):
        if child.tail and child.tail.strip():
            paragraph = SubElement(body, "p")
            paragraph.text, child.tail = child.tail.strip(), None
            child.addnext(paragraph)


def _trailing_links(kept: list[tuple[_Element, str]]) -> int:
    """How many of the last blocks form a closing list of short items (related-article links)."""
    count = 0
    parent = None
    for element, text in reversed(kept):
        if element.tag != "item" or len(text.split()) > _LINK_ITEM_WORDS:
            break
        if parent is not None and element.getparent() is not parent:
            break
        parent = element.getparent()
        count += 1
    return count if count >= 2 else 0


def _teaser_prefixes(found: list[tuple[_Element, str]]) -> set[str]:
    """Multi-word labels that open two or more short blocks: "Read more:" in any language."""
    prefixes: Counter[str] = Counter()
    for _, text in found:
        match = _TEASER_PREFIX_RE.match(text)
        if match and len(text.split()) <= _TEASER_WORDS:
            prefixes[match.group(1).casefold()] += 1
    return {prefix for prefix, count in prefixes.items() if count >= 2}


def _strip_link_hints(body: _Element) -> None:
    """Screen-reader hints that links carry inside the text: "(opens in a new window)"."""
    for element in body.iter():
        for attribute in ("text", "tail"):
            value = getattr(element, attribute)
            if value and "(" in value:
                setattr(element, attribute, _LINK_HINT_RE.sub("", value))


def clean_body(body: _Element, *, headlines: list[str], authors: list[str], labels: Sequence[str] = ()) -> Counter[str]:
    """Remove non-article blocks from trafilatura's body tree in place; returns counts by rule.

    `headlines` are the page's versions of its headline (any of them may open the body),
    `authors` its authors (a byline line repeats them) and `labels` its section names.
    """
    _wrap_loose_text(body)
    _strip_link_hints(body)
    removed: Counter[str] = Counter()
    found = [(el, block_text(el)) for el in blocks(body)]
    keys = [compare_key(text) for _, text in found]  # once a block: NFKC and casefold are not free
    counts = Counter(key for key, (_, text) in zip(keys, found, strict=True) if text)
    seen: set[str] = set()
    doomed: list[tuple[_Element, str]] = []
    title_keys = {compare_key(h) for h in headlines if h}
    label_keys = {compare_key(a) for a in [*authors, *labels]}
    teasers = _teaser_prefixes(found)
    in_lead = True
    for index, (element, text) in enumerate(found):
        key = keys[index]
        reason = None
        match = _TEASER_PREFIX_RE.match(text)
        if is_prompt(text) or (match and match.group(1).casefold() in teasers):
            reason = "prompt"
        elif element.tag == "quote" and _EMBED_END_RE.search(text):
            reason = "embedded post"
        elif counts[key] >= 3 or key in seen:
            reason = "repeated"
        elif (
            in_lead
            and index < _LEAD_BLOCKS
            and (
                _is_lead_metadata(text, title_keys, label_keys)
                or (element.tag == "head" and element.get("rend") == "h1")
            )
        ):
            reason = "lead metadata"
        seen.add(key)
        if len(text.split()) >= _REAL_PARAGRAPH_WORDS and reason is None:
            in_lead = False
        if reason:
            doomed.append((element, reason))
    doomed_ids = {id(el) for el, _ in doomed}
    kept = [(el, text) for el, text in found if id(el) not in doomed_ids]
    # The publisher's appeal after the article: a marker in the second half, and all after it.
    for position in range(len(kept) // 2, len(kept)):
        text = kept[position][1]
        if len(text.split()) <= _END_MARKER_WORDS and _END_MARKER_RE.match(text):
            doomed += [(el, "appeal") for el, _ in kept[position:]]
            del kept[position:]
            break
    bio = _AuthorBio(authors)
    # From the end back: sign-offs, source headings, a closing list of links and its label, an
    # introduction to something not extracted ("Read our live blog:"), the author's biography.
    bio_run = False
    while kept:
        element, text = kept[-1]
        links = _trailing_links(kept)
        if links:
            doomed += [(el, "trailing") for el, _ in kept[-links:]]
            del kept[-links:]
            continue
        if bio.full(text) or (bio_run and bio.partial(text)):
            doomed.append((element, "author bio"))
            kept.pop()
            bio_run = True
            continue
        bio_run = False
        if not (
            _SIGN_OFF_RE.match(text)
            or _LABEL_RE.match(text)
            or is_dateline(text)
            or (text.endswith(":") and len(text.split()) <= _SHORT_BLOCK_WORDS)
        ):
            break
        doomed.append((element, "trailing"))
        kept.pop()
    for element, reason in doomed:
        remove_block(element)
        removed[reason] += 1
    return removed


class _AuthorBio:
    """Recognises a short paragraph about one of the article's authors ("Jane Doe is ...")."""

    def __init__(self, authors: list[str]) -> None:
        people = [a for a in authors if len(a.split()) >= 2]
        self._full = [re.compile(rf"(?<!\w){re.escape(a)}(?!\w)", re.IGNORECASE) for a in people]
        parts = {w for a in people for w in a.split() if len(w) >= 3 and w[0].isupper()}
        self._part = [re.compile(rf"(?<!\w){re.escape(w)}(?!\w)") for w in parts]

    def full(self, text: str) -> bool:
        """Names an author in full, and is short enough to be a biography."""
        return len(text.split()) <= _BIO_WORDS and any(p.search(text) for p in self._full)

    def partial(self, text: str) -> bool:
        """Names an author by first or last name only (a biography's first paragraph)."""
        return len(text.split()) <= _BIO_WORDS and any(p.search(text) for p in self._part)
