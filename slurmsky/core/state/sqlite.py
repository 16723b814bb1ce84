"""SQLite's connection class, naming its engine's ways (engine.Dialect): imported where the
state is SQLite's only (a command whose state is on PostgreSQL spares sqlite3's import)."""

from __future__ import annotations

import sqlite3

from slurmsky.core.state import engine


class SQLiteConnection(sqlite3.Connection):
    dialect = engine.SQLITE_DIALECT
