"""Site chrome learned from the archive: lines that recur across a site's articles are its template.

Extraction sees one page at a time, so a site's "Scroll to top", its newsletter box or its "Most
read: ..." line can pass for body text. The archive sees every page of the site: each stored
article's body lines are counted per site, and a line that recurs in a large share of the site's
recent articles is chrome, dropped from the next bodies (and from older ones by `reextract`).

- A line is keyed by its text (case, spacing and digits ignored); a short line (up to
  SHORT_LINE_WORDS words) that does not end as a sentence does also by its first two words, so
  chrome whose tail changes from page to page ("Most read: <a headline>") is seen as one line.
- Counts decay by DECAY per article of the site, so they follow a site that changes its template:
  a new chrome line is recognised after some 40 articles, an old one forgotten after a few hundred.
- Chrome is what is seen on at least MIN_PAGES articles and in at least MIN_SHARE of the site's
  recent ones. A quote that a few articles repeat stays: it recurs, but in a small share.
- A title's leading and trailing segments ("Headline | Politics | The Courier") are counted the
  same way: one that recurs across the site's titles is its name or a section, and is cut.
- A body is left alone when stripping would take more than MAX_STRIPPED of its words (a page
  that is mostly template is a broken page, for the source's health to notice, not one to hollow out).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from archive.sites import site_of

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Container, Iterable

    from sqlite_utils import Database

DECAY = 0.98  # per article of the site: the counts' memory is about 1 / (1 - DECAY) = 50 articles
MIN_PAGES = 5
MIN_SHARE = 0.3
SHORT_LINE_WORDS = 12
MAX_STRIPPED = 0.5
# Keys whose weight has decayed below FADED (a line not seen on the site's last ~34 articles) are
# forgotten, every PRUNE_EVERY articles of the site: such a line could not be chrome (that takes a
# weight of MIN_SHARE x ~50), and a site's every line ever would otherwise stay in memory and in
# site_lines (a crawl of 195 sites grew by 180 MB over 50,000 articles).
FADED = 0.5
PRUNE_EVERY = 50
# Sites whose counts a process keeps in memory between batches; the least recently used beyond
# these are read again from site_lines, key by key as their next articles ask.
SITES_KEPT = 64
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"\w+")
# Separators between a headline and a site or section name (as extraction/titles.py splits them:
# spaces required around ASCII hyphens and slashes, so "COVID-19" never splits).
_TITLE_SEPARATOR = re.compile(r"(\s+[|\-\u2013\u2014\u00b7\u2022~\u00bb/]\s+|\s*[\uff5c\uff1a|]\s*|\s+::\s+)")
_SENTENCE_ENDS = (".", "!", "?", '"', "\u201d", "\u2019", "'", ")", "\u2026")


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _key(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def line_keys(line: str) -> list[int]:
    """The keys a body line is counted under: its whole text and, for a short line, its start."""
    words = _WORD.findall(_DIGITS.sub("0", line.casefold()))
    if not words:
        return []
    keys = [_key(" ".join(words))]
    # A label and a headline ("Most read: ..."), not a sentence: a short paragraph of the story
    # ("He said the council would wait.") ends like one and is only ever keyed whole.
    if 2 < len(words) <= SHORT_LINE_WORDS and not line.rstrip().endswith(_SENTENCE_ENDS):
        keys.append(_key("start: " + " ".join(words[:2])))
    return keys


def title_segments(title: str) -> tuple[list[str], list[str]]:
    """A title's segments and the separators between them ("Headline | Section | Site")."""
    parts = _TITLE_SEPARATOR.split(title)
    return parts[0::2], parts[1::2]


def segment_key(segment: str) -> int:
    return _key("title segment: " + " ".join(_WORD.findall(_DIGITS.sub("0", segment.casefold()))))


def title_keys(title: str | None) -> set[int]:
    """The keys of a title's segments, when it has several."""
    segments = title_segments(title)[0] if title else []
    if len(segments) < 2:
        return set()
    return {segment_key(segment) for segment in segments if segment.strip()}


def page_keys(text: str, title: str | None = None) -> set[int]:
    """Every key of a body's lines and of its title's segments, once per page."""
    return {key for line in text.splitlines() for key in line_keys(line)} | title_keys(title)


def less_chrome(origin: str, lines: int) -> str:
    """A body's provenance once its site's chrome lines are gone."""
    return f"{origin}, less {lines} site chrome lines".lstrip(", ")


def strip_title_affixes(title: str | None, chrome: Container[int]) -> str | None:
    """The title without leading and trailing segments that recur across the site's titles (its
    name, its sections), or None when there is none to cut. One segment always stays."""
    if not title or not chrome:
        return None
    segments, separators = title_segments(title)
    start, end = 0, len(segments)
    while end - start > 1 and segment_key(segments[end - 1]) in chrome:
        end -= 1
    while end - start > 1 and segment_key(segments[start]) in chrome:
        start += 1
    if (start, end) == (0, len(segments)):
        return None
    kept = [segments[start]]
    for index in range(start + 1, end):
        kept += [separators[index - 1], segments[index]]
    return "".join(kept).strip() or None


@dataclass
class Stripped:
    text: str
    markdown: str
    lines: int  # lines dropped


def strip_chrome(
    text: str, markdown: str, chrome: Container[int], keys: list[list[int]] | None = None
) -> Stripped | None:
    """The body without its chrome lines, or None when nothing (or too much) would go. `keys`:
    each line's keys, when the caller has them already."""
    if not chrome or not text:
        return None
    lines = text.splitlines()
    kept: list[str] = []
    dropped: list[str] = []
    for line, line_chrome in zip(lines, keys if keys is not None else map(line_keys, lines), strict=True):
        (dropped if any(key in chrome for key in line_chrome) else kept).append(line)
    if not dropped:
        return None
    words = len(_WORD.findall(text))
    if len(_WORD.findall(" ".join(dropped))) > MAX_STRIPPED * words:
        return None
    gone = {" ".join(_WORD.findall(line.casefold())) for line in dropped}
    markdown_kept = [
        line for line in markdown.splitlines() if " ".join(_WORD.findall(line.casefold())) not in gone or not line
    ]
    return Stripped("\n".join(kept), "\n".join(markdown_kept), len(dropped))


# --- the counts, in the archive ----------------------------------------------------------------


@dataclass
class SiteCounts:
    """One site's decayed line counts as read from the archive, and what this process added.

    Given `stored` (the archive's weights of some keys), only the keys a page asks about are read,
    when it first asks: a crawl going back and forth between more sites than SITES_KEPT read each
    site's every line again for each of its pages (on 20,000 real pages from 78 sites, a fifth of
    the dedup step's 2.7 ms an article; 1.6 ms at 10,000 pages from 39 sites)."""

    pages: int  # articles of the site counted so far
    weights: dict[int, tuple[float, int]] = field(default_factory=dict)  # key -> (weight, at page)
    pruned_at: int = 0  # `pages` when faded keys were last forgotten, or when read from the archive
    stored: Callable[[Collection[int]], dict[int, tuple[float, int]]] | None = None
    asked: set[int] = field(default_factory=set)  # keys already read from `stored`, found or not

    def know(self, keys: Iterable[int]) -> None:
        """Read the stored weights of these keys, those not read yet, in one query."""
        if self.stored is None:
            return
        if len(self.asked) > 4 * len(self.weights) + 10_000:
            # Keys asked but not stored (a page's own lines) are forgotten now and then, or a
            # process that reads more than it counts (reextract, a writer of unchanged pages)
            # would keep every line it ever asked about. Asked again, they are read again.
            self.asked = set(self.weights)
        missing = [key for key in keys if key not in self.asked]
        if missing:
            self.weights.update(self.stored(missing))
            self.asked.update(missing)

    def weight(self, key: int) -> float:
        if self.stored is not None and key not in self.asked:
            self.know([key])
        weight, at = self.weights.get(key, (0.0, self.pages))
        return decayed(weight, self.pages - at)

    def window(self) -> float:
        """How many recent articles the decayed counts stand for."""
        return (1 - DECAY**self.pages) / (1 - DECAY)

    def chrome(self) -> Chrome:
        """The site's chrome as it stands: asked key by key, so no pass over every key is made."""
        return Chrome(self)

    def add(self, keys: Collection[int]) -> None:
        self.know(keys)
        self.pages += 1
        for key in keys:
            self.weights[key] = (self.weight(key) + 1.0, self.pages)

    def forget_unrepeated(self) -> None:
        """Forget, in memory, the keys seen on one article only (once written: site_lines has them).

        Most of a site's keys are its articles' own lines, never seen again; kept, they made a
        site's counts some 0.3 MB, and a crawl's memory grew with its sites (bench/RESULTS.md).
        A line that does come back is read again from site_lines when its page asks, as every
        new line is, so the decisions are those of counts that kept every line (with one writer
        per site; with several, a line read back is as the last of them left it, which is newer).
        Counts with no archive behind them keep all."""
        if self.stored is None:
            return
        self.weights = {key: (weight, at) for key, (weight, at) in self.weights.items() if weight > 1.0}
        self.asked = set(self.weights)


class Chrome:
    """Whether a key is one of the site's chrome keys: seen on MIN_PAGES articles and in MIN_SHARE
    of its recent ones. Empty (false) while the site has fewer than MIN_PAGES articles."""

    def __init__(self, counts: SiteCounts) -> None:
        self.counts = counts
        self.floor = max(MIN_PAGES * DECAY**MIN_PAGES, MIN_SHARE * counts.window())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self.counts.weight(key) >= self.floor

    def __bool__(self) -> bool:
        return self.counts.pages >= MIN_PAGES


def decayed(weight: float, pages_since: int) -> float:
    """A weight `pages_since` articles of the site later. A line stored by another process after
    this one read the site's count is newer than the count: taken as it is, not grown."""
    return weight * DECAY ** max(0, pages_since)


def load(db: Database, site: str) -> SiteCounts:
    """The site's counts as stored: its page count now, each line's weight when it is asked."""
    row = db.execute("SELECT pages FROM site_pages WHERE site = ?", [site]).fetchone()
    pages = row[0] if row else 0
    return SiteCounts(pages=pages, pruned_at=pages, stored=lambda keys: stored_weights(db, site, keys))


def stored_weights(db: Database, site: str, keys: Collection[int]) -> dict[int, tuple[float, int]]:
    """key -> (weight, at page) of those of the keys that site_lines holds for the site."""
    found: dict[int, tuple[float, int]] = {}
    keys = list(keys)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT line_key, weight, at_page FROM site_lines WHERE site = ? AND line_key IN ({marks})"
        found.update((key, (weight, at)) for key, weight, at in db.execute(sql, [site, *chunk]))
    return found


def save(db: Database, site: str, counts: SiteCounts, keys: Iterable[int]) -> None:
    """Write the site's page count and these keys' weights (in the caller's transaction); keys whose
    weight has decayed to nothing are deleted, so the table holds what recurs, not every line ever."""
    db.execute(
        "INSERT INTO site_pages (site, pages) VALUES (?, ?) ON CONFLICT (site) DO UPDATE SET pages = excluded.pages",
        [site, counts.pages],
    )
    rows = [(site, key, *counts.weights[key]) for key in keys if key in counts.weights]
    db.conn.executemany(
        "INSERT INTO site_lines (site, line_key, weight, at_page) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (site, line_key) DO UPDATE SET weight = excluded.weight, at_page = excluded.at_page",
        rows,
    )
    # Now and then (each time the site's count passes a multiple of PRUNE_EVERY, however the
    # batches and the reads from the archive fall): forget lines not seen lately.
    if counts.pages // PRUNE_EVERY > counts.pruned_at // PRUNE_EVERY:
        counts.pruned_at = counts.pages
        # Every stored line of the site, not only those read into memory; just written, the table
        # has this process's weights too.
        lines = db.execute("SELECT line_key, weight, at_page FROM site_lines WHERE site = ?", [site]).fetchall()
        faded = [key for key, weight, at in lines if decayed(weight, counts.pages - at) < FADED]
        db.conn.executemany("DELETE FROM site_lines WHERE site = ? AND line_key = ?", [(site, key) for key in faded])
        for key in faded:
            counts.weights.pop(key, None)
        if counts.stored is not None:
            counts.asked = set(counts.weights)  # keys read but not stored are read again if asked


class SiteChrome:
    """The archive's per-site line counts, as one process uses them: read once per site, kept up
    to date in memory as this process stores articles, written with each batch (`write`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sites: dict[str, SiteCounts] = {}
        self.touched: dict[str, set[int]] = {}  # site -> keys counted since the last write

    def counts(self, site: str) -> SiteCounts:
        counts = self.sites.pop(site, None)
        if counts is None:
            counts = load(self.db, site)
        self.sites[site] = counts  # the most recently used last
        if len(self.sites) > SITES_KEPT:
            self._forget_least_used()
        return counts

    def _forget_least_used(self) -> None:
        for site in list(self.sites)[: len(self.sites) - SITES_KEPT]:
            if site not in self.touched:  # counts not written yet stay until they are
                del self.sites[site]

    def chrome(self, site: str, keys: Collection[int] = ()) -> Chrome:
        """The site's chrome; `keys`, the page's keys, are read from the archive in one query."""
        counts = self.counts(site)
        counts.know(keys)
        return counts.chrome()

    def count(self, site: str, keys: set[int]) -> None:
        """A new article of the site, with its body's line keys (before any chrome was stripped:
        stripped lines must keep being counted, or they would fade and come back)."""
        self.counts(site).add(keys)
        self.touched.setdefault(site, set()).update(keys)

    def write(self) -> None:
        """Save what was counted (in the caller's transaction)."""
        for site, keys in self.touched.items():
            save(self.db, site, self.sites[site], keys)
        # Only once every site is saved: a save that fails leaves `touched` for the next write,
        # which writes what is still in memory.
        for site in self.touched:
            self.sites[site].forget_unrepeated()
        self.touched = {}
        if len(self.sites) > SITES_KEPT:  # the sites of a batch stay until it is written
            self._forget_least_used()


class ChromeItem(Protocol):
    """What the chrome step reads and rewrites of an item (crawl.items.ArticleItem)."""

    url: str
    title: str | None
    text: str
    markdown: str
    word_count: int
    provenance: dict[str, str]
    line_keys: set[int]


def strip_site_chrome(chrome: SiteChrome, item: ChromeItem) -> int:
    """Drop the lines of the item's body and the title affixes that are its site's chrome; returns
    how many lines and affixes went. The keys of the body's lines and title's segments are kept on
    the item, for the store step to count once the article is new."""
    keys = [line_keys(line) for line in item.text.splitlines()]
    item.line_keys = {key for line in keys for key in line} | title_keys(item.title)
    site_chrome = chrome.chrome(site_of(item.url), item.line_keys)
    cut = 0
    if (title := strip_title_affixes(item.title, site_chrome)) is not None:
        item.title, cut = title, 1
        item.provenance["title"] = f"{item.provenance.get('title', '')}, less the site's recurring affixes".lstrip(", ")
    stripped = strip_chrome(item.text, item.markdown, site_chrome, keys)
    if stripped is None:
        return cut
    item.text, item.markdown = stripped.text, stripped.markdown
    item.word_count = word_count(item.text)
    # The signature stays the one of the whole body (computed in the extraction worker): a few
    # lines of chrome move a MinHash estimate by a few hundredths, and computing it again here
    # would cost the crawl process more than the rest of this step.
    item.provenance["text"] = less_chrome(item.provenance.get("text", ""), stripped.lines)
    return cut + stripped.lines
