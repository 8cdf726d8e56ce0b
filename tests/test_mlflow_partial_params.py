"""An MLflow param (or metric) that is there but cannot be read leaves the run's params
(metrics) partial: a FIFO or a link to one in ``params/`` gave a warning, or nothing, and
``params_complete`` true, so a diff listed the other run's value as removed."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.test_frameworks import mlflow_db
from tests.test_frameworks_cut_logs import only_run, runs, said

pytestmark = pytest.mark.usefixtures("isolated_cache")
RUN_ID = "0123456789abcdef0123456789abcdef"


def file_store_run(root: Path) -> Path:
    run = root / "mlruns" / "1" / RUN_ID
    (run / "params").mkdir(parents=True)
    (run / "metrics").mkdir()
    (run.parent / "meta.yaml").write_text("experiment_id: '1'\nname: exp\n")
    (run / "meta.yaml").write_text(f"run_id: {RUN_ID}\nexperiment_id: '1'\nstatus: 3\n")
    (run / "params" / "lr").write_text("0.1")
    (run / "metrics" / "loss").write_text("1700000000000 0.5 0\n")
    return run


def test_whole_file_store_run_is_complete(tmp_path: Path) -> None:
    file_store_run(tmp_path / "root")
    found = only_run(tmp_path / "root")
    assert found["params"] == {"lr": 0.1}
    assert found["params_complete"] is True and found["metrics_complete"] is True


@pytest.mark.parametrize("where", ["params/wd", "params/opt/beta"])
def test_a_fifo_among_the_param_files_makes_the_params_partial(tmp_path: Path, where: str) -> None:
    run = file_store_run(tmp_path / "root")
    (run / where).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(run / where)
    found = only_run(tmp_path / "root")
    assert found["params"] == {"lr": 0.1}
    assert found["params_complete"] is False
    assert found["metrics_complete"] is True
    assert said(found, f"{where}: not a regular file"), found["warnings"]


def test_a_param_file_that_cannot_be_read_makes_the_params_partial(tmp_path: Path) -> None:
    run = file_store_run(tmp_path / "root")
    os.mkfifo(run / "fifo")
    (run / "params" / "wd").symlink_to("../fifo")  # a link: listed as a file, not readable
    found = only_run(tmp_path / "root")
    assert found["params"] == {"lr": 0.1}
    assert found["params_complete"] is False
    assert said(found, "params/wd"), found["warnings"]


def test_a_fifo_among_the_metric_files_makes_the_metrics_partial(tmp_path: Path) -> None:
    run = file_store_run(tmp_path / "root")
    os.mkfifo(run / "metrics" / "val_loss")
    found = only_run(tmp_path / "root")
    assert found["metrics_complete"] is False
    assert found["params_complete"] is True
    assert said(found, "metrics/val_loss: not a regular file"), found["warnings"]


def test_a_fifo_among_the_tags_is_said_only(tmp_path: Path) -> None:
    run = file_store_run(tmp_path / "root")
    (run / "tags").mkdir()
    os.mkfifo(run / "tags" / "note")
    found = only_run(tmp_path / "root")
    assert found["params_complete"] is True and found["metrics_complete"] is True
    assert said(found, "tags/note: not a regular file"), found["warnings"]


def test_a_database_read_part_way_makes_params_and_metrics_partial(tmp_path: Path) -> None:
    root = tmp_path / "root"
    mlflow_db(root)
    conn = sqlite3.connect(root / "mlflow.db")
    conn.execute("DROP TABLE params")
    conn.commit()
    conn.close()
    found = {run["name"]: run for run in runs(root)}["first"]
    assert found["params_complete"] is False and found["metrics_complete"] is False
    assert said(found, "no such table: params"), found["warnings"]
