"""Neptune's ``run[path].clear()`` (``ClearFloatLog``...) and ``del run[path]``
(``DeleteAttribute``), as the client names them in its offline ``data-*.log`` files: a
series cleared keeps none of its earlier points, a field deleted is gone.  Kept, the old
points would make ``last``, ``best`` and ``n`` wrong, and a deleted param would be
compared in a diff as the run's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_neptune_partial_reads import neptune_run, op
from tests.test_params_kept_apart import indexed_runs, warnings_of

pytestmark = pytest.mark.usefixtures("isolated_cache")


def log(path: list[str], value: float, step: int) -> dict[str, object]:
    return op({"type": "LogFloats", "path": path, "values": [{"value": value, "step": step}]})


def test_cleared_series_keeps_only_what_came_after(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [
            log(["loss"], 1.0, 0),
            log(["loss"], 0.1, 1),
            op({"type": "ClearFloatLog", "path": ["loss"]}),
            log(["loss"], 0.5, 0),
            log(["acc"], 0.7, 0),
        ],
    )
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    loss = found["metrics"]["loss"]
    assert (loss["n"], loss["last"], loss["best"]) == (1, 0.5, 0.5)
    assert found["metrics"]["acc"]["last"] == 0.7
    assert found["metrics_complete"] is True


def test_cleared_series_never_logged_again_is_gone(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [log(["loss"], 1.0, 0), op({"type": "ClearFloatLog", "path": ["loss"]}), log(["a"], 1, 0)],
    )
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert set(found["metrics"]) == {"a"}


def test_deleted_param_and_series_disappear(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [
            op({"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1}),
            op({"type": "AssignInt", "path": ["parameters", "bs"], "value": 32}),
            log(["train", "loss"], 1.0, 0),
            log(["val", "loss"], 2.0, 0),
            op({"type": "DeleteAttribute", "path": ["parameters", "lr"]}),
            op({"type": "DeleteAttribute", "path": ["train", "loss"]}),
        ],
    )
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["params"] == {"parameters.bs": 32}
    assert set(found["metrics"]) == {"val/loss"}
    assert found["params_complete"] is True and found["metrics_complete"] is True


def test_deleted_then_assigned_again_takes_the_new_value(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [
            op({"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1}),
            op({"type": "DeleteAttribute", "path": ["parameters", "lr"]}),
            op({"type": "AssignString", "path": ["parameters", "lr"], "value": "auto"}),
        ],
    )
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["params"] == {"parameters.lr": "auto"}


def test_copied_field_is_said_and_marks_the_run_partial(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = neptune_run(
        root,
        [
            op({"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1}),
            op(
                {
                    "type": "CopyAttribute",
                    "path": ["parameters", "lr"],
                    "container_id": "RUN-1",
                    "container_type": "run",
                    "source_path": ["parameters", "lr"],
                    "source_attr_name": "Float",
                }
            ),
        ],
    )
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["params"] == {}
    assert "parameters/lr" in warnings_of(found)
    assert found["params_complete"] is False


def test_an_operation_of_a_type_not_known_makes_the_run_partial(tmp_path: Path) -> None:
    """A newer client's operation may set a param or log a metric: never passed over as if
    it held nothing.  The types known to hold neither (files, text series) change nothing."""
    root = tmp_path / "root"
    known: list[object] = [
        op({"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1}),
        log(["loss"], 1.0, 0),
        op({"type": "UploadFile", "path": ["model"], "file_path": "m.pt", "ext": "pt"}),
        op({"type": "LogStrings", "path": ["notes"], "values": [{"value": "hi", "step": 0}]}),
        op({"type": "AddStrings", "path": ["data", "sets"], "values": ["a"]}),
    ]
    rel = neptune_run(root, known)
    found = indexed_runs(root, tmp_path / "i.db")[rel]
    assert found["metrics_complete"] is True and found["params_complete"] is True
    newer = tmp_path / "newer"
    rel = neptune_run(
        newer,
        [*known, op({"type": "IncrementInt", "path": ["parameters", "epochs"], "by": 1})],
    )
    found = indexed_runs(newer, tmp_path / "j.db")[rel]
    assert found["params"]["parameters.lr"] == 0.1
    assert found["metrics_complete"] is False and found["params_complete"] is False
    assert "1 operation(s) or logged value(s) that cannot be read skipped" in warnings_of(found)
