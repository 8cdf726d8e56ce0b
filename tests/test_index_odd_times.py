"""Times in the index that are no times (text, blobs, out of any calendar) read as unknown."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from tui.cli import main


@pytest.fixture
def index(tmp_path: Path) -> Path:
    run = tmp_path / "root" / "run1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"loss": 1}')
    db = tmp_path / "index.db"
    done = CliRunner().invoke(main, ["index", str(tmp_path / "root"), "--db", str(db), "--no-hash"])
    assert done.exit_code == 0, done.output
    return db


@pytest.mark.parametrize(
    "times",
    [
        "started = 'abc', last_write = -1e20",
        "started = 1e300, last_write = 'x'",
        "started = NULL, last_write = X'00ff'",
    ],
)
def test_runs_lists_a_run_whose_times_are_not_times(index: Path, times: str) -> None:
    with sqlite3.connect(index) as conn:
        conn.execute(f"UPDATE runs SET {times}")
    listed = CliRunner().invoke(main, ["runs", "--json", "--db", str(index)])
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.output)
    assert (run["name"], run["started"], run["last_write"]) == ("run1", None, None)
    table = CliRunner().invoke(main, ["runs", "--db", str(index)])
    assert table.exit_code == 0 and "run1" in table.output, table.output
