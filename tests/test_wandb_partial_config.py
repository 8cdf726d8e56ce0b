"""A W&B ``files/config.yaml`` or ``wandb-summary.json`` that is there but cannot be read
leaves the run's params (or final values) partial, whatever the record log gives in their
place: ``lr: [`` gave params_complete true with the params of the record log, or none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_frameworks_cut_logs import FIXTURES, only_run, said

pytestmark = pytest.mark.usefixtures("isolated_cache")
NAME = "offline-run-20261127_142812-19x7jcho"


def copied_run(root: Path) -> Path:
    target = root / "wandb" / NAME
    shutil.copytree(FIXTURES / "wandb" / "wandb" / NAME, target, symlinks=True)
    return target


@pytest.mark.parametrize("record_log", [True, False])
@pytest.mark.parametrize("text", ["lr: [\n", "- 1\n- 2\n", ""])
def test_a_config_there_but_not_read_makes_the_params_partial(
    tmp_path: Path, record_log: bool, text: str
) -> None:
    root = tmp_path / "root"
    run = copied_run(root)
    assert only_run(root)["params_complete"] is True
    if not record_log:
        (run / "run-19x7jcho.wandb").unlink()
    (run / "files" / "config.yaml").write_text(text)
    found = only_run(root)
    assert found["params_complete"] is False
    assert said(found, "config.yaml"), found["warnings"]


def test_a_summary_there_but_not_read_makes_the_metrics_partial(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = copied_run(root)
    (run / "run-19x7jcho.wandb").unlink()
    (run / "files" / "wandb-summary.json").write_text("[1, 2]")
    found = only_run(root)
    assert found["metrics_complete"] is False
    assert found["params_complete"] is True
    assert said(found, "wandb-summary.json: not a mapping"), found["warnings"]
