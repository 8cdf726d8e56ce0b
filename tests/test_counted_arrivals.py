"""A counted file (``.json``, ``.pt``) arriving where no run can appear re-detects nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from store.index.db import open_db
from store.scan import Indexer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


def _runs(db: sqlite_utils.Database) -> set[tuple[bytes, str]]:
    return {(bytes(p), f) for p, f in db.execute("SELECT path, framework FROM runs")}


def test_files_arriving_in_hidden_or_venv_folders_detect_no_runs_again(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """A generic run is never a hidden folder, a venv or node_modules, nor below one: a
    new .json in a root's .cache (a Hugging Face download) or venv (a pip install) cannot
    make one.  Each such file made every batch re-detect all runs of the root (0.15 s a
    batch on a root of 100k files, for as long as the download ran)."""
    root = tmp_path / "root"
    for sub in ("run1", ".cache/hub", "venv/lib", "node_modules/x", "exp/.cache"):
        (root / sub).mkdir(parents=True)
    (root / "run1" / "model.pt").write_bytes(b"w")
    (root / "exp" / "notes.txt").write_text("started\n")
    indexer = Indexer(db, root)
    indexer.scan()
    assert _runs(db) == {(b"run1", "generic")}
    moved = indexer.runs.counted_files_moved
    assert not moved([b".cache/hub/config.json"], [])
    assert not moved([b"venv/lib/RECORD.json", b"node_modules/x/package.json"], [])
    assert not moved([b".cache/hub/a/b/model.safetensors"], [])
    # a clean folder above a hidden one still can: exp/.cache/x.json makes exp a run
    assert moved([b"exp/.cache/x.json"], [])
    (root / "exp" / ".cache" / "x.json").write_text("{}")
    indexer.scan_folders([b"exp/.cache"])
    assert _runs(db) == {(b"run1", "generic"), (b"exp", "generic")}


def test_a_root_with_no_run_still_detects_on_a_hidden_arrival(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """With ``[runs] depth = 0`` the root itself is the candidate: a first artifact
    anywhere below it, a hidden folder included, makes it a run."""
    root = tmp_path / "root"
    (root / ".cache").mkdir(parents=True)
    (root / ".artlens.toml").write_text("[runs]\ndepth = 0\n")
    indexer = Indexer(db, root)
    indexer.scan()
    assert _runs(db) == set()
    assert indexer.runs.counted_files_moved([b".cache/x.json"], [])
    (root / ".cache" / "x.json").write_text("{}")
    indexer.scan_folders([b".cache"])
    assert _runs(db) == {(b"", "generic")}
