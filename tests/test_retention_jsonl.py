"""Retention's JSON-lines files read back line by line, torn lines reported by number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_retention_support import write

from store.retention.jsonl import TORN, json_lines
from store.retention.trash import TRASH_DIR
from tui.cli import main


def test_lines_are_numbered_blank_ones_skipped_and_a_torn_tail_flagged() -> None:
    data = b'{"op": "intent"}\n\n  \n[1, 2]\n{"op": "do'
    assert list(json_lines(data)) == [(1, {"op": "intent"}), (4, [1, 2]), (5, TORN)]


def test_bytes_that_are_not_utf8_make_a_torn_line_not_an_error() -> None:
    assert list(json_lines(b'"\xff\xfe"\n"ok"\n')) == [(1, TORN), (2, "ok")]


def test_a_lone_surrogate_written_raw_survives() -> None:
    assert list(json_lines(b'"a\xed\xb3\xbf"\n')) == [(1, "a\udcff")]


DEEP = b"[" * 100_000 + b"]" * 100_000
"""A line nested past the recursion limit of every Python (json recurses once a level)."""


def test_a_line_nested_too_deeply_is_torn_and_the_next_one_is_read() -> None:
    assert list(json_lines(DEEP + b'\n{"op": "done"}\n')) == [(1, TORN), (2, {"op": "done"})]


def test_a_nesting_bomb_in_the_manifest_and_the_log_leaves_the_good_lines_listed(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    root, db = tmp_path / "root", tmp_path / "index.db"
    for step in (1, 2, 3):
        write(root / "run" / f"step_{step}.pt", bytes(64 * step), age=5000.0 - step)
    assert cli("index", str(root), db=db).exit_code == 0
    assert cli("retention", "apply", "--keep-last", "2", "--yes", db=db).exit_code == 0
    for name in ("manifest.jsonl", "audit.jsonl"):
        with open(root / TRASH_DIR / name, "ab") as out:
            out.write(DEEP + b"\n")

    listed = cli("trash", "list", "--json", db=db)
    assert listed.exit_code == 0
    assert [e["path"] for e in json.loads(listed.stdout)] == ["run/step_1.pt"]
    assert listed.stderr.count("\n") == 1 and "manifest.jsonl line " in listed.stderr
    logged = cli("trash", "log", "--json", db=db)
    assert logged.exit_code == 0 and [r["op"] for r in json.loads(logged.stdout)] == ["apply"]
    assert "audit.jsonl line " in logged.stderr
    applied = cli("retention", "apply", "--keep-last", "1", "--yes", "--json", db=db)
    assert applied.exit_code == 0
    assert [d["path"] for d in json.loads(applied.stdout)["done"]] == ["run/step_2.pt"]
    assert cli("trash", "restore", "--all", db=db).exit_code == 0
    assert sorted(p.name for p in (root / "run").iterdir()) == [f"step_{s}.pt" for s in (1, 2, 3)]


def cli(*args: str, db: Path) -> Result:
    return CliRunner().invoke(main, [*args, "--db", str(db)], catch_exceptions=False)
