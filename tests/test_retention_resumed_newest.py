"""Keep-last over a training resumed from an earlier checkpoint into the same folder.

The dead session's later checkpoints stay on disk (``checkpoint-1000``, ``epoch=9...ckpt``,
``epoch9.pt``), the resumed session saves again below them (``checkpoint-800``).  By number
the dead ones are the newest: ``retention plan --keep-last 1`` kept the dead session's
``checkpoint-1000`` and removed ``checkpoint-800``, the one a resume continues from; a live
run's newest was the highest number, not what the live session wrote.

With the Trainer's proof (a ``trainer_state.json`` written later at a lower step whose
history parts from the highest one's) the dead session's checkpoints are not current and
keep-last counts the current session's; with only the mtimes to go by, the newest of both
are kept, and the reasons say why."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_retention_support import write

from store.retention.plan import LIVE_NEWEST, RESUMED
from tui.cli import main


@pytest.fixture(autouse=True)
def isolated(isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return isolated_cache


def cli_json(*args: str, db: Path) -> Any:
    result = CliRunner().invoke(main, [*args, "--json", "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def plan_of(root: Path, tmp_path: Path, *flags: str) -> dict[str, list[str]]:
    """{unit name: reasons} of ``retention plan`` over a freshly indexed ``root``; a
    removed unit's reasons start with 'kept by no rule'."""
    db = tmp_path / "index.db"
    CliRunner().invoke(main, ["index", "--no-hash", str(root), "--db", str(db)])
    plan = cli_json("retention", "plan", *flags, str(root), db=db)
    return {item["path"].rsplit("/", 1)[-1]: item["reasons"] for item in plan["items"]}


def kept(plan: dict[str, list[str]]) -> set[str]:
    return {name for name, reasons in plan.items() if reasons[0] != "kept by no rule"}


def state(steps: list[tuple[int, int]], best: int | None = None, at: int | None = None) -> bytes:
    """A trainer_state.json: ``steps`` are (step, session); a session logs its own loss."""
    history = [{"step": step, "loss": (1.0 + session) / (step + 10)} for step, session in steps]
    return json.dumps(
        {
            "global_step": steps[-1][0] if at is None else at,
            "best_model_checkpoint": None if best is None else f"/job/out/checkpoint-{best}",
            "log_history": history,
        }
    ).encode()


def hf_resumed(root: Path, *, resumed_age: float, common: bool = True) -> None:
    """checkpoint-200/600/1000 of a dead session, then checkpoint-800 of one resumed from
    checkpoint-600 (its history shares steps 100..600 with the dead one's; unless
    ``common``, it logged only at steps the dead one did not)."""
    dead = [(s, 0) for s in range(100, 1001, 100)]
    resumed = [*dead[:6], (700, 1), (800, 1)] if common else [(650, 1), (750, 1)]
    for folder, text, age in (
        ("checkpoint-200", state(dead[:2]), 9000.0),
        ("checkpoint-600", state(dead[:6]), 8000.0),
        ("checkpoint-1000", state(dead), 7000.0),
        ("checkpoint-800", state(resumed, at=800), resumed_age),
    ):
        write(root / "out" / folder / "model.safetensors", b"w" * 64, age=age)
        write(root / "out" / folder / "trainer_state.json", text, age=age)


@pytest.mark.parametrize("resumed_age", [3000.0, 5.0], ids=["finished", "live"])
def test_hf_keep_last_keeps_the_resumed_sessions_newest(tmp_path: Path, resumed_age: float) -> None:
    root = tmp_path / "root"
    hf_resumed(root, resumed_age=resumed_age)
    plan = plan_of(root, tmp_path, "--keep-last", "1")
    assert kept(plan) == {"checkpoint-800"}
    assert plan["checkpoint-800"][0] == "latest 1"
    assert (LIVE_NEWEST in plan["checkpoint-800"]) is (resumed_age < 60)
    assert "a dead session's" in " ".join(plan["checkpoint-1000"])
    two = plan_of(root, tmp_path, "--keep-last", "2")
    assert kept(two) == {"checkpoint-600", "checkpoint-800"}  # the current session's two


def test_hf_resume_not_proven_keeps_both(tmp_path: Path) -> None:
    """No logged step in both histories: which session is current cannot be told, so
    keep-last keeps the highest number and the one written last, and says why."""
    root = tmp_path / "root"
    hf_resumed(root, resumed_age=3000.0, common=False)
    plan = plan_of(root, tmp_path, "--keep-last", "1")
    assert kept(plan) == {"checkpoint-1000", "checkpoint-800"}
    assert plan["checkpoint-800"] == [f"latest 1 {RESUMED}"]


def lightning(root: Path) -> tuple[Path, list[str]]:
    run = root / "lightning_logs" / "version_0"
    write(run / "hparams.yaml", b"lr: 0.1\n")
    write(run / "metrics.csv", b"epoch,step,train_loss\n0,9,1.0\n")
    return run / "checkpoints", [f"epoch={e}-step={10 * e + 9}.ckpt" for e in range(10)]


def timm(root: Path) -> tuple[Path, list[str]]:
    run = root / "train" / "20240101-resnet"
    write(run / "args.yaml", b"epochs: 20\n")
    return run, [f"checkpoint-{e}.pth.tar" for e in range(10)]


def ultralytics(root: Path) -> tuple[Path, list[str]]:
    run = root / "runs" / "detect" / "train"
    write(run / "args.yaml", b"epochs: 20\n")
    return run / "weights", [f"epoch{e}.pt" for e in range(10)]


def keras(root: Path) -> tuple[Path, list[str]]:
    run = root / "keras_run"
    write(run / "training.log", b"epoch,loss\n0,1.0\n")
    return run / "models", [f"model.{e + 1:02d}.keras" for e in range(10)]


@pytest.mark.parametrize("layout", [lightning, timm, ultralytics, keras])
@pytest.mark.parametrize("live", [False, True], ids=["finished", "live"])
def test_numbered_checkpoints_of_a_resumed_session_are_kept(
    tmp_path: Path, layout: Any, live: bool
) -> None:
    """A dead session saved epochs 0..9; one resumed from epoch 5 saved 6 and 7 again,
    after it.  Keep-last keeps the dead session's highest (nothing proves it dead) and the
    resumed session's newest; a live run's newest is what the live session wrote."""
    root = tmp_path / "root"
    folder, names = layout(root)
    for epoch, name in enumerate(names):
        write(folder / name, b"c" * 64, age=9000.0 - 100 * epoch)
    now_age = 5.0 if live else 3000.0
    for epoch in (6, 7):
        write(folder / names[epoch], b"d" * 64, age=now_age + 7 - epoch)
    plan = plan_of(root, tmp_path, "--keep-last", "1")
    assert set(plan) == set(names)  # each is a checkpoint of one run
    assert kept(plan) == {names[9], names[7]}
    assert plan[names[7]][0] == f"latest 1 {RESUMED}"
    assert (LIVE_NEWEST in plan[names[7]]) is live
    two = plan_of(root, tmp_path, "--keep-last", "2")
    assert kept(two) == {names[8], names[9], names[6], names[7]}


def test_a_run_not_resumed_keeps_only_its_latest(tmp_path: Path) -> None:
    """Written in the order of their numbers: keep-last keeps exactly the latest."""
    root = tmp_path / "root"
    folder, names = lightning(root)
    for epoch, name in enumerate(names):
        write(folder / name, b"c" * 64, age=9000.0 - 100 * epoch)
    plan = plan_of(root, tmp_path, "--keep-last", "1")
    assert kept(plan) == {names[9]}
    assert os.path.exists(folder / names[0])
