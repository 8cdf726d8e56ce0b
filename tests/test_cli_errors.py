"""One error family, one mapping: every command's bad input is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from store.errors import ArtlensError
from store.lock import WriterBusyError
from store.retention.plan import PlanError
from store.retention.policy import PolicyError
from store.userstate import UserStateError
from tui.cli import main


def test_user_facing_errors_share_one_root() -> None:
    for error in (WriterBusyError, PlanError, PolicyError, UserStateError):
        assert issubclass(error, ArtlensError), error
    assert issubclass(WriterBusyError, RuntimeError)  # old callers still catch it


def test_bad_input_to_several_commands_is_one_line_and_exit_2(
    isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "model.ckpt").write_bytes(b"x")
    db = tmp_path / "index.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 'many'\n")
    cases = {
        "policy": ["retention", "plan", str(root), "--db", str(db)],
        "plan id": ["retention", "apply", "../../etc", "--db", str(db)],
        "both plan and flags": ["retention", "apply", "x", "--keep-last", "1", "--db", str(db)],
        "no root": ["du", str(tmp_path / "elsewhere"), "--db", str(db)],
        "no index": ["runs", "--db", str(tmp_path / "missing.db")],
        "trash ids": ["trash", "restore", "--db", str(db)],
        "config": ["check", "--config", str(tmp_path / "none.toml"), "--db", str(db)],
        "scan": ["scan", str(tmp_path / "gone.pt")],
        "feed": ["feed", "--db", str(db)],
    }
    for name, args in cases.items():
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 2, (name, result.output, result.stderr)
        assert result.stderr.startswith("artlens: error: "), (name, result.stderr)
        assert result.stderr.count("\n") == 1, (name, result.stderr)
        assert "Traceback" not in result.output, name
