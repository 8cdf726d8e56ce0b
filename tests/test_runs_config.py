"""A root's ``[runs]`` table (``.artlens.toml``) that cannot be used is a one-line error
naming the file, line and key, never the default rule (runs one level down), and a
changed ``[runs]`` re-detects the runs: the index never holds runs the config does not
ask for, nor drops those it does, without a word."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlite_utils

from store.errors import ArtlensError
from store.index.db import open_db
from store.scan import Indexer
from store.watch import Watcher


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    (path / "exps" / "b").mkdir(parents=True)
    (path / "exps" / "b" / "model.pt").write_bytes(b"w")
    (path / "exps" / "c").mkdir()
    (path / "exps" / "c" / "model.pt").write_bytes(b"w")
    return path


def runs_in(db: sqlite_utils.Database) -> set[str]:
    return {bytes(p).decode() for (p,) in db.execute("SELECT path FROM runs")}


BAD = [
    ('[runs]\ndepth = "2"\n', 2, "[runs] depth must be a whole number from 0 to 32, not '2'"),
    ("[runs]\ndepth = 40\n", 2, "[runs] depth must be a whole number from 0 to 32, not 40"),
    ("[runs]\ndepth = -1\n", 2, "[runs] depth must be a whole number from 0 to 32, not -1"),
    ("[runs]\ndepth = 2.0\n", 2, "[runs] depth must be a whole number from 0 to 32, not 2.0"),
    ("[runs]\ndepth = true\n", 2, "[runs] depth must be a whole number from 0 to 32, not True"),
    ("# rules\n[runs]\n\ndept = 2\n", 4, "unknown key 'dept' in [runs] (known: depth, globs)"),
    ("runs = 2\n", 1, "[runs] must be a table"),
    ("[runs]\nglobs = 3\n", 2, "[runs] globs must be a list of strings"),
    ('[runs]\nglobs = ["exps/*", 1]\n', 2, "[runs] globs must be a list of strings"),
    ('[runs]\nglobs = ["/"]\n', 2, "[runs] globs holds an empty glob"),
    ('[runs]\nglobs = ["exps/**"]\n', 2, "[runs] globs: 'exps/**': ** is not supported"),
    ("[runs\ndepth = 2\n", 1, "Expected ']' at the end of a table declaration"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_a_bad_runs_table_is_an_error_naming_file_line_and_key(
    root: Path, db: sqlite_utils.Database, text: str, line: int, message: str
) -> None:
    (root / ".artlens.toml").write_text(text)
    with pytest.raises(ArtlensError) as caught:
        Indexer(db, root).scan()
    said = str(caught.value)
    assert "\n" not in said
    assert said.startswith(f"{root / '.artlens.toml'}:{line}: ") and message in said
    assert runs_in(db) == set()  # not the default rule's runs (exps)


def test_a_good_runs_table_still_reads(root: Path, db: sqlite_utils.Database) -> None:
    (root / ".artlens.toml").write_text('[runs]\ndepth = 2\nglobs = "exps/*"\n')
    Indexer(db, root).scan()
    assert runs_in(db) == {"exps/b", "exps/c"}


def test_a_changed_runs_table_detects_the_runs_again(root: Path, db: sqlite_utils.Database) -> None:
    """Only the file's content changes (no name arrives or leaves): before, the index
    kept the old depth's runs until some other marker moved."""
    config = root / ".artlens.toml"
    config.write_text("[runs]\ndepth = 1\n")
    indexer = Indexer(db, root)
    indexer.scan()
    assert runs_in(db) == {"exps"}
    config.write_text("[runs]\ndepth = 2\n")
    indexer.scan()
    assert runs_in(db) == {"exps/b", "exps/c"}
    config.write_text('[runs]\ndepth = "1"\n')
    with pytest.raises(ArtlensError, match="depth"):
        indexer.scan()
    assert runs_in(db) == {"exps/b", "exps/c"}  # the index keeps what it held
    config.write_text("[runs]\ndepth = 1\n")
    indexer.scan_folders([b""])
    assert runs_in(db) == {"exps"}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    while any(t not in before and t.is_alive() for t in threading.enumerate()):
        if time.monotonic() > deadline:
            pytest.fail("threads left running")
        time.sleep(0.02)


def test_the_watcher_says_a_bad_runs_table_and_keeps_the_runs(root: Path, tmp_path: Path) -> None:
    config = root / ".artlens.toml"
    config.write_text("[runs]\ndepth = 2\n")
    db_path = tmp_path / "watch" / "index.db"
    watcher = Watcher(db_path, [root])
    watcher.start()
    try:

        def runs_now() -> set[str]:
            reader = open_db(db_path, readonly=True)
            try:
                return runs_in(reader)
            finally:
                reader.close()

        def problems() -> str:
            health = next(iter(watcher.health().values()))
            return " | ".join(str(p) for p in health["problems"])

        assert runs_now() == {"exps/b", "exps/c"}
        config.write_text("[runs]\ndepth = 40\n")
        wait_for(lambda: "[runs] depth must be" in problems(), "the watcher to say the error")
        assert str(config) in problems()
        assert runs_now() == {"exps/b", "exps/c"}
        config.write_text("[runs]\ndepth = 1\n")
        wait_for(lambda: runs_now() == {"exps"}, "the runs of the corrected config")
    finally:
        watcher.stop()


@pytest.mark.parametrize("command", ["index", "watch", "open"])
def test_the_commands_stop_on_a_bad_runs_table_with_one_line(
    root: Path, tmp_path: Path, command: str
) -> None:
    from click.testing import CliRunner

    from tui.cli import main

    (root / ".artlens.toml").write_text('[runs]\ndepth = "2"\n')
    result = CliRunner().invoke(main, [command, str(root), "--db", str(tmp_path / "i.db")])
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"artlens: error: {root / '.artlens.toml'}:2: [runs] depth must be a whole number"
        " from 0 to 32, not '2'\n"
    )


@pytest.mark.parametrize("kind", ["fifo", "link out of the root"])
def test_a_config_that_is_there_but_cannot_be_read_is_an_error(
    root: Path, tmp_path: Path, db: sqlite_utils.Database, kind: str
) -> None:
    config = root / ".artlens.toml"
    if kind == "fifo":
        os.mkfifo(config)
    else:
        outside = tmp_path / "elsewhere.toml"
        outside.write_text("[runs]\ndepth = 2\n")
        config.symlink_to(outside)
    with pytest.raises(ArtlensError) as caught:
        Indexer(db, root).scan()
    assert str(caught.value).startswith(f"{config}: cannot read (")
    assert runs_in(db) == set()
