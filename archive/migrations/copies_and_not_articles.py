"""One record per story per site, and pages remembered as no article (#20).

- ``url_aliases.similarity``: for a copy, how close its text is to the article it was folded
  into (1.0 for an identical body, the MinHash estimate for a near copy on the same site).
- ``crawl_runs.article_pages``: how many article pages a run fetched, so a re-crawl of an unchanged
  site shows at a glance that it fetched none.
- ``not_articles``: pages fetched as articles that were not (a menu, a gallery, a cut-off page,
  a 404): with the reason and when to look again, so a re-crawl does not fetch them every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.migrations.registry import migrations

if TYPE_CHECKING:
    from sqlite_utils import Database


@migrations()
def remember_not_articles_and_copy_similarity(db: Database) -> None:
    if "article_pages" not in db.table("crawl_runs").columns_dict:
        db.table("crawl_runs").add_column("article_pages", int)  # article pages a run fetched (2xx)
    if "similarity" not in db.table("url_aliases").columns_dict:
        db.table("url_aliases").add_column("similarity", float)
    db.execute("UPDATE url_aliases SET similarity = 1.0 WHERE reason = 'same_body' AND similarity IS NULL")
    db.table("not_articles").create(
        {
            "url": str,
            "source": str,
            "reason": str,
            "first_seen_at": str,
            "checked_at": str,
            "checks": int,
            "next_check_at": str,
        },
        pk="url",
        if_not_exists=True,
    )
    db.table("not_articles").create_index(["checked_at"], if_not_exists=True)
    db.table("not_articles").create_index(["source", "checked_at"], if_not_exists=True)
