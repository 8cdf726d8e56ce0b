"""#15's bar, mechanically: one owner of the index's writes (read from store/'s sources)."""

from __future__ import annotations

import re
from pathlib import Path

STORE = Path(__file__).resolve().parent.parent / "store"

SQL_WRITE = re.compile(
    r"\b(INSERT\s+(OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b",
    re.IGNORECASE,
)
SQLITE_UTILS_WRITE = re.compile(
    r"\]\s*\.\s*(insert|insert_all|upsert|upsert_all|update|delete|delete_where)\s*\("
)
TRIGGER = re.compile(r"CREATE\s+TRIGGER\b.*?\bEND\s*;", re.IGNORECASE | re.DOTALL)
"""A trigger's body is schema (it runs inside SQLite on a write), not a place that writes."""

WRITERS = {
    "index/write.py": "every row of the index",
    "remote/mirror.py": "mirror databases: rows copied from another host's feed",
    "userstate.py": "pins and notes: the user's own file, which no rebuild of the index loses",
}


def _writers() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for source in sorted(STORE.rglob("*.py")):
        text = TRIGGER.sub("", source.read_text(encoding="utf-8"))
        hits = [m.group(0) for m in SQL_WRITE.finditer(text)]
        hits += [m.group(0) for m in SQLITE_UTILS_WRITE.finditer(text)]
        if hits:
            found[source.relative_to(STORE).as_posix()] = hits
    return found


def test_sql_writes_live_in_at_most_three_store_files() -> None:
    found = _writers()
    assert set(found) <= set(WRITERS), {k: v for k, v in found.items() if k not in WRITERS}
    assert len(found) <= 3
    assert "index/write.py" in found  # the scan keeps the rule honest: it finds writes


def test_only_the_write_module_writes_change_events_of_this_index() -> None:
    """The mirror stores the events its host sent; nothing else makes events up."""
    pattern = re.compile(r"INSERT\s+INTO\s+events\b", re.IGNORECASE)
    writers = {
        source.relative_to(STORE).as_posix()
        for source in STORE.rglob("*.py")
        if pattern.search(source.read_text(encoding="utf-8"))
    }
    assert writers == {"index/write.py", "remote/mirror.py"}


def test_the_scan_finds_a_write_in_any_spelling() -> None:
    """The patterns the bar relies on catch what a new module might write."""
    for sql in (
        "insert into runs (id) values (1)",
        "INSERT OR REPLACE INTO dirs",
        "REPLACE INTO meta",
        "update artifacts  set run_id = 1",
        "DELETE\n FROM events",
    ):
        assert SQL_WRITE.search(sql), sql
    assert SQLITE_UTILS_WRITE.search('db["runs"].insert({"id": 1})')
    trigger = "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE dirs SET digest = NULL; END;"
    assert not SQL_WRITE.search(TRIGGER.sub("", trigger))
