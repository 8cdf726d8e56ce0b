"""The disk usage view's ``d`` after a trash that failed: it must work again (and say why
it failed), not stay busy for good with every later ``d`` doing nothing."""

from __future__ import annotations

import time
from pathlib import Path

import platformdirs
import pytest

from store.retention.trash import TRASH_DIR
from tests.test_tui import settle, sync
from tests.test_tui_disk_usage import (
    CKPT,
    indexed,
    into_checkpoints,
    move_to,
    open_usage,
    usage,
)
from tui.app import ArtlensApp
from tui.screens.retention_dialogs import ConfirmApply

__all__ = ["indexed"]  # the fixture, shared with the view's other tests


@sync
async def test_d_works_again_after_a_trash_whose_plan_could_not_be_saved(
    indexed: tuple[Path, Path],
) -> None:
    root, db_path = indexed
    plans = Path(platformdirs.user_state_dir("artlens")) / "plans"
    plans.parent.mkdir(parents=True, exist_ok=True)
    plans.write_text("not a folder")  # as a full or read-only state folder: no plan saved
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_usage(app, pilot)
        await into_checkpoints(pilot, screen)
        await move_to(pilot, screen, "epoch2-val0.0854.ckpt")
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmApply)
        await pilot.press("y")
        await settle(pilot, rounds=5)
        assert usage(app) is screen
        assert (root / CKPT).exists()  # nothing moved
        assert not screen.busy, "d stays busy for good"
        said = [str(n.message) for n in app._notifications]
        assert any("cannot save plan" in text for text in said), said

        plans.unlink()  # the folder can be written again: d offers the trash again
        await move_to(pilot, screen, "epoch2-val0.0854.ckpt")
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmApply), "d did nothing after the failure"
        await pilot.press("y")
        await settle(pilot, rounds=6)
        assert not (root / CKPT).exists()
        assert len(list((root / TRASH_DIR).rglob("epoch2-val0.0854.ckpt"))) == 1


@sync
async def test_a_screen_s_failed_worker_is_said(
    indexed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker a screen started (here the explorer's pin, its user state unusable) that
    failed was said nowhere: Textual never hands a screen's worker to the app's handler.
    ``p`` looked like it did nothing."""
    root, db_path = indexed
    unusable = tmp_path / "state-is-a-folder"
    unusable.mkdir()
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        monkeypatch.setenv("ARTLENS_STATE", str(unusable))
        await pilot.press("p")  # the run under the cursor
        deadline = time.monotonic() + 60  # generous: a loaded machine runs workers late
        while not any(n.severity == "error" for n in app._notifications):
            if time.monotonic() > deadline:
                break  # the assertion below says what was notified instead
            await pilot.pause(0.05)
        errors = [str(n.message) for n in app._notifications if n.severity == "error"]
        assert errors, [str(n.message) for n in app._notifications]
