"""An HF Trainer output folder whose ``training_args.bin`` is there but cannot be read
(cut mid-write, not a pickle, a FIFO behind a link) warned only: the run's params were
marked complete without any ``args.*``, so a diff listed the other run's as removed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.test_frameworks_cut_logs import FIXTURES, runs, said

pytestmark = pytest.mark.usefixtures("isolated_cache")


def output_dir(root: Path) -> Path:
    out = root / "out"
    shutil.copytree(FIXTURES / "hf-trainer" / "out", out)
    return out


def hf_run(root: Path) -> dict[str, Any]:
    (found,) = [run for run in runs(root) if run["framework"] == "hf-trainer"]
    return found


def test_readable_training_args_are_params(tmp_path: Path) -> None:
    output_dir(tmp_path / "root")
    found = hf_run(tmp_path / "root")
    assert any(str(key).startswith("args.") for key in found["params"])
    assert found["params_complete"] is True


@pytest.mark.parametrize("damage", ["cut", "garbage", "fifo"])
def test_unreadable_training_args_make_the_params_partial(tmp_path: Path, damage: str) -> None:
    out = output_dir(tmp_path / "root")
    for args in [out / "training_args.bin", *out.glob("checkpoint-*/training_args.bin")]:
        data = args.read_bytes()
        args.unlink()
        if damage == "cut":
            args.write_bytes(data[: len(data) // 3])
        elif damage == "garbage":
            args.write_bytes(b"\x80\x04not a pickle at all")
        else:
            os.mkfifo(args.parent / "fifo")
            args.symlink_to("fifo")
    found = hf_run(tmp_path / "root")
    assert not any(str(key).startswith("args.") for key in found["params"])
    assert found["params_complete"] is False
    assert said(found, "training arguments are not shown"), found["warnings"]
