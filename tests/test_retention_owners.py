"""Someone answers for every deletion: a root's owners, and the audit log of its trash."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from test_retention_support import snapshot, write

from store.errors import ArtlensError
from store.retention.audit import NotAnOwner, current_user
from store.retention.plan import make_plan
from store.retention.policy import from_flags
from store.retention.trash import TRASH_DIR, apply_plan, audit_log, list_trash, purge, restore
from tui.cli import main

RUN = "run"


@pytest.fixture
def tree(tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    root = tmp_path / "root"
    for step in range(1, 4):
        write(root / RUN / f"step_{step}.pt", bytes(100 * step), age=3600.0 + (4 - step))
    yield root


def cli(*args: str, db: Path) -> Any:
    return CliRunner().invoke(main, [*args, "--db", str(db)])


def _index(root: Path, db: Path) -> sqlite_utils.Database:
    assert cli("index", str(root), db=db).exit_code == 0
    from store.index.db import open_db

    return open_db(db)


def test_only_the_owners_may_apply_and_purge_anyone_may_restore(tree: Path, tmp_path: Path) -> None:
    db_path = tmp_path / "i.db"
    db = _index(tree, db_path)
    try:
        report = apply_plan(make_plan(db, [tree], from_flags(keep_last=2), time.time()), db)
        assert len(report.done) == 1
        (tree / ".artlens.toml").write_text('owners = ["alice", "bob[red]"]\n')
        before = snapshot(tree)
        plan = make_plan(db, [tree], from_flags(keep_last=1), time.time())
        with pytest.raises(NotAnOwner, match=r"owned by alice, bob\[red\]"):
            apply_plan(plan, db)
        with pytest.raises(NotAnOwner):
            purge(tree, 0, db, now=time.time() + 10)
        assert snapshot(tree) == before
        assert len(restore(tree, "all", db).done) == 1
        (tree / ".artlens.toml").write_text(f'owners = ["{current_user()}"]\n')
        assert [d.path for d in apply_plan(plan, db).done] == ["run/step_2.pt"]
        assert len(purge(tree, 0, db, now=time.time() + 10).done) == 1
    finally:
        db.conn.close()


@pytest.mark.parametrize("config", ["deep", "fifo", "symlink"])
def test_owners_that_cannot_be_read_refuse_a_purge_never_allow_it(
    tree: Path, tmp_path: Path, config: str
) -> None:
    db_path = tmp_path / "i.db"
    db = _index(tree, db_path)
    try:
        assert len(apply_plan(make_plan(db, [tree], from_flags(keep_last=2), time.time()), db).done)
        owners = tree / ".artlens.toml"
        if config == "deep":
            owners.write_text("owners = " + "[" * 100_000 + "]" * 100_000 + "\n")
            why = "nested too deeply"
        else:
            (tmp_path / "real.toml").write_text(f'owners = ["{current_user()}"]\n')
            if config == "fifo":
                os.mkfifo(owners)
            else:
                owners.symlink_to(tmp_path / "real.toml")
            why = "not a regular file"
        with pytest.raises(ArtlensError) as caught:  # "no owners" would let anyone delete
            purge(tree, 0, db, now=time.time() + 10)
        assert str(caught.value) == f".artlens.toml: cannot read owners ({why})"
        (entry,) = list_trash(tree)
        assert entry.path == f"{RUN}/step_1.pt" and (tree / entry.trash_path).exists()
    finally:
        db.conn.close()


def test_the_cli_refuses_a_non_owner_in_one_line(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    _index(tree, db).conn.close()
    (tree / ".artlens.toml").write_text('owners = ["alice"]\n[retention]\nkeep_last = 1\n')
    before = snapshot(tree)
    for args in (
        ("retention", "apply", "--yes"),
        ("trash", "purge", "--older-than", "0", "--yes"),
    ):
        result = cli(*args, db=db)
        assert result.exit_code in (0, 2), result.output
        if args[0] == "retention":
            assert result.exit_code == 2
            assert result.stderr.count("\n") == 1 and "owned by alice" in result.stderr
    assert snapshot(tree) == before


def test_every_operation_is_in_the_audit_log(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    _index(tree, db).conn.close()
    assert cli("retention", "apply", "--keep-last", "1", "--yes", db=db).exit_code == 0
    (entry, *_) = list_trash(tree)
    assert cli("trash", "restore", entry.id, db=db).exit_code == 0
    assert cli("trash", "purge", "--older-than", "0", "--yes", db=db).exit_code == 0
    log = json.loads(cli("trash", "log", "--json", db=db).stdout)
    assert [(r["op"], r["items"], r["user"]) for r in log] == [
        ("apply", 2, current_user()),
        ("restore", 1, current_user()),
        ("purge", 1, current_user()),
    ]
    assert log[0]["plan"] and log[0]["bytes"] == 300 and log[2]["bytes"] in (100, 200)
    text = cli("trash", "log", db=db).stdout
    assert text.count("\n") == 3 and "apply plan" in text


def test_a_tampered_audit_log_is_reported_and_never_acted_on(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    _index(tree, db).conn.close()
    assert cli("retention", "apply", "--keep-last", "1", "--yes", db=db).exit_code == 0
    with open(tree / TRASH_DIR / "audit.jsonl", "a") as out:
        out.write("not json\n")
        out.write(json.dumps({"v": 1, "ts": 1.0, "op": "purge", "user": "x", "uid": -1}) + "\n")
        good = {"v": 1, "ts": 2.0, "op": "purge", "user": "\x1b[2J[b]mallory", "uid": 7}
        out.write(json.dumps({**good, "items": 1, "bytes": 1, "skipped": 0, "plan": None}) + "\n")
    before = snapshot(tree)
    records, problems = audit_log(tree)
    assert [r.user for r in records] == [current_user(), "\x1b[2J[b]mallory"]
    assert len(problems) == 2 and problems[0].startswith("audit.jsonl line 2:")
    result = cli("trash", "log", db=db)
    assert result.exit_code == 0 and "\x1b" not in result.stdout
    assert result.stderr.count("\n") == 2 and result.stderr.count("audit.jsonl line ") == 2
    assert snapshot(tree) == before
