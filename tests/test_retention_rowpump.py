"""A plan whose rows a helper process read (``rowpump``) is the plan read in one process.

Every test runs the real helper: a new interpreter reading the index on disk.  Where it
must fail or read another snapshot, the interpreter it starts is a small shell script that
does so before or after running the real one.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils
from test_retention_equivalence import _item_fields, _make_tree, _totals
from test_retention_support import index_tree, new_db

from store.retention import rowpump
from store.retention.candidates import rows_query
from store.retention.plan import Plan, make_plan
from store.retention.policy import from_flags


def _same(one: Plan, other: Plan) -> None:
    assert _item_fields(one) == _item_fields(other)
    assert _totals(one) == _totals(other)
    assert one.warnings == other.warnings
    assert one.links == other.links


def _two_roots(tmp_path: Path, seed: int) -> tuple[sqlite_utils.Database, list[Path]]:
    rng = random.Random(seed)
    db = new_db(tmp_path)
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        runs = _make_tree(root, rng)
        run = sorted(r for r in runs if not r.startswith("exp9"))[0]
        (root / run / "checkpoints").mkdir(parents=True, exist_ok=True)
        os.symlink("epoch=0-step=0.ckpt", root / run / "checkpoints" / "best-link.ckpt")
        index_tree(db, root, runs)
    return db, roots


def _interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Start helpers with a shell script standing for the interpreter ("$PY" is the real)."""
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\nPY="{sys.executable}"\n{script}\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(wrapper))


@pytest.mark.parametrize("seed", range(3))
def test_a_plan_from_the_helpers_rows_is_the_plan_read_here(tmp_path: Path, seed: int) -> None:
    """Two roots of one index, small chunks (a run's rows and a folder's rows cross them):
    every item, total, warning and link is the same as the plan read in one process."""
    db, roots = _two_roots(tmp_path, seed)
    now = time.time()
    pins = {str(roots[0]): ["exp1"]}
    policies = [
        from_flags(keep_last=1, keep_best=1, metric="val_loss", pin=("**/checkpoint-100/**",)),
        from_flags(keep_within_budget="150"),
        from_flags(keep_last=2, older_than="5d"),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rowpump, "CHUNK_ROWS", 3)
        for policy in policies:
            helped = make_plan(db, roots, policy, now, pins, pump_after=0)
            alone = make_plan(db, roots, policy, now, pins, pump_after=None)
            assert helped.helper_roots == [str(r) for r in roots]
            assert alone.helper_roots == []
            _same(helped, alone)
            assert any(not item.keep and item.members for item in helped.items)
            assert helped.links  # the link count came from the helper too
    # a small index is read here: an interpreter costs more than its rows
    assert make_plan(db, roots, policies[0], now, pins).helper_roots == []


def test_the_helper_sends_the_rows_and_totals_the_plan_would_read(tmp_path: Path) -> None:
    db, _ = _two_roots(tmp_path, 7)
    conn = db.conn
    (root_id,) = conn.execute("SELECT min(id) FROM roots").fetchone()
    probe = rowpump.probe_for(conn, after=0)
    assert probe is not None
    total = "SELECT count(*), coalesce(sum(size), 0) FROM artifacts WHERE root_id = ?"
    try:
        with rowpump.RowPump(probe, rows_query(conn), [total, "SELECT ?"], root_id) as pump:
            assert pump.same_snapshot()
            rows = [row for chunk in pump.chunks() for row in chunk]
            ones = pump.ones()
    finally:
        probe.close()
    assert rows == conn.execute(rows_query(conn), (root_id,)).fetchall()
    assert any(isinstance(row[1], bytes) and b"\xff" in row[1] for row in rows)
    assert ones == [conn.execute(total, (root_id,)).fetchone(), (root_id,)]


def test_a_commit_after_the_probe_sends_the_helper_away(tmp_path: Path) -> None:
    """The helper's snapshot would hold a change the plan's does not: its rows are refused."""
    db, _ = _two_roots(tmp_path, 3)
    conn = db.conn
    probe = rowpump.Probe(next(row[2] for row in conn.execute("PRAGMA database_list")))
    try:
        with rowpump.RowPump(probe, rows_query(conn), [], 1) as pump:
            assert pump.same_snapshot()
        with db.conn:
            db.conn.execute("UPDATE artifacts SET size = size + 1")
        with rowpump.RowPump(probe, rows_query(conn), [], 1) as pump:
            assert not pump.same_snapshot()
    finally:
        probe.close()


def test_the_plan_keeps_its_snapshot_when_the_index_changes_before_the_helper_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer commits after the plan's snapshot began, before the helper's did: the
    plan is read here, from its own snapshot, and holds none of the change."""
    db, roots = _two_roots(tmp_path, 11)
    path = next(row[2] for row in db.conn.execute("PRAGMA database_list"))
    now = time.time()
    policy = from_flags(keep_within_budget="150")
    before = make_plan(db, roots, policy, now, pump_after=None)
    commit = (
        f"import sqlite3; c = sqlite3.connect({path!r}); "
        "c.execute('UPDATE artifacts SET size = size + 1000'); c.commit()"
    )
    _interpreter(tmp_path, monkeypatch, f'"$PY" -c "{commit}"\nexec "$PY" "$@"')
    changed = make_plan(db, roots, policy, now, pump_after=0)
    assert changed.helper_roots == []
    _same(changed, before)
    monkeypatch.undo()
    after = make_plan(db, roots, policy, now, pump_after=0)
    assert after.helper_roots == [str(r) for r in roots]
    assert after.roots[0].total_bytes > before.roots[0].total_bytes + 1000
    _same(after, make_plan(db, roots, policy, now, pump_after=None))


@pytest.mark.parametrize(
    "script",
    [
        "exit 1",  # no helper at all
        'exec "$PY" "$@" | head -c 40',  # ends within the first rows
        'exec "$PY" "$@" | head -c 3000',  # ends after some of them
        '"$PY" "$@" >/dev/null; printf "garbage and more garbage"',  # no frame at all
    ],
)
def test_a_helper_that_fails_leaves_the_plan_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str
) -> None:
    db, roots = _two_roots(tmp_path, 5)
    now = time.time()
    policy = from_flags(keep_last=1, keep_within_budget="150")
    alone = make_plan(db, roots, policy, now, pump_after=None)
    monkeypatch.setattr(rowpump, "CHUNK_ROWS", 2)
    _interpreter(tmp_path, monkeypatch, script)
    helped = make_plan(db, roots, policy, now, pump_after=0)
    assert helped.helper_roots == []
    _same(helped, alone)


def test_no_probe_where_the_plan_cannot_use_a_helper(tmp_path: Path) -> None:
    db, _ = _two_roots(tmp_path, 2)
    assert rowpump.probe_for(db.conn, after=10**9) is None  # too few artifacts to pay
    db.conn.execute("BEGIN")
    db.conn.execute("SELECT 1 FROM roots").fetchone()
    assert rowpump.probe_for(db.conn, after=0) is None  # its snapshot began already
    db.conn.execute("COMMIT")
    memory = sqlite3.connect(":memory:")
    assert rowpump.probe_for(memory, after=0) is None
    memory.close()
