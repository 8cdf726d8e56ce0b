"""A folder holding ``ckpt.pt`` is read as a nanoGPT-style run, and many training scripts
of their own save a ``ckpt.pt`` beside the config and metric files they write.  Those
files are read too: the run keeps its params and metrics, and the checkpoint's own values
(a real nanoGPT ``ckpt.pt``) stay as they were."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from store.frameworks import read_run
from store.frameworks.model import UNREAD_PARTS
from tests.test_frameworks import only, warnings_of, write

NANOGPT = Path(__file__).parent / "fixtures" / "frameworks" / "nanogpt" / "out-shakespeare-char"

OWN_FILES: dict[str, str | bytes] = {
    "config.yaml": "lr: 0.1\nepochs: 3\n",
    "metrics.csv": "step,train_loss,val_acc\n1,0.5,0.7\n2,0.4,0.8\n3,0.45,0.75\n",
    "results.json": '{"test_acc": 0.74}\n',
}


def check_own_files(tmp_path: Path) -> None:
    info = read_run(tmp_path, only(tmp_path, "nanogpt"))
    assert info.params["lr"] == 0.1 and info.params["epochs"] == 3
    acc = info.metrics["val_acc"]
    assert (acc.last, acc.last_step, acc.best, acc.best_step, acc.n) == (0.75, 3, 0.8, 2, 3)
    assert info.metrics["train_loss"].best == 0.4
    assert info.metrics["test_acc"].last == 0.74


def test_a_scripts_own_checkpoint_keeps_its_config_and_metrics(tmp_path: Path) -> None:
    write(tmp_path, {f"experiments/run1/{k}": v for k, v in OWN_FILES.items()})
    write(tmp_path, {"experiments/run1/ckpt.pt": b"PK\x03\x04 a script's own, not nanoGPT's"})
    check_own_files(tmp_path)


@pytest.mark.skipif(not NANOGPT.exists(), reason="real fixtures not generated")
def test_a_nanogpt_checkpoint_with_files_beside_it(tmp_path: Path) -> None:
    shutil.copytree(NANOGPT, tmp_path / "out")
    alone = read_run(tmp_path, only(tmp_path, "nanogpt"))
    write(tmp_path, {f"out/{k}": v for k, v in OWN_FILES.items()})
    check_own_files(tmp_path)
    info = read_run(tmp_path, only(tmp_path, "nanogpt"))
    assert warnings_of(info) == [] and UNREAD_PARTS not in info.meta
    for key, value in alone.params.items():  # the checkpoint's config is all still there
        assert info.params[key] == value, key
    assert info.metrics["best_val_loss"] == alone.metrics["best_val_loss"]
    assert info.status == alone.status == "finished"
