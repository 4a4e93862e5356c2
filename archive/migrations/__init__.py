"""The archive's migrations (sqlite-utils), applied by `open_db()` in the order they are imported here.

Each runs once per database (sqlite-utils records it in `_sqlite_migrations`); the tables they make
are listed in archive/schema.py. A new migration goes in a new module of this package (one per
feature), imported below after the others; a migration already released is never edited.
"""

from archive.migrations import (
    core,  # noqa: F401  (registers its migrations)
    source_health,  # noqa: F401
)
from archive.migrations.registry import migrations

__all__ = ["migrations"]
