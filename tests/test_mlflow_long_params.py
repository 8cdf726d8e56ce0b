"""An MLflow file-store param longer than the 64 KiB read of it: two runs whose values are
alike up to the cap are not called equal (they may differ past it), in ``artlens diff``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.frameworks.flatten import MAX_STR, cut_text, is_cut
from tests.test_rundiff import age
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")

RUNS = {"owl": "0b6ca591f9e7449b9352c36b6a7e4d44", "cat": "fe5ea7f0e27448af842cb7b5ea9cbf21"}


def mlflow_runs(root: Path, prompts: dict[str, str]) -> Path:
    """One MLflow file-store run per name, each with params ``prompt`` and ``lr``; indexed."""
    exp = root / "mlruns" / "1"
    exp.mkdir(parents=True)
    (exp / "meta.yaml").write_text("experiment_id: '1'\nname: exp\n")
    for name, prompt in prompts.items():
        run_id = RUNS[name]
        run = exp / run_id
        (run / "params").mkdir(parents=True)
        (run / "tags").mkdir()
        (run / "meta.yaml").write_text(
            f"run_id: {run_id}\nrun_uuid: {run_id}\nexperiment_id: '1'\nstatus: 3\n"
            "start_time: 1700000000000\nend_time: 1700000060000\nlifecycle_stage: active\n"
        )
        (run / "tags" / "mlflow.runName").write_text(name)
        (run / "params" / "prompt").write_text(prompt)
        (run / "params" / "lr").write_text("0.1")
    age(root)
    db = root.parent / "i.db"
    done = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    assert done.exit_code == 0, done.output
    return db


def diff(db: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["diff", RUNS["owl"], RUNS["cat"], "--json", "--db", str(db)])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_values_alike_up_to_the_cap_are_not_called_equal(tmp_path: Path) -> None:
    head = "x" * (64 * 1024)
    db = mlflow_runs(tmp_path / "root", {"owl": head + "tail one", "cat": head + "tail two"})
    _, data = diff(db)
    assert data["params"] == []  # nothing seen to differ in what was read...
    unknown = " ".join(str(u) for u in data["unknown"])  # ...and that is said
    assert "prompt" in unknown and "not compared" in unknown


def test_a_longer_value_is_a_change(tmp_path: Path) -> None:
    head = "x" * (64 * 1024)
    db = mlflow_runs(tmp_path / "root", {"owl": head + "tail", "cat": head + "a longer tail"})
    code, data = diff(db)
    assert code == 1 and data["equal"] is False
    assert [p["key"] for p in data["params"]] == ["prompt"]


def test_values_within_the_cap_still_compare_equal(tmp_path: Path) -> None:
    same = "y" * 60_000
    db = mlflow_runs(tmp_path / "root", {"owl": same, "cat": same})
    _, data = diff(db)
    assert data["unknown"] == [] and data["params"] == []


def test_cut_text_is_cut_and_bounded() -> None:
    for text in ("short", "z" * 100_000):
        for more in (None, 12):
            marked = cut_text(text, more)
            assert is_cut(marked) and len(marked) <= MAX_STR
    assert cut_text("a" * 10_000 + "b", 1) != cut_text("a" * 10_000 + "c", 1)
    assert not is_cut("a plain value") and not is_cut("<more bytes not read> and on")
