"""``artlens diff``: exit codes like diff(1), the --json shape, runs and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_rundiff import CONFIG_A, CONFIG_B, Pair, make_pair
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return make_pair(tmp_path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["diff", *args])
    return result.exit_code, result.stdout, result.stderr


def test_runs_differ_json_shape(pair: Pair) -> None:
    code, out, err = run("version_0", "version_1", "--json", "--db", str(pair.db_path))
    assert code == 1, err
    data = json.loads(out)
    assert set(data) == {
        "kind",
        "equal",
        "a",
        "b",
        "params",
        "configs",
        "metrics",
        "env",
        "artifacts",
        "warnings",
    }
    assert data["kind"] == "runs" and data["equal"] is False
    assert data["a"]["name"] == "version_0" and data["b"]["name"] == "version_1"
    assert data["params"] == [{"key": "lr", "change": "changed", "old": 0.001, "new": 0.002}]
    assert data["configs"] == [
        {
            "path": "hparams.yaml",
            "format": "yaml",
            "changes": [{"key": "lr", "change": "changed", "old": 0.001, "new": 0.002}],
            "error": None,
        }
    ]
    changed_metrics = [m["name"] for m in data["metrics"] if m["delta"]]
    assert changed_metrics == ["val_loss"]
    assert set(data["metrics"][0]) == {
        "name", "old", "new", "delta", "percent", "direction", "better",
    }  # fmt: skip
    artifacts = data["artifacts"]
    assert set(artifacts) == {"added", "removed", "changed", "moved", "unchanged", "unverified"}
    assert [c["path"] for c in artifacts["changed"]] == [
        "checkpoints/last.safetensors",
        "hparams.yaml",
        "metrics.csv",
    ]
    assert artifacts["unchanged"] == 3 and artifacts["unverified"] == []


def test_run_against_itself_exits_zero(pair: Pair) -> None:
    code, out, err = run("version_0", "version_0", "--db", str(pair.db_path))
    assert code == 0, err
    assert "runs are equal" in out


def test_plain_run_diff_is_tab_separated(pair: Pair) -> None:
    code, out, _ = run("1", "2", "--db", str(pair.db_path))
    assert code == 1
    assert "~ param\tlr\t0.001\t0.002\tchanged" in out
    assert "metrics: 1 of 2 changed" in out


def test_file_diffs_and_exit_codes(pair: Pair, tmp_path: Path) -> None:
    a, b = pair.a / "config.yaml", pair.b / "config.yaml"
    assert (a.read_text(), b.read_text()) == (CONFIG_A, CONFIG_B)
    code, out, _ = run(str(a), str(b))
    assert code == 0  # reordered but equal YAML
    assert "equal after parsing" in out
    code, out, _ = run(str(pair.a / "hparams.yaml"), str(pair.b / "hparams.yaml"), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["kind"] == "files" and data["engine"] == "structured"
    assert data["result"]["changes"][0]["path"] == "lr"
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("".join(f"{i}\n" for i in range(30)))
    new.write_text("".join(f"{i}\n" for i in range(30)).replace("15\n", "fifteen\n"))
    code, out, _ = run(str(old), str(new), "--context", "1")
    assert code == 1
    assert out.splitlines()[2:] == ["@@ -15,3 +15,3 @@", " 14", "-15", "+fifteen", " 16"]


def test_errors_exit_two_with_one_line(pair: Pair, tmp_path: Path) -> None:
    code, _, err = run("nope", "version_1", "--db", str(pair.db_path))
    assert code == 2 and err.count("\n") == 1 and "no run matches" in err
    code, _, err = run(str(pair.a / "hparams.yaml"), "version_1", "--db", str(pair.db_path))
    assert code == 2 and "give two files or two runs" in err
    code, _, err = run("version_0", "version_1", "--db", str(tmp_path / "missing.db"))
    assert code == 2 and "Traceback" not in err
    unreadable = tmp_path / "a.bin"
    unreadable.write_bytes(b"\x00\x01")
    fifo = tmp_path / "fifo"
    import os

    os.mkfifo(fifo)
    code, _, err = run(str(unreadable), str(fifo))
    assert code == 2 and "Traceback" not in err
