"""The frameworks' read helpers take a Root as well as a Path, and never leave it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from store.frameworks import DirListing, _io, detect_runs, read_run
from store.root.local import LocalRoot


def test_helpers_read_the_same_through_a_root_or_a_path(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "run" / "sub").mkdir(parents=True)
    (top / "run" / "cfg.json").write_text('{"lr": 0.1}')
    (top / "run" / "sub" / "m.txt").write_text("x")
    (top / "run" / "linked.json").symlink_to("cfg.json")
    (tmp_path / "secret.json").write_text("{}")
    (top / "run" / "away.json").symlink_to(tmp_path / "secret.json")
    os.mkfifo(top / "run" / "pipe")
    root = LocalRoot(top)
    for given in (top, root):
        assert _io.read_json(given, "run/cfg.json") == {"lr": 0.1}
        # a FIFO is listed as a link out of the root is: a reader that reads it is refused
        files = ["away.json", "cfg.json", "linked.json", "pipe"]
        assert _io.list_dir(given, "run") == (["sub"], files)
        others: list[str] = []
        assert _io.list_dir(given, "run", others) == (["sub"], files[:3]) and others == ["pipe"]
        assert _io.walk_files(given, "run") == [*files, "sub/m.txt"]
        assert _io.is_file(given, "run/cfg.json") and _io.is_file(given, "run/linked.json")
        assert not _io.is_file(given, "run/away.json")
        assert not _io.is_file(given, "run/pipe") and not _io.is_file(given, "run/sub")
        assert not _io.is_file(given, "run/missing")
        with pytest.raises(_io.ReadError, match="out of the root"):
            _io.read_json(given, "run/away.json")
        with pytest.raises(_io.MissingFile):
            _io.read_json(given, "run/missing.json")
        with _io.open_file(given, "run/linked.json") as reader:
            assert reader.read_at(0, 100) == b'{"lr": 0.1}'


def test_a_checkpoint_name_with_a_superscript_digit_does_not_lose_the_run(
    tmp_path: Path,
) -> None:
    """``str.isdigit`` says yes to ``²``, which ``int`` refuses: one such checkpoint name
    between two numbers made the whole Lightning run unreadable (no params, no metrics)."""
    run = tmp_path / "lightning_logs" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n")
    for name in ("epoch=1²2.ckpt", "epoch=10.ckpt", "epoch=9.ckpt"):
        (run / "checkpoints" / name).write_bytes(b"x")
    (spec,) = detect_runs(
        tmp_path,
        {
            "": DirListing(frozenset({"lightning_logs"}), frozenset()),
            "lightning_logs": DirListing(frozenset({"version_0"}), frozenset()),
            "lightning_logs/version_0": DirListing(
                frozenset({"checkpoints"}), frozenset({"hparams.yaml", "metrics.csv"})
            ),
        },
    )
    info = read_run(tmp_path, spec)
    assert info.params == {"lr": 0.1}
    checkpoints = info.meta["checkpoints"]
    assert isinstance(checkpoints, list)
    assert checkpoints[-2:] == ["epoch=9.ckpt", "epoch=10.ckpt"]
    assert _io.natural_key("a1²2") < _io.natural_key("a1³")
