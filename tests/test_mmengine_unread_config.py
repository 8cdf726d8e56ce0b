"""An MMEngine work dir whose dumped config could not be read (past 4 MiB, or not Python
the static reader understands) has params read in part, not none: ``artlens runs`` marks
them incomplete and ``artlens diff`` does not call the other run's params added."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_rundiff import age
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def work_dir(root: Path, name: str, config: str) -> None:
    run = root / "work_dirs" / name
    (run / "20261206_000000" / "vis_data").mkdir(parents=True)
    (run / f"{name}.py").write_text(config)
    (run / "last_checkpoint").write_text("epoch_1.pth")
    (run / "epoch_1.pth").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (run / "20261206_000000" / "vis_data" / "scalars.json").write_text('{"loss": 1, "step": 1}\n')


@pytest.mark.parametrize(
    "broken",
    ["lr = 0.1\n" + "# padding\n" * (500 * 1024), "lr = 0.1\ndef (:\n"],
    ids=["past 4 MiB", "not parsed"],
)
def test_a_config_not_read_is_not_a_run_without_params(tmp_path: Path, broken: str) -> None:
    root = tmp_path / "root"
    work_dir(root, "good", "lr = 0.1\nepochs = 3\n")
    work_dir(root, "bad", broken)
    age(root)
    db = tmp_path / "i.db"
    runner = CliRunner()
    done = runner.invoke(main, ["index", str(root), "--db", str(db)])
    assert done.exit_code == 0, done.output
    listed = runner.invoke(main, ["runs", "--json", "--db", str(db)])
    runs = {os.path.basename(r["path"]): r for r in json.loads(listed.stdout)}
    assert runs["good"]["params"] == {"lr": 0.1, "epochs": 3}
    assert runs["good"]["params_complete"] is True
    assert runs["bad"]["params"] == {} and runs["bad"]["params_complete"] is False
    result = runner.invoke(main, ["diff", "good", "bad", "--json", "--db", str(db)])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert data["params"] == []  # not "lr removed", "epochs removed"
    assert any("params of B" in u and "could not all be read" in u for u in data["unknown"])
