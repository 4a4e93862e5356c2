"""What a crawl reads from its archive and leaves for it, as an interface: the crawl process's
`Archive` (SQLite) has it, and so has a shared crawl's worker's `RedisArchive` (distributed/worker.py),
which answers from Redis what the writer published."""

from __future__ import annotations

from typing import Any, Protocol


class PendingMarks(Protocol):
    """Stored articles seen again (their last_seen_at moves), pages gone (404/410 on a re-visit),
    and pages found to be no article (url -> {source, reason})."""

    seen: set[str]
    taken_down: set[str]
    not_articles: dict[str, dict[str, str]]


class ArticleLookup(Protocol):
    """What the news spider and the skip-stored middleware need from the archive."""

    @property
    def pending(self) -> PendingMarks: ...

    def stored_url_for(self, url: str) -> str | None:
        """The stored article a (canonical) URL belongs to, directly or as an alias."""
        ...

    def stored_article(self, url: str) -> dict[str, Any] | None:
        """When a canonical URL is a stored article: its fetch and first-seen times."""
        ...

    def not_article(self, url: str) -> dict[str, Any] | None:
        """When a canonical URL was found to be no article (reason, checked_at) and its next check
        (next_check_at), or None."""
        ...

    def validators(self, url: str) -> dict[str, Any] | None:
        """The ETag and Last-Modified a feed or sitemap was last fetched with."""
        ...
