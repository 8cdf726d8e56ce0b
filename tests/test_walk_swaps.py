"""A folder swapped for a link (or moved away and replaced) between its parent's listing and
its own is never listed through that link: what lies outside the root stays out of the
index, and the folder's rows are kept until a scan sees what is there."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from store.index.db import open_db
from store.scan import Indexer
from tests.conftest import descriptors_into


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return open_db(tmp_path / "index.db")


def _paths(db: sqlite_utils.Database) -> set[bytes]:
    return {bytes(p) for (p,) in db.execute("SELECT path FROM artifacts")}


def swap_for_link(folder: Path, target: Path, parked: Path) -> Callable[[], None]:
    """A swap for ``swap_before_listing``: ``folder`` moved to ``parked`` and a link to
    ``target`` put in its place, as a writer racing the walk would."""

    def swap() -> None:
        os.rename(folder, parked)
        os.symlink(target, folder)

    return swap


def swap_before_listing(
    monkeypatch: pytest.MonkeyPatch, folder: Path, swap: Callable[[], None]
) -> list[bool]:
    """Run ``swap`` once, just before the walk opens or lists ``folder`` by any spelling of
    its path (after its parent's listing saw it as a folder): the moment a racing writer
    would have to hit."""
    done: list[bool] = []
    target = os.fsencode(folder)
    real_open, real_scandir = os.open, os.scandir

    def maybe_swap(path: object) -> None:
        spelled = isinstance(path, (str, bytes, os.PathLike))
        if not done and spelled and os.fsencode(path) == target:  # type: ignore[arg-type]
            done.append(True)
            swap()

    def opening(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        maybe_swap(path)
        return real_open(path, flags, *args, **kwargs)

    def listing(path: Any = ".") -> Any:
        maybe_swap(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "scandir", listing)
    return done


def test_a_folder_swapped_for_a_link_out_is_not_walked_through(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "run" / "sub").mkdir(parents=True)
    (root / "run" / "sub" / "mine.ckpt").write_bytes(b"m")
    (root / "run" / "keep.txt").write_text("k")
    outside.mkdir()
    (outside / "secret.key").write_text("s")
    indexer = Indexer(db, root)
    indexer.scan()
    assert _paths(db) == {b"run/keep.txt", b"run/sub/mine.ckpt"}

    swap = swap_for_link(root / "run" / "sub", outside, tmp_path / "moved")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, root / "run" / "sub", swap)
        report = indexer.scan()
    assert swapped == [True]
    assert b"run/sub/secret.key" not in _paths(db)
    # the folder's rows are kept, as for one that could not be read, and it is said
    assert _paths(db) == {b"run/keep.txt", b"run/sub/mine.ckpt"}
    assert report.warnings["replaced while walked"] == 1
    unread = db.execute("SELECT path, reason FROM unreadable").fetchall()
    assert [(bytes(p), r) for p, r in unread] == [(b"run/sub", "replaced while walked")]
    # the next scan sees the link for what it is
    indexer.scan()
    assert _paths(db) == {b"run/keep.txt", b"run/sub"}
    assert db.execute("SELECT count(*) FROM unreadable").fetchone()[0] == 0


def test_a_folder_above_swapped_for_a_link_out_is_not_walked_through(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` listed, then swapped for a link to a tree holding a ``sub`` of its own:
    opening ``run/sub`` by its path would list the other tree's ``sub``."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "run" / "sub").mkdir(parents=True)
    (root / "run" / "sub" / "mine.ckpt").write_bytes(b"m")
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "secret.key").write_text("s")
    indexer = Indexer(db, root)
    indexer.scan()

    swap = swap_for_link(root / "run", outside, tmp_path / "moved")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, root / "run" / "sub", swap)
        report = indexer.scan()
    assert swapped == [True]
    assert b"run/sub/secret.key" not in _paths(db)
    assert _paths(db) == {b"run/sub/mine.ckpt"}
    assert report.warnings["replaced while walked"] == 1


def test_the_root_may_be_a_link_and_names_stay_bytes(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """The root itself is followed (~/outputs -> /data/outputs); names that are not UTF-8
    come back as the same bytes, links read relative to their folder."""
    real = tmp_path / "data"
    (real / "run").mkdir(parents=True)
    odd = os.fsencode(real / "run") + b"/caf\xe9.ckpt"
    with open(odd, "wb") as f:
        f.write(b"x")
    os.symlink("caf\udce9.ckpt", os.fsdecode(os.fsencode(real / "run") + b"/latest"))
    link = tmp_path / "outputs"
    os.symlink(real, link)
    Indexer(db, link).scan()
    rows = {
        bytes(p): (ftype, target)
        for p, ftype, target in db.execute("SELECT path, ftype, link_target FROM artifacts")
    }
    assert rows[b"run/caf\xe9.ckpt"] == ("file", None)
    assert rows[b"run/latest"][0] == "symlink"
    assert rows[b"run/latest"][1] is not None and "caf" in rows[b"run/latest"][1]


def test_a_rescan_below_the_root_is_not_led_out_by_a_folder_above_swapped(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the watcher asks: a rescan of ``a/b``.  ``a`` swapped for a link to a tree with
    a ``b`` of its own after the path was resolved: looked up by its path, ``a/b`` was the
    other tree's, listed under the root's names, and the root's own rows deleted."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "mine.ckpt").write_bytes(b"m")
    (outside / "b").mkdir(parents=True)
    (outside / "b" / "secret.key").write_text("s")
    indexer = Indexer(db, root)
    indexer.scan()
    target = os.fsencode(root / "a" / "b")
    real_lstat = os.lstat
    looks: list[bytes] = []

    def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if isinstance(path, bytes) and path == target:
            looks.append(path)
            if len(looks) == 2:  # resolved once; looked at again by the walk
                os.rename(root / "a", tmp_path / "parked")
                os.symlink(outside, root / "a")
        return real_lstat(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "lstat", lstat)
        report = indexer.scan(b"a/b")
    assert len(looks) >= 2
    assert _paths(db) == {b"a/b/mine.ckpt"}
    assert report.warnings["replaced while walked"] == 1


def test_a_rescan_of_nested_folders_leaves_no_descriptor_open(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """Rescans reach each folder from the root by descriptors, shared along a batch's
    paths: none stays open after the batch, however deep, nor after a path that fails."""
    root = tmp_path / "root"
    deep = root
    asked = []
    for depth in range(200):
        deep = deep / f"d{depth}"
        asked.append(deep.relative_to(root).as_posix())
    deep.mkdir(parents=True)
    (deep / "last.ckpt").write_bytes(b"x")
    indexer = Indexer(db, root)
    indexer.scan()
    before = descriptors_into(tmp_path)
    report = indexer.scan_folders([*asked, "gone/away", "d0/missing"])
    assert descriptors_into(tmp_path) == before
    assert "replaced while walked" not in report.warnings
    assert _paths(db) == {os.fsencode(deep.relative_to(root) / "last.ckpt")}


def test_a_hard_link_whose_other_folder_is_gone_ends_the_rescan(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """A file written through one of its hard links sends the rescan to the folders of its
    other rows; one of them gone since (its rows stale) is looked at once, its rows
    removed, and the rescan ends."""
    import threading

    root = tmp_path / "root"
    (root / "f1").mkdir(parents=True)
    (root / "f3").mkdir()
    (root / "f1" / "a.ckpt").write_bytes(b"x" * 10)
    os.link(root / "f1" / "a.ckpt", root / "f3" / "b.ckpt")
    indexer = Indexer(db, root)
    indexer.scan()
    os.link(root / "f1" / "a.ckpt", tmp_path / "outside.ckpt")  # nlink stays above 1
    (root / "f3" / "b.ckpt").unlink()
    (root / "f3").rmdir()
    with open(root / "f1" / "a.ckpt", "ab") as f:
        f.write(b"y" * 90)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(indexer.scan_folders(["f1"])))
    worker.start()
    worker.join(timeout=120)
    assert done, "the rescan did not end"
    assert _paths(db) == {b"f1/a.ckpt"}
