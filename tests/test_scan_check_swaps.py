"""``artlens scan`` (``check_paths``) under a writer racing the walk: a folder (or one above
it) swapped for a link between its parent's listing and its own, a file swapped between the
listing and the read.  A verdict is only ever given for the bytes the listing named; what
was replaced in between is unknown, never safe and never left out."""

from __future__ import annotations

import os
import shutil
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store.integrity import FileCheck, check_paths
from tests.conftest import descriptors_into
from tests.test_walk_swaps import swap_before_listing, swap_for_link

FIXTURES = Path(__file__).parent / "fixtures"
EVIL = FIXTURES / "pickles" / "os_system_proto0.pkl"
PLAIN = FIXTURES / "models" / "plain.pkl"
REPLACED = "replaced while scanned, not read"


def _by_path(checks: list[FileCheck]) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {c.path: (c.verdict, c.reasons) for c in checks}


def swap_before_reading(
    monkeypatch: pytest.MonkeyPatch, name: bytes, swap: Callable[[], None]
) -> list[bool]:
    """Run ``swap`` once, just before a file called ``name`` is first looked at or opened
    (after its folder's listing saw it), by path or relative to its folder."""
    done: list[bool] = []
    real_open, real_lstat, real_stat = os.open, os.lstat, os.stat

    def maybe_swap(path: object) -> None:
        if not done and os.fsencode(path).split(b"/")[-1] == name:  # type: ignore[arg-type]
            done.append(True)
            swap()

    def opening(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        maybe_swap(path)
        return real_open(path, flags, *args, **kwargs)

    def lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        maybe_swap(path)
        return real_lstat(path, *args, **kwargs)

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        maybe_swap(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "lstat", lstat)
    monkeypatch.setattr(os, "stat", stat)
    return done


def _trees(tmp_path: Path) -> tuple[Path, Path]:
    """``tree/run/evil.pkl`` runs code; ``outside`` holds a harmless ``evil.pkl`` (and a
    ``run/evil.pkl``) to lead a walk astray."""
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    (tree / "run").mkdir(parents=True)
    shutil.copy(EVIL, tree / "run" / "evil.pkl")
    (outside / "run").mkdir(parents=True)
    shutil.copy(PLAIN, outside / "evil.pkl")
    shutil.copy(PLAIN, outside / "run" / "evil.pkl")
    return tree, outside


def test_a_folder_swapped_for_a_link_before_its_listing_is_unknown_not_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree, outside = _trees(tmp_path)
    swap = swap_for_link(tree / "run", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, tree / "run", swap)
        found = _by_path(list(check_paths([tree])))
    assert swapped == [True]
    # the harmless file outside was listed through the link and called safe, under the name
    # of the file that runs code
    assert str(tree / "run" / "evil.pkl") not in found
    assert found == {str(tree / "run"): ("unknown", (f"unreadable folder: {REPLACED}",))}


def test_a_folder_above_swapped_for_a_link_is_unknown_not_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tree/top`` listed, then swapped for a link to a tree with a ``run`` of its own:
    listing ``tree/top/run`` by its path lists the other tree's."""
    tree, outside = _trees(tmp_path)
    (tree / "top").mkdir()
    os.rename(tree / "run", tree / "top" / "run")
    swap = swap_for_link(tree / "top", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, tree / "top" / "run", swap)
        found = _by_path(list(check_paths([tree])))
    assert swapped == [True]
    assert found == {str(tree / "top" / "run"): ("unknown", (f"unreadable folder: {REPLACED}",))}


def test_a_folder_swapped_after_its_listing_is_read_where_it_was_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tree/run`` listed, then swapped for a link before its file is read: the file read
    is the one listed (dangerous), not the harmless one the link leads to."""
    tree, outside = _trees(tmp_path)
    swap = swap_for_link(tree / "run", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_reading(patch, b"evil.pkl", swap)
        found = _by_path(list(check_paths([tree])))
    assert swapped == [True]
    assert found[str(tree / "run" / "evil.pkl")][0] == "dangerous"


def test_a_file_swapped_between_listing_and_reading_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing saw one file; another was renamed over it before the read: its verdict
    would be given for bytes the listing never named (and the file put back after)."""
    tree, _ = _trees(tmp_path)
    shutil.copy(PLAIN, tmp_path / "decoy.pkl")

    def swap() -> None:
        os.rename(tree / "run" / "evil.pkl", tmp_path / "parked.pkl")
        os.rename(tmp_path / "decoy.pkl", tree / "run" / "evil.pkl")

    with monkeypatch.context() as patch:
        swapped = swap_before_reading(patch, b"evil.pkl", swap)
        found = _by_path(list(check_paths([tree])))
    assert swapped == [True]
    assert found == {str(tree / "run" / "evil.pkl"): ("unknown", (REPLACED,))}


def test_a_model_by_content_swapped_for_a_link_is_unknown_not_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pickle with no model name, swapped for a link to a text file between the listing
    and the sniff, was left out of the report: a gate passed over it."""
    tree, _ = _trees(tmp_path)
    shutil.copy(EVIL, tree / "run" / "weights")
    (tmp_path / "notes.txt").write_text("just text\n")

    def swap() -> None:
        os.rename(tree / "run" / "weights", tmp_path / "parked")
        os.symlink(tmp_path / "notes.txt", tree / "run" / "weights")

    with monkeypatch.context() as patch:
        swapped = swap_before_reading(patch, b"weights", swap)
        found = _by_path(list(check_paths([tree])))
    assert swapped == [True]
    assert found[str(tree / "run" / "weights")] == ("unknown", (REPLACED,))
    assert found[str(tree / "run" / "evil.pkl")][0] == "dangerous"


def test_a_link_in_a_folder_swapped_after_its_listing_is_the_listed_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tree/run/latest.pkl -> evil.pkl`` listed, then ``tree/run`` swapped for a link to
    a folder whose ``latest.pkl`` leads to a harmless file: never safe."""
    tree, outside = _trees(tmp_path)
    (tree / "run" / "latest.pkl").symlink_to("evil.pkl")
    (outside / "latest.pkl").symlink_to("evil.pkl")
    swap = swap_for_link(tree / "run", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_reading(patch, b"latest.pkl", swap)
        found = _by_path(list(check_paths([tree])))
    assert swapped == [True]
    assert found[str(tree / "run" / "latest.pkl")][0] in ("dangerous", "unknown")


def test_no_descriptor_is_left_open(tmp_path: Path) -> None:
    """Every folder and file descriptor is closed, also when the caller stops early."""
    tree, outside = _trees(tmp_path)
    for i in range(20):
        (tree / f"d{i}").mkdir()
        shutil.copy(PLAIN, tree / f"d{i}" / "m.pkl")
        (tree / f"d{i}" / "l.pkl").symlink_to(outside / "evil.pkl")
    before = descriptors_into(tmp_path)
    assert len(list(check_paths([tree]))) == 41
    walk = check_paths([tree])
    assert isinstance(walk, types.GeneratorType)
    next(walk)
    walk.close()
    assert descriptors_into(tmp_path) == before
