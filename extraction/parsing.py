"""The page parsed into the one tree every later step reads: the tree trafilatura's loader
makes, for less CPU.

trafilatura's `load_html` deletes the characters XML cannot hold with a regular expression over
the whole text (about 1 ms for a news page of 340 KB) and hands lxml a Python string. Here they
are deleted from the page encoded to UTF-8, where they are single bytes, with `bytes.translate`
(U+FFFE and U+FFFF, rare, are looked for in the text first), and lxml reads UTF-8 bytes faster
than a string (1.9 -> 1.6 ms a page): 3.2 -> 2.4 ms a page in all, on real news pages. Its
elements get their Python class from a lookup made in C: lxml.html's own lookup calls a Python
method for every element proxy created, thousands a page (in trafilatura's passes over the tree
too), only to give <form>, <input>, <select>, <textarea> and <label> classes of their own that
nothing here or in trafilatura uses.

The tree is the one `load_html` gives (tests/test_page_parsing.py compares them on made-up and
randomly assembled pages), so trafilatura, which takes an lxml.html tree as it is, reads what it
would have parsed. Where the two ways could part, they are made to agree:

- trafilatura repairs a page's first lines after deleting those characters: a page with one of
  them near its start has them deleted from the text first;
- lxml.html tells a whole document from a fragment by its start, and "whitespace" before <html>
  is Unicode whitespace in a text but ASCII in bytes: the text decides.
"""

from __future__ import annotations

import re

from lxml.etree import ElementDefaultClassLookup, LxmlError
from lxml.html import (
    HtmlComment,
    HtmlElement,
    HtmlEntity,
    HTMLParser,
    HtmlProcessingInstruction,
    document_fromstring,
    fromstring,
)
from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, INVALID_XML_CHARS

# What trafilatura's loader deletes: C0 controls but tab and line breaks; U+FFFE and U+FFFF.
_XML_INVALID_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_NONCHARACTERS = ("\ufffe", "\uffff")
# trafilatura's repairs read the first line and the first 4,096 characters.
_REPAIRED_START_CHARS = 8192
# lxml.html.fromstring's test for a whole document, as it makes it for a text.
_WHOLE_DOCUMENT = re.compile(r"^\s*<(?:html|!doctype)", re.IGNORECASE)

# trafilatura's parser options (trafilatura.utils.HTML_PARSER), with the lookup made in C.
_PARSER = HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True, remove_pis=True)
_PARSER.set_element_class_lookup(
    ElementDefaultClassLookup(element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity)
)


def parse_page(html: str) -> HtmlElement | None:
    """The page's tree, or None where trafilatura's loader gives none (nothing parseable, or a
    text that neither says "html" in its first characters nor parses to a document)."""
    beginning = html[:50].lower()
    if INVALID_XML_CHARS.search(html, 0, _REPAIRED_START_CHARS):
        html = INVALID_XML_CHARS.sub("", html)  # before the repairs, as trafilatura does
    html = _repaired_start(html, beginning)
    for noncharacter in _NONCHARACTERS:
        if noncharacter in html:
            html = html.replace(noncharacter, "")
    data = html.encode("utf-8", "surrogatepass").translate(None, _XML_INVALID_BYTES)
    parse = document_fromstring if _WHOLE_DOCUMENT.match(html) else fromstring
    try:
        tree = parse(data, parser=_PARSER)
    except (LxmlError, ValueError):  # an empty document, or nothing libxml2 could read
        return None
    if "html" not in beginning and len(tree) < 2:
        return None
    return tree


def _repaired_start(html: str, beginning: str) -> str:
    """trafilatura's two repairs of a page's first lines: a doctype with a URL in it dropped
    (libxml2 misreads some: lxml bug 1955915), and a self-closing <html/> opened."""
    if "doctype" in beginning:
        first_line, _, rest = html.partition("\n")
        html = DOCTYPE_TAG.sub("", first_line, count=1) + "\n" + rest
    for line in html[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>"):
            return FAULTY_HTML.sub(r"\1>", html, count=1)
    return html
