"""extraction/parsing.py: the page's tree is the one trafilatura's own loader would make."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lxml.etree import _Element, tostring
from lxml.html import HtmlElement
from trafilatura import bare_extraction
from trafilatura.settings import Document
from trafilatura.utils import load_html

from extraction.parsing import parse_page

FIXTURES = Path(__file__).parent / "fixtures"
_BODY = "<body><h1>Quay opens</h1><p>The harbour's new quay opened on Monday.</p><p>Ferries berth there.</p></body>"

PAGES = {
    # libxml2 reads an XHTML doctype with its DTD's URL differently: trafilatura drops that doctype.
    "xhtml doctype": '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    f'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html><head><title>Quay</title></head>{_BODY}</html>',
    "xhtml doctype, one line": '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "http://www.w3.org/x.dtd">'
    f"<html>{_BODY}<br/></html>",
    "html5 doctype": f"<!doctype html><html lang='de'>{_BODY}</html>",
    "control characters": "<html><head><title>Qu\x00ay\x07</title></head><body><p>n\x1few quay\x0b</p></body></html>",
    "noncharacters": "<html><body><p>Mon\ufffeday\uffff quay</p></body></html>",
    "tab and line breaks kept": f"<html><body><pre>a\tb\r\nc</pre>{_BODY}</body></html>",
    "self-closing html": f"<html lang='en'/>\n{_BODY}",
    "non-latin text": "<html><body><h1>Гавань</h1><p>新しい岸壁 — ½ € 😀</p></body></html>",
    "xml declaration": f"<?xml version='1.0' encoding='iso-8859-1'?><html>{_BODY}</html>",
    "comments and processing instructions": f"<html><!-- menu --><?php x ?>{_BODY}</html>",
    "a fragment saying html": "<p>html fragment</p>",
    "a document without the word": f"<head><title>Quay</title></head>{_BODY}",
    "forms": f"<html>{_BODY}<form action='/s'><input name='q' value='x'><select><option>a</select>"
    "<textarea>t</textarea><label>l</label></form></html>",
    # Whitespace that is whitespace in a text but not in bytes: still a whole document.
    "no-break space first": f"\xa0<!DOCTYPE html><html>{_BODY}</html>",
    "ideographic space first": f"\u3000<html>{_BODY}</html>",
    # Repairs that see the page as trafilatura does, after the control characters are gone.
    "control character before an xhtml doctype": '\x0b<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" '
    f'"http://www.w3.org/x.dtd">\n<html>{_BODY}</html>',
    "control character after a self-closing html": f"<html lang='en'/>\x01\n{_BODY}",
}


def _whole(tree: _Element | None) -> tuple[str, str] | None:
    """The element's tag and its whole document, doctype included."""
    if tree is None:
        return None
    return str(tree.tag), tostring(tree.getroottree(), encoding="unicode")


@pytest.mark.parametrize("html", PAGES.values(), ids=PAGES.keys())
def test_the_tree_is_the_one_trafilaturas_loader_makes(html: str) -> None:
    expected = load_html(html)
    tree = parse_page(html)
    assert tree is not None
    assert expected is not None
    assert _whole(tree) == _whole(expected)


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("article_*.html")))
def test_fixture_pages_parse_to_trafilaturas_tree(name: str) -> None:
    html = (FIXTURES / name).read_text(encoding="utf-8")
    assert _whole(parse_page(html)) == _whole(load_html(html))


@pytest.mark.parametrize("html", ["", "   ", "just some words", "<p>one block</p>", "<div><p>a</p></div>"])
def test_what_trafilaturas_loader_refuses_is_refused(html: str) -> None:
    assert load_html(html) is None
    assert parse_page(html) is None


def test_trafilatura_takes_the_tree_as_it_is_and_finds_the_same_body() -> None:
    html = (FIXTURES / "article_jsonld.html").read_text(encoding="utf-8")
    tree = parse_page(html)
    assert isinstance(tree, HtmlElement)
    assert all(isinstance(element, HtmlElement) for element in tree.iter("form", "input", "p", "div"))
    assert load_html(tree) is tree
    ours = bare_extraction(tree, with_metadata=False)
    theirs = bare_extraction(html, with_metadata=False)
    assert isinstance(ours, Document)
    assert isinstance(theirs, Document)
    assert "Quayside Road" in (ours.text or "")
    assert ours.text == theirs.text


# Pieces of pages, put together at random: where the two ways of parsing could part.
_PIECES = [
    "<html>", "<html lang='en'/>", "<html/>", "</html>", "<head>", "<title>t", "</title>", "<body>", "<p>",
    "text", "é", "😀", "\u00a0", "\u2028", "\x85", "\u3000", "\n", "\r\n", "\r", "\t", " ",
    "\x00", "\x01", "\x0b", "\x0c", "\x1c", "\x1f", "\ufffe", "\uffff", "\ufeff", "<!DOCTYPE html>",
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "http://www.w3.org/x.dtd">',
    "<?xml version='1.0' encoding='iso-8859-1'?>", "<meta charset='shift_jis'>", "<!-- c -->", "<?pi x?>",
    "<div>", "</div>", "&amp;", "&nbsp;", "<br/>", "/>", "<form><input name=q></form>", "<textarea>", "HTML",
]  # fmt: skip


def test_randomly_assembled_pages_parse_as_trafilaturas_loader_parses_them() -> None:
    pieces = random.Random(19).choices  # a fixed seed: the same 3,000 pages every run
    lengths = random.Random(23)
    differ = []
    for _ in range(3000):
        html = "".join(pieces(_PIECES, k=lengths.randint(0, 12)))
        if _whole(parse_page(html)) != _whole(load_html(html)):
            differ.append(html)
    assert differ == []
