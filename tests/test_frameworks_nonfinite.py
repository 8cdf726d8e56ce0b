"""A metric that became NaN (a diverged run) is the run's last value, whatever file says it:
W&B's history and summary, DVCLive's (and any run's) ``metrics.json``.  Those readers
flattened the values to JSON text first, so NaN became the string ``"nan"`` and was skipped:
the run showed the last finite loss, or none, as if nothing had happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.test_rundiff import age, index
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def runs_json(root: Path) -> dict[str, Any]:
    age(root)
    db_path = root.parent / "index.db"
    index(root, db_path)
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.stderr
    return {run["name"]: run for run in json.loads(result.stdout)}


def test_wandb_history_and_summary_keep_a_nan_loss(tmp_path: Path) -> None:
    root = tmp_path / "root"
    files = root / "wandb" / "run-20240101_100000-abc123" / "files"
    files.mkdir(parents=True)
    (files / "config.yaml").write_text("lr:\n  value: 0.1\n")
    (files / "wandb-history.jsonl").write_text(
        '{"_step": 4, "loss": 0.3}\n{"_step": 5, "loss": NaN, "grad": Infinity}\n'
    )
    (files / "wandb-summary.json").write_text('{"_step": 5, "loss": NaN, "val_loss": NaN}')
    metrics = runs_json(root)["abc123"]["metrics"]
    assert metrics["loss"] == {
        "last": "NaN",
        "last_step": 5,
        "best": 0.3,
        "best_step": 4,
        "n": 2,
        "direction": "min",
    }
    assert metrics["grad"]["last"] == "Infinity"
    assert metrics["val_loss"]["last"] == "NaN"  # known from the summary only


def test_metrics_json_keeps_a_nan_final_value(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name, loss in (("exp_a", "NaN"), ("exp_b", "0.3")):
        (root / name / "dvclive").mkdir(parents=True)
        (root / name / "dvclive" / "metrics.json").write_text(f'{{"loss": {loss}, "acc": 0.5}}')
    runs = runs_json(root)
    assert runs["exp_a"]["metrics"]["loss"]["last"] == "NaN"
    assert runs["exp_b"]["metrics"]["loss"]["last"] == 0.3
    result = CliRunner().invoke(
        main, ["diff", "exp_a", "exp_b", "--db", str(root.parent / "index.db"), "--json"]
    )
    assert result.exit_code == 1, result.stderr
    loss = next(m for m in json.loads(result.stdout)["metrics"] if m["name"] == "loss")
    # on both sides, not "only in B"; and no run is called better than a NaN
    assert (loss["old"], loss["new"], loss["better"]) == ("NaN", 0.3, None)
