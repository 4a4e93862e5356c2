"""ArticleFilterPipeline: pages that are not articles are counted and remembered (the
`not_articles` table, so later crawls leave them alone for a while), never stored as articles.

A not-article page that is a bot challenge ("Just a moment...") is recorded as a failure instead
(stage ``blocked``, with its URL): source health calls a source that serves them blocked, and the
page behind the challenge is an article to fetch again, not one to leave alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from crawl.archive_access import article_lookup
from crawl.failures import report_failure
from crawl.urls import canonical_url
from extraction.challenge import challenge_phrase

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawl.items import ArticleItem

# og:type / JSON-LD @type values that mark a page as something other than an article.
NOT_ARTICLE_TYPES = {
    "website",
    "profile",
    "video.other",
    "music.song",
    "book",
    "product",
    "WebSite",
    "CollectionPage",
    "SearchResultsPage",
    "ProfilePage",
    "AboutPage",
    "ContactPage",
    "ItemList",
    "Organization",
    "Person",
    "Product",
    "Event",
    "FAQPage",
}


# A brief that marks itself up as an article (NewsArticle, og:type article, <article> with a
# publication time) is one from this many words on.
BRIEF_MIN_WORDS = 20


def not_article_reason(item: ArticleItem, min_words: int) -> str | None:
    """Why a page is not an article, or None if it is one.

    The word floor is checked against the page's own visible paragraphs too (`page_words`), so
    a body that extraction cut short does not make an article "too short"."""
    if not item.text:
        return "no main text"
    words = max(item.word_count, item.page_words)
    if words < min_words and not (item.article_markup and item.word_count >= BRIEF_MIN_WORDS):
        return f"too short ({words} words < {min_words})"
    if item.page_type in NOT_ARTICLE_TYPES and not item.published_at:
        return f"page type {item.page_type} and no publication date"
    if not item.title:
        return "no title"
    return None


class ArticleFilterPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.min_words = crawler.settings.getint("NEWS_MIN_WORDS")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArticleFilterPipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        reason = not_article_reason(item, self.min_words)
        if reason is None:
            return item
        self.crawler.stats.inc_value("news/pages/not_article")
        if phrase := challenge_phrase(item.title, item.text):
            self.crawler.stats.inc_value("news/pages/challenge")
            reason = f"a challenge page ({phrase!r}) instead of an article"
            report_failure(self.crawler, url=item.url, stage="blocked", reason=reason, http_status=item.http_status)
        else:
            finding = {"source": item.source, "reason": reason}
            for url in {canonical_url(item.requested_url or item.url), canonical_url(item.url)}:
                article_lookup(self.crawler).pending.not_articles[url] = finding
        raise DropItem(f"not an article: {reason}: {item.url}", log_level="INFO")
