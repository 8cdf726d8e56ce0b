"""A TensorBoard run's ``add_hparams`` sub-folder whose hparams record was lost (a bad
checksum) was skipped without a word, params marked complete: the run showed no hparams
as if it had none, and a diff listed the other run's as removed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from store.frameworks import tensorboard
from tests.test_frameworks_cut_logs import FIXTURES, only_run, said

pytestmark = pytest.mark.usefixtures("isolated_cache")
SOURCE = FIXTURES / "tensorboard-hparams" / "runs" / "tb_lr0.3"
SESSION = "1796625966.6367533"


def copied_run(root: Path) -> Path:
    run = root / "runs" / "tb_lr0.3"
    shutil.copytree(SOURCE, run)
    return run


def session_log(run: Path) -> Path:
    (log,) = (run / SESSION).iterdir()
    return log


def test_the_whole_run_shows_its_hparams(tmp_path: Path) -> None:
    copied_run(tmp_path / "root")
    found = only_run(tmp_path / "root")
    assert found["params"] == {"lr": 0.3, "bs": 32}
    assert found["params_complete"] is True and found["metrics_complete"] is True


def test_a_lost_hparams_record_makes_the_params_partial(tmp_path: Path) -> None:
    log = session_log(copied_run(tmp_path / "root"))
    data = bytearray(log.read_bytes())
    at = data.index(b"_hparams_/session_start_info")
    data[at] ^= 0xFF  # the record's data checksum no longer matches: it is skipped
    log.write_bytes(bytes(data))
    found = only_run(tmp_path / "root")
    assert found["params"] == {}
    assert found["params_complete"] is False
    assert found["metrics_complete"] is False  # its metric_dict scalars are not shown
    assert said(found, f"{SESSION}: event files damaged"), found["warnings"]


def test_a_sub_folder_read_in_part_by_the_budget_only_is_no_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copied_run(tmp_path / "root")
    other = run / "loss_train"  # add_scalars' sub-run: no hparams at its start
    other.mkdir()
    (torch_log,) = (FIXTURES / "tensorboard" / "torch_run").iterdir()
    shutil.copy(torch_log, other / torch_log.name)
    monkeypatch.setattr(tensorboard, "HPARAMS_BYTES", 1000)  # the session file is within it
    found = only_run(tmp_path / "root")
    assert found["params"] == {"lr": 0.3, "bs": 32}
    assert found["params_complete"] is True


def test_sub_folders_not_looked_into_make_the_params_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copied_run(tmp_path / "root")
    (torch_log,) = (FIXTURES / "tensorboard" / "torch_run").iterdir()
    for name in ("a_loss", "b_loss"):  # sorted after the add_hparams folder (digits first)
        (run / name).mkdir()
        shutil.copy(torch_log, run / name / torch_log.name)
    monkeypatch.setattr(tensorboard, "HPARAMS_FOLDERS", 2)
    found = only_run(tmp_path / "root")
    assert found["params_complete"] is False
    assert said(found, "3 sub-folders with event files, the first 2"), found["warnings"]
