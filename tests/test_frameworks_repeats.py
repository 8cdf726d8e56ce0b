"""A key a run's file repeats in one mapping (``lr: 0.001`` ... ``lr: 0.002``): PyYAML and
``json`` keep the last value, other loaders the first or refuse the file.  The params and
metrics the framework readers take from such a file are said in the run's warnings (so
``runs --json`` and the UI say them), and the run diff calls a param or metric ambiguous
where the first and the last value compare the runs differently.  Real runs on disk,
indexed with the Indexer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.frameworks.model import REPEATED_KEYS
from tests.test_rundiff import age, index, runs_by_name
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def lightning_run(folder: Path, hparams: str, val_loss: float = 0.5) -> None:
    folder.mkdir(parents=True)
    (folder / "hparams.yaml").write_text(hparams)
    (folder / "metrics.csv").write_text(f"epoch,step,val_loss\n0,10,{val_loss}\n")


def indexed(root: Path) -> Path:
    age(root)
    db_path = root.parent / "index.db"
    index(root, db_path)
    return db_path


def runs_json(db_path: Path) -> dict[str, Any]:
    code, out, err = cli("runs", "--json", "--db", str(db_path))
    assert code == 0, err
    return {run["name"]: run for run in json.loads(out)}


def diff_json(db_path: Path, a: str, b: str) -> Any:
    code, out, err = cli("diff", a, b, "--db", str(db_path), "--json")
    assert code == 1, err  # never equal: ambiguous is not equal
    return json.loads(out)


def test_lightning_hparams_repeating_lr_is_warned_and_ambiguous(tmp_path: Path) -> None:
    """A's hparams.yaml gives lr twice (0.001, then 0.002), B's once (0.002): the index
    kept 0.002 for A, and the params section said "0 changed" while a loader keeping the
    first value reads 0.001 there."""
    root = tmp_path / "root"
    lightning_run(root / "logs" / "version_0", "lr: 0.001\nbatch_size: 32\nlr: 0.002\n")
    lightning_run(root / "logs" / "version_1", "batch_size: 32\nlr: 0.002\n")
    db_path = indexed(root)

    runs = runs_json(db_path)
    assert runs["version_0"]["params"] == {"lr": 0.002, "batch_size": 32}
    warnings = runs["version_0"]["warnings"]
    assert warnings == [
        "logs/version_0/hparams.yaml: key lr appears 2 times in one mapping (first 0.001, "
        "last 0.002); loaders disagree on which value counts",
        "logs/version_0/hparams.yaml: param lr depends on which value of a repeated key "
        "counts: 0.002 with the last (shown), 0.001 with the first",
    ]
    assert runs["version_1"]["warnings"] == []
    meta = runs_by_name(db_path)["version_0"].meta
    assert meta[REPEATED_KEYS] == {
        "params": {
            "lr": {
                "files": ["logs/version_0/hparams.yaml"],
                "keys": ["lr (first 0.001, last 0.002)"],
                "first": 0.001,
            }
        }
    }

    data = diff_json(db_path, "version_0", "version_1")
    assert data["equal"] is False
    assert data["params"] == [{"key": "lr", "change": "ambiguous", "old": 0.002, "new": 0.002}]
    assert (
        "version_0: param lr is ambiguous: logs/version_0/hparams.yaml repeats the key "
        "lr (first 0.001, last 0.002); which value counts decides whether it changed"
    ) in data["warnings"]
    code, out, err = cli("diff", "version_0", "version_1", "--db", str(db_path))
    assert code == 1, err
    assert "params: 0 changed, 1 ambiguous" in out
    assert "? param\tlr\t0.002\t0.002\trepeated key: equal or not depends on" in out
    assert "note: version_0: param lr is ambiguous: logs/version_0/hparams.yaml" in out


def test_a_repeat_both_values_of_which_differ_from_the_other_run_is_a_change(
    tmp_path: Path,
) -> None:
    """B's lr is 0.003: changed whichever of A's values counts, so a change (the repeat
    still said), and a run whose file repeats a key the same way on both sides is equal
    there, not ambiguous."""
    root = tmp_path / "root"
    repeated = "lr: 0.001\nbatch_size: 32\nlr: 0.002\n"
    lightning_run(root / "logs" / "version_0", repeated)
    lightning_run(root / "logs" / "version_1", "batch_size: 32\nlr: 0.003\n")
    lightning_run(root / "logs" / "version_2", repeated)
    db_path = indexed(root)
    data = diff_json(db_path, "version_0", "version_1")
    assert data["params"] == [{"key": "lr", "change": "changed", "old": 0.002, "new": 0.003}]
    assert not any("is ambiguous" in w for w in data["warnings"])
    said = "version_0: logs/version_0/hparams.yaml: key lr appears 2 times"
    assert any(w.startswith(said) for w in data["warnings"])
    code, out, err = cli("diff", "version_0", "version_2", "--db", str(db_path), "--json")
    assert code == 0, err  # the same files: equal, whichever value counts
    data = json.loads(out)
    assert data["equal"] is True and data["params"] == []
    assert not any("is ambiguous" in w for w in data["warnings"])


def test_hydra_config_repeating_a_nested_key(tmp_path: Path) -> None:
    """A Hydra job whose .hydra/config.yaml gives model.depth twice (4, then 8) against
    one with depth 4: "changed" by the last value, equal by the first: ambiguous.  Inside
    a job holding a Lightning run whose hparams give model.depth, Hydra's repeat does not
    decide that param (the run's own params win) and only ``seed`` is named."""
    root = tmp_path / "root"
    jobs = root / "outputs" / "2024-01-01"
    for job, config in (
        ("10-00-00", "model:\n  depth: 4\n  depth: 8\nopt:\n  lr: 0.1\n"),
        ("11-00-00", "model:\n  depth: 4\nopt:\n  lr: 0.1\n"),
    ):
        (jobs / job / ".hydra").mkdir(parents=True)
        (jobs / job / ".hydra" / "config.yaml").write_text(config)
        (jobs / job / ".hydra" / "overrides.yaml").write_text("- opt.lr=0.1\n")
    nested = root / "outputs" / "2024-01-02" / "09-00-00"
    (nested / ".hydra").mkdir(parents=True)
    (nested / ".hydra" / "config.yaml").write_text(
        "model:\n  depth: 4\n  depth: 8\nseed: 1\nseed: 2\n"
    )
    lightning_run(nested / "lightning_logs" / "version_0", "model.depth: 8\n")
    db_path = indexed(root)

    runs = runs_json(db_path)
    job = runs["2024-01-01/10-00-00"]
    assert job["params"] == {"model.depth": 8, "opt.lr": 0.1}
    assert (
        "outputs/2024-01-01/10-00-00/.hydra/config.yaml: param model.depth depends on which "
        "value of a repeated key counts: 8 with the last (shown), 4 with the first"
    ) in job["warnings"]
    inner = runs["2024-01-02/09-00-00"]
    assert inner["framework"] == "lightning"
    named = [w for w in inner["warnings"] if "depends on which value" in w]
    assert named == [
        "outputs/2024-01-02/09-00-00/.hydra/config.yaml: param seed depends on which value "
        "of a repeated key counts: 2 with the last (shown), 1 with the first"
    ]
    data = diff_json(db_path, "2024-01-01/10-00-00", "2024-01-01/11-00-00")
    assert data["params"] == [{"key": "model.depth", "change": "ambiguous", "old": 8, "new": 4}]
    assert any(
        w.startswith(
            "2024-01-01/10-00-00: param model.depth is ambiguous: outputs/2024-01-01/"
            "10-00-00/.hydra/config.yaml repeats the key model.depth (first 4, last 8)"
        )
        for w in data["warnings"]
    )


def hf_state(entries: str, batch: str = '"train_batch_size": 16') -> str:
    return (
        f'{{"global_step": 20, "max_steps": 20, {batch},\n'
        f' "log_history": [{{"loss": 0.9, "step": 10}}, {entries}]}}\n'
    )


def test_hf_trainer_state_repeating_a_key_in_log_history(tmp_path: Path) -> None:
    """The last log_history entry of A's trainer_state.json gives loss twice (0.5, then
    0.7), B's once (0.7): loss is ambiguous (no delta, no better run), eval_loss is not;
    A's train_batch_size given twice (8, then 16) makes trainer.train_batch_size
    ambiguous against B's 16."""
    root = tmp_path / "root"
    for name, state in (
        (
            "out_a",
            hf_state(
                '{"loss": 0.5, "eval_loss": 0.6, "loss": 0.7, "step": 20}',
                '"train_batch_size": 8, "train_batch_size": 16',
            ),
        ),
        ("out_b", hf_state('{"loss": 0.7, "eval_loss": 0.6, "step": 20}')),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "trainer_state.json").write_text(state)
    db_path = indexed(root)

    runs = runs_json(db_path)
    assert runs["out_a"]["metrics"]["loss"]["last"] == 0.7
    warnings = runs["out_a"]["warnings"]
    assert (
        "out_a/trainer_state.json: key log_history[1].loss appears 2 times in one mapping "
        "(first 0.5, last 0.7); loaders disagree on which value counts"
    ) in warnings
    assert (
        "out_a/trainer_state.json: metric loss depends on which value of a repeated key "
        "counts: 0.7 with the last (shown), 0.5 with the first"
    ) in warnings
    assert runs["out_b"]["warnings"] == []

    data = diff_json(db_path, "out_a", "out_b")
    metrics = {m["name"]: m for m in data["metrics"]}
    assert metrics["loss"] == {
        "name": "loss",
        "old": 0.7,
        "new": 0.7,
        "delta": None,
        "percent": None,
        "direction": "min",
        "better": None,
        "ambiguous": True,
        "only": None,
        "series": [],
    }
    assert metrics["eval_loss"]["ambiguous"] is False and metrics["eval_loss"]["delta"] == 0
    assert data["params"] == [
        {"key": "trainer.train_batch_size", "change": "ambiguous", "old": 16, "new": 16}
    ]
    assert (
        "out_a: metric loss is ambiguous: out_a/trainer_state.json repeats the key "
        "log_history[1].loss (first 0.5, last 0.7); which value counts decides whether it "
        "changed"
    ) in data["warnings"]
    code, out, err = cli("diff", "out_a", "out_b", "--db", str(db_path))
    assert code == 1, err
    assert "metrics: 0 of 2 changed, 1 ambiguous" in out
    assert "? metric\tloss\t0.7\t0.7\trepeated key: equal or not depends on" in out


def test_a_repeat_whose_first_value_cannot_be_placed_is_never_equal(tmp_path: Path) -> None:
    """The repeat sits under a Python tag the loader turns into plain data (its ``state``
    mapping becomes the value): a first-wins reading cannot be built, so A's params from
    that file are unknown there, and ambiguous against B's equal last values."""
    root = tmp_path / "root"
    tagged = (
        "opt: !!python/object/apply:collections.OrderedDict\n  state:\n    lr: 0.1\n    lr: 0.2\n"
    )
    lightning_run(root / "logs" / "version_0", tagged)
    lightning_run(root / "logs" / "version_1", "opt:\n  lr: 0.2\n")
    db_path = indexed(root)
    runs = runs_json(db_path)
    assert runs["version_0"]["params"] == {"opt.lr": 0.2}
    assert (
        "logs/version_0/hparams.yaml: param opt.lr depends on which value of a repeated key "
        "counts: 0.2 with the last (shown), unknown with the first"
    ) in runs["version_0"]["warnings"]
    data = diff_json(db_path, "version_0", "version_1")
    assert data["params"] == [{"key": "opt.lr", "change": "ambiguous", "old": 0.2, "new": 0.2}]


def test_a_repeat_fixed_after_indexing_is_read_again(tmp_path: Path) -> None:
    """A's repeat removed after indexing: the diff reads A's params again from its files,
    and what the reader said at index time about the repeat goes with them."""
    root = tmp_path / "root"
    lightning_run(root / "logs" / "version_0", "lr: 0.001\nbatch_size: 32\nlr: 0.002\n")
    lightning_run(root / "logs" / "version_1", "batch_size: 32\nlr: 0.002\n")
    db_path = indexed(root)
    (root / "logs" / "version_0" / "hparams.yaml").write_text("batch_size: 32\nlr: 0.002\n")
    code, out, err = cli("diff", "version_0", "version_1", "--db", str(db_path), "--json")
    assert code == 0, err  # the same files now
    data = json.loads(out)
    assert data["equal"] is True and data["params"] == []
    assert data["warnings"][0].startswith("the index is stale for version_0")
    assert not any("ambiguous" in w or "appears 2 times" in w for w in data["warnings"])


def test_a_key_repeated_in_a_json_lines_metrics_log_makes_the_metric_ambiguous(
    tmp_path: Path,
) -> None:
    """Detectron2's metrics.json is JSON lines; A's last line gives total_loss twice (0.5,
    then 0.7), B's once (0.7).  The index kept 0.7 without a word and the diff said
    "same": a loader keeping the first value reads 0.5 there."""
    root = tmp_path / "root"
    for name, last in (
        ("a", '{"iteration": 20, "total_loss": 0.5, "lr": 0.1, "total_loss": 0.7}'),
        ("b", '{"iteration": 20, "total_loss": 0.7, "lr": 0.1}'),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text("SOLVER:\n  BASE_LR: 0.1\n")
        (root / name / "log.txt").write_text("log\n")
        (root / name / "metrics.json").write_text(
            f'{{"iteration": 10, "total_loss": 0.9, "lr": 0.1}}\n\n{last}\n'
        )
    db_path = indexed(root)

    runs = runs_json(db_path)
    assert runs["a"]["framework"] == "detectron2"
    assert runs["a"]["metrics"]["total_loss"]["last"] == 0.7
    assert runs["a"]["warnings"] == [
        "a/metrics.json: key [1].total_loss appears 2 times in one mapping (first 0.5, "
        "last 0.7); loaders disagree on which value counts",
        "a/metrics.json: metric total_loss depends on which value of a repeated key "
        "counts: 0.7 with the last (shown), 0.5 with the first",
    ]
    assert runs["b"]["warnings"] == []
    data = diff_json(db_path, "a", "b")
    metrics = {m["name"]: m for m in data["metrics"]}
    assert metrics["total_loss"]["ambiguous"] is True and metrics["total_loss"]["delta"] is None
    assert metrics["lr"]["ambiguous"] is False and metrics["lr"]["delta"] == 0
    assert (
        "a: metric total_loss is ambiguous: a/metrics.json repeats the key "
        "[1].total_loss (first 0.5, last 0.7); which value counts decides whether it changed"
    ) in data["warnings"]
    code, out, err = cli("diff", "a", "b", "--db", str(db_path))
    assert code == 1, err
    assert "metrics: 0 of 2 changed, 1 ambiguous" in out


def test_a_nan_value_of_a_repeated_key_is_spelled_as_the_key_line_spells_it(
    tmp_path: Path,
) -> None:
    """A's loss is NaN then 0.7 in one log_history entry: the key's line said "first
    NaN", the metric's line '"nan" with the first' (the text meta keeps)."""
    root = tmp_path / "root"
    (root / "out_a").mkdir(parents=True)
    (root / "out_a" / "trainer_state.json").write_text(
        hf_state('{"loss": NaN, "loss": 0.7, "step": 20}')
    )
    db_path = indexed(root)
    assert runs_json(db_path)["out_a"]["warnings"] == [
        "out_a/trainer_state.json: key log_history[1].loss appears 2 times in one mapping "
        "(first NaN, last 0.7); loaders disagree on which value counts",
        "out_a/trainer_state.json: metric loss depends on which value of a repeated key "
        "counts: 0.7 with the last (shown), NaN with the first",
    ]


def test_a_non_finite_param_of_a_repeated_key_is_spelled_as_the_key_line_spells_it(
    tmp_path: Path,
) -> None:
    """``lr: 0.1`` then ``lr: .inf`` in hparams.yaml: the key's line said "last Infinity",
    the param's line '"inf" with the last' (the text a param keeps of the float).  Now
    both say Infinity; text that was never a float stays quoted text."""
    root = tmp_path / "root"
    lightning_run(root / "lightning_logs" / "version_0", "lr: 0.1\nlr: .inf\nwd: [1, -.inf]\n")
    lightning_run(
        root / "lightning_logs" / "version_1",
        'lr: 0.1\nlr: "inf"\nopt: {m: 0.9}\nopt: {m: -.inf}\n',
    )
    db_path = indexed(root)
    runs = runs_json(db_path)
    assert runs["version_0"]["warnings"] == [
        "lightning_logs/version_0/hparams.yaml: key lr appears 2 times in one mapping "
        "(first 0.1, last Infinity); loaders disagree on which value counts",
        "lightning_logs/version_0/hparams.yaml: param lr depends on which value of a "
        "repeated key counts: Infinity with the last (shown), 0.1 with the first",
    ]
    assert runs["version_1"]["warnings"] == [
        "lightning_logs/version_1/hparams.yaml: key lr appears 2 times in one mapping "
        '(first 0.1, last "inf"); loaders disagree on which value counts',
        "lightning_logs/version_1/hparams.yaml: key opt appears 2 times in one mapping "
        '(first {"m": 0.9}, last {"m": -Infinity}); loaders disagree on which value counts',
        "lightning_logs/version_1/hparams.yaml: param lr depends on which value of a "
        'repeated key counts: "inf" with the last (shown), 0.1 with the first',
        "lightning_logs/version_1/hparams.yaml: param opt.m depends on which value of a "
        "repeated key counts: -Infinity with the last (shown), 0.9 with the first",
    ]
