"""MLflow's latest value of a metric is the greatest ``(step, timestamp, value)``, in the
file store (``FileStore._get_metric_from_file``) and in a database
(``SqlAlchemyStore._update_latest_metric_if_necessary``); "last" must be that value, not
the last line written (async logging and resumed runs append out of order)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.frameworks import RunSpec, read_metric_series, read_run

RUN = "0b6ca591f9e7449b9352c36b6a7e4d44"
EXP = "mlruns/1"


def file_run(root: Path, metrics: dict[str, str]) -> RunSpec:
    run = root / EXP / RUN
    (run / "metrics").mkdir(parents=True)
    (root / EXP / "meta.yaml").write_text("experiment_id: '1'\nname: exp\n")
    (run / "meta.yaml").write_text(f"run_id: {RUN}\nrun_name: r\nstatus: 3\n")
    for name, text in metrics.items():
        (run / "metrics" / name).write_text(text)
    return RunSpec(f"{EXP}/{RUN}", "mlflow", "r", "exp", run_key=RUN)


@pytest.mark.parametrize(
    ("lines", "last", "last_step"),
    [
        # same step, the later timestamp written first (async logging): MLflow takes 0.4
        ("1000 1.0 0\n5000 0.4 3\n4000 0.9 3\n", 0.4, 3),
        # same step and timestamp: the greater value
        ("1000 1.0 0\n5000 0.2 3\n5000 0.1 3\n", 0.2, 3),
        ("1000 1.0 0\n5000 0.1 3\n5000 0.2 3\n", 0.2, 3),
        # a resumed run logs step 2 again, earlier-stamped lines after later ones
        ("1000 1.0 1\n9000 0.3 2\n3000 0.6 2\n2000 0.8 1\n", 0.3, 2),
        # lines without a step are step 0 to MLflow: the latest timestamp wins
        ("1000 0.5\n3000 0.2\n2000 0.9\n", 0.2, 0),
    ],
)
def test_file_store_last_is_mlflows_latest(
    tmp_path: Path, lines: str, last: float, last_step: int
) -> None:
    spec = file_run(tmp_path, {"loss": lines})
    info = read_run(tmp_path, spec)
    summary = info.metrics["loss"]
    assert (summary.last, summary.last_step) == (last, last_step)
    assert summary.n == len(lines.splitlines())
    assert info.meta["warnings"] == []
    series = read_metric_series(tmp_path, spec)["loss"]
    assert series[-1] == (last_step, last)
    assert [s for s, _ in series] == sorted(s for s, _ in series)


def test_file_store_in_order_lines_unchanged(tmp_path: Path) -> None:
    spec = file_run(tmp_path, {"loss": "1000 1.0 0\n2000 0.5 1\n3000 0.25 2\n"})
    assert read_metric_series(tmp_path, spec)["loss"] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert read_run(tmp_path, spec).metrics["loss"].last == 0.25


def test_database_last_is_mlflows_latest(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "mlflow.db")
    conn.executescript(
        "CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE runs (run_uuid TEXT PRIMARY KEY, name TEXT, status TEXT,"
        " start_time BIGINT, end_time BIGINT, artifact_uri TEXT, experiment_id INTEGER,"
        " user_id TEXT, lifecycle_stage TEXT);"
        "CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT);"
        "CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT);"
        "CREATE TABLE metrics (key TEXT, value FLOAT, timestamp BIGINT, run_uuid TEXT,"
        " step BIGINT DEFAULT 0, is_nan BOOLEAN DEFAULT 0);"
    )
    conn.execute("INSERT INTO experiments VALUES (1, 'exp')")
    conn.execute(
        "INSERT INTO runs VALUES ('r1', 'r', 'FINISHED', 0, 1, 's3://b/r1', 1, 'me', 'active')"
    )
    conn.executemany(
        "INSERT INTO metrics VALUES (?, ?, ?, 'r1', ?, 0)",
        [("loss", 1.0, 1000, 0), ("loss", 0.2, 5000, 3), ("loss", 0.1, 5000, 3)],
    )
    conn.commit()
    conn.close()
    spec = RunSpec("mlflow.db#r1", "mlflow", "r", "exp", run_key="r1")
    summary = read_run(tmp_path, spec).metrics["loss"]
    assert (summary.last, summary.last_step, summary.n) == (0.2, 3, 3)
