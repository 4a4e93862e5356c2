"""The archive's migrations (sqlite-utils), applied by `open_db()` in the order they are imported here.

Each runs once per database (sqlite-utils records it in `_sqlite_migrations`); the tables they make
are listed in archive/schema.py. A new migration goes in a new module of this package (one per
feature), imported below after the others; a migration already released is never edited.
"""

# Each import registers its migrations: the order of the imports is the order they run in.
# isort: off
from archive.migrations import core  # noqa: F401
from archive.migrations import copies_and_not_articles  # noqa: F401
from archive.migrations import site_chrome  # noqa: F401
from archive.migrations import raw_page_refs  # noqa: F401
from archive.migrations import source_health  # noqa: F401
from archive.migrations import search_facets  # noqa: F401
from archive.migrations import facet_changes  # noqa: F401
from archive.migrations import table_pages  # noqa: F401

# isort: on
from archive.migrations.registry import migrations

__all__ = ["migrations"]
