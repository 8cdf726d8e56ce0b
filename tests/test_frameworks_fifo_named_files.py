"""A FIFO (or device) where a reader looks for one of its named files (``metrics.csv``,
``hparams.yaml``, an event file, a Neptune log) is never read, and must be said, with the
part that file holds marked partial in ``artlens runs --json``: left out silently, the run's
metrics or params would pass for complete."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.test_params_kept_apart import indexed_runs, warnings_of

pytestmark = [
    pytest.mark.usefixtures("isolated_cache"),
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs"),
]


def test_lightning_metrics_csv_fifo_marks_metrics_partial(tmp_path: Path) -> None:
    run = tmp_path / "root" / "lightning_logs" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    os.mkfifo(run / "metrics.csv")
    found = indexed_runs(tmp_path / "root", tmp_path / "i.db")["lightning_logs/version_0"]
    assert found["params"] == {"lr": 0.1}
    assert "metrics.csv" in warnings_of(found)
    assert "not a regular file" in warnings_of(found)
    assert found["metrics_complete"] is False
    assert found["params_complete"] is True


def test_lightning_hparams_fifo_marks_params_partial(tmp_path: Path) -> None:
    run = tmp_path / "root" / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "metrics.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    os.mkfifo(run / "hparams.yaml")
    found = indexed_runs(tmp_path / "root", tmp_path / "i.db")["lightning_logs/version_0"]
    assert found["metrics"]["loss"]["last"] == 0.5
    assert "hparams.yaml" in warnings_of(found)
    assert found["params_complete"] is False
    assert found["metrics_complete"] is True


def test_hydra_results_fifo_marks_metrics_partial(tmp_path: Path) -> None:
    run = tmp_path / "root" / "outputs" / "2024-01-02" / "03-04-05"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("lr: 0.1\n")
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    (run / "log.csv").write_text("step,loss\n0,1.0\n")
    os.mkfifo(run / "metrics.json")
    runs = indexed_runs(tmp_path / "root", tmp_path / "i.db")
    found = runs["outputs/2024-01-02/03-04-05"]
    assert found["metrics"]["loss"]["last"] == 1.0
    assert "metrics.json" in warnings_of(found)
    assert found["metrics_complete"] is False


def test_neptune_log_fifo_beside_a_real_one_marks_run_partial(tmp_path: Path) -> None:
    from tests.test_neptune_partial_reads import neptune_run, op

    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [op({"type": "LogFloats", "path": ["loss"], "values": [{"value": 1.0, "step": 0}]})],
    )
    os.mkfifo(root / rel / "data-2.log")
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["metrics"]["loss"]["n"] == 1
    assert "data-2.log" in warnings_of(found)
    assert found["metrics_complete"] is False
    assert found["params_complete"] is False


def test_event_file_fifo_beside_a_real_one_marks_metrics_partial(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "frameworks" / "tensorboard" / "torch_run"
    run = tmp_path / "root" / "tb"
    shutil.copytree(fixture, run)
    os.mkfifo(run / "events.out.tfevents.1700000000.host.2.0")
    found = indexed_runs(tmp_path / "root", tmp_path / "i.db")["tb"]
    assert found["metrics"]["train/loss"]["last"] == 0.0625
    assert "events.out.tfevents.1700000000.host.2.0" in warnings_of(found)
    assert found["metrics_complete"] is False


def test_complete_run_with_an_unrelated_fifo_is_still_complete(tmp_path: Path) -> None:
    run = tmp_path / "root" / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("step,loss\n0,1.0\n")
    os.mkfifo(run / "notes.pipe")
    found = indexed_runs(tmp_path / "root", tmp_path / "i.db")["lightning_logs/version_0"]
    assert found["params_complete"] is True and found["metrics_complete"] is True
    assert json.dumps(found["metrics"]["loss"]["last"]) == "1.0"
