"""Pins and notes survive in their own file, whatever happens to the index."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from store.userstate import UserState, UserStateError, default_path


def test_pins_and_notes_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "data"
    odd = os.fsdecode(b"runs/caf\xe9/ckpt-1.pt")  # invalid UTF-8 survives as a BLOB key
    with UserState(tmp_path / "state.db") as state:
        state.pin(root, "runs/a")
        state.pin(root, odd)
        state.pin(root, "**/final/**")
        state.pin(tmp_path / "other", "runs/b")
        assert state.pins(root) == {"runs/a", odd, "**/final/**"}
        assert [p.is_glob for p in state.pin_entries(root)] == [True, False, False]
        assert state.is_pinned(root, "runs/a/checkpoint-3/model.bin")
        assert state.is_pinned(root, "x/final/y.pt")
        assert not state.is_pinned(root, "runs/ab/x.pt")
        assert state.unpin(root, "runs/a") and not state.unpin(root, "runs/a")
        state.set_note(root, "runs/a", "baseline for the paper \x1b[2J")
        assert state.note(root, "runs/a") == "baseline for the paper \x1b[2J"
        state.set_note(root, "runs/c", "")
        assert state.notes(root) == {"runs/a": "baseline for the paper \x1b[2J"}
    with UserState(tmp_path / "state.db") as again:  # persisted, not cached
        assert again.pins(root) == {odd, "**/final/**"}
        state_rows = (
            sqlite3.connect(tmp_path / "state.db")
            .execute("SELECT typeof(path) FROM pins")
            .fetchall()
        )
        assert {r[0] for r in state_rows} == {"blob"}


def test_location_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "elsewhere" / "s.db"))
    assert default_path() == tmp_path / "elsewhere" / "s.db"
    with UserState() as state:
        state.pin(tmp_path, "r")
    assert (tmp_path / "elsewhere" / "s.db").exists()


def test_unusable_state_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserStateError) as caught:
        UserState(tmp_path / "state.db")
    assert "\n" not in str(caught.value) and "state.db" in str(caught.value)
