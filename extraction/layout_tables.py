"""Tables that lay out the page, not data: the columns beside the article's cell are not read.

Older sites place the page in a table: a navigation column, the article's cell, a column of
related stories or job ads. trafilatura (every mode) keeps such a table whole, so the body gets
the menus and sidebars as table rows and the article's paragraphs run together into one cell;
readability-lxml, which scores containers by their paragraphs, takes the article alone.

The article's cell is found the way a reader sees it: the cell whose own text (not inside a link,
not inside a nested table's cells) is the page's prose, at least MIN_WORDS words and most of all
the page's words outside links. The cells beside it in its row, and beside each cell that holds it
in the tables around it, are the page's columns: they are removed from the tree before any
extractor reads it, unless one holds the page's <h1> or its marked-up article. Rows above and
below stay (an old article's table often has its headline, date and lead in rows of their own).
A table inside an article (results, prices, a timetable) has no cell holding most of the page's
prose, so nothing is removed from it.

What is left of a layout table in trafilatura's body (one column of cells holding paragraphs)
is then put back as the paragraphs it holds (`unwrap_prose_tables`).
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import TYPE_CHECKING

from lxml.etree import Element

from extraction.page_evidence import WORD_RE

if TYPE_CHECKING:
    from lxml.etree import _Element
    from lxml.html import HtmlElement

# The article's cell holds at least this many words of its own...
MIN_WORDS = 80
# ...and at least this share of the words on the page that are not link text.
PAGE_SHARE = 0.5
# A cell beside it holding at least this share of its words is more of the article (a second
# column of text, a reader's long letter): it stays.
KEEP_SHARE = 0.3
_CELLS = ("td", "th")
# Text no reader sees as prose: scripts, and the choices of a form (an archive's drop-down menu).
_UNREAD = ("script", "style", "noscript", "template", "select", "option", "textarea", "button")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def _unread(element: HtmlElement) -> bool:
    return (
        element.tag in _UNREAD
        or element.get("hidden") is not None
        or bool(_HIDDEN_STYLE.search(element.get("style") or ""))
    )


def _prose_by_cell(body: HtmlElement) -> tuple[dict[HtmlElement, int], int]:
    """Words outside links, by the innermost cell holding them, and on the whole page."""
    by_cell: dict[HtmlElement, int] = {}
    total = 0
    # (element, innermost cell around it, inside a link) in document order, parents first
    stack: list[tuple[HtmlElement, HtmlElement | None, bool]] = [(body, None, False)]
    while stack:
        element, cell, linked = stack.pop()
        if not isinstance(element.tag, str) or _unread(element):
            continue  # comments, processing instructions, scripts, forms, hidden text
        if element.tag in _CELLS:
            cell = element
        # An anchor without href is a bookmark (an unclosed <a name> can hold the whole article).
        linked = linked or (element.tag == "a" and element.get("href") is not None)
        words = 0 if linked or not element.text else len(WORD_RE.findall(element.text))
        for child in element:
            # A child's tail is its parent's text (outside the child's link, if it is one).
            if not linked and child.tail:
                words += len(WORD_RE.findall(child.tail))
        if words:
            total += words
            if cell is not None:
                by_cell[cell] = by_cell.get(cell, 0) + words
        stack.extend((child, cell, linked) for child in reversed(element))
    return by_cell, total


def _layout(body: HtmlElement) -> tuple[HtmlElement, dict[HtmlElement, int]] | None:
    """The table cell holding the article's prose and every cell's words, if a table lays out
    the page."""
    if next(body.iter(_CELLS), None) is None:
        return None  # most pages: no tables at all
    by_cell, total = _prose_by_cell(body)
    if not by_cell:
        return None
    cell, words = max(by_cell.items(), key=lambda item: item[1])
    if words < MIN_WORDS or words < PAGE_SHARE * total:
        return None
    return cell, by_cell


def _marks_article(element: HtmlElement) -> bool:
    """The element holds what the page itself marks as its article or headline."""
    return next(element.iter("h1", "article"), None) is not None or bool(element.xpath(".//*[@itemprop='articleBody']"))


def _inside_article(element: HtmlElement) -> bool:
    """The element is inside what the page marks as its article: its tables are the article's."""
    return any(a.tag in ("article", "main") or a.get("itemprop") == "articleBody" for a in element.iterancestors())


def _columns(body: HtmlElement) -> list[HtmlElement]:
    """The cells beside the article's cell, and beside each cell holding it, that are not more
    of the article (a good share of its words, the page's <h1> or marked-up article)."""
    found = _layout(body)
    if found is None:
        return []
    cell, by_cell = found
    article_words = by_cell[cell]
    columns: list[HtmlElement] = []
    holder: HtmlElement | None = cell
    while holder is not None:
        row = holder.getparent()
        if row is not None and row.tag == "tr" and not _inside_article(row):
            for sibling in row:
                if sibling is holder or sibling.tag not in _CELLS or _marks_article(sibling):
                    continue
                words = sum(by_cell.get(c, 0) for c in sibling.iter(_CELLS))
                if words < KEEP_SHARE * article_words:
                    columns.append(sibling)
        holder = next(holder.iterancestors(_CELLS), None)
    return columns


def without_layout_columns(tree: HtmlElement) -> tuple[HtmlElement, int]:
    """The page to hand the extractors: a copy without the cells beside the article's cell when
    a table lays out the page (the page itself stays whole: its dates, bylines and images are
    read from it afterwards), else the page itself; and how many cells the copy lacks."""
    body = tree.find("body") if tree.tag == "html" else tree
    columns = _columns(body) if body is not None else []
    if not columns:
        return tree, 0
    paths = [tree.getroottree().getpath(column) for column in columns]
    reading = deepcopy(tree)
    # Each path is found in the copy before any cell goes (a removal renumbers its siblings).
    for column in [reading.getroottree().xpath(path)[0] for path in paths]:
        column.getparent().remove(column)  # a cell's tail is whitespace between cells
    return reading, len(columns)


# Blocks of prose in trafilatura's body tree (a cell holding one is no data cell).
_PROSE_TAGS = ("p", "head", "quote", "list")
# What stays a block of its own when a cell's content is put in the table's place.
_BLOCK_TAGS = (*_PROSE_TAGS, "table", "graphic", "code")


def unwrap_prose_tables(body: _Element) -> int:
    """Put in place of each one-column table of trafilatura's body tree whose cells hold
    paragraphs (what is left of a layout table) its cells' content, so that the article's
    paragraphs are blocks again instead of one table row; returns how many tables went."""
    unwrapped = 0
    for table in list(body.iter("table")):
        rows = list(table)
        if not rows or any(row.tag != "row" for row in rows) or _loose_text(table):
            continue  # not the shape of a table trafilatura wrote from cells: left as it is
        # Empty cells do not count: trafilatura pads each row to the widest one (a colspan).
        filled = [[c for c in row if c.tag == "cell" and _has_text(c)] for row in rows]
        if any(len(cells) > 1 for cells in filled) or any(_loose_text(row) for row in rows):
            continue  # columns: data
        cells = [c for row_cells in filled for c in row_cells]
        if not any(next(c.iter(*_PROSE_TAGS), None) is not None for c in cells):
            continue
        _replace(table, [piece for c in cells for piece in _pieces(c)])
        unwrapped += 1
    return unwrapped


def _loose_text(element: _Element) -> bool:
    """Text lying in the element between its children, outside them (it would be lost)."""
    return bool((element.text or "").strip()) or any((child.tail or "").strip() for child in element)


def _has_text(element: _Element) -> bool:
    return any(text.strip() for text in element.itertext())


def _pieces(cell: _Element) -> list[_Element]:
    """The cell's content as blocks: its own blocks as they are, the text and inline elements
    between them gathered into paragraphs (a line break ends one)."""
    pieces: list[_Element] = []
    made: list[_Element] = []
    loose: _Element | None = None

    def paragraph() -> _Element:
        nonlocal loose
        if loose is None:
            loose = Element("p")
            pieces.append(loose)
            made.append(loose)
        return loose

    if cell.text and cell.text.strip():
        paragraph().text = cell.text  # spaces kept: an inline element may follow
    for child in list(cell):
        tail, child.tail = child.tail, None
        if child.tag in _BLOCK_TAGS:
            loose = None
            pieces.append(child)
        elif child.tag == "lb":
            loose = None
        else:
            paragraph().append(child)
        if tail and tail.strip():
            holder = paragraph()
            if len(holder):
                holder[-1].tail = (holder[-1].tail or "") + tail
            else:
                holder.text = (holder.text or "") + tail
    for made_paragraph in made:  # spaces at a paragraph's edges go
        if made_paragraph.text:
            made_paragraph.text = made_paragraph.text.lstrip()
        last = made_paragraph[-1] if len(made_paragraph) else None
        if last is not None and last.tail:
            last.tail = last.tail.rstrip()
        elif last is None and made_paragraph.text:
            made_paragraph.text = made_paragraph.text.rstrip()
    return pieces


def _replace(table: _Element, pieces: list[_Element]) -> None:
    parent = table.getparent()
    if parent is None:
        return
    position = parent.index(table)
    tail = table.tail
    parent.remove(table)
    for offset, piece in enumerate(pieces):
        parent.insert(position + offset, piece)
    if tail and tail.strip():
        paragraph = Element("p")
        paragraph.text = tail.strip()
        parent.insert(position + len(pieces), paragraph)
