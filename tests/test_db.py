"""Schema, migrations and connection settings of the index."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from store.errors import ArtlensError
from store.index.db import data_version, open_db, schema_version, write_transaction
from store.scan import Indexer


def test_reopening_keeps_data_and_applies_nothing_twice(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("a")
    db = open_db(tmp_path / "i.db")
    Indexer(db, root).scan()
    version = schema_version(db)
    db.close()
    db = open_db(tmp_path / "i.db")
    assert schema_version(db) == version >= 1
    assert db.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_an_index_from_a_newer_artlens_is_refused_not_rewritten(tmp_path: Path) -> None:
    db = open_db(tmp_path / "i.db")
    db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
        " VALUES ('artlens', 'm999_from_the_future', '2030-01-01')"
    )
    db.conn.commit()
    db.close()
    with pytest.raises(ArtlensError, match="newer artlens"):
        open_db(tmp_path / "i.db")
    with pytest.raises(ArtlensError, match="newer artlens"):  # nor read as if complete
        open_db(tmp_path / "i.db", readonly=True)


def test_readers_see_commits_through_data_version(tmp_path: Path) -> None:
    writer = open_db(tmp_path / "i.db")
    reader = open_db(tmp_path / "i.db", readonly=True)
    before = data_version(reader)
    with write_transaction(writer) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    assert data_version(reader) != before
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    reader.close()
    writer.close()


def test_a_failed_write_transaction_rolls_back(tmp_path: Path) -> None:
    db = open_db(tmp_path / "i.db")
    with pytest.raises(RuntimeError), write_transaction(db) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM meta").fetchone()[0] == 0
    db.close()


def test_an_older_index_is_migrated_forward_with_its_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    db = open_db(tmp_path / "i.db")
    Indexer(db, root).scan()
    # make it look like an index written before m002 existed
    db.execute("DROP INDEX artifacts_flagged")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm002_flagged_files_index'")
    db.conn.commit()
    db.close()
    db = open_db(tmp_path / "i.db")
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "artifacts_flagged" in names
    assert db.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 1
    plan = " ".join(
        str(r[-1])
        for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT run_id, count(*) FROM artifacts WHERE run_id IS NOT NULL"
            " AND verdict IN ('dangerous', 'corrupt') GROUP BY run_id"
        )
    )
    assert "artifacts_flagged" in plan
    db.close()


def test_an_index_from_before_folder_digests_gains_them(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "metrics.csv").write_text("step,loss\n1,0.5\n")
    db = open_db(tmp_path / "i.db")
    Indexer(db, root).scan()
    # make it look like an index written before m003 existed
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("ALTER TABLE dirs DROP COLUMN digest")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_folder_digests'")
    db.conn.commit()
    db.close()
    db = open_db(tmp_path / "i.db")
    assert "digest" in db["dirs"].columns_dict
    triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert len(triggers) == 3
    assert db.execute("SELECT count(*) FROM dirs WHERE digest IS NULL").fetchone()[0] == 2
    report = Indexer(db, root).scan()
    assert (report.files, report.unchanged, report.added, report.removed) == (1, 1, 0, 0)
    assert db.execute("SELECT count(*) FROM dirs WHERE digest IS NULL").fetchone()[0] == 0
    db.close()


def test_plain_readers_are_configured_like_the_index_readers(tmp_path: Path) -> None:
    from store.readonly import connect_readonly

    open_db(tmp_path / "i.db").close()
    pragmas = ("busy_timeout", "foreign_keys", "temp_store", "cache_size", "query_only")
    db = open_db(tmp_path / "i.db", readonly=True)
    plain = connect_readonly(tmp_path / "i.db")
    try:
        for pragma in pragmas:
            expected = db.execute(f"PRAGMA {pragma}").fetchone()
            assert plain.execute(f"PRAGMA {pragma}").fetchone() == expected, pragma
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            plain.execute("CREATE TABLE x (a)")
    finally:
        plain.close()
        db.close()
    with pytest.raises(FileNotFoundError):
        connect_readonly(tmp_path / "missing.db")


def test_plain_readers_open_an_index_in_a_folder_named_like_a_uri(tmp_path: Path) -> None:
    """``?``, ``#`` and ``%`` mean something in a SQLite URI: unescaped, the plain reader
    opened (and created) another file, read-write."""
    from store.readonly import connect_readonly

    folder = tmp_path / "a ?b#c %41 é"
    folder.mkdir()
    db = open_db(folder / "i.db")
    db.execute("INSERT INTO meta (key, value) VALUES ('here', 'yes')")
    db.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    plain = connect_readonly(folder / "i.db")
    try:
        assert plain.execute("SELECT value FROM meta WHERE key = 'here'").fetchone() == ("yes",)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            plain.execute("CREATE TABLE x (a)")
    finally:
        plain.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_older_index_gains_readable_path_views(tmp_path: Path) -> None:
    from store.index.db import TEXT_VIEWS

    root = tmp_path / "root"
    (root / "run é").mkdir(parents=True)
    (root / "run é" / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    db = open_db(tmp_path / "i.db")
    Indexer(db, root).scan()
    # make it look like an index written before m004 existed
    for table in TEXT_VIEWS:
        db.execute(f"DROP VIEW {table}_text")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm004_path_text_views'")
    db.conn.commit()
    db.close()
    db = open_db(tmp_path / "i.db")
    try:
        assert set(db.view_names()) >= {f"{t}_text" for t in TEXT_VIEWS}
        rows = db.execute("SELECT path_text, parent_text, size FROM artifacts_text").fetchall()
        assert rows == [("run é/model.pkl", "run é", 5)]
        assert db.execute("SELECT path_text FROM runs_text").fetchall() == [("run é",)]
        (root_text,) = db.execute("SELECT path_text FROM roots_text").fetchone()
        assert root_text == str(root)
        # the views follow their tables: every column is there, plus the text forms
        columns = {c.name for c in db["artifacts_text"].columns}
        assert columns == set(db["artifacts"].columns_dict) | {"path_text", "parent_text"}
    finally:
        db.close()


def test_a_new_index_is_built_aside_and_published_whole(tmp_path: Path) -> None:
    """``artlens index`` into a path with nothing there builds beside it and renames the
    file into place in WAL mode; an index already there is written where it is."""
    from store.index.db import BUILDING_SUFFIX, open_new, publish
    from tui.cli.index import index_roots

    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "hparams.yaml").write_text("lr: 1\n")
    os.utime(root / "run" / "hparams.yaml", (1e9, 1e9))  # settled: hashed at once
    path = tmp_path / "idx" / "index.db"
    side = path.with_name(path.name + BUILDING_SUFFIX)
    side.parent.mkdir()
    side.write_bytes(b"what a crashed build left")
    new = open_new(path)
    assert new is not None and not path.exists()
    with pytest.raises(sqlite3.OperationalError):  # nobody can read it as the index yet
        sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute("SELECT 1 FROM meta")
    publish(new, path)
    assert not side.exists()
    reader = sqlite3.connect(path)
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.close()
    assert open_new(path) is None  # something is there now
    path.unlink()
    index_roots([root], path, hash_files=True, remember_db=False)
    inode = path.stat().st_ino
    assert not side.exists()
    db = open_db(path, readonly=True)
    assert db.execute("SELECT hash_state FROM artifacts").fetchall() == [("done",)]
    db.close()
    (root / "run" / "more.txt").write_text("x")
    index_roots([root], path, hash_files=False, remember_db=False)
    assert path.stat().st_ino == inode
    db = open_db(path, readonly=True)
    assert db.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 2
    db.close()


def test_a_dangling_link_at_the_index_path_is_not_replaced(tmp_path: Path) -> None:
    from store.index.db import open_new

    path = tmp_path / "index.db"
    path.symlink_to(tmp_path / "elsewhere.db")
    assert open_new(path) is None


class _Plugin:
    """A sqlite-utils plugin as an installed package would register it."""

    def __init__(self) -> None:
        self.called: list[sqlite3.Connection] = []

    @sqlite_utils.hookimpl
    def prepare_connection(self, conn: sqlite3.Connection) -> None:
        self.called.append(conn)


def test_sqlite_utils_plugins_never_run_on_the_index(tmp_path: Path) -> None:
    """A plugin in the user's environment would run its own code on our connection."""
    from sqlite_utils.plugins import pm

    from store.index.db import discard_new, open_new

    plugin = _Plugin()
    pm.register(plugin, name="artlens-test-plugin")
    try:
        sqlite_utils.Database(memory=True)  # the check: a plain Database does call it
        assert len(plugin.called) == 1
        open_db(tmp_path / "i.db").close()
        open_db(tmp_path / "i.db", readonly=True).close()
        new = open_new(tmp_path / "n.db")
        assert new is not None
        discard_new(new, tmp_path / "n.db")
        assert len(plugin.called) == 1
    finally:
        pm.unregister(name="artlens-test-plugin")
