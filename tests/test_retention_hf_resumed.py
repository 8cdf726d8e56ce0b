"""Keep-best over a Trainer resumed explicitly from an older checkpoint: the dead session's
``checkpoint-1000`` is the highest, and its ``log_history`` judged ``checkpoint-800`` by the
dead session's evaluation at step 800, though the resumed session saved that folder again
after its own evaluation (a worse one).  Keep-best 2 then kept checkpoint-800 for a value
its files never had, and removed checkpoint-600, better by the resumed session's count.

Each checkpoint is judged by the session that saved it: the state written last at a lower
step, whose history parts from the highest one's, judges the steps it reached; the dead
session's later checkpoints keep their own values, and both sessions' best are kept."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from test_retention_support import index_tree, new_db, write

from store.retention.candidates import candidates_for_root
from store.retention.plan import make_plan
from store.retention.policy import from_flags


def state(steps: list[tuple[int, int]], evals: dict[int, float], best: int) -> bytes:
    history: list[dict[str, object]] = []
    for step, session in steps:
        history.append({"step": step, "loss": (1.0 if session == 0 else 2.0) / (step + 10)})
        if step in evals:
            history.append({"step": step, "eval_loss": evals[step]})
    return json.dumps(
        {
            "global_step": steps[-1][0],
            "best_model_checkpoint": f"/job/out/checkpoint-{best}",
            "log_history": history,
        }
    ).encode()


@pytest.mark.parametrize("bogus", [None, "checkpoint-5000"])
def test_keep_best_judges_each_checkpoint_by_the_session_that_saved_it(
    tmp_path: Path, bogus: str | None
) -> None:
    """``bogus``: a newer folder, written last, whose state logs nothing (``{}``): it hides
    neither the states' values nor which session is current."""
    root = tmp_path / "root"
    dead = [(s, 0) for s in range(100, 1001, 100)]
    dead_evals = {200: 0.9, 600: 0.5, 800: 0.05, 1000: 0.01}
    resumed = [*dead[:6], (700, 1), (800, 1)]
    saved = {  # folder -> (state, seconds ago)
        "checkpoint-200": (state(dead[:2], dead_evals, 200), 9000),
        "checkpoint-600": (state(dead[:6], dead_evals, 600), 8000),
        "checkpoint-1000": (state(dead, dead_evals, 1000), 7000),
        "checkpoint-800": (state(resumed, {200: 0.9, 600: 0.5, 800: 0.6}, 600), 100),
    }
    for folder, (text, age) in saved.items():
        write(root / "out" / folder / "model.safetensors", b"w", age=age)
        write(root / "out" / folder / "trainer_state.json", text, age=age)
    if bogus:
        write(root / "out" / bogus / "trainer_state.json", b"{}", age=10)
    db = new_db(tmp_path)
    root_id = index_tree(db, root, {"out": ("hf-trainer", "finished")})
    (units,) = candidates_for_root(db, root_id, str(root), metric="eval_loss").values()
    judged = {u.path.rsplit("/", 1)[-1]: u.metric for u in units if u.name != bogus}
    assert judged == {
        "checkpoint-200": 0.9,
        "checkpoint-600": 0.5,
        "checkpoint-800": 0.6,  # the resumed session's own evaluation, not the dead 0.05
        "checkpoint-1000": 0.01,  # the dead session's file, judged by its own
    }
    best = {u.path.rsplit("/", 1)[-1] for u in units if u.trainer_best}
    assert best == {"checkpoint-600", "checkpoint-1000"}
    plan = make_plan(
        db, [root], from_flags(keep_last=0, keep_best=2, metric="eval_loss"), time.time()
    )
    kept = {u.path.rsplit("/", 1)[-1] for u in plan.items if u.keep}
    assert "checkpoint-800" not in kept and "checkpoint-600" in kept
    db.conn.close()
    assert os.path.exists(root / "out" / "checkpoint-800")
