"""The run diff's changed checkpoints carry a tensor summary, within a size budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.db import open_db
from store.diff import checkpoints
from store.rundiff import diff_run_rows, run_diff_json
from tests.test_rundiff import age, index, make_pair, runs_by_name
from tests.test_torch_zip_diff import LIGHTNING, patch_stored_entry
from tui.cli import main


def run_diff(db_path: Path, a: str, b: str) -> tuple[object, dict[str, object]]:
    runs = runs_by_name(db_path)
    warnings: list[str] = []
    db = open_db(db_path, readonly=True)
    try:
        result = diff_run_rows(db, runs[a], runs[b], warnings)
    finally:
        db.conn.close()
    return result, run_diff_json(runs[a], runs[b], result, warnings)


def test_changed_safetensors_checkpoint_names_the_one_tensor(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    result, shape = run_diff(pair.db_path, "version_0", "version_1")
    changed = {c.path: c for c in result.artifacts.changed}  # type: ignore[attr-defined]
    summary = changed["checkpoints/last.safetensors"].tensors
    assert summary is not None and (summary.changed, summary.total) == (1, 2)
    assert summary.largest == "layer.weight" and summary.max_abs_diff == 0.5
    assert changed["hparams.yaml"].tensors is None  # only checkpoints are summarised
    rows = shape["artifacts"]["changed"]  # type: ignore[index]
    line = next(r["tensors"]["line"] for r in rows if r["path"] == "checkpoints/last.safetensors")
    assert line.startswith("1 of 2 tensors changed; largest layer.weight")
    out = CliRunner().invoke(main, ["diff", "version_0", "version_1", "--db", str(pair.db_path)])
    assert "1 of 2 tensors changed; largest layer.weight" in out.stdout


def test_real_lightning_checkpoints_in_a_run_diff(tmp_path: Path) -> None:
    root = tmp_path / "root" / "lightning_logs"
    for name in ("version_0", "version_1"):
        (root / name / "checkpoints").mkdir(parents=True)
        (root / name / "hparams.yaml").write_text("lr: 0.1\n")
        (root / name / "metrics.csv").write_text("epoch,step,val_loss\n0,1,0.5\n")
        shutil.copyfile(
            LIGHTNING / "version_0" / "checkpoints" / "last.ckpt",
            root / name / "checkpoints" / "last.ckpt",
        )
    patch_stored_entry(
        root / "version_1" / "checkpoints" / "last.ckpt", "archive/data/0", 0, b"\0" * 4
    )
    age(tmp_path / "root")
    index(tmp_path / "root", tmp_path / "index.db")
    _, shape = run_diff(tmp_path / "index.db", "version_0", "version_1")
    rows = shape["artifacts"]["changed"]  # type: ignore[index]
    assert [r["path"] for r in rows] == ["checkpoints/last.ckpt"]
    tensors = rows[0]["tensors"]
    assert (tensors["changed"], tensors["total"], tensors["values_changed"]) == (1, 7, 0)
    assert tensors["largest"] == "state_dict.layer.weight"
    json.dumps(shape)  # plain JSON


def test_checkpoints_over_the_budget_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = make_pair(tmp_path)
    monkeypatch.setattr(checkpoints, "MAX_FILE_BYTES", 16)
    result, _ = run_diff(pair.db_path, "version_0", "version_1")
    changed = {c.path: c for c in result.artifacts.changed}  # type: ignore[attr-defined]
    summary = changed["checkpoints/last.safetensors"].tensors
    assert summary is not None and summary.changed is None
    assert summary.line().startswith("tensors not compared: over 0 MiB")
