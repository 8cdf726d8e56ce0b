"""A Trainer resumed explicitly from an older checkpoint (``trainer.train(
resume_from_checkpoint="out/checkpoint-600")``) logs and saves again from step 600, while
the dead session's ``checkpoint-1000`` stays on disk (rotation removes the lowest numbers
first).  Its ``trainer_state.json`` has the highest ``global_step``, so it was taken as the
run's: last, best and n came from the dead session.

The evidence of which state is current: the state written last (its mtime) at a lower
step, whose ``log_history`` parts from the highest one's at a step both logged; and the
newest ``runs/<date>_<host>`` session's events, logged after the state was written, at
steps that state holds with other values.  A conflict that cannot be settled is said, and
the metrics are marked read in part."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from store.frameworks import RunSpec, read_run
from store.frameworks.model import UNREAD_PARTS
from tests import test_tensorboard_restarts as tb
from tests.test_frameworks import warnings_of

SPEC = RunSpec("out", "hf-trainer", "out", None)
T0 = tb.T0


def loss(step: int, session: int) -> float:
    return round(1.0 / (step + 10) if session == 0 else 2.0 / (step + 10), 6)


def state(session_steps: list[tuple[int, int]], evals: dict[int, float]) -> str:
    """A ``trainer_state.json`` whose ``log_history`` logged ``loss`` at each ``(step,
    session)`` and ``eval_loss`` at ``evals``."""
    history: list[dict[str, object]] = []
    for step, session in session_steps:
        history.append({"step": step, "epoch": step / 400, "loss": loss(step, session)})
        if step in evals:
            history.append({"step": step, "epoch": step / 400, "eval_loss": evals[step]})
    top = session_steps[-1][0]
    return json.dumps({"global_step": top, "max_steps": 2000, "log_history": history})


def put(root: Path, rel: str, text: str, mtime: float) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


DEAD = [(s, 0) for s in range(100, 1001, 100)]
DEAD_EVALS = {600: 0.5, 1000: 0.01}  # the dead session's lucky eval at 1000


def dead_session(root: Path) -> None:
    put(root, "out/checkpoint-600/trainer_state.json", state(DEAD[:6], DEAD_EVALS), T0 + 600)
    put(root, "out/checkpoint-1000/trainer_state.json", state(DEAD, DEAD_EVALS), T0 + 1000)


def test_the_state_written_last_whose_history_parts_is_the_current_one(tmp_path: Path) -> None:
    dead_session(tmp_path)
    resumed = [*DEAD[:6], (700, 1), (800, 1)]  # resumed from 600, saved at 800
    put(
        tmp_path,
        "out/checkpoint-800/trainer_state.json",
        state(resumed, {600: 0.5, 800: 0.4}),
        T0 + 5800,
    )
    info = read_run(tmp_path, SPEC)
    assert info.meta["trainer_state"] == "out/checkpoint-800/trainer_state.json"
    assert info.meta["global_step"] == 800
    got = info.metrics["loss"]
    assert (got.last_step, got.last, got.n) == (800, loss(800, 1), 8)
    ev = info.metrics["eval_loss"]
    assert (ev.best, ev.best_step, ev.n) == (0.4, 800, 2)  # not the dead session's 0.01
    said = [w for w in warnings_of(info) if "part at step 700" in w]
    assert len(said) == 1 and "checkpoint-1000" in said[0], warnings_of(info)
    assert UNREAD_PARTS not in info.meta


def test_a_copied_tree_whose_mtimes_say_nothing_keeps_the_highest_state(tmp_path: Path) -> None:
    dead_session(tmp_path)  # one session; checkpoint-800 copied last
    put(tmp_path, "out/checkpoint-800/trainer_state.json", state(DEAD[:8], DEAD_EVALS), T0 + 9999)
    info = read_run(tmp_path, SPEC)
    assert info.meta["trainer_state"] == "out/checkpoint-1000/trainer_state.json"
    assert info.metrics["loss"].last_step == 1000
    assert warnings_of(info) == []
    assert UNREAD_PARTS not in info.meta


def test_a_later_state_with_nothing_to_compare_is_doubt(tmp_path: Path) -> None:
    dead_session(tmp_path)
    later = json.dumps({"global_step": 800, "max_steps": 2000, "log_history": []})
    put(tmp_path, "out/checkpoint-800/trainer_state.json", later, T0 + 5800)
    info = read_run(tmp_path, SPEC)
    assert info.meta[UNREAD_PARTS] == ["metrics"]
    assert any("cannot be told" in w and "checkpoint-800" in w for w in warnings_of(info))


def test_a_resumed_session_that_has_not_saved_yet_is_said_by_its_events(tmp_path: Path) -> None:
    # the resumed session (from 600) logged 700 and 800 into its own runs/ folder, and has
    # not saved a checkpoint yet: checkpoint-1000 is the newest state, and the dead one's
    dead_session(tmp_path)
    old = tmp_path / "out" / "runs" / "Dec01_10-00-00_host"
    new = tmp_path / "out" / "runs" / "Dec02_10-00-00_host"
    tb.write(
        old,
        "1.host.1.0",
        [tb.version(T0)] + [tb.scalar(T0 + s, s, "train/loss", loss(s, 0)) for s, _ in DEAD],
    )
    tb.write(
        new,
        "2.host.2.0",
        [tb.version(T0 + 5000)]
        + [tb.scalar(T0 + 5000 + s, s, "train/loss", loss(s, 1)) for s in (700, 800)],
    )
    info = read_run(tmp_path, SPEC)
    assert info.meta[UNREAD_PARTS] == ["metrics"]
    assert any("loss at step 800" in w for w in warnings_of(info)), warnings_of(info)


def test_log_history_entries_with_no_step_are_said_and_mark_the_metrics(tmp_path: Path) -> None:
    history: list[object] = [{"step": 100, "loss": 0.5}, 5, {"loss": 0.3}, {"step": "x"}]
    text = json.dumps({"global_step": 100, "max_steps": 2000, "log_history": history})
    put(tmp_path, "out/checkpoint-100/trainer_state.json", text, T0)
    info = read_run(tmp_path, SPEC)
    assert info.metrics["loss"].n == 1
    assert info.meta[UNREAD_PARTS] == ["metrics"]
    said = [w for w in warnings_of(info) if "log_history" in w]
    assert len(said) == 1 and "3 of 4" in said[0], warnings_of(info)


BOGUS = ("checkpoint-99999999999999999999999", "checkpoint-5000")


@pytest.mark.parametrize("folder", BOGUS)
@pytest.mark.parametrize("text", ["{}", '{"global_step": 5000, "log_history": []}'])
def test_a_state_with_no_history_does_not_hide_an_older_one(
    tmp_path: Path, folder: str, text: str
) -> None:
    dead_session(tmp_path)
    put(tmp_path, f"out/{folder}/trainer_state.json", text, T0 + 10)
    info = read_run(tmp_path, SPEC)
    assert info.meta["trainer_state"] == "out/checkpoint-1000/trainer_state.json"
    assert info.metrics["loss"].last_step == 1000
    assert any(folder in w for w in warnings_of(info)), warnings_of(info)  # passed over, or 64 bits


def test_a_checkpoint_number_past_64_bits_is_not_taken_for_the_newest(tmp_path: Path) -> None:
    dead_session(tmp_path)  # the absurd folder's state is real-looking, but at step 20
    put(tmp_path, f"out/{BOGUS[0]}/trainer_state.json", state(DEAD[:2], {}), T0 + 10)
    info = read_run(tmp_path, SPEC)
    assert info.meta["trainer_state"] == "out/checkpoint-1000/trainer_state.json"
    assert info.meta["checkpoints"] == [BOGUS[0], "checkpoint-600", "checkpoint-1000"]
    assert any(BOGUS[0] in w and "64 bits" in w for w in warnings_of(info)), warnings_of(info)


def test_a_state_written_last_with_no_step_does_not_hide_a_resumed_session(
    tmp_path: Path,
) -> None:
    dead_session(tmp_path)
    resumed = [*DEAD[:6], (700, 1), (800, 1)]
    put(tmp_path, "out/checkpoint-800/trainer_state.json", state(resumed, {}), T0 + 5800)
    put(tmp_path, "out/checkpoint-900/trainer_state.json", "{}", T0 + 9000)
    info = read_run(tmp_path, SPEC)
    assert info.meta["trainer_state"] == "out/checkpoint-800/trainer_state.json"
    assert info.metrics["loss"].last == loss(800, 1)
