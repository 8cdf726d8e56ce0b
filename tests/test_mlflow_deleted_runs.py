"""An MLflow run deleted (``mlflow.delete_run``, the UI's delete) keeps its folder and its
status (FINISHED most often) until ``mlflow gc``; only ``lifecycle_stage: deleted`` in its
``meta.yaml`` (the ``runs`` table's column in ``mlflow.db``) says so.  ``artlens runs``
listed it as a finished run like any other, without a word."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_frameworks import mlflow_db
from tests.test_frameworks_cut_logs import runs, said

pytestmark = pytest.mark.usefixtures("isolated_cache")


def file_store_run(root: Path, run_id: str, name: str, stage: str) -> None:
    """A run as MLflow's FileStore writes it (meta.yaml keys as in MLflow 2.x / 3.x)."""
    exp = root / "mlruns" / "7"
    run = exp / run_id
    (run / "params").mkdir(parents=True)
    (run / "metrics").mkdir()
    (run / "tags").mkdir()
    (run / "artifacts").mkdir()
    (exp / "meta.yaml").write_text(
        "artifact_location: file:///x/mlruns/7\nexperiment_id: '7'\n"
        "lifecycle_stage: active\nname: sweep\n"
    )
    (run / "meta.yaml").write_text(
        f"artifact_uri: file:///x/mlruns/7/{run_id}/artifacts\nend_time: 1700000100000\n"
        f"entry_point_name: ''\nexperiment_id: '7'\nlifecycle_stage: {stage}\n"
        f"run_id: {run_id}\nrun_name: {name}\nrun_uuid: {run_id}\nsource_name: ''\n"
        "source_type: 4\nsource_version: ''\nstart_time: 1700000000000\nstatus: 3\n"
        "tags: []\nuser_id: me\n"
    )
    (run / "params" / "lr").write_text("0.1")
    (run / "metrics" / "loss").write_text("1700000000001 0.5 0\n")
    (run / "tags" / "mlflow.runName").write_text(name)


def test_a_deleted_file_store_run_says_so(tmp_path: Path) -> None:
    root = tmp_path / "root"
    file_store_run(root, "a" * 32, "kept", "active")
    file_store_run(root, "b" * 32, "gone", "deleted")
    by_name = {run["name"]: run for run in runs(root)}
    assert set(by_name) == {"kept", "gone"}
    gone, kept = by_name["gone"], by_name["kept"]
    assert said(gone, "deleted in MLflow"), gone["warnings"]
    assert not said(kept, "deleted"), kept["warnings"]
    # what it holds is still read and shown as it is
    assert gone["status"] == "finished" and gone["params"] == {"lr": 0.1}
    assert gone["experiment"] == "sweep"


def test_a_deleted_database_run_says_so(tmp_path: Path) -> None:
    root = tmp_path / "root"
    mlflow_db(root)
    with sqlite3.connect(root / "mlflow.db") as conn:
        conn.execute("UPDATE runs SET lifecycle_stage = 'deleted' WHERE run_uuid = 'aaa1'")
    conn.close()
    by_key = {run["run_key"]: run for run in runs(root) if run["framework"] == "mlflow"}
    assert said(by_key["aaa1"], "deleted in MLflow"), by_key["aaa1"]["warnings"]
    assert not said(by_key["bbb2"], "deleted"), by_key["bbb2"]["warnings"]
