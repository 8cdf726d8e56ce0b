"""A metric that became NaN (a diverged run) is the run's last value, whatever file says it:
W&B's history and summary, DVCLive's (and any run's) ``metrics.json``.  Those readers
flattened the values to JSON text first, so NaN became the string ``"nan"`` and was skipped:
the run showed the last finite loss, or none, as if nothing had happened."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.test_rundiff import age, index
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def runs_json(root: Path) -> dict[str, Any]:
    age(root)
    db_path = root.parent / "index.db"
    index(root, db_path)
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.stderr
    return {run["name"]: run for run in json.loads(result.stdout)}


def test_wandb_history_and_summary_keep_a_nan_loss(tmp_path: Path) -> None:
    root = tmp_path / "root"
    files = root / "wandb" / "run-20240101_100000-abc123" / "files"
    files.mkdir(parents=True)
    (files / "config.yaml").write_text("lr:\n  value: 0.1\n")
    (files / "wandb-history.jsonl").write_text(
        '{"_step": 4, "loss": 0.3}\n{"_step": 5, "loss": NaN, "grad": Infinity}\n'
    )
    (files / "wandb-summary.json").write_text('{"_step": 5, "loss": NaN, "val_loss": NaN}')
    metrics = runs_json(root)["abc123"]["metrics"]
    assert metrics["loss"] == {
        "last": "NaN",
        "last_step": 5,
        "best": 0.3,
        "best_step": 4,
        "n": 2,
        "direction": "min",
    }
    assert metrics["grad"]["last"] == "Infinity"
    assert metrics["val_loss"]["last"] == "NaN"  # known from the summary only


def test_metrics_json_keeps_a_nan_final_value(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name, loss in (("exp_a", "NaN"), ("exp_b", "0.3")):
        (root / name / "dvclive").mkdir(parents=True)
        (root / name / "dvclive" / "metrics.json").write_text(f'{{"loss": {loss}, "acc": 0.5}}')
    runs = runs_json(root)
    assert runs["exp_a"]["metrics"]["loss"]["last"] == "NaN"
    assert runs["exp_b"]["metrics"]["loss"]["last"] == 0.3
    result = CliRunner().invoke(
        main, ["diff", "exp_a", "exp_b", "--db", str(root.parent / "index.db"), "--json"]
    )
    assert result.exit_code == 1, result.stderr
    loss = next(m for m in json.loads(result.stdout)["metrics"] if m["name"] == "loss")
    # on both sides, not "only in B"; and no run is called better than a NaN
    assert (loss["old"], loss["new"], loss["better"]) == ("NaN", 0.3, None)


NON_FINITE_PARAMS = {
    "version_0": "lr: .nan\nwd: .inf\nm: -.inf\n",
    "version_1": "lr: nan\nwd: inf\nm: -inf\n",
}
"""YAML floats that are not finite (``.nan``), and the plain text ``nan``: two params."""


def non_finite_pair(root: Path) -> Path:
    """Two Lightning runs whose hparams differ only in ``.nan`` against ``nan`` (and the
    infinities), indexed; the index's path."""
    for version, hparams in NON_FINITE_PARAMS.items():
        folder = root / "lightning_logs" / version
        folder.mkdir(parents=True)
        (folder / "hparams.yaml").write_text(hparams)
        (folder / "metrics.csv").write_text("step,val_loss\n1,0.5\n")
    age(root)
    db_path = root.parent / "index.db"
    index(root, db_path)
    return db_path


def test_a_non_finite_param_is_not_the_text_that_spells_it(tmp_path: Path) -> None:
    from rich.console import Console

    from store.index import query
    from store.index.db import open_db
    from store.rundiff import diff_run_rows
    from tui.widgets.run_detail import params_and_metrics

    db_path = non_finite_pair(tmp_path / "root")
    cli = CliRunner()
    listed = cli.invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert listed.exit_code == 0, listed.stderr
    params = {run["name"]: run["params"] for run in json.loads(listed.stdout)}
    assert params == {
        "version_0": {"lr": "NaN", "wd": "Infinity", "m": "-Infinity"},
        "version_1": {"lr": "nan", "wd": "inf", "m": "-inf"},
    }
    table = cli.invoke(main, ["runs", "--csv", "--db", str(db_path)])
    rows = {row[1]: row for row in csv.reader(table.stdout.splitlines())}
    header = rows.pop("name")
    cells = {name: dict(zip(header, row, strict=True)) for name, row in rows.items()}
    assert [cells["version_0"][f"param.{k}"] for k in ("lr", "wd", "m")] == [
        "NaN",
        "Infinity",
        "'-Infinity",
    ]
    assert [cells["version_1"][f"param.{k}"] for k in ("lr", "wd", "m")] == ["nan", "inf", "'-inf"]
    db = open_db(db_path, readonly=True)
    try:
        runs = {r.name: r for r in query.list_runs(db)}
        result = diff_run_rows(db, runs["version_0"], runs["version_1"], [])
    finally:
        db.conn.close()
    assert [(c.path, c.kind, c.new) for c in result.params] == [
        ("lr", "type_changed", "nan"),
        ("m", "type_changed", "-inf"),
        ("wd", "type_changed", "inf"),
    ]
    diffed = cli.invoke(main, ["diff", "version_0", "version_1", "--json", "--db", str(db_path)])
    shown = json.loads(diffed.stdout)["params"]
    assert {"key": "lr", "change": "type_changed", "old": "NaN", "new": "nan"} in shown
    console = Console(width=100, record=True)
    for section in params_and_metrics(runs["version_0"]):
        console.print(section)
    assert "lr: NaN" in console.export_text()


def test_an_index_that_stored_non_finite_params_as_text_reads_them_again(
    tmp_path: Path,
) -> None:
    """The stored form of a non-finite param changed: an index written before keeps
    ``"nan"`` for both, and its next scan reads those runs' files again."""
    import sqlite3

    from store.index.db import migrations

    root = tmp_path / "root"
    db_path = non_finite_pair(root)
    newest = migrations._migrations[-1].name
    with sqlite3.connect(db_path) as conn:  # the index as the artlens before wrote it
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [newest])
        conn.execute("""UPDATE runs SET params = '{"lr": "nan", "wd": "inf", "m": "-inf"}'""")
    conn.close()
    cli = CliRunner()  # the files as they were: only the migration has them read again
    assert cli.invoke(main, ["index", str(root), "--db", str(db_path)]).exit_code == 0
    listed = cli.invoke(main, ["runs", "--json", "--db", str(db_path)])
    params = {run["name"]: run["params"] for run in json.loads(listed.stdout)}
    assert params["version_0"] == {"lr": "NaN", "wd": "Infinity", "m": "-Infinity"}
