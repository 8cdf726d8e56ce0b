"""``artlens check``: exit 0 when every run passes, 1 when one falls short, 2 on bad config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_checklist import WANDB_RUN, copy_fixtures, index_tree
from tui.cli import main


@pytest.fixture
def indexed(tmp_path: Path, isolated_cache: Path) -> tuple[Path, Path]:
    return copy_fixtures(tmp_path)


def check(db_path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", "--db", str(db_path), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_check_passes_then_fails_when_requirements_go(indexed: tuple[Path, Path]) -> None:
    root, db_path = indexed
    code, out, _ = check(db_path)
    assert code == 0, out
    assert "every checklist item" in out
    (root / WANDB_RUN / "files" / "requirements.txt").unlink()
    index_tree(root, db_path)
    code, out, err = check(db_path)
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("2/3\tfinished-run\twandb\t")
    assert lines[0].endswith("missing: requirements.txt|conda-environment.yaml")
    assert "1 of" in err
    code, out, _ = check(db_path, "--json")
    assert code == 1
    rows = json.loads(out)
    short = [r for r in rows if not r["complete"]]
    assert [r["name"] for r in short] == ["finished-run"]
    assert short[0]["missing"] == ["requirements.txt|conda-environment.yaml"]
    assert set(rows[0]) == {
        "id", "name", "path", "path_b64", "framework", "complete", "passed", "total", "missing"
    }  # fmt: skip


def test_invalid_config_exits_2_with_one_line(indexed: tuple[Path, Path]) -> None:
    root, db_path = indexed
    (root / ".artlens.toml").write_text('[checklist]\nrequired = ["ok", 7]\n')
    code, out, err = check(db_path)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("artlens: error: ") and ".artlens.toml:2:" in err


def test_user_config_flag(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    _, db_path = indexed
    config = tmp_path / "ci.toml"
    config.write_text('[checklist.framework.hydra]\nrequired = ["model.safetensors"]\n')
    code, out, _ = check(db_path, "--config", str(config))
    assert code == 1
    assert {line.split("\t")[2] for line in out.strip().splitlines()} == {"hydra"}


def test_no_index_is_exit_2(tmp_path: Path, isolated_cache: Path) -> None:
    code, _, err = check(tmp_path / "missing.db")
    assert code == 2
    assert "no index" in err


def test_runs_json_and_csv_flatten_params_and_metrics(indexed: tuple[Path, Path]) -> None:
    _, db_path = indexed
    runner = CliRunner()
    rows = json.loads(runner.invoke(main, ["runs", "--json", "--db", str(db_path)]).stdout)
    wandb = next(r for r in rows if r["name"] == "finished-run" and r["framework"] == "wandb")
    assert wandb["run_key"] == "19x7jcho"  # listed by its display name, found by its id
    assert wandb["params"]["optimizer.name"] == "adam"
    assert wandb["metrics"]["eval.f1"]["last"] == pytest.approx(0.75)
    import csv
    import io

    text = runner.invoke(main, ["runs", "--csv", "--db", str(db_path)]).stdout
    table = list(csv.DictReader(io.StringIO(text)))
    row = next(r for r in table if r["name"] == "finished-run" and r["framework"] == "wandb")
    assert row["param.optimizer.name"] == "adam"
    assert float(row["metric.eval.f1.last"]) == pytest.approx(0.75)
    assert float(row["metric.loss.last"]) == pytest.approx(0.2)


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_config_flag_naming_no_file_exits_2(
    indexed: tuple[Path, Path], tmp_path: Path, kind: str
) -> None:
    _, db_path = indexed
    config = tmp_path / "ci.toml"
    if kind == "folder":
        config.mkdir()
    code, out, err = check(db_path, "--config", str(config))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("artlens: error: --config ") and str(config) in err
    assert ("no such file" if kind == "missing" else "not a regular file") in err


def test_config_flag_through_a_symlink_is_used(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    _, db_path = indexed
    config = tmp_path / "ci.toml"
    config.write_text('[checklist.framework.hydra]\nrequired = ["model.safetensors"]\n')
    link = tmp_path / "link.toml"
    link.symlink_to(config)
    code, out, _ = check(db_path, "--config", str(link))
    assert code == 1
    assert {line.split("\t")[2] for line in out.strip().splitlines()} == {"hydra"}
