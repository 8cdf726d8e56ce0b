"""What a framework reader could not read, or read as one of two things, must be said and
must leave the part it belongs to marked partial (``params_complete`` /
``metrics_complete`` false in ``artlens runs --json``): a run diff would otherwise list
the other run's values as removed, or compare a merged series as if it were one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_params_kept_apart import indexed_runs, warnings_of

pytestmark = pytest.mark.usefixtures("isolated_cache")


def neptune_run(root: Path, lines: list[object]) -> str:
    folder = root / ".neptune" / "offline" / "run__8a3f"
    folder.mkdir(parents=True)
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (folder / "data-1.log").write_text(text)
    return ".neptune/offline/run__8a3f"


def op(obj: object) -> dict[str, object]:
    return {"obj": obj, "version": 1, "at": 1700000000.0}


def test_neptune_series_of_two_fields_read_as_one_name_kept_apart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [
            op({"type": "LogFloats", "path": ["a", "b"], "values": [{"value": 2.0, "step": 0}]}),
            op({"type": "LogFloats", "path": ["a/b"], "values": [{"value": 1.0, "step": 0}]}),
            op({"type": "LogFloats", "path": ["a/b"], "values": [{"value": 0.5, "step": 1}]}),
        ],
    )
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    metrics: dict[str, Any] = found["metrics"]
    # the field of fewer parts keeps the plain name, whatever the order of the log
    assert set(metrics) == {"a/b", "a/b (#2)"}
    assert (metrics["a/b"]["n"], metrics["a/b"]["last"]) == (2, 0.5)
    assert (metrics["a/b (#2)"]["n"], metrics["a/b (#2)"]["last"]) == (1, 2.0)
    assert "a/b (#2)" in warnings_of(found)
    assert found["metrics_complete"] is True


@pytest.mark.parametrize(
    "bad",
    [
        op(5),  # an operation that is no JSON object
        op("AssignFloat"),
        op([{"type": "AssignFloat", "path": ["parameters", "wd"], "value": 0.1}]),
        {"version": 1},  # no operation at all
        op({"path": ["parameters", "wd"], "value": 0.1}),  # no type
        op({"type": "AssignFloat", "path": "parameters/wd", "value": 0.1}),  # path no list
        op({"type": "LogFloats", "path": ["val_loss"], "values": {"value": 1.0}}),
        op({"type": "LogFloats", "path": ["val_loss"], "values": [7, {"value": "x"}]}),
    ],
)
def test_neptune_operation_that_cannot_be_read_marks_run_partial(
    tmp_path: Path, bad: object
) -> None:
    root = tmp_path / "root"
    good = [
        op({"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1}),
        op({"type": "LogFloats", "path": ["loss"], "values": [{"value": 1.0, "step": 0}]}),
    ]
    rel = neptune_run(root, [*good, bad])
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["params"] == {"parameters.lr": 0.1}
    assert found["metrics"]["loss"]["last"] == 1.0
    assert "cannot be read" in warnings_of(found)
    assert found["params_complete"] is False
    assert found["metrics_complete"] is False


def test_neptune_whole_log_stays_complete(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [
            op({"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1}),
            op({"type": "AssignString", "path": ["sys", "name"], "value": "demo"}),
            op({"type": "AddStrings", "path": ["sys", "tags"], "values": ["x"]}),
            op({"type": "LogFloats", "path": ["loss"], "values": [{"value": 1.0, "step": 0}]}),
            op({"type": "UploadFile", "path": ["model"], "file_path": "m.pt"}),
        ],
    )
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["params_complete"] is True and found["metrics_complete"] is True
    assert found["warnings"] in (None, [])
