"""A run diff's look at the disk (``store.diff.ondisk``) under a writer racing it: a run's
folder (or one above it) swapped for a link out of the root between its parent's listing
and its own, or between the listing and the look at one file.  Files outside the root never
stand in for the run's: they are not new files of the run, and no hash of theirs is
compared as the run's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from store.diff.ondisk import DiskState, Indexed, disk_state
from tests.test_walk_swaps import swap_before_listing, swap_for_link


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """``root/run/sub/config.yaml`` indexed; ``outside`` has a ``config.yaml`` and an
    ``extra.bin`` of its own (and a ``sub`` holding the same)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "run" / "sub").mkdir(parents=True)
    (root / "run" / "sub" / "config.yaml").write_text("lr: 0.1\n")
    (outside / "sub").mkdir(parents=True)
    for folder in (outside, outside / "sub"):
        (folder / "config.yaml").write_text("lr: 0.5\n")
        (folder / "extra.bin").write_bytes(b"not the run's")
    return root, outside


def _rows(root: Path, *keys: bytes) -> list[Indexed]:
    rows = []
    for key in keys:
        st = os.lstat(os.fsencode(root) + b"/" + key)
        rows.append(Indexed(key, st.st_size, st.st_mtime_ns, st.st_ino, "file", None, "indexed"))
    return rows


def _outside_never_listed(state: DiskState) -> None:
    assert not any(key.endswith(b"extra.bin") for key in state.files)
    assert not any(m.key.endswith(b"extra.bin") for m in state.moved)
    assert all(digest in (None, "indexed") for _, digest in state.files.values())


def test_a_run_folder_swapped_for_a_link_before_its_listing_is_not_listed_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = _tree(tmp_path)
    rows = _rows(root, b"run/sub/config.yaml")
    swap = swap_for_link(root / "run" / "sub", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, root / "run" / "sub", swap)
        state = disk_state(os.fsencode(root), [b"run"], rows)
    assert swapped == [True]
    _outside_never_listed(state)
    assert state.incomplete == ["run/sub: replaced while listed (a link or another folder now)"]
    # the scan sees a link there now, not the indexed file: gone, and said so
    assert [(m.key, m.change) for m in state.moved] == [(b"run/sub/config.yaml", "vanished")]


def test_a_folder_above_swapped_for_a_link_is_not_listed_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` listed, then swapped for a link to a tree with a ``sub`` of its own:
    listing ``run/sub`` by its path lists the other tree's."""
    root, outside = _tree(tmp_path)
    rows = _rows(root, b"run/sub/config.yaml")
    swap = swap_for_link(root / "run", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, root / "run" / "sub", swap)
        state = disk_state(os.fsencode(root), [b"run"], rows)
    assert swapped == [True]
    _outside_never_listed(state)
    assert state.incomplete == ["run/sub: replaced while listed (a link or another folder now)"]


def test_a_file_looked_up_on_its_own_is_not_looked_up_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An indexed file outside the folders listed is looked at on its own: its folder
    swapped for a link out after the check for links above it made the file outside the
    run's, 'modified' with the outside file's hash."""
    root, outside = _tree(tmp_path)
    (root / "run" / "other").mkdir()
    (root / "run" / "empty").mkdir()
    (root / "run" / "other" / "config.yaml").write_text("lr: 0.1\n")
    rows = _rows(root, b"run/other/config.yaml")
    swap = swap_for_link(root / "run" / "other", outside, tmp_path / "parked")
    done: list[bool] = []
    real_lstat = os.lstat

    def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if not done and os.fsencode(path).split(b"/")[-1] == b"config.yaml":
            done.append(True)
            swap()
        return real_lstat(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "lstat", lstat)
        state = disk_state(os.fsencode(root), [b"run/empty"], rows)
    assert done == [True]
    _outside_never_listed(state)
    # looked at in the folder that was there when the way to it was checked: unchanged
    assert state.moved == []
    assert state.files == {b"run/other/config.yaml": (8, "indexed")}


def test_a_link_target_is_read_in_the_folder_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new link in the run, its folder swapped for a link out after the listing: its
    target was read by path, through the swap, from the other tree's link."""
    root, outside = _tree(tmp_path)
    (root / "run" / "sub" / "latest").symlink_to("mine")
    (outside / "sub" / "latest").symlink_to("theirs")
    rows = _rows(root, b"run/sub/config.yaml")
    swap = swap_for_link(root / "run", outside, tmp_path / "parked")
    done: list[bool] = []
    real_readlink = os.readlink

    def readlink(path: Any, *args: Any, **kwargs: Any) -> Any:
        if not done and os.fsencode(path).split(b"/")[-1] == b"latest":
            done.append(True)
            swap()
        return real_readlink(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "readlink", readlink)
        state = disk_state(os.fsencode(root), [b"run"], rows)
    assert done == [True]
    assert state.files[b"run/sub/latest"][1] == "symlink:mine"


def test_a_run_that_is_one_file_and_the_root_itself(tmp_path: Path) -> None:
    """A run folder key naming a file is that one file; a run at the root lists the root
    (which may itself be a link)."""
    root, _ = _tree(tmp_path)
    (root / "run.ckpt").write_bytes(b"w")
    (root / "run" / "sub" / "latest").symlink_to("config.yaml")
    rows = _rows(root, b"run.ckpt")
    state = disk_state(os.fsencode(root), [b"run.ckpt"], rows)
    assert (state.moved, state.incomplete) == ([], [])
    assert state.files == {b"run.ckpt": (1, "indexed")}
    (tmp_path / "link").symlink_to(root)
    state = disk_state(os.fsencode(tmp_path / "link"), [b""], rows)
    assert state.incomplete == []
    assert sorted((m.key, m.change) for m in state.moved) == [
        (b"run/sub/config.yaml", "new"),
        (b"run/sub/latest", "new"),
    ]
    assert state.files[b"run/sub/latest"][1] == "symlink:config.yaml"
