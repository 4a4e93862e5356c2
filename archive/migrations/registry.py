"""The one list every migration registers with; sqlite-utils applies them in registration order."""

from sqlite_utils.migrations import Migrations

migrations = Migrations("news")
