"""Run detection and metadata against real outputs of the libraries themselves.

The fixtures and their ground truth (``EXPECTED.json``, what each library reported through
its own API) are made by ``tests/fixtures/make_frameworks.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from store.frameworks import RunInfo, RunSpec, detect_runs, read_run
from store.frameworks._io import param_value
from store.frameworks.flatten import flatten
from tests.test_frameworks import listing_of

ROOT = Path(__file__).parent / "fixtures" / "frameworks"
EXPECTED_FILE = ROOT / "EXPECTED.json"

pytestmark = pytest.mark.skipif(not EXPECTED_FILE.exists(), reason="real fixtures not generated")


@pytest.fixture(scope="module")
def expected() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads(EXPECTED_FILE.read_text())
    return data


@pytest.fixture(scope="module")
def runs() -> dict[str, RunSpec]:
    return {spec.path: spec for spec in detect_runs(ROOT, listing_of(ROOT))}


def info_of(runs: dict[str, RunSpec], path: str, framework: str) -> RunInfo:
    spec = runs[path]
    assert spec.framework == framework
    info = read_run(ROOT, spec)
    assert info.meta["warnings"] == []
    return info


def by_key(runs: dict[str, RunSpec], key: str) -> RunSpec:
    found = [s for s in runs.values() if s.run_key == key]
    assert len(found) == 1
    return found[0]


def assert_last(info: RunInfo, name: str, value: float, step: int | None = None) -> None:
    summary = info.metrics[name]
    assert summary.last == pytest.approx(value, rel=1e-6)
    if step is not None:
        assert summary.last_step == step


def test_every_fixture_run_is_detected_once(
    expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]
) -> None:
    paths = [e["path"] for group in expected.values() for e in group if "path" in e]
    for path in paths:
        assert path in runs, path
    frameworks = {s.framework for s in runs.values()}
    assert "generic" not in frameworks or all(
        s.framework != "generic" or not s.path.startswith(("mlflow", "wandb", "hydra"))
        for s in runs.values()
    )


def test_mlflow(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for group in ("mlflow_file", "mlflow_sqlite"):
        for want in expected.get(group, []):
            spec = by_key(runs, want["run_id"])
            assert spec.framework == "mlflow" and spec.name == want["name"]
            if want.get("model_id"):
                assert any(p.endswith("/models/" + want["model_id"]) for p in spec.extra_paths)
            info = read_run(ROOT, spec)
            assert info.meta["warnings"] == []
            assert info.params == {k: param_value(v) for k, v in want["params"].items()}
            assert info.status == want["status"].lower()
            assert info.meta["tags"] == want["tags"]
            for name, point in want["metrics"].items():
                assert_last(info, name, point["value"], point["step"])


def test_lightning(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for want in expected.get("lightning", []):
        info = info_of(runs, want["path"], "lightning")
        assert info.params == flatten(want["hparams"])
        for name, value in want["metrics"].items():
            assert_last(info, name, value)
        names = [Path(p).name for p in want["top_k"]]
        checkpoints = info.meta["checkpoints"]
        assert isinstance(checkpoints, list) and set(names) <= set(checkpoints)


def test_hf_trainer(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for want in expected.get("hf_trainer", []):
        info = info_of(runs, want["path"], "hf-trainer")
        assert info.meta["checkpoints"] == want["checkpoints"]
        assert info.meta["global_step"] == want["global_step"]
        assert info.meta["best_metric"] == want["best_metric"]
        for name, point in want["metrics"].items():
            assert_last(info, name, point["value"], point["step"])
        tb = [p for p in runs if p.startswith(want["path"] + "/")]
        assert tb == []  # runs/ TensorBoard logs belong to the trainer run


def test_hydra(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for want in expected.get("hydra", []):
        info = info_of(runs, want["path"], "hydra")
        assert info.params == flatten(want["config"])
        assert info.meta["overrides"] == [
            line[2:] for line in want["overrides_yaml"].splitlines() if line.startswith("- ")
        ]
        assert (len(runs[want["path"]].name.split("/")) == 3) == want["multirun"]


def test_dvclive(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for want in expected.get("dvclive", []):
        info = info_of(runs, want["path"], "dvclive")
        assert info.params == flatten(want["params"])
        for name, point in want["metrics"].items():
            assert_last(info, name, point["value"], point["step"])


def test_tensorboard(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for want in expected.get("tensorboard", []):
        info = info_of(runs, want["path"], "tensorboard")
        for name, point in want["scalars"].items():
            assert_last(info, name, point["value"], point["step"])
        assert info.started is not None and info.ended is not None


def test_wandb(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    pytest.importorskip("store.frameworks.wandb_records")
    for want in expected.get("wandb", []):
        spec = runs[want["path"]]
        assert spec.framework == "wandb" and spec.run_key == want["run_id"]
        info = read_run(ROOT, spec)
        assert info.meta["warnings"] == []
        assert info.params == flatten(want["config"])
        assert info.meta.get("name") == want["name"]
        assert info.meta.get("project") == want["project"]
        assert info.status == ("finished" if want["exit_code"] == 0 else "failed")
        last = want["history_last"]
        for name, value in flatten(last).items():
            if not name.startswith("_") and isinstance(value, (int, float)):
                assert_last(info, name, value, last["_step"])
        assert info.metrics["loss"].n == want["history_rows"]
        for name, value in flatten(want["summary"]).items():
            assert isinstance(value, (int, float))
            assert_last(info, name, value)


def test_comet(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for want in expected.get("comet", []):
        spec = runs[want["path"]]
        assert spec.framework == "comet" and spec.run_key == want["run_key"]
        info = read_run(ROOT, spec)
        assert info.meta["warnings"] == []
        assert info.params == flatten(want["params"])  # Comet's `|` keys come back dotted
        assert info.meta["name"] == want["name"] and info.meta["project"] == want["project"]
        assert info.meta["tags"] == want["tags"]
        assert info.status == "finished"
        for name, point in want["metrics"].items():
            assert_last(info, name, point["value"], point["step"])


def test_neptune(expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]) -> None:
    for want in expected.get("neptune", []):
        spec = runs[want["path"]]
        assert spec.framework == "neptune" and spec.run_key == want["container_id"]
        info = read_run(ROOT, spec)
        assert info.meta["warnings"] == []
        assert info.params == flatten(want["params"])  # no monitoring/ or source_code/ keys
        assert info.meta["name"] == want["name"] and info.meta["tags"] == want["tags"]
        assert info.status == ("failed" if want["failed"] else "unknown")
        for name, point in want["metrics"].items():
            assert_last(info, name, point["value"], point["step"])
        assert info.started is not None and info.ended is not None


def test_runs_are_listed_by_the_name_their_files_give(
    expected: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    from store.index import query
    from store.index.db import open_db
    from tests.test_checklist import copy_fixtures, index_tree

    root, db_path = copy_fixtures(tmp_path)
    # a new run makes the next scan detect runs again: names must survive that too
    (root / "lightning" / "lightning_logs" / "version_9").mkdir()
    (root / "lightning" / "lightning_logs" / "version_9" / "hparams.yaml").write_text("lr: 1\n")
    index_tree(root, db_path)
    db = open_db(db_path, readonly=True)
    by_path = {os.fsdecode(run.path): run for run in query.list_runs(db)}
    assert "lightning/lightning_logs/version_9" in by_path
    named = [(w["path"], w["name"]) for fw in ("comet", "neptune") for w in expected.get(fw, [])]
    assert named
    for path, name in named:
        run = by_path[path]
        assert run.name == name  # not the experiment key or container id
        key = run.meta["run_key"]
        assert isinstance(key, str) and query.resolve_run(db, key).id == run.id
    # a run whose files give no name keeps its folder's
    assert by_path["lightning/lightning_logs/version_0"].name == "version_0"
    db.close()


def test_tensorboard_add_hparams(
    expected: dict[str, list[dict[str, Any]]], runs: dict[str, RunSpec]
) -> None:
    """add_hparams' sub-folder: its hparams are the run's params, its metric_dict scalars
    the run's metrics, and the sub-folder is no run of its own."""
    wants = expected["tensorboard_hparams"]
    assert wants
    for want in wants:
        info = info_of(runs, want["path"], "tensorboard")
        assert info.params == want["params"]
        for name, point in want["scalars"].items():
            assert_last(info, name, point["value"], point["step"])
        assert [p for p in runs if p.startswith(want["path"] + "/")] == []
