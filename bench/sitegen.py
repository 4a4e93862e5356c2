"""Generate a local news site of N articles for the throughput benchmark (bench/throughput.py).

    .venv/bin/python bench/sitegen.py --articles 2000 [--out DIR] [--seed 1] [--sitemap-size 50000]
                                      [--sitemap-style files|query]

What it writes is meant to cost a crawler and an extractor what a real news site costs them:

- Article pages of 50 to 200 KB each: a mega-menu, inline CSS, a large hydration-state script,
  analytics scripts, a "most read" sidebar, related links, 5 to 25 reader comments and a big footer
  around a body of 350 to 1,200 words. Three templates (JSON-LD / OpenGraph + meta / a JSON-LD
  @graph with inline asides and ad slots) vary where the headline, byline and date live.
- Bodies come from a seeded Markov-ish walk over a word list, so every article's text is distinct.
- An RSS feed of the newest 200 articles whose links carry `utm_*` tracking parameters (as real
  feeds do: the same article as the sitemap's URL once canonicalised), a Google News sitemap of the
  newest 500, article sitemaps split at `--sitemap-size` URLs (50,000, the protocol's limit) under a
  sitemap index, section fronts, a home page and robots.txt (whose ``Sitemap:`` line names the index).

Where the sitemaps live is chosen by ``--sitemap-style``:

- ``files`` (the default): files, as WordPress and most CMSs publish them: the index at
  ``/sitemap_index.xml``, article sitemaps at ``/sitemaps/articles-K.xml``, the news sitemap at
  ``/sitemaps/news.xml``.
- ``query``: query URLs, as the Arc XP platform publishes them (Reuters, the Washington Post, many
  regional papers): the index at ``/arc/outboundfeeds/sitemap-index/?outputType=xml``, article
  sitemaps at ``/arc/outboundfeeds/sitemap/?outputType=xml&from=OFFSET`` (one per
  ``--sitemap-size`` articles, OFFSET = the first article's position: 0, size, 2 x size, ...), the
  news sitemap at ``/arc/outboundfeeds/news-sitemap/?outputType=xml``. No URL of a sitemap ends in
  ``.xml``; a crawler has to know a sitemap from where it was listed (an index's ``<sitemap>``,
  robots.txt), not from its name.

Articles, feed, fronts and the content of every sitemap are the same in both styles; only the
sitemaps' URLs differ (and so the index's ``<loc>`` and robots.txt's ``Sitemap:`` line).

Everything is pre-rendered into one pack file so the server (bench/siteserver.py) does no templating
per request: ``pages.bin`` holds each response body (article pages gzip-compressed, as a real server
would send them), ``index.tsv`` maps each path (with its query string, for query-style sitemaps) to
(offset, length, flags, content type). Feeds, sitemaps and robots.txt need absolute URLs, so they
hold ``{{BASE}}``, replaced once when the server starts; article pages only use root-relative links
and are served as they are.

``manifest.jsonl`` holds the truth for every article (title, authors, date, first and last body
paragraphs, a phrase from each comment) so a benchmark can check that what a crawler stored is right.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import random
import string
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

GENERATOR_VERSION = 4
SITE_NAME = "The Harbour Ledger"
SECTIONS = ("world", "politics", "business", "science", "culture", "sport", "travel", "opinion")
TEMPLATES = ("classic", "magazine", "portal")
FEED_SIZE = 200
NEWS_SITEMAP_SIZE = 500
SECTION_FRONT_SIZE = 40
SITEMAP_LIMIT = 50_000  # the sitemaps protocol's maximum URLs per file
ARC_FEEDS = "/arc/outboundfeeds"  # where Arc XP sites publish their sitemaps
NEWEST = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}

# Common English words; the Markov-ish walk below strings them into sentence-like text.
WORDS = """
the of and to in a is that for it as was with be by on not he this are or his from at which but have
an had they you were their one all we can her has there been if more when will would who so no she
other its may these about into them any only over also new after first two some time could than then
people year years made most many such state city council government minister report week month
market company workers plan group public police court health school water power energy money prices
rate bank trade deal talks vote party leader election campaign policy law rules budget tax growth
study research scientists data results team players season match club coach fans league final game
museum festival artists music film book writer stage gallery show exhibition visitors harbour coast
river bridge road rail station airport port ship ferry island town village region country border
north south east west local national international global economic political social cultural
said says told asked added warned expected announced confirmed reported decided agreed rejected
approved opened closed launched raised cut increased fell rose grew remained continued began ended
under between during before against without across around through since until while because
although however despite within among towards along behind beyond beneath above below near far
small large long short high low early late young old recent current former future major minor
strong weak clear open free full hard easy important possible likely certain different similar
best better worse worst greater lower higher larger smaller biggest oldest newest latest final
morning evening night day days hours minutes weekend summer winter spring autumn january march
officials residents families children students teachers doctors nurses farmers fishermen drivers
buildings houses homes streets schools hospitals services jobs costs plans changes problems issues
questions answers figures numbers cases levels rates prices wages profits losses sales shares
decision statement interview survey review inquiry investigation agreement proposal project scheme
programme system network service process industry sector economy environment climate weather storm
flood fire heat rain wind snow ice sea land air forest farm field garden park square hall tower
""".split()  # noqa: SIM905 (word lists read better as text)
FIRST_NAMES = """Ada Alan Amara Ben Carys Dara Elin Farah Gwen Hamid Iona Jonas Kemi Lars Maya Nils Omar
Priya Quinn Rhys Sana Tomas Una Vera Wen Yusuf Zara Aled Bryn Cora Dev Esme Finn Greta Hugo Ines""".split()  # noqa: SIM905 (word lists read better as text)
LAST_NAMES = """Abbott Bryant Castell Dunmore Ellery Fenwick Garside Hollis Ibbot Jarrow Kettering
Lowther Marsh Norcott Oakes Penrose Quayle Radley Sefton Thorne Upton Vance Whitlock Yardley Zeller
Ashby Brennan Carrow Dalby Esk Frome Gill Harker""".split()  # noqa: SIM905 (word lists read better as text)
# Place names made from syllables, so the text has proper nouns no dictionary knows.
SYLLABLES = "ar bel cor dun el fen gar hol in kel lin mor nor ost pen ros sel tor ul ven wick yar".split()  # noqa: SIM905 (word lists read better as text)


@dataclass(frozen=True)
class ArticleMeta:
    """What is known about an article before its page is rendered (shared by links to it)."""

    id: int
    section: str
    published: datetime
    title: str
    slug: str
    authors: tuple[str, ...]
    template: str

    @property
    def path(self) -> str:
        day = self.published.strftime("%Y/%m/%d")
        return f"/{self.section}/{day}/{self.slug}-{self.id}.html"


class TextGen:
    """A seeded Markov-ish text generator: each word picks its successor from a fixed shortlist."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.places = [
            "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize() for _ in range(400)
        ]
        vocab = WORDS + self.places[:120]
        self.vocab = vocab
        # A fixed successor shortlist per word gives text with recurring but non-repeating phrases.
        self.next = {w: rng.sample(vocab, 14) for w in vocab}

    def sentence(self, rng: random.Random, low: int = 8, high: int = 26) -> str:
        word = rng.choice(self.vocab)
        words = [word]
        for _ in range(rng.randint(low, high) - 1):
            word = rng.choice(self.next[word]) if rng.random() < 0.85 else rng.choice(self.vocab)
            words.append(word)
        if rng.random() < 0.25:
            words.insert(rng.randint(1, len(words) - 1), rng.choice(self.places) + ",")
        if rng.random() < 0.15:
            words.insert(rng.randint(1, len(words) - 1), str(rng.randint(2, 2000)))
        text = " ".join(words)
        end = "." if rng.random() < 0.9 else rng.choice("?!")
        return text[0].upper() + text[1:] + end

    def paragraph(self, rng: random.Random, low: int = 2, high: int = 5) -> str:
        return " ".join(self.sentence(rng) for _ in range(rng.randint(low, high)))

    def title(self, rng: random.Random) -> str:
        words = [rng.choice(self.vocab) for _ in range(rng.randint(5, 10))]
        words[rng.randint(0, len(words) - 1)] = rng.choice(self.places)
        text = " ".join(words)
        return text[0].upper() + text[1:]


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def slugify(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in keep.split("-") if part)[:70].strip("-")


def plan_articles(n: int, seed: int, gen: TextGen) -> list[ArticleMeta]:
    """Every article's identity, newest last; ids are unique and stable for a given seed."""
    rng = random.Random(seed * 7919 + 1)
    span = timedelta(days=max(30, n // 40))  # about 40 articles a day, like a regional daily
    articles = []
    for i in range(n):
        published = NEWEST - span * (1 - (i + 1) / n) - timedelta(minutes=rng.randint(0, 59))
        title = gen.title(rng)
        authors = tuple(person(rng) for _ in range(1 if rng.random() < 0.8 else 2))
        articles.append(
            ArticleMeta(
                id=100_000 + i,
                section=SECTIONS[rng.randrange(len(SECTIONS))],
                published=published.replace(second=0, microsecond=0),
                title=title,
                slug=slugify(title),
                authors=authors,
                template=TEMPLATES[i % len(TEMPLATES)],
            )
        )
    return articles


# --- page chrome (shared per template, built once) --------------------------------------------


def _css(rng: random.Random, rules: int) -> str:
    props = ("margin", "padding", "color", "font-size", "line-height", "border", "display", "gap")
    lines = []
    for i in range(rules):
        name = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))
        body = ";".join(f"{rng.choice(props)}:{rng.randint(0, 40)}px" for _ in range(rng.randint(2, 6)))
        lines.append(f".{name}-{i}{{{body}}}")
    return "\n".join(lines)


def _mega_menu(gen: TextGen, rng: random.Random, template: str) -> str:
    items = []
    for section in SECTIONS:
        sub = "".join(
            f'<li><a href="/{section}/">{html.escape(rng.choice(gen.places))} {rng.choice(WORDS)}</a></li>'
            for _ in range(rng.randint(10, 18))
        )
        items.append(
            f'<li class="menu-item"><a href="/{section}/">{section.title()}</a><ul class="submenu">{sub}</ul></li>'
        )
    cls = {"classic": "site-nav", "magazine": "nav-primary", "portal": "c-megamenu"}[template]
    return (
        f'<nav class="{cls}" aria-label="Main"><ul>{"".join(items)}'
        '<li><a href="/search?q=">Search</a></li><li><a href="/login">Sign in</a></li></ul></nav>'
    )


def _footer(gen: TextGen, rng: random.Random) -> str:
    columns = []
    for heading in ("Sections", "Services", "About us", "Follow", "Partners"):
        links = "".join(
            f'<li><a href="/about.html#{i}">{html.escape(gen.title(rng)[:30])}</a></li>'
            for i in range(rng.randint(8, 14))
        )
        columns.append(f'<div class="footer-col"><h4>{heading}</h4><ul>{links}</ul></div>')
    legal = " ".join(gen.sentence(rng) for _ in range(4))
    return (
        f'<footer class="site-footer">{"".join(columns)}<p class="legal">{html.escape(legal)}</p>'
        f"<p>&copy; 2026 {SITE_NAME}. All rights reserved.</p></footer>"
    )


ANALYTICS = (
    "<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
    "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s);j.async=true;"
    "j.src='/static/gtm.js?id='+i;f.parentNode.insertBefore(j,f);})(window,document,'script',"
    "'dataLayer','GTM-LEDGER');</script>"
)


@dataclass(frozen=True)
class Chrome:
    css: str
    menu: str
    footer: str
    vendor_js: str


def build_chrome(gen: TextGen, seed: int) -> dict[str, Chrome]:
    chrome = {}
    for index, template in enumerate(TEMPLATES):
        rng = random.Random(seed * 31 + index)
        vendor = "".join(
            f"function {''.join(rng.choice(string.ascii_lowercase) for _ in range(6))}{i}(a,b)"
            f"{{return a*{rng.randint(2, 99)}+b^{rng.randint(2, 99)};}}"
            for i in range(rng.randint(60, 120))
        )
        chrome[template] = Chrome(
            css=_css(rng, rng.randint(120, 220)),
            menu=_mega_menu(gen, rng, template),
            footer=_footer(gen, rng),
            vendor_js=vendor,
        )
    return chrome


def make_pool(gen: TextGen, seed: int, size: int = 1 << 20) -> str:
    """A long run of JSON-safe text; pages take random windows of it to fill their state script."""
    rng = random.Random(seed * 131)
    parts: list[str] = []
    total = 0
    while total < size:
        piece = gen.sentence(rng).replace('"', "").replace("\\", "")
        parts.append(piece)
        total += len(piece) + 1
    return " ".join(parts)


# --- article pages ----------------------------------------------------------------------------


@dataclass
class RenderedArticle:
    html: str
    truth: dict[str, Any]


def _link_list(items: list[ArticleMeta], cls: str) -> str:
    return "".join(f'<li class="{cls}"><a href="{a.path}">{html.escape(a.title)}</a></li>' for a in items)


def _teaser_grid(gen: TextGen, rng: random.Random, everyone: list[ArticleMeta]) -> str:
    """The "more news" grid under most articles: many small nested elements, as on real pages."""
    cards = []
    for _ in range(rng.randint(30, 70)):
        a = everyone[rng.randrange(len(everyone))]
        cards.append(
            f'<div class="teaser-card"><a class="teaser-img" href="{a.path}"><picture>'
            f'<source srcset="/img/{a.id}-w640.webp" type="image/webp" media="(min-width: 600px)">'
            f'<img src="/img/{a.id}-w320.jpg" alt="" loading="lazy" width="320" height="180"></picture></a>'
            f'<div class="teaser-body"><span class="kicker">{a.section.title()}</span>'
            f'<h3 class="teaser-title"><a href="{a.path}">{html.escape(a.title)}</a></h3>'
            f'<p class="teaser-text">{html.escape(gen.sentence(rng, 8, 16))}</p>'
            f'<div class="teaser-meta"><span class="icon icon-clock"></span><time datetime="'
            f'{a.published.isoformat()}">{a.published:%d %b}</time></div></div></div>'
        )
    return f'<section class="more-news"><h2>More news</h2><div class="grid">{"".join(cards)}</div></section>'


def _comments(gen: TextGen, rng: random.Random) -> tuple[str, list[str]]:
    phrases = []
    blocks = []
    for i in range(rng.randint(5, 25)):
        text = gen.paragraph(rng, 1, 3)
        phrases.append(text)
        blocks.append(
            f'<li class="comment" id="c{i}"><div class="comment-meta"><span class="comment-author">'
            f"{html.escape(person(rng))}</span> <time>{rng.randint(1, 59)} minutes ago</time></div>"
            f'<div class="comment-body"><p>{html.escape(text)}</p></div>'
            f'<a class="reply" href="#c{i}">Reply</a></li>'
        )
    return (
        f'<section id="comments" class="comments"><h3>Comments ({len(blocks)})</h3>'
        f'<ol class="comment-list">{"".join(blocks)}</ol></section>',
        phrases,
    )


def _body(gen: TextGen, rng: random.Random, meta: ArticleMeta, related: list[ArticleMeta]) -> tuple[str, list[str]]:
    paragraphs = [gen.paragraph(rng) for _ in range(rng.randint(7, 22))]
    parts = []
    for i, text in enumerate(paragraphs):
        if i and i % 5 == 0:
            parts.append(f"<h2>{html.escape(gen.title(rng))}</h2>")
        parts.append(f"<p>{html.escape(text)}</p>")
        if i == 2 and meta.template == "portal" and related:
            # an inline "read more" box inside the body, as portals do
            parts.append(
                f'<aside class="inline-related"><h4>Read more</h4><ul>{_link_list(related[:3], "ir")}</ul></aside>'
                '<div class="ad-slot" data-slot="mid-article"></div>'
            )
        if i == 4 and rng.random() < 0.4:
            parts.append(
                f'<figure><img src="/img/{meta.id}-{i}.jpg" alt="{html.escape(gen.title(rng))}">'
                f"<figcaption>{html.escape(gen.sentence(rng))}</figcaption></figure>"
            )
    return "\n".join(parts), paragraphs


def _state_script(pool: str, rng: random.Random, meta: ArticleMeta, related: list[ArticleMeta], size: int) -> str:
    """The hydration blob most news sites inline: it is where most of a page's bytes are."""
    head = {
        "article": {"id": meta.id, "section": meta.section, "path": meta.path},
        "teasers": [{"id": a.id, "title": a.title, "url": a.path} for a in related],
    }
    chunks = [json.dumps(head)[:-1]]
    filled = len(chunks[0])
    n = 0
    while filled < size:
        length = rng.randint(400, 3000)
        start = rng.randrange(0, len(pool) - length)
        chunk = f',"blk{n}":"{pool[start : start + length]}"'
        chunks.append(chunk)
        filled += len(chunk)
        n += 1
    chunks.append("}")
    return f"<script>window.__STATE__ = {''.join(chunks)};</script>"


def _head(meta: ArticleMeta, chrome: Chrome, description: str) -> str:
    iso = meta.published.isoformat()
    title = html.escape(meta.title)
    common = (
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} | {SITE_NAME}</title>"
        f'<link rel="canonical" href="{meta.path}">'
        f'<meta name="description" content="{html.escape(description)}">'
        f'<link rel="alternate" type="application/rss+xml" href="/feeds/rss.xml" title="{SITE_NAME}">'
        f"<style>{chrome.css}</style>{ANALYTICS}"
    )
    authors = [{"@type": "Person", "name": a} for a in meta.authors]
    if meta.template == "classic":
        ld = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": meta.title,
            "datePublished": iso,
            "author": authors,
            "articleSection": meta.section.title(),
            "publisher": {"@type": "Organization", "name": SITE_NAME},
        }
        return common + f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    if meta.template == "magazine":
        metas = "".join(f'<meta name="author" content="{html.escape(a)}">' for a in meta.authors)
        return common + (
            f'<meta property="og:type" content="article"><meta property="og:title" content="{title}">'
            f'<meta property="og:site_name" content="{SITE_NAME}">'
            f'<meta property="article:published_time" content="{iso}">'
            f'<meta property="article:section" content="{meta.section.title()}">{metas}'
        )
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": SITE_NAME, "url": "/"},
            {
                "@type": "BreadcrumbList",
                "itemListElement": [
                    {"@type": "ListItem", "position": 1, "name": "Home", "item": "/"},
                    {"@type": "ListItem", "position": 2, "name": meta.section.title(), "item": f"/{meta.section}/"},
                ],
            },
            {
                "@type": "NewsArticle",
                "headline": meta.title,
                "datePublished": iso,
                "dateModified": iso,
                "author": authors,
                "inLanguage": "en-GB",
            },
        ],
    }
    return common + (
        f'<meta property="og:type" content="article"><meta property="og:title" content="{title}">'
        f'<script type="application/ld+json">{json.dumps(graph)}</script>'
    )


def _byline(meta: ArticleMeta) -> str:
    names = " and ".join(f'<a rel="author" href="/author/{slugify(a)}/">{html.escape(a)}</a>' for a in meta.authors)
    iso = meta.published.isoformat()
    shown = meta.published.strftime("%-d %B %Y, %H:%M")
    if meta.template == "classic":
        return f'<p class="byline">By {names} <time datetime="{iso}">{shown}</time></p>'
    if meta.template == "magazine":
        return (
            f'<div class="author-line"><span class="by">Words by</span> {names} &middot; '
            f'<span class="date">{shown}</span></div>'
        )
    return (
        f'<div class="c-meta"><span class="c-meta__author">{names}</span>'
        f'<time class="c-meta__date" datetime="{iso}">{shown}</time></div>'
    )


def render_article(
    meta: ArticleMeta,
    everyone: list[ArticleMeta],
    gen: TextGen,
    chrome: dict[str, Chrome],
    pool: str,
    seed: int,
) -> RenderedArticle:
    rng = random.Random(seed * 1_000_003 + meta.id)
    related = [everyone[rng.randrange(len(everyone))] for _ in range(rng.randint(8, 16))]
    related = [a for a in related if a.id != meta.id]
    most_read = [everyone[rng.randrange(len(everyone))] for _ in range(10)]
    parts = chrome[meta.template]
    body_html, paragraphs = _body(gen, rng, meta, related)
    comments_html, comment_texts = _comments(gen, rng)
    standfirst = gen.sentence(rng)
    title = html.escape(meta.title)
    sidebar = f'<aside class="most-read"><h3>Most read</h3><ol>{_link_list(most_read, "mr")}</ol></aside>'
    related_html = (
        f'<section class="related"><h3>More from {meta.section.title()}</h3>'
        f"<ul>{_link_list(related, 'rel')}</ul></section>"
    )
    share = (
        '<div class="share"><a href="/share?via=mail">Email</a><a href="/share?via=x">Post</a>'
        '<a href="/share?via=fb">Share</a></div>'
    )
    if meta.template == "classic":
        main = (
            f'<article class="story"><header><p class="kicker">{meta.section.title()}</p>'
            f'<h1 class="headline">{title}</h1><p class="standfirst">{html.escape(standfirst)}</p>'
            f'{_byline(meta)}</header>{share}<div class="story-body">{body_html}</div></article>'
            f"{related_html}{comments_html}"
        )
    elif meta.template == "magazine":
        main = (
            f'<div class="post"><div class="post-header"><h1 class="entry-title">{title}</h1>'
            f"{_byline(meta)}</div>{share}"
            f'<div class="post-content entry-content" itemprop="articleBody"><p class="lead"><strong>'
            f"{html.escape(standfirst)}</strong></p>{body_html}</div>"
            f'<div class="post-tags"><a href="/tag/{meta.section}/">{meta.section}</a></div></div>'
            f"{comments_html}{related_html}"
        )
    else:
        main = (
            '<div class="c-page"><div class="c-breadcrumb"><a href="/">Home</a> / '
            f'<a href="/{meta.section}/">{meta.section.title()}</a></div>'
            f'<div class="ad-slot" data-slot="top"></div><section class="c-article">'
            f'<h1 class="c-article__title"><span class="kicker">{meta.section.title()}</span> {title}</h1>'
            f'<p class="c-article__standfirst">{html.escape(standfirst)}</p>{_byline(meta)}'
            f'<div class="article__content">{body_html}</div></section>{share}'
            f"{related_html}{comments_html}</div>"
        )
    target = int(50_000 * 4 ** rng.random())  # log-uniform between 50 and 200 KB
    shell_head = (
        f'<!DOCTYPE html><html lang="en"><head>{_head(meta, parts, standfirst)}</head><body class="t-{meta.template}">'
    )
    header = f'<header class="masthead"><a class="logo" href="/">{SITE_NAME}</a>{parts.menu}</header>'
    tail = f"{parts.footer}<script>{parts.vendor_js}</script></body></html>"
    grid = _teaser_grid(gen, rng, everyone)
    fixed = len(shell_head) + len(header) + len(main) + len(sidebar) + len(grid) + len(tail)
    state = _state_script(pool, rng, meta, related, max(2_000, target - fixed))
    page = f'{shell_head}{header}<main id="main">{main}</main>{sidebar}{grid}{state}{tail}'
    truth = {
        "id": meta.id,
        "path": meta.path,
        "section": meta.section,
        "template": meta.template,
        "title": meta.title,
        "authors": list(meta.authors),
        "published": meta.published.isoformat(),
        "first_paragraph": paragraphs[0],
        "last_paragraph": paragraphs[-1],
        "words": sum(len(p.split()) for p in paragraphs),
        "comment": comment_texts[0],
    }
    return RenderedArticle(page, truth)


# --- feeds, sitemaps, fronts --------------------------------------------------------------------


def rss_feed(newest: list[ArticleMeta]) -> str:
    items = "".join(
        "<item>"
        f"<title>{html.escape(a.title)}</title>"
        f"<link>{{{{BASE}}}}{a.path}?utm_source=rss&amp;utm_medium=feed</link>"
        f'<guid isPermaLink="false">ledger-{a.id}</guid>'
        f"<pubDate>{a.published.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<dc:creator>{html.escape(', '.join(a.authors))}</dc:creator>"
        f"<category>{a.section.title()}</category>"
        "</item>"
        for a in newest
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{SITE_NAME}</title><link>{{{{BASE}}}}/</link><description>Latest news</description>"
        f"{items}</channel></rss>"
    )


def urlset(articles: list[ArticleMeta]) -> str:
    urls = "".join(
        f"<url><loc>{{{{BASE}}}}{a.path}</loc><lastmod>{a.published.isoformat()}</lastmod></url>" for a in articles
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )


def news_sitemap(articles: list[ArticleMeta]) -> str:
    urls = "".join(
        f"<url><loc>{{{{BASE}}}}{a.path}</loc><news:news><news:publication><news:name>{SITE_NAME}"
        "</news:name><news:language>en</news:language></news:publication>"
        f"<news:publication_date>{a.published.isoformat()}</news:publication_date>"
        f"<news:title>{html.escape(a.title)}</news:title></news:news></url>"
        for a in articles
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>'
    )


def sitemap_index(paths: list[str]) -> str:
    lastmod = NEWEST.isoformat()
    # html.escape: a query-style sitemap's "&" is "&amp;" in XML
    maps = "".join(
        f"<sitemap><loc>{{{{BASE}}}}{html.escape(p, quote=False)}</loc><lastmod>{lastmod}</lastmod></sitemap>"
        for p in paths
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'
    )


def front_page(title: str, articles: list[ArticleMeta], chrome: Chrome) -> str:
    teasers = "".join(
        f'<li class="teaser"><h3><a href="{a.path}">{html.escape(a.title)}</a></h3>'
        f'<time datetime="{a.published.isoformat()}">{a.published:%d %b}</time></li>'
        for a in articles
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | {SITE_NAME}</title>'
        '<meta property="og:type" content="website">'
        f'<link rel="alternate" type="application/rss+xml" href="/feeds/rss.xml"><style>{chrome.css}</style>'
        f'</head><body><header class="masthead"><a class="logo" href="/">{SITE_NAME}</a>{chrome.menu}</header>'
        f'<main><h1>{title}</h1><ul class="teasers">{teasers}</ul></main>{chrome.footer}</body></html>'
    )


def robots_txt(index_path: str) -> str:
    return f"User-agent: *\nDisallow: /search\nDisallow: /login\n\nSitemap: {{{{BASE}}}}{index_path}\n"


# --- where the sitemaps live ------------------------------------------------------------------


@dataclass(frozen=True)
class SitemapLayout:
    index: str
    news: str
    articles: str  # format string: {number} counts from 1, {offset} is the first article's position


SITEMAP_LAYOUTS = {
    "files": SitemapLayout("/sitemap_index.xml", "/sitemaps/news.xml", "/sitemaps/articles-{number}.xml"),
    "query": SitemapLayout(
        f"{ARC_FEEDS}/sitemap-index/?outputType=xml",
        f"{ARC_FEEDS}/news-sitemap/?outputType=xml",
        f"{ARC_FEEDS}/sitemap/?outputType=xml&from={{offset}}",
    ),
}
SITEMAP_STYLES = tuple(SITEMAP_LAYOUTS)


def sitemap_layout(style: str = "files") -> SitemapLayout:
    if style not in SITEMAP_LAYOUTS:
        raise ValueError(f"sitemap style must be one of {', '.join(SITEMAP_STYLES)}, not {style!r}")
    return SITEMAP_LAYOUTS[style]


def sitemap_index_path(style: str = "files") -> str:
    """The sitemap index's path (and query) on a site of this sitemap style."""
    return sitemap_layout(style).index


# --- the pack ---------------------------------------------------------------------------------


class PackWriter:
    """Appends response bodies to pages.bin and their index rows to index.tsv."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data: BinaryIO = open(root / "pages.bin.tmp", "wb")  # noqa: SIM115 (closed by close())
        self.rows: list[str] = []
        self.offset = 0

    def add(self, path: str, body: str, kind: str, *, compress: bool = False, templated: bool = False) -> int:
        data = body.encode("utf-8")
        flags = "tpl" if templated else "raw"
        if compress:
            data = gzip.compress(data, compresslevel=5, mtime=0)
            flags = "gz"
        self.data.write(data)
        self.rows.append(f"{path}\t{self.offset}\t{len(data)}\t{flags}\t{CONTENT_TYPES[kind]}")
        self.offset += len(data)
        return len(data)

    def add_bytes(self, path: str, data: bytes, flags: str, content_type: str) -> int:
        """A body as it is to be stored (bench/realsite.py compresses its templated pages itself)."""
        self.data.write(data)
        self.rows.append(f"{path}\t{self.offset}\t{len(data)}\t{flags}\t{content_type}")
        self.offset += len(data)
        return len(data)

    def close(self) -> None:
        self.data.close()
        (self.root / "index.tsv.tmp").write_text("\n".join(self.rows) + "\n", encoding="utf-8")
        # Renamed last, so an interrupted run never leaves a pack that looks complete.
        (self.root / "pages.bin.tmp").replace(self.root / "pages.bin")
        (self.root / "index.tsv.tmp").replace(self.root / "index.tsv")


def generate(
    out: Path,
    n: int,
    *,
    seed: int = 1,
    sitemap_size: int = SITEMAP_LIMIT,
    sitemap_style: str = "files",
    progress: bool = False,
) -> dict:
    """Write the site for `n` articles into `out`; returns its summary (also written as meta.json)."""
    if n < 1:
        raise ValueError("the site needs at least one article")
    if not 1 <= sitemap_size <= SITEMAP_LIMIT:
        raise ValueError(f"sitemap size must be between 1 and {SITEMAP_LIMIT}")
    layout = sitemap_layout(sitemap_style)  # raises on an unknown style, before any writing
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    started = time.monotonic()
    gen = TextGen(seed)
    articles = plan_articles(n, seed, gen)
    chrome = build_chrome(gen, seed)
    pool = make_pool(gen, seed)
    pack = PackWriter(out)
    html_bytes = 0
    gz_bytes = 0
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for i, meta in enumerate(articles):
            page = render_article(meta, articles, gen, chrome, pool, seed)
            html_bytes += len(page.html.encode("utf-8"))
            gz_bytes += pack.add(meta.path, page.html, "html", compress=True)
            manifest.write(json.dumps(page.truth) + "\n")
            if progress and (i + 1) % 2000 == 0:
                print(f"  {i + 1}/{n} pages, {time.monotonic() - started:.0f}s", file=sys.stderr)
    newest_first = articles[::-1]
    sitemap_paths = []
    for k in range(0, n, sitemap_size):
        path = layout.articles.format(number=k // sitemap_size + 1, offset=k)
        pack.add(path, urlset(articles[k : k + sitemap_size]), "xml", templated=True)
        sitemap_paths.append(path)
    pack.add(layout.news, news_sitemap(newest_first[:NEWS_SITEMAP_SIZE]), "xml", templated=True)
    pack.add(layout.index, sitemap_index([layout.news, *sitemap_paths]), "xml", templated=True)
    pack.add("/feeds/rss.xml", rss_feed(newest_first[:FEED_SIZE]), "rss", templated=True)
    pack.add("/robots.txt", robots_txt(layout.index), "txt", templated=True)
    front_chrome = chrome["classic"]
    pack.add("/", front_page("Home", newest_first[:SECTION_FRONT_SIZE], front_chrome), "html", compress=True)
    for section in SECTIONS:
        in_section = [a for a in newest_first if a.section == section][:SECTION_FRONT_SIZE]
        pack.add(f"/{section}/", front_page(section.title(), in_section, front_chrome), "html", compress=True)
    pack.add("/about.html", front_page("About us", [], front_chrome), "html", compress=True)
    pack.close()
    summary = {
        "generator_version": GENERATOR_VERSION,
        "articles": n,
        "seed": seed,
        "sitemap_size": sitemap_size,
        "sitemap_style": sitemap_style,
        "sitemap_index": layout.index,
        "article_sitemaps": len(sitemap_paths),
        "html_bytes": html_bytes,
        "mean_page_kb": round(html_bytes / n / 1024, 1),
        "gzip_bytes": gz_bytes,
        "feed_items": min(n, FEED_SIZE),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "meta.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def ensure_site(
    out: Path,
    n: int,
    *,
    seed: int = 1,
    sitemap_size: int = SITEMAP_LIMIT,
    sitemap_style: str = "files",
    progress: bool = False,
) -> dict:
    """The site in `out`, generated only if it is missing or was made with other parameters."""
    meta_file = out / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        wanted = {"generator_version": GENERATOR_VERSION, "articles": n, "seed": seed, "sitemap_size": sitemap_size,
                  "sitemap_style": sitemap_style}  # fmt: skip
        # sites written before there were styles have no "sitemap_style": theirs is "files"
        meta.setdefault("sitemap_style", "files")
        meta.setdefault("sitemap_index", sitemap_index_path("files"))
        if all(meta.get(k) == v for k, v in wanted.items()):
            return meta
    return generate(out, n, seed=seed, sitemap_size=sitemap_size, sitemap_style=sitemap_style, progress=progress)


def read_index(root: Path) -> dict[str, tuple[int, int, str, str]]:
    """path -> (offset, length, flags, content type), as the server and the benches read it.

    A query-style site's sitemaps are under their path and query string ("/a/?outputType=xml").
    """
    index = {}
    for line in (root / "index.tsv").read_text(encoding="utf-8").splitlines():
        path, offset, length, flags, content_type = line.split("\t")
        index[path] = (int(offset), int(length), flags, content_type)
    return index


def read_manifest(root: Path) -> list[dict[str, Any]]:
    with open(root / "manifest.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def iter_pages(root: Path, paths: list[str]) -> Any:
    """Yield (path, html text) for article paths, decompressed as a client would see them."""
    index = read_index(root)
    with open(root / "pages.bin", "rb") as data:
        for path in paths:
            offset, length, flags, _ = index[path]
            data.seek(offset)
            body = data.read(length)
            yield path, (gzip.decompress(body) if flags == "gz" else body).decode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the throughput benchmark's news site.")
    parser.add_argument("--articles", type=int, required=True)
    parser.add_argument("--out", type=Path, help="default: bench/out/site-N (site-N-query for --sitemap-style query)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sitemap-size", type=int, default=SITEMAP_LIMIT)
    parser.add_argument(
        "--sitemap-style",
        choices=SITEMAP_STYLES,
        default="files",
        help="files: /sitemap_index.xml and /sitemaps/*.xml; query: Arc XP's /arc/outboundfeeds/...?outputType=xml",
    )
    args = parser.parse_args(argv)
    name = f"site-{args.articles}" + ("" if args.sitemap_style == "files" else f"-{args.sitemap_style}")
    out = args.out or Path(__file__).resolve().parent / "out" / name
    summary = generate(out, args.articles, seed=args.seed, sitemap_size=args.sitemap_size,
                       sitemap_style=args.sitemap_style, progress=True)  # fmt: skip
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
