"""A run whose folder could be listed only in part says so instead of answering as if whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.frameworks import _io, read_run
from store.frameworks.model import RunSpec
from tests.memroot import MemRoot


def _lightning_run(folder: Path, checkpoints: int) -> Path:
    run = folder / "lightning_logs" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n")
    for epoch in range(checkpoints):
        (run / "checkpoints" / f"epoch={epoch}-step={epoch * 10}.ckpt").write_bytes(b"x")
    return folder


def _spec() -> RunSpec:
    return RunSpec(
        path="lightning_logs/version_0", framework="lightning", name="version_0", experiment=None
    )


def test_a_whole_listing_gives_no_warning(tmp_path: Path) -> None:
    info = read_run(_lightning_run(tmp_path, 5), _spec())
    assert len(info.meta["checkpoints"]) == 5  # type: ignore[arg-type]
    assert info.meta["warnings"] == []


def test_a_cut_listing_is_a_warning_on_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_io, "LIST_KEPT", 3)
    info = read_run(_lightning_run(tmp_path, 5), _spec())
    warnings = info.meta["warnings"]
    assert isinstance(warnings, list)
    assert any("checkpoints: read the first 3 of 5 entries" in w for w in warnings), warnings


def test_an_unlistable_folder_is_a_warning_not_an_empty_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = MemRoot.copy_of(_lightning_run(tmp_path, 5))
    monkeypatch.setattr(_io, "LIST_LIMIT", 4)  # the root refuses the 5-entry folder
    info = read_run(root, _spec())
    warnings = info.meta["warnings"]
    assert isinstance(warnings, list)
    assert any("checkpoints: could not list the folder" in w for w in warnings), warnings
    assert "checkpoints" not in info.meta


def test_a_missing_optional_folder_is_no_problem(tmp_path: Path) -> None:
    folder = _lightning_run(tmp_path, 0)
    (folder / "lightning_logs" / "version_0" / "checkpoints").rmdir()
    info = read_run(folder, _spec())
    assert info.meta["warnings"] == []
