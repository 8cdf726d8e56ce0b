"""Readers that build a param name from two sources (a config key and the reader's own
prefix, two spellings of one field) keep both values under ``name (#2)`` and say so: a
value overwritten in silence lets ``artlens diff`` call two runs equal where they differ."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def indexed_runs(root: Path, db: Path) -> dict[str, dict[str, Any]]:
    """``artlens index`` then ``artlens runs --json``, by run path."""
    runner = CliRunner()
    result = runner.invoke(main, ["index", str(root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["runs", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    return {os.path.relpath(run["path"], root): run for run in json.loads(result.stdout)}


def warnings_of(run: dict[str, Any]) -> str:
    return " | ".join(str(w) for w in run.get("warnings") or [])


def test_keras_optimizer_class_name_and_config_key_both_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = root / "keras run"
    run.mkdir(parents=True)
    (run / "training.log").write_text("epoch,loss\n0,1.0\n1,0.5\n")
    config = {
        "class_name": "Sequential",
        "compile_config": {
            "optimizer": {
                "class_name": "Adam",
                "config": {"class_name": "SGD", "learning_rate": 0.001},
            },
            "loss": "mse",
        },
    }
    with zipfile.ZipFile(run / "model.01.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    found = indexed_runs(root, tmp_path / "i.db")["keras run"]
    params = found["params"]
    assert {params["optimizer.class_name"], params["optimizer.class_name (#2)"]} == {
        "Adam",
        "SGD",
    }
    assert params["optimizer.learning_rate"] == 0.001
    assert "optimizer.class_name (#2)" in warnings_of(found)


def test_nanogpt_config_key_and_model_args_both_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "out").mkdir(parents=True)
    checkpoint = {
        "config": {"max_iters": 100, "model_args": {"n_layer": 6}},
        "model_args": {"n_layer": 12, "n_head": 4},
        "iter_num": 100,
        "best_val_loss": 1.5,
    }
    (root / "out" / "ckpt.pt").write_bytes(pickle.dumps(checkpoint, protocol=2))
    found = indexed_runs(root, tmp_path / "i.db")["out"]
    params = found["params"]
    assert params["model_args.n_layer"] == 6  # the config's, as the script set it
    assert params["model_args.n_layer (#2)"] == 12  # the model's, no longer lost
    assert params["model_args.n_head"] == 4 and params["max_iters"] == 100
    assert "model_args.n_layer (#2)" in warnings_of(found)


def test_neptune_fields_read_as_one_name_both_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ops = [
        {"type": "AssignFloat", "path": ["parameters", "lr", "decay"], "value": 0.5},
        {"type": "AssignFloat", "path": ["parameters", "lr.decay"], "value": 0.1},
        {"type": "AssignFloat", "path": ["parameters", "lr.decay"], "value": 0.2},
    ]
    log = root / ".neptune" / "offline" / "run__8a3f" / "data-1.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps({"obj": op, "version": 1}) + "\n" for op in ops))
    found = indexed_runs(root, tmp_path / "i.db")[".neptune/offline/run__8a3f"]
    params = found["params"]
    # the field of fewer parts keeps the plain name whatever the order of the log; a field
    # assigned again takes its last value
    assert params == {"parameters.lr.decay": 0.2, "parameters.lr.decay (#2)": 0.5}
    assert "parameters.lr.decay (#2)" in warnings_of(found)


def test_mlflow_param_files_shown_alike_both_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = root / "mlruns" / "1" / "0b6ca591f9e7449b9352c36b6a7e4d44"
    (run / "params").mkdir(parents=True)
    (root / "mlruns" / "1" / "meta.yaml").write_text("experiment_id: '1'\nname: exp\n")
    (run / "meta.yaml").write_text(
        "run_id: 0b6ca591f9e7449b9352c36b6a7e4d44\nexperiment_id: '1'\nstatus: 3\n"
        "start_time: 1700000000000\nend_time: 1700000060000\nlifecycle_stage: active\n"
    )
    (run / "params" / "a\\x80").write_text("literal")  # the four characters \x80
    with open(os.path.join(os.fsencode(run / "params"), b"a\x80"), "w") as handle:
        handle.write("byte")  # an undecodable byte, shown as \x80
    found = indexed_runs(root, tmp_path / "i.db")["mlruns/1/0b6ca591f9e7449b9352c36b6a7e4d44"]
    assert found["params"] == {"a\\x80": "literal", "a\\x80 (#2)": "byte"}
    assert "a\\x80 (#2)" in warnings_of(found)
