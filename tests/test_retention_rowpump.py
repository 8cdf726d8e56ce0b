"""A plan whose rows a helper process read in part (``rowpump``) is the plan read here.

Every test runs the real helper: a new interpreter reading the index on disk.  Where it
must fail, lie or read another snapshot, the interpreter it starts is a small script that
does so before or instead of running the real one.  A plan never waits for its helper;
these tests make it wait (``WAIT_FOR_HELPER``), so that the helper's blocks are surely the
ones used, and cut the ids into blocks of a few (``BLOCK_IDS``), so that a run's rows and
a folder's rows cross blocks.
"""

from __future__ import annotations

import itertools
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

from store.index.db import open_db
from store.retention import rowpump
from store.retention.candidates import rows_query
from store.retention.plan import Plan, make_plan
from store.retention.policy import from_flags

ROWS_SQL_TAIL = " AND id BETWEEN ? AND ?"
TOTAL_SQL = "SELECT count(*), coalesce(sum(size), 0) FROM artifacts WHERE root_id = ?"


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rowpump, "BLOCK_IDS", 4)


def _same(one: Plan, other: Plan) -> None:
    assert _item_fields(one) == _item_fields(other)
    assert _totals(one) == _totals(other)
    assert one.warnings == other.warnings
    assert one.links == other.links


def _indexed(tmp_path: Path, seed: int, roots: int = 1) -> tuple[sqlite_utils.Database, list[Path]]:
    """Random trees of every layout, with a checkpoint-named link, in one index."""
    rng = random.Random(seed)
    db = new_db(tmp_path)
    made = [tmp_path / name for name in "ab"[:roots]]
    for root in made:
        runs = _make_tree(root, rng)
        run = sorted(r for r in runs if not r.startswith("exp9"))[0]
        (root / run / "checkpoints").mkdir(parents=True, exist_ok=True)
        os.symlink("epoch=0-step=0.ckpt", root / run / "checkpoints" / "best-link.ckpt")
        index_tree(db, root, runs)
    return db, made


def _interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """Start helpers with a shell script standing for the interpreter ("$PY" is the real)."""
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\nPY="{sys.executable}"\n{script}\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(wrapper))


def _database_path(db: sqlite_utils.Database) -> str:
    return str(next(row[2] for row in db.conn.execute("PRAGMA database_list")))


POLICIES = [
    from_flags(keep_last=1, keep_best=1, metric="val_loss", pin=("**/checkpoint-100/**",)),
    from_flags(keep_within_budget="150"),
    from_flags(keep_last=2, older_than="5d"),
]


@pytest.mark.parametrize("seed", range(3))
def test_a_plan_from_the_helpers_rows_is_the_plan_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Every block from the helper: every item, total, warning and link is the same as
    the plan read in one process."""
    monkeypatch.setattr(rowpump, "WAIT_FOR_HELPER", 60.0)
    db, (root,) = _indexed(tmp_path, seed)
    now = time.time()
    pins = {str(root): ["exp1"]}
    removed_folders = 0
    for policy in POLICIES:
        helped = make_plan(db, [root], policy, now, pins, pump_after=0)
        alone = make_plan(db, [root], policy, now, pins, pump_after=None)
        assert helped.helper_roots == [str(root)]
        assert alone.helper_roots == []
        _same(helped, alone)
        removed_folders += sum(1 for item in helped.items if not item.keep and item.members)
        assert helped.links  # the link count came from the helper too
    assert removed_folders  # folders' files crossed blocks and came back whole
    # a small index is read here: an interpreter costs more than its rows
    assert make_plan(db, [root], POLICIES[0], now, pins).helper_roots == []


def test_an_index_of_two_roots_is_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With other roots' rows, a root's pass goes through its index, not in id order."""
    monkeypatch.setattr(rowpump, "WAIT_FOR_HELPER", 60.0)
    db, roots = _indexed(tmp_path, 4, roots=2)
    now = time.time()
    helped = make_plan(db, roots, POLICIES[1], now, pump_after=0)
    assert helped.helper_roots == []
    _same(helped, make_plan(db, roots, POLICIES[1], now, pump_after=None))


def _pump(db: sqlite_utils.Database, probe: rowpump.Probe, root_id: int) -> rowpump.RowPump:
    return rowpump.RowPump(
        db.conn, probe, rows_query(db.conn) + ROWS_SQL_TAIL, [TOTAL_SQL, "SELECT ?"], root_id
    )


@pytest.mark.parametrize("cut", [None, 3000])
def test_the_rows_are_one_passs_whoever_read_each_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: int | None
) -> None:
    """Every block from the helper, or (its output cut short) its last few and the rest
    read here: the rows come as one pass gives them, and the totals are the root's."""
    db, _ = _indexed(tmp_path, 7)
    conn = db.conn
    if cut is not None:
        _interpreter(tmp_path, monkeypatch, f'exec "$PY" "$@" | head -c {cut}')
    probe = rowpump.probe_for(conn, after=0)
    assert probe is not None
    (largest,) = conn.execute("SELECT max(id) FROM artifacts").fetchone()
    blocks = len(rowpump.blocks(1, largest, rowpump.BLOCK_IDS))
    try:
        with _pump(db, probe, 1) as pump:
            sent = pump.wait_sent(60.0)
            rows = list(itertools.chain.from_iterable(pump.row_blocks()))
            ones = pump.ones()
            taken = pump.taken
    finally:
        probe.close()
    assert rows == conn.execute(rows_query(conn), (1,)).fetchall()
    assert any(isinstance(row[1], bytes) and b"\xff" in row[1] for row in rows)
    assert ones == [conn.execute(TOTAL_SQL, (1,)).fetchone(), (1,)]
    assert taken == sent
    assert taken == blocks if cut is None else 0 < taken < blocks


def test_a_commit_after_the_probe_sends_the_helper_away(tmp_path: Path) -> None:
    """The helper's snapshot holds a change the plan's does not: its rows are refused, and
    the rows are those of the plan's snapshot."""
    db, _ = _indexed(tmp_path, 3)
    reader = sqlite3.connect(_database_path(db), isolation_level=None)
    probe = rowpump.Probe(_database_path(db))
    try:
        reader.execute("BEGIN")
        before = reader.execute(rows_query(reader), (1,)).fetchall()
        with db.conn:
            db.conn.execute("UPDATE artifacts SET size = size + 1")
        pump = rowpump.RowPump(reader, probe, rows_query(reader) + ROWS_SQL_TAIL, [TOTAL_SQL], 1)
        with pump:
            assert pump.wait_sent(60.0) == 0
            rows = list(itertools.chain.from_iterable(pump.row_blocks()))
            assert pump.taken == 0
        assert rows == before
        reader.execute("COMMIT")
        assert reader.execute(rows_query(reader), (1,)).fetchall() != before
    finally:
        probe.close()
        reader.close()


def test_the_plan_keeps_its_snapshot_when_the_index_changes_before_the_helper_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer commits after the plan's snapshot began, before the helper's did: the
    plan reads its rows itself, from its own snapshot, and holds none of the change."""
    monkeypatch.setattr(rowpump, "WAIT_FOR_HELPER", 60.0)
    python = sys.executable
    db, roots = _indexed(tmp_path, 11)
    now = time.time()
    policy = from_flags(keep_within_budget="150")
    before = make_plan(db, roots, policy, now, pump_after=None)
    commit = (
        f"import sqlite3; c = sqlite3.connect({_database_path(db)!r}); "
        "c.execute('UPDATE artifacts SET size = size + 1000'); c.commit()"
    )
    _interpreter(tmp_path, monkeypatch, f'"$PY" -c "{commit}"\nexec "$PY" "$@"')
    changed = make_plan(db, roots, policy, now, pump_after=0)
    assert changed.helper_roots == []
    _same(changed, before)
    monkeypatch.setattr(sys, "executable", python)
    after = make_plan(db, roots, policy, now, pump_after=0)
    assert after.helper_roots == [str(r) for r in roots]
    assert after.roots[0].total_bytes > before.roots[0].total_bytes + 1000
    _same(after, make_plan(db, roots, policy, now, pump_after=None))


@pytest.mark.parametrize(
    "script",
    [
        "exit 1",  # no helper at all
        'exec "$PY" "$@" | head -c 40',  # ends within its first frames
        'exec "$PY" "$@" | head -c 3000',  # ends within its blocks
        '"$PY" "$@" >/dev/null; printf "garbage and more garbage"',  # no frame at all
    ],
)
def test_a_helper_that_fails_leaves_the_plan_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str
) -> None:
    helped, alone = _helped_and_alone(tmp_path, monkeypatch, 5, script)
    _same(helped, alone)


def _helped_and_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, script: str
) -> tuple[Plan, Plan]:
    """A plan whose helper is started through ``script``, and the plan read here."""
    monkeypatch.setattr(rowpump, "WAIT_FOR_HELPER", 60.0)
    db, roots = _indexed(tmp_path, seed)
    now = time.time()
    policy = from_flags(keep_last=1, keep_within_budget="150")
    alone = make_plan(db, roots, policy, now, pump_after=None)
    _interpreter(tmp_path, monkeypatch, script)
    return make_plan(db, roots, policy, now, pump_after=0), alone


FAKE_HELPER = """
import marshal, struct, sys
out = sys.stdout.buffer
for what, payload in ({frames}):
    data = marshal.dumps(payload)
    out.write(struct.pack("=Qq", len(data), what) + data)
"""


@pytest.mark.parametrize(
    "frames",
    [
        "(-1, None), (-2, [(0, 0)]), (0, [(1,)])",  # a row too short
        "(-1, None), (-2, [(None,)])",  # totals of another shape
        "(-1, None), (-2, [(0, 0)]), (0, 'not rows'), (1, [3])",  # no list of rows
        "(-2, [(0, 0)]), (0, [])",  # no snapshot first
        "(-1, None), (99999, [])",  # no such block
        "(-1, None), (-2, [(0, 0)]), (0, ([], [], [(1, 5, 1, 1, True)]))",  # a folder no path
        "(-1, None), (-2, [(0, 0)]), (0, ([(1, [], [])], [], []))",  # a stretch cut short
    ],
)
def test_a_helper_that_sends_no_such_rows_leaves_the_plan_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frames: str
) -> None:
    """Frames well made, holding what the plan's rows are not: they are read here."""
    fake = tmp_path / "fake_helper.py"
    fake.write_text(FAKE_HELPER.format(frames=frames))
    helped, alone = _helped_and_alone(tmp_path, monkeypatch, 13, f'exec "$PY" "{fake}"')
    assert helped.helper_roots == []
    _same(helped, alone)


def test_no_probe_where_the_plan_cannot_use_a_helper(tmp_path: Path) -> None:
    db, _ = _indexed(tmp_path, 2)
    assert rowpump.probe_for(db.conn, after=10**9) is None  # too few artifacts to pay
    db.conn.execute("BEGIN")
    db.conn.execute("SELECT 1 FROM roots").fetchone()
    assert rowpump.probe_for(db.conn, after=0) is None  # its snapshot began already
    db.conn.execute("COMMIT")
    memory = sqlite3.connect(":memory:")
    assert rowpump.probe_for(memory, after=0) is None
    memory.close()


def test_blocks_hold_every_id_once() -> None:
    for low, high, width in [(1, 1, 4), (1, 100, 4), (5, 5000, 16384), (-7, 9, 3), (0, 0, 1)]:
        spans = rowpump.blocks(low, high, width)
        assert spans[0][0] == -(1 << 63) and spans[-1][1] == (1 << 63) - 1
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans))
        assert all(first <= last for first, last in spans)


def test_a_block_is_read_by_its_ids_not_by_a_pass_over_the_table(tmp_path: Path) -> None:
    """A pass read in a few hundred blocks must not read the table a few hundred times."""
    db, _ = _indexed(tmp_path, 1)
    sql = rows_query(db.conn) + ROWS_SQL_TAIL
    steps = [row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql, (1, 5, 9))]
    assert len(steps) == 1 and "USING INTEGER PRIMARY KEY (rowid>" in steps[0], steps


def test_the_table_ends_are_looked_up_not_scanned(tmp_path: Path) -> None:
    """Both ends in one aggregate made SQLite read a whole index before every plan."""
    db, _ = _indexed(tmp_path, 1)
    steps = [row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + rowpump.ENDS_SQL)]
    assert not [step for step in steps if step.startswith("SCAN ") and "CONSTANT ROW" not in step]
    assert steps.count("SEARCH artifacts") == 2, steps
    low, high = db.conn.execute(rowpump.ENDS_SQL).fetchone()
    assert (low, high) == db.conn.execute("SELECT min(id), max(id) FROM artifacts").fetchone()


def test_a_helper_opens_an_index_whose_path_has_uri_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``?``, ``#``, ``%``, spaces and non-ASCII in the index's folder: the probe and the
    helper open the very file the plan reads."""
    monkeypatch.setattr(rowpump, "WAIT_FOR_HELPER", 60.0)
    odd = tmp_path / "a ?b#c %41 é"
    odd.mkdir()
    db, (root,) = _indexed(odd, 6)
    now = time.time()
    helped = make_plan(db, [root], POLICIES[1], now, pump_after=0)
    assert helped.helper_roots == [str(root)]
    _same(helped, make_plan(db, [root], POLICIES[1], now, pump_after=None))
    reader = open_db(odd / "index.db", readonly=True)  # as the explorer and the CLI open it
    try:
        read_only = make_plan(reader, [root], POLICIES[1], now, pump_after=0)
    finally:
        reader.conn.close()
    assert read_only.helper_roots == [str(root)]
    _same(read_only, helped)


def _random_rows(rng: random.Random, count: int) -> list[tuple[object, ...]]:
    """Plan rows in stretches: runs (some None), folders (some None: loose files), links,
    paths that are no UTF-8."""
    rows: list[tuple[object, ...]] = []
    while len(rows) < count:
        run_id = rng.choice([None, 1, 2, 3])
        parent = rng.choice([None, b"r/checkpoint-1", b"r/checkpoint-2/sub", b"r/checkpoint_\xff"])
        for _ in range(rng.randint(1, 5)):
            name = rng.choice([b"epoch=1.ckpt", b"model.safetensors", b"\xfe\xff.pt", b"[b]x"])
            path = (parent or b"r/checkpoints") + b"/" + name
            ftype = rng.choice([None, None, "symlink", "fifo"])
            digest = rng.choice([None, "ab" * 32])
            size, mtime = rng.randint(0, 9), rng.randint(0, 9)
            rows.append((run_id, path, size, mtime, 7, ftype, digest, parent))
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_a_plan_block_holds_every_row_once_as_the_plan_takes_them(seed: int) -> None:
    """The files' columns, read back row by row, are the rows without a folder (paths
    decoded, names their last component) in order, each stretch one run's; the folder
    rows are the others, whole and in order; and each folder stretch adds up its rows."""
    rows = _random_rows(random.Random(seed), 300)
    files, folder_rows, folders = rowpump.plan_block(rows)
    loose = [row for row in rows if row[7] is None]
    again = [
        (run_id, path.encode("utf-8", "surrogateescape"), *rest, None)
        for run_id, paths, names, *columns in files
        for path, name, *rest in zip(paths, names, *columns, strict=True)
        if name == path.rsplit("/", 1)[-1]
    ]
    assert again == loose
    assert all(a[0] != b[0] for a, b in itertools.pairwise(files))
    assert folder_rows == [row for row in rows if row[7] is not None]
    expected = [
        (run_id, parent, sum(r[2] for r in group), max(r[3] for r in group),
         any(r[5] != "symlink" for r in group))
        for (run_id, parent), stretch in itertools.groupby(folder_rows, lambda r: (r[0], r[7]))
        for group in [list(stretch)]
    ]  # fmt: skip
    assert folders == expected
    assert rowpump.plan_block([]) == ([], [], [])
