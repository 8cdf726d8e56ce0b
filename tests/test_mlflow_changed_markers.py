"""What MLflow changes in place (a run renamed in its ``meta.yaml``, a run written into
``mlflow.db``) re-detects the runs: before, the index kept the old name, and a run logged
to the database with no artifact folder never appeared, until some file came or went."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from store.index.db import open_db
from store.scan import Indexer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


def names(db: sqlite_utils.Database) -> dict[str, tuple[str, str | None]]:
    return {
        bytes(p).decode(): (n, e)
        for p, n, e in db.execute("SELECT path, name, experiment FROM runs")
    }


def test_a_run_renamed_in_its_meta_yaml_is_renamed_in_the_index(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    run = root / "mlruns" / "1" / "abc"
    (run / "metrics").mkdir(parents=True)
    (root / "mlruns" / "1" / "meta.yaml").write_text("experiment_id: '1'\nname: exp\n")
    (run / "meta.yaml").write_text("run_id: abc\nrun_name: old-name\nstatus: 1\n")
    (run / "metrics" / "loss").write_text("1 0.5 0\n")
    indexer = Indexer(db, root)
    indexer.scan()
    assert names(db) == {"mlruns/1/abc": ("old-name", "exp")}
    (run / "meta.yaml").write_text("run_id: abc\nrun_name: new-name\nstatus: 3\n")
    (root / "mlruns" / "1" / "meta.yaml").write_text("experiment_id: '1'\nname: renamed\n")
    indexer.scan()
    assert names(db) == {"mlruns/1/abc": ("new-name", "renamed")}


SCHEMA = """
CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE runs (run_uuid TEXT PRIMARY KEY, name TEXT, status TEXT, start_time BIGINT,
  end_time BIGINT, artifact_uri TEXT, experiment_id INTEGER, user_id TEXT,
  lifecycle_stage TEXT);
CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT);
CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT);
CREATE TABLE metrics (key TEXT, value FLOAT, timestamp BIGINT, run_uuid TEXT,
  step BIGINT DEFAULT 0, is_nan BOOLEAN DEFAULT 0);
"""


def test_a_run_written_into_the_database_appears(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    root.mkdir()
    conn = sqlite3.connect(root / "mlflow.db")
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO experiments VALUES (1, 'exp')")

    def add_run(run_id: str, start: int) -> None:
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, 'RUNNING', ?, NULL, ?, 1, 'me', 'active')",
            (run_id, f"run {run_id}", start, f"s3://bucket/1/{run_id}/artifacts"),
        )
        conn.commit()

    add_run("r1", 1)
    indexer = Indexer(db, root)
    indexer.scan()
    assert set(names(db)) == {"mlflow.db#r1"}
    add_run("r2", 2)
    conn.close()
    indexer.scan()
    assert set(names(db)) == {"mlflow.db#r1", "mlflow.db#r2"}
