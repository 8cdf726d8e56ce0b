"""A read-only connection to the index with the standard library alone.

``store.index.db`` needs sqlite-utils (schema, migrations), whose import costs about 50 ms; a
command that only reads, such as ``artlens runs --json``, starts faster without it.  The
settings are ``store.index.db``'s for readers (a test keeps the two the same).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000
"""As ``store.index.db.BUSY_TIMEOUT_MS``: ride out a writer's batch, report a wedged one."""


def sqlite_uri(path: Path | str, mode: str) -> str:
    """A ``file:`` URI that opens ``path`` with ``mode`` (``ro``, ``rw``): a ``?``, ``#``
    or ``%`` in a folder's name is escaped (unescaped, SQLite would open another file, and
    create it), and bytes that are not UTF-8 are kept."""
    from urllib.parse import quote

    return f"file:{quote(os.fsencode(path))}?mode={mode}"


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    """Open the index at ``path`` with ``mode=ro``: it never writes, never creates."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no index at {path}")
    conn = sqlite3.connect(sqlite_uri(path, "ro"), uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32768")
    return conn
