"""``*_results.json`` (``Trainer.save_metrics``) carry no step: they are written after
training, at its last step.  That step is the ``trainer_state.json`` saved beside them, or
a checkpoint that ended the training; a newest checkpoint short of ``max_steps`` (an early
stop, a Trainer that did not save at the end, saves by epoch) does not date them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.frameworks import RunInfo, RunSpec, read_metric_series, read_run

SPEC = RunSpec("out", "hf-trainer", "out", None)


def state(step: int, max_steps: int, evals: dict[int, float]) -> str:
    history: list[dict[str, object]] = [
        {"step": s, "epoch": s / 400, "loss": 1.0 / s} for s in range(100, step + 1, 100)
    ]
    history += [{"step": s, "epoch": s / 400, "eval_loss": v} for s, v in evals.items()]
    return json.dumps({"global_step": step, "max_steps": max_steps, "log_history": history})


def no_step_notes(info: RunInfo) -> list[str]:
    warnings = info.meta["warnings"]
    assert isinstance(warnings, list)
    return [str(w) for w in warnings if "give no step" in str(w)]


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


RESULTS = {
    "out/all_results.json": json.dumps(
        {"epoch": 3.0, "train_loss": 0.41, "train_runtime": 12.5, "eval_loss": 0.2}
    ),
    "out/train_results.json": json.dumps({"epoch": 3.0, "train_loss": 0.41, "train_runtime": 12.5}),
    "out/eval_results.json": json.dumps({"epoch": 3.0, "eval_loss": 0.2}),
}


def test_results_are_not_dated_by_a_checkpoint_short_of_the_end(tmp_path: Path) -> None:
    """Saves every 500 steps, training ended at 1200 (no save there): the results are of
    step 1200, not of checkpoint-1000's step."""
    write(
        tmp_path,
        {
            "out/checkpoint-500/trainer_state.json": state(500, 1200, {500: 0.5}),
            "out/checkpoint-1000/trainer_state.json": state(1000, 1200, {500: 0.5, 1000: 0.3}),
            **RESULTS,
        },
    )
    info = read_run(tmp_path, SPEC)
    assert info.metrics["train_loss"].last == 0.41
    assert info.metrics["train_loss"].last_step is None
    assert info.metrics["train_runtime"].last_step is None
    said = no_step_notes(info)
    assert len(said) == 1 and "step 1000 of 1200" in said[0]
    # the logged series stays as logged: a value of no known step is not put after it
    assert info.metrics["eval_loss"].last == 0.3 and info.metrics["eval_loss"].last_step == 1000


def test_results_with_the_final_state_take_its_step(tmp_path: Path) -> None:
    """``save_state`` wrote the top-level state at 1200; the evaluation after it (the
    ``eval_results.json``) is the series' last point, as the event files would have it."""
    write(
        tmp_path,
        {
            "out/checkpoint-1000/trainer_state.json": state(1000, 1200, {500: 0.5, 1000: 0.3}),
            "out/trainer_state.json": state(1200, 1200, {500: 0.5, 1000: 0.3}),
            **RESULTS,
        },
    )
    info = read_run(tmp_path, SPEC)
    assert (info.metrics["train_loss"].last, info.metrics["train_loss"].last_step) == (0.41, 1200)
    eval_loss = info.metrics["eval_loss"]
    assert (eval_loss.last, eval_loss.last_step, eval_loss.n) == (0.2, 1200, 3)
    assert read_metric_series(tmp_path, SPEC)["eval_loss"] == [(500, 0.5), (1000, 0.3), (1200, 0.2)]
    assert not no_step_notes(info)


@pytest.mark.parametrize("newest", [1200, 1300])
def test_results_beside_a_checkpoint_that_ended_training(tmp_path: Path, newest: int) -> None:
    """The Trainer saves at its last step (``global_step >= max_steps``): that checkpoint
    dates the results even with no top-level state."""
    write(
        tmp_path,
        {
            "out/checkpoint-1000/trainer_state.json": state(1000, 1200, {1000: 0.3}),
            f"out/checkpoint-{newest}/trainer_state.json": state(newest, 1200, {1000: 0.3}),
            **RESULTS,
        },
    )
    info = read_run(tmp_path, SPEC)
    assert info.metrics["train_loss"].last_step == newest
    assert (info.metrics["eval_loss"].last, info.metrics["eval_loss"].last_step) == (0.2, newest)
    assert not no_step_notes(info)


def test_evaluation_only_results_have_no_step_and_say_so(tmp_path: Path) -> None:
    write(tmp_path, {"out/eval_results.json": json.dumps({"eval_loss": 0.2, "epoch": 0.0})})
    info = read_run(tmp_path, SPEC)
    assert (info.metrics["eval_loss"].last, info.metrics["eval_loss"].last_step) == (0.2, None)
    assert no_step_notes(info)
