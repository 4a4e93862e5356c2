"""Damaged markup mended, so a page with a broken <head> still gives its article.

Two kinds of damage lose a whole page to the HTML parser:

- NUL and other control characters (bytes lost or garbled in transfer): libxml2 stops reading
  at a NUL, so everything after it, the article included, is gone;
- a raw-text element left open (`<title>`, `<style>`, `<script>`, `<textarea>`): the parser
  reads the rest of the document as that element's text, so the page has no body at all.

Control characters are removed before parsing (one search over the page). An element left open
is only looked for when the parsed page shows the damage (`swallowed`): a raw-text element whose
text holds the document's own markup. A well-formed page is never touched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml.html import HtmlElement

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_RAW_TEXT = ("title", "style", "textarea", "script")
_RAW_TEXT_BUT_SCRIPT = ("title", "style", "textarea")
# What only a document's markup holds: an element's text running into it means the element was
# left open. A script's strings may hold any tag, so for a script it takes both of its own.
_DOCUMENT_GOES_ON_RE = re.compile(r"<(?:/head|body|meta|link|h1|article|main|div|p)\b", re.IGNORECASE)
_SCRIPT_GOES_ON = ("</head", "<body")


def remove_control_characters(html: str) -> tuple[str, list[str]]:
    """`html` without NUL and other control characters (tab and line breaks stay), when it has a
    NUL (where libxml2 stops reading)."""
    if "\x00" not in html:  # libxml2 recovers from the others; a plain search costs far less
        return html, []
    return _CONTROL_RE.sub("", html), ["control characters"]


def swallowed(tree: HtmlElement) -> bool:
    """The parsed page has a raw-text element whose text is the rest of the document."""
    body = tree.find("body")
    empty_body = body is None or len(body) < 2
    # A script's strings may write markup: only a page left without a body is damaged by one, so
    # with a body the scripts (a page's largest texts, often) are not read at all.
    for element in tree.iter(*(_RAW_TEXT if empty_body else _RAW_TEXT_BUT_SCRIPT)):
        text = element.text or ""
        if element.tag == "script":
            lowered = text.lower()
            if all(tag in lowered for tag in _SCRIPT_GOES_ON):
                return True
        elif "<" in text and _DOCUMENT_GOES_ON_RE.search(text):  # the pattern ignores case
            return True
    return False


def close_raw_text(html: str) -> tuple[str, list[str]]:
    """`html` with every raw-text element closed where its text runs into markup; and which
    elements were closed."""
    repairs: list[str] = []
    for tag in _RAW_TEXT:
        html, closed = _close(html, tag)
        if closed:
            repairs.append(f"unclosed <{tag}>")
    return html, repairs


def _close(html: str, tag: str) -> tuple[str, int]:
    lowered = html.lower()
    opening, closing = f"<{tag}", f"</{tag}"
    position, closed = 0, 0
    while (start := lowered.find(opening, position)) != -1:
        after = start + len(opening)
        if after < len(lowered) and lowered[after] not in "> \t\n\r/":
            position = after  # <titlebar>, <styles>: another tag
            continue
        content = lowered.find(">", after)
        if content == -1:
            break
        content += 1
        end = lowered.find(closing, content)
        stop = _runs_into_markup(html, lowered, tag, content, end if end != -1 else len(html))
        if stop is None:
            position = content if end == -1 else end + len(closing)
            continue
        cut = _cut_at(html, tag, content, stop)
        html = f"{html[:cut]}</{tag}>{html[cut:]}"
        lowered = html.lower()
        closed += 1
        position = cut + len(closing) + 1
    return html, closed


def _runs_into_markup(html: str, lowered: str, tag: str, start: int, end: int) -> int | None:
    """Where the element's text (from `start` to its closing tag or the end) meets the document's
    markup, or None if it does not."""
    if tag == "script":
        found = [lowered.find(t, start, end) for t in _SCRIPT_GOES_ON]
        return min(found) if all(f != -1 for f in found) else None
    stop = _DOCUMENT_GOES_ON_RE.search(html, start, end)
    return stop.start() if stop else None


def _cut_at(html: str, tag: str, content: int, stop: int) -> int:
    """Where an unclosed element's text ends: a title at its first line break (its text is one
    line; what follows is damaged <head>), anything else right before the markup that follows."""
    if tag == "title":
        newline = html.find("\n", content, stop)
        if newline != -1:
            return newline
    return stop
