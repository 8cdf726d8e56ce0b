"""The run diff's changed checkpoints carry a tensor summary, within a size budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.diff import checkpoints
from store.index.db import open_db
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


def test_real_pair_one_hparam_one_metric_one_weight_reported_exactly(tmp_path: Path) -> None:
    """Issue #14's bar, end to end through `artlens diff --json`: a real Lightning run copied
    under custom folders, with one hparam, one metric value and one weight changed in the
    copy, is reported as exactly those three (plus the files that hold them)."""
    import struct

    import numpy as np

    from store.diff.torch_zip import read_torch_zip

    root = tmp_path / "root"
    a, b = root / "sweep" / "baseline", root / "sweep" / "lr-0.2"
    shutil.copytree(LIGHTNING / "version_0", a)
    shutil.copytree(LIGHTNING / "version_0", b)
    (b / "hparams.yaml").write_text(
        (b / "hparams.yaml").read_text().replace("lr: 0.1\n", "lr: 0.2\n")
    )
    csv_text = (b / "metrics.csv").read_text()
    (b / "metrics.csv").write_text(csv_text.replace("0.05919954180717468", "0.0612"))
    ckpt = b / "checkpoints" / "last.ckpt"
    weight = read_torch_zip(ckpt).tensors["state_dict.layer.weight"]
    first = float(np.frombuffer(ckpt.read_bytes()[weight.offset : weight.offset + 4], "<f4")[0])
    patch_stored_entry(ckpt, "archive/data/0", 0, struct.pack("<f", first + 0.5))
    age(root)
    index(root, tmp_path / "index.db")

    out = CliRunner().invoke(
        main, ["diff", "baseline", "lr-0.2", "--json", "--db", str(tmp_path / "index.db")]
    )
    assert out.exit_code == 1, out.output  # different, like diff(1)
    shape = json.loads(out.stdout)
    assert (shape["a"]["framework"], shape["a"]["experiment"]) == ("lightning", "sweep")
    assert [(p["key"], p["old"], p["new"]) for p in shape["params"]] == [("lr", 0.1, 0.2)]
    moved = [m for m in shape["metrics"] if m["old"] != m["new"]]
    assert [(m["name"], m["new"]) for m in moved] == [("val_loss", 0.0612)]
    assert [c["path"] for c in shape["configs"]] == ["hparams.yaml"]
    changed = {r["path"]: r for r in shape["artifacts"]["changed"]}
    assert sorted(changed) == ["checkpoints/last.ckpt", "hparams.yaml", "metrics.csv"]
    assert shape["artifacts"]["added"] == [] and shape["artifacts"]["removed"] == []
    tensors = changed["checkpoints/last.ckpt"]["tensors"]
    assert (tensors["changed"], tensors["total"]) == (1, 7)
    assert tensors["largest"] == "state_dict.layer.weight"
    assert tensors["max_abs_diff"] == pytest.approx(0.5, rel=1e-5)
