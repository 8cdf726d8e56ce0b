"""The layouts added for training scripts without a tracker: timm, MMEngine, nanoGPT,
Ultralytics, Detectron2 and Keras, on the fixtures ``make_frameworks.py`` wrote (timm's
and MMEngine's own code; the others as their source writes them, see the fixtures'
README): detection by content, params, metrics, status, checkpoints and retention."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from store.frameworks import RunSpec, detect_runs, read_run
from store.index.db import open_db
from store.retention.candidates import Candidate, candidates_for_root
from tests.test_frameworks import listing_of, warnings_of, write
from tests.test_rundiff import age, index

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
EXPECTED_FILE = FIXTURES / "EXPECTED.json"
LAYOUTS = ("timm", "nanogpt", "ultralytics", "mmengine", "detectron2", "keras")

pytestmark = pytest.mark.skipif(
    not (FIXTURES / "mmengine").exists(), reason="real fixtures not generated"
)


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXPECTED_FILE.read_text())
    return {name: data[name][0] for name in LAYOUTS}


def runs_of(root: Path) -> dict[str, RunSpec]:
    return {spec.path: spec for spec in detect_runs(root, listing_of(root))}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_real_layout_params_metrics_status(layout: str, expected: dict[str, Any]) -> None:
    want = expected[layout]
    spec = runs_of(FIXTURES)[want["path"]]
    assert spec.framework == want["framework"]
    info = read_run(FIXTURES, spec)
    assert warnings_of(info) == []
    for key, value in want["params"].items():
        assert info.params[key] == value, key
    for name, last in want["metrics"].items():
        assert info.metrics[name].last == pytest.approx(last["value"]), name
        assert info.metrics[name].last_step == last["step"], name
    assert info.status == want.get("status", "unknown")
    assert info.meta["checkpoints"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_copied_under_another_name(
    layout: str, expected: dict[str, Any], tmp_path: Path
) -> None:
    want = expected[layout]
    shutil.copytree(FIXTURES / want["path"], tmp_path / "my-project" / "attempt 3", symlinks=True)
    runs = runs_of(tmp_path)
    assert list(runs) == ["my-project/attempt 3"]
    spec = runs["my-project/attempt 3"]
    assert (spec.framework, spec.name, spec.experiment) == (
        want["framework"],
        "attempt 3",
        "my-project",
    )
    assert (
        read_run(tmp_path, spec).params
        == read_run(FIXTURES, runs_of(FIXTURES)[want["path"]]).params
    )


def test_timm_args_and_checkpoints(expected: dict[str, Any]) -> None:
    want = expected["timm"]
    assert want["best"] == [62.5, 1]
    assert want["files"] == [
        "args.yaml",
        "checkpoint-1.pth.tar",
        "checkpoint-2.pth.tar",
        "last.pth.tar",
        "model_best.pth.tar",
        "summary.csv",
    ]


def candidates(tmp_path: Path, metrics: dict[str, str]) -> dict[str, list[Candidate]]:
    root = tmp_path / "root"
    for layout in LAYOUTS:
        shutil.copytree(FIXTURES / layout, root / layout, symlinks=True)
    age(root)
    index(root, tmp_path / "index.db")
    db = open_db(tmp_path / "index.db", readonly=True)
    try:
        (root_id,) = [r for (r,) in db.conn.execute("SELECT id FROM roots")]
        by_run = candidates_for_root(
            db, root_id, str(root), metric=lambda run: metrics.get(run.framework)
        )
    finally:
        db.conn.close()
    return {units[0].framework: units for units in by_run.values()}


def test_retention_reads_every_layouts_checkpoints(tmp_path: Path) -> None:
    found = candidates(
        tmp_path,
        {
            "timm": "eval_top1",
            "ultralytics": "metrics/mAP50-95(B)",
            "mmengine": "accuracy",
            "detectron2": "bbox/AP",
            "keras": "val_loss",
            "nanogpt": "best_val_loss",
        },
    )

    def rows(framework: str) -> list[tuple[str, int | None, int | None, float | None, bool, bool]]:
        return [
            (u.name, u.step, u.epoch, u.metric, u.is_last, u.trainer_best) for u in found[framework]
        ]

    assert rows("timm") == [
        ("model_best.pth.tar", None, None, None, False, True),
        ("checkpoint-1.pth.tar", None, 1, 62.5, False, False),
        ("checkpoint-2.pth.tar", None, 2, 56.25, False, False),
        ("last.pth.tar", None, None, None, True, False),
    ]
    assert rows("ultralytics") == [
        ("best.pt", None, None, None, False, True),
        ("epoch0.pt", None, 0, 0.21, False, False),
        ("epoch2.pt", None, 2, 0.31, False, False),
        ("last.pt", None, None, None, True, False),
    ]
    mmengine = rows("mmengine")  # the best copy and its epoch tie: either order
    assert sorted(mmengine[:2]) == [
        ("best_accuracy_epoch_2.pth", None, 2, 75.0, False, True),
        ("epoch_2.pth", None, 2, 75.0, False, False),
    ]
    assert mmengine[2] == ("epoch_3.pth", None, 3, 68.75, False, False)
    assert rows("detectron2") == [
        ("model_0000004.pth", 4, None, 10.0, False, False),
        ("model_final.pth", None, None, None, True, False),
    ]
    assert rows("keras") == [
        ("model.01-0.66.keras", None, 1, 0.66, False, False),
        ("model.02-0.58.keras", None, 2, 0.58, False, False),
        ("model.03-0.60.keras", None, 3, 0.6, False, False),
    ]
    assert rows("nanogpt") == [("ckpt.pt", None, None, None, True, False)]


# --- hostile and broken files ---------------------------------------------------------------


def test_python_config_is_read_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    run = tmp_path / "work_dirs" / "cfg"
    write(
        run,
        {
            "cfg.py": (
                f"import os\nos.system('touch {marker}')\nlr = 0.1\n"
                f"opt = dict(type='SGD', lr=lr, momentum=0.9)\nsched = [dict(t='x', n=-1)]\n"
                f"evil = __import__('os').system('touch {marker}')\n"
            ),
            "last_checkpoint": "epoch_1.pth",
            "epoch_1.pth": b"PK\x03\x04 truncated",
            "20261206_000000/vis_data/scalars.json": '{"loss": 1, "step": 1}\nnot json\n',
        },
    )
    (spec,) = runs_of(tmp_path).values()
    assert spec.framework == "mmengine"
    info = read_run(tmp_path, spec)
    assert not marker.exists()
    assert info.params == {"lr": 0.1, "sched": [{"t": "x", "n": -1}]}  # opt names a variable
    assert info.metrics["loss"].last == 1
    assert any("1 malformed line" in w for w in warnings_of(info))


def test_broken_checkpoints_warn_and_never_raise(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"out/ckpt.pt": b"PK\x03\x04 not a zip", "bad keras/training.log": "epoch,loss\n0,1\n"},
    )
    with zipfile.ZipFile(tmp_path / "bad keras" / "m.keras", "w") as archive:
        archive.writestr("config.json", "{not json")
    runs = runs_of(tmp_path)
    nano = read_run(tmp_path, runs["out"])
    assert runs["out"].framework == "nanogpt" and nano.params == {}
    assert any("unreadable zip" in w for w in warnings_of(nano))
    keras = read_run(tmp_path, runs["bad keras"])
    assert runs["bad keras"].framework == "keras"
    assert keras.metrics["loss"].last == 1
    assert any("no readable config.json" in w for w in warnings_of(keras))


def test_a_csv_without_an_epoch_column_is_no_keras_run(tmp_path: Path) -> None:
    write(tmp_path, {"x/results.csv": "step,loss\n0,1\n", "x/model.h5": b"\x89HDF"})
    assert {s.framework for s in runs_of(tmp_path).values()} == {"generic"}
