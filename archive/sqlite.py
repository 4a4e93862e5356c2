"""The SQLite library every connection of the project is opened with.

sqlite-utils and Datasette open their connections with pysqlite3 when it is installed (a newer
SQLite, compiled in: the full-text ranking of a common word is a third faster than with Debian 12's
3.40) and with the standard library's sqlite3 otherwise. One process must never open one file with
two SQLite libraries: each keeps its own POSIX locks, and closing the file in one drops the locks
of the other (sqlite.org/howtocorrupt.html, 2.2.1). So the project takes the library sqlite-utils
took: `from archive.sqlite import sqlite3`, never `import sqlite3` (ruff's banned-api rule).

That build keeps temporary databases, temporary tables and the spill files of large sorts in
memory (SQLITE_TEMP_STORE=3: `PRAGMA temp_store` cannot change it), and has no `dbstat` table.
So what must stay bounded does not lean on them: a crawl's URL claims live in a file of their own
(url_claims.py), the near-duplicate index's rebuild sorts outside SQLite (band_rows.py) and a
search's export sorts rowids, not whole articles (queries.py). An index a migration builds is
sorted in memory: about 60 bytes a row (bench/temp_store.py measures these).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3  # noqa: TID251  (pysqlite3 is the standard module's code: the same types)
else:
    from sqlite_utils.utils import sqlite3

__all__ = ["sqlite3"]
