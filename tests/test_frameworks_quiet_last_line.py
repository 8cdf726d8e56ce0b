"""A metrics CSV (or DVCLive TSV) whose last row has no line end: while the file may be
written, the row is dropped and the metrics are partial (a number cut short parses as
another); once nothing beside it was written for ``QUIET_SECONDS``, a row of the header's
shape is read, and said.  Some writers never end their last line (rows joined with
``\\n``): a finished run's last value was lost for good, with a warning on every read."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.frameworks import _io
from tests.test_frameworks_cut_logs import CUT, dvclive_run, lightning, mlflow_file, said
from tests.test_rundiff import age, index
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")
QUIET = 360.0  # past _io.QUIET_SECONDS (300)


def _only_run(root: Path) -> dict[str, Any]:
    db_path = root.parent / "index.db"
    index(root, db_path, hash_files=False)
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.stderr
    (run,) = json.loads(result.stdout)
    return dict(run)


@pytest.mark.parametrize(
    ("layout", "text"),
    [
        (lightning, "step,train_loss\n0,0.5\n1,0.25"),
        (lightning, "step,train_loss\r\n0,0.5\r\n1,0.25"),
        (lightning, "step,train_loss\n1,0.25"),  # the header alone before it
        (dvclive_run, "step\ttrain_loss\n0\t0.5\n1\t0.25"),
        (mlflow_file, "1700000000000 0.5 0\n1700000001000 0.25 1"),
        (mlflow_file, "1700000001000 0.25 1"),  # the only line
    ],
)
def test_a_quiet_files_last_row_without_line_end_is_read(
    tmp_path: Path, layout: Any, text: str
) -> None:
    root = tmp_path / "root"
    layout(root, text)
    age(root, QUIET)
    run = _only_run(root)
    loss = run["metrics"]["train_loss"]
    assert (loss["last"], loss["last_step"]) == (0.25, 1), run
    assert run["metrics_complete"] is True, run["warnings"]
    assert said(run, "no line end; read whole"), run["warnings"]
    assert not said(run, CUT)
    assert _io.QUIET_SECONDS < QUIET


def test_a_fresh_files_last_row_without_line_end_is_dropped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lightning(root, "step,train_loss\n0,0.5\n1,0.25")
    run = _only_run(root)
    loss = run["metrics"]["train_loss"]
    assert (loss["last"], loss["n"]) == (0.5, 1), run
    assert run["metrics_complete"] is False
    assert said(run, CUT), run["warnings"]


def test_a_quiet_file_beside_one_just_written_keeps_dropping_it(tmp_path: Path) -> None:
    """The run writes beside it (a checkpoint saved now): its writer may be alive, its
    buffer flushed mid-row."""
    root = tmp_path / "root"
    lightning(root, "step,train_loss\n0,0.5\n1,0.25")
    age(root, QUIET)
    folder = root / "lightning_logs" / "version_0"
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "epoch=1.ckpt").write_bytes(b"x")
    now = time.time()
    os.utime(folder / "checkpoints", (now, now))
    run = _only_run(root)
    assert run["metrics"]["train_loss"]["last"] == 0.5
    assert run["metrics_complete"] is False and said(run, CUT)


@pytest.mark.parametrize(
    "text",
    [
        "step,train_loss\n0,0.5\n1,0.",  # a number visibly cut
        "step,train_loss\n0,0.53\n1,0.2",  # shorter than the cell before: maybe cut
        "step,train_loss\n0,0.5\n1",  # fewer cells than the header
        "step,train_loss,lr\n0,0.5,0.1\n1,0.25,0.1,9",  # more
    ],
)
def test_a_quiet_files_last_row_of_the_wrong_shape_is_dropped(tmp_path: Path, text: str) -> None:
    root = tmp_path / "root"
    lightning(root, text)
    age(root, QUIET)
    run = _only_run(root)
    loss = run["metrics"]["train_loss"]
    assert loss["n"] == 1 and loss["last_step"] == 0, run
    assert run["metrics_complete"] is False and said(run, CUT)


def test_a_quiet_file_cut_at_a_buffer_boundary_is_dropped(tmp_path: Path) -> None:
    """A size that is a multiple of 4 KiB: a buffer flushed whole by a writer killed
    before the rest of its row."""
    rows = "".join(f"{i},0.{i:04d}\n" for i in range(1000))
    text = "step,train_loss\n" + rows
    tail = "1000,0.1000"
    pad = (-(len(text) + len(tail))) % 4096
    text = "step,train_loss" + " " * pad + "\n" + rows + tail
    assert len(text) % 4096 == 0
    root = tmp_path / "root"
    lightning(root, text)
    age(root, QUIET)
    run = _only_run(root)
    assert run["metrics"]["train_loss"]["last_step"] == 999
    assert run["metrics_complete"] is False and said(run, CUT)


@pytest.mark.parametrize(
    "text",
    [
        "1700000000000 0.5 0\n1700000001000 0.25",  # cut before its step: read as step 0
        "1700000000000 0.5 0\n1700000001000 0.",  # cut in its value
        "1700000000000 0.5 10\n1700000001000 0.25 1",  # a step below the one before: 1 of 11?
        "1700000000000 0.5 0\n1700000001000 0.25 1 x",  # more fields than MLflow writes
    ],
)
def test_a_quiet_mlflow_metrics_last_line_of_the_wrong_shape_is_dropped(
    tmp_path: Path, text: str
) -> None:
    root = tmp_path / "root"
    mlflow_file(root, text)
    age(root, QUIET)
    run = _only_run(root)
    loss = run["metrics"]["train_loss"]
    assert loss["n"] == 1 and loss["last"] == 0.5, run
    assert run["metrics_complete"] is False and said(run, CUT)


def test_a_fresh_mlflow_metrics_last_line_without_line_end_is_dropped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    mlflow_file(root, "1700000000000 0.5 0\n1700000001000 0.25 1")
    run = _only_run(root)
    loss = run["metrics"]["train_loss"]
    assert (loss["last"], loss["n"]) == (0.5, 1), run
    assert run["metrics_complete"] is False and said(run, CUT)
