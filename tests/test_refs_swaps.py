"""A run's references (``store.inspect.refs``, ``run_problems``) under a writer racing the
walk: a folder of the run (or one above it) swapped for a link out of the root between its
parent's listing and its own, or between the listing and the reading of a link or a
``trainer_state.json``.  The links and states judged are the run's, never another tree's
read through the swap."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from store.integrity import run_problems
from tests.test_walk_swaps import swap_before_listing, swap_for_link


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """``root/run/sub`` holds a sound ``last.ckpt`` link and ``trainer_state.json``;
    ``outside`` (and ``outside/sub``) the same names, broken."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    sub = root / "run" / "sub"
    sub.mkdir(parents=True)
    (sub / "epoch=3.ckpt").write_bytes(b"w")
    (sub / "last.ckpt").symlink_to("epoch=3.ckpt")
    (root / "run" / "checkpoint-5").mkdir()
    (sub / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": "checkpoint-5"}))
    for folder in (outside, outside / "sub"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "last.ckpt").symlink_to("gone.ckpt")
        state = {"best_model_checkpoint": "checkpoint-9"}
        (folder / "trainer_state.json").write_text(json.dumps(state))
    return root, outside


def test_sound_references_have_no_problems(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    assert run_problems(root, "run") == []
    os.unlink(root / "run" / "sub" / "epoch=3.ckpt")
    assert run_problems(root, "run") == ["sub/last.ckpt: symlink to epoch=3.ckpt points to nothing"]
    (tmp_path / "link").symlink_to(root)
    # the root itself may be a link; a run folder that is one is not followed
    assert len(run_problems(tmp_path / "link", "run")) == 1
    (root / "linked").symlink_to(root / "run")
    assert run_problems(root, "linked") == []


def test_a_folder_swapped_for_a_link_is_not_listed_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = _tree(tmp_path)
    swap = swap_for_link(root / "run" / "sub", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, root / "run" / "sub", swap)
        problems = run_problems(root, "run")
    assert swapped == [True]
    # the other tree's broken link and state were reported as the run's
    assert problems == []


def test_a_folder_above_swapped_for_a_link_is_not_listed_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = _tree(tmp_path)
    (root / "run" / "top").mkdir()
    os.rename(root / "run" / "sub", root / "run" / "top" / "sub")
    swap = swap_for_link(root / "run" / "top", outside, tmp_path / "parked")
    with monkeypatch.context() as patch:
        swapped = swap_before_listing(patch, root / "run" / "top" / "sub", swap)
        problems = run_problems(root, "run")
    assert swapped == [True]
    assert problems == []


def test_links_and_states_are_read_in_the_folder_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run/sub`` listed, then swapped for a link out before its link and state are read:
    read by path, they were the other tree's (a link to nothing, a best checkpoint gone)."""
    root, outside = _tree(tmp_path)
    swap = swap_for_link(root / "run" / "sub", outside / "sub", tmp_path / "parked")
    done: list[bool] = []
    real_readlink = os.readlink

    def readlink(path: Any, *args: Any, **kwargs: Any) -> Any:
        if not done and os.fsencode(path).split(b"/")[-1] == b"last.ckpt":
            done.append(True)
            swap()
        return real_readlink(path, *args, **kwargs)

    (root / "run" / "sub" / "a").mkdir()  # listed before the link: the swap waits for it
    with monkeypatch.context() as patch:
        patch.setattr(os, "readlink", readlink)
        problems = run_problems(root, "run")
    assert done == [True]
    assert not any("gone.ckpt" in p or "checkpoint-9" in p for p in problems)
