"""The scanner's fast paths: bulk loads, folder digests, deferred run summaries.  Each
must leave the index exactly as a plain scan would."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from store import scan
from store.index.db import open_db
from store.scan import Indexer
from tests.conftest import ground_truth


def index_rows(db: sqlite_utils.Database) -> dict[bytes, int]:
    return {bytes(p): s for p, s in db.execute("SELECT path, size FROM artifacts")}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "index.db")
    yield database
    database.close()


def make_runs(root: Path, runs: int = 3, files: int = 40) -> None:
    for r in range(runs):
        run = root / "lightning_logs" / f"version_{r}"
        (run / "checkpoints").mkdir(parents=True)
        (run / "hparams.yaml").write_text(f"lr: 0.01\nseed: {r}\n")
        (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n1,2,0.25\n")
        for i in range(files):
            (run / "checkpoints" / f"epoch={i}.ckpt").write_bytes(b"x" * i)
    os.symlink("lightning_logs/version_0/hparams.yaml", root / "link.yaml")


def test_bulk_load_rebuilds_the_indexes_and_matches_the_disk(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "BULK_ROWS", 10)
    root = tmp_path / "root"
    make_runs(root)
    before = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    Indexer(db, root).scan()
    after = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert after == before
    assert index_rows(db) == ground_truth(root)
    link = db.execute(
        "SELECT ftype, link_target, hash_state FROM artifacts WHERE path = ?", [b"link.yaml"]
    ).fetchone()
    assert link == ("symlink", "lightning_logs/version_0/hparams.yaml", "skipped")
    owned = db.execute("SELECT count(*) FROM artifacts WHERE run_id IS NULL").fetchone()[0]
    assert owned == 1  # only the top-level link lies outside every run


def index_identities(db: sqlite_utils.Database) -> dict[bytes, tuple[int, int, int]]:
    return {
        bytes(p): (i, s, m)
        for p, i, s, m in db.execute("SELECT path, inode, size, mtime_ns FROM artifacts")
    }


def disk_identities(root: Path) -> dict[bytes, tuple[int, int, int]]:
    found = {}
    for key in ground_truth(root):
        st = os.lstat(os.fsencode(root) + b"/" + key)
        found[key] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def statements(db: sqlite_utils.Database) -> list[str]:
    """Every SQL statement the connection runs from now on."""
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    return seen


def identity_reads(seen: list[str]) -> list[str]:
    """The conditions of the statements that read identities back from the index."""
    return [
        s.split(" AND ", 1)[1]
        for s in seen
        if s.startswith("SELECT path, inode, size, mtime_ns, dev, ftype FROM artifacts")
    ]


@pytest.fixture
def six_runs(tmp_path: Path, db: sqlite_utils.Database) -> tuple[Path, Indexer]:
    """Six Lightning runs, indexed once."""
    root = tmp_path / "root"
    make_runs(root, runs=6, files=5)
    indexer = Indexer(db, root)
    indexer.scan()
    return root, indexer


def test_a_warm_scan_reads_back_only_the_folders_that_changed(
    six_runs: tuple[Path, Indexer], db: sqlite_utils.Database
) -> None:
    root, indexer = six_runs
    assert db.execute("SELECT count(*) FROM dirs WHERE digest IS NULL").fetchone()[0] == 0
    seen = statements(db)
    report = indexer.scan()
    assert (report.added, report.changed, report.removed) == (0, 0, 0)
    assert report.unchanged == report.files == len(ground_truth(root))
    assert identity_reads(seen) == []  # every folder vouched for by its digest
    ckpt = root / "lightning_logs" / "version_4" / "checkpoints" / "epoch=3.ckpt"
    ckpt.write_bytes(b"longer than before")
    seen.clear()
    report = Indexer(db, root).scan()  # a new process: nothing remembered but the index
    assert (report.added, report.changed, report.removed) == (0, 1, 0)
    folder = os.fsencode("lightning_logs/version_4/checkpoints").hex()
    assert identity_reads(seen) == [f"parent = x'{folder}'"]
    assert index_identities(db) == disk_identities(root)


def test_folder_digests_see_renames_and_other_writers(
    tmp_path: Path, six_runs: tuple[Path, Indexer], db: sqlite_utils.Database
) -> None:
    root, indexer = six_runs
    # a rename keeps inode, size and mtime; put the folder's mtime back too
    folder = root / "lightning_logs" / "version_2" / "checkpoints"
    st = os.stat(folder)
    (folder / "epoch=1.ckpt").rename(folder / "renamed.ckpt")
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = indexer.scan()
    assert (report.added, report.removed) == (1, 1)
    assert index_identities(db) == disk_identities(root)
    # another connection deletes a row and adds one for a file that does not exist:
    # the triggers make their folders' digests forget, so the scan repairs both
    other = open_db(tmp_path / "index.db")
    with other.conn:
        other.conn.execute(
            "DELETE FROM artifacts WHERE path = ?",
            [os.fsencode("lightning_logs/version_1/metrics.csv")],
        )
        other.conn.execute(
            "INSERT INTO artifacts (root_id, path, parent, name, kind, size, mtime_ns, inode,"
            " dev, first_seen, last_seen) SELECT root_id, CAST(path || '.ghost' AS BLOB), parent,"
            " 'g', kind, 1, 1, 1, 1, 0, 0 FROM artifacts WHERE path = ?",
            [os.fsencode("lightning_logs/version_3/metrics.csv")],
        )
    forgotten = other.execute("SELECT count(*) FROM dirs WHERE digest IS NULL").fetchone()[0]
    other.close()
    assert forgotten == 2
    report = indexer.scan()
    assert (report.added, report.removed) == (1, 1)
    assert index_identities(db) == disk_identities(root)


def test_rows_in_a_folder_the_index_does_not_list_are_still_removed(
    six_runs: tuple[Path, Indexer], db: sqlite_utils.Database
) -> None:
    root, indexer = six_runs
    with db.conn:  # an orphan row: its folder has no row in dirs
        db.conn.execute(
            "INSERT INTO artifacts (root_id, path, parent, name, kind, size, mtime_ns, inode,"
            " dev, first_seen, last_seen) VALUES (?, ?, ?, 'x', 'other', 1, 1, 1, 1, 0, 0)",
            [indexer.root_id, b"nowhere/x", b"nowhere"],
        )
    report = indexer.scan()
    assert report.removed == 1
    assert index_rows(db) == ground_truth(root)


def test_deferred_summaries_are_filled_afterwards(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    make_runs(root, runs=2, files=3)
    indexer = Indexer(db, root)
    indexer.scan(defer_summaries=True)
    rows = db.execute("SELECT params, meta, n_artifacts FROM runs ORDER BY path").fetchall()
    assert [json.loads(p) for p, _, _ in rows] == [{}, {}]
    assert all(json.loads(m)["summary_pending"] for _, m, _ in rows)
    assert [n for _, _, n in rows] == [5, 5]
    # a new Indexer (another process) finishes what the scan left
    assert Indexer(db, root).fill_summaries() == 2
    rows = db.execute("SELECT params, meta, metrics FROM runs ORDER BY path").fetchall()
    assert [json.loads(p)["seed"] for p, _, _ in rows] == [0, 1]
    assert all("summary_pending" not in json.loads(m) for _, m, _ in rows)
    assert json.loads(rows[0][2])["loss"]["last"] == 0.25
    assert indexer.fill_summaries() == 0


def run_totals_by_sql(db: sqlite_utils.Database) -> dict[int, tuple[object, ...]]:
    """The oracle for a run's totals: its rows summed by SQL."""
    return {
        run_id: (size, count, newest / 1e9, oldest / 1e9)
        for run_id, size, count, newest, oldest in db.execute(
            "SELECT run_id, sum(size), count(*), max(mtime_ns), min(mtime_ns) FROM artifacts"
            " WHERE run_id IS NOT NULL GROUP BY run_id"
        )
    }


def run_totals_stored(db: sqlite_utils.Database) -> dict[int, tuple[object, ...]]:
    return {
        run_id: (size, count, last_write, started)
        for run_id, size, count, last_write, started in db.execute(
            "SELECT id, size_bytes, n_artifacts, last_write, started FROM runs"
        )
    }


def dump(db: sqlite_utils.Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row the scan writes, in id order: two equal dumps are the same index."""
    return {
        table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("roots", "artifacts", "runs", "dirs", "events")
    }


def test_a_cold_load_counts_run_totals_as_sql_sums_them(tmp_path: Path) -> None:
    """A first load counts the runs' totals while writing the rows, and the summaries
    read right after reuse them; the index must be the one summing the rows gives, and a
    write by anyone in between must send the summaries back to SQL's sums."""
    root = tmp_path / "root"
    make_runs(root, runs=4, files=7)
    run = root / "lightning_logs" / "version_2"
    os.utime(run / "hparams.yaml", ns=(1, 5_000_000_000))  # oldest file: a run's start
    dumps = []
    for name, meddle in (("reused.db", False), ("resummed.db", True)):
        db = open_db(tmp_path / name)
        indexer = Indexer(db, root, clock=lambda: 2_000_000_000.0)
        indexer.scan(defer_summaries=True)
        assert run_totals_stored(db) == run_totals_by_sql(db)
        if meddle:  # another connection moves a file out of its run
            other = open_db(tmp_path / name)
            with other.conn:
                other.conn.execute(
                    "UPDATE artifacts SET run_id = NULL WHERE path = ?",
                    [b"lightning_logs/version_2/hparams.yaml"],
                )
            other.close()
        assert indexer.fill_summaries() == 4
        assert run_totals_stored(db) == run_totals_by_sql(db)
        if meddle:
            with db.conn:  # put it back: the two indexes must now be the same
                db.conn.execute(
                    "UPDATE artifacts SET run_id = (SELECT id FROM runs WHERE path = ?)"
                    " WHERE path = ?",
                    [b"lightning_logs/version_2", b"lightning_logs/version_2/hparams.yaml"],
                )
        dumps.append(dump(db))
        db.close()
    assert dumps[0]["runs"][2][1:] != dumps[1]["runs"][2][1:]  # the meddling showed
    for table in ("roots", "artifacts", "dirs", "events"):
        assert dumps[0][table] == dumps[1][table]


def make_interleaved(root: Path) -> None:
    """Names that sort around their folders' ("a-b" < "a.b" < "a/..." < "a0"), bytes
    that are not UTF-8, markup, links, a run and files that extend a run folder's name."""
    base = os.fsencode(root)
    names = [b"a", b"a-b", b"a.b", b"a0", b"A", b"\xff", b"\xc3\xa9", b"[red]x", b"a ", b"a_"]
    for outer in names:
        os.makedirs(base + b"/" + outer)
        for suffix in (b".txt", b"-x", b"~"):
            (Path(os.fsdecode(base + b"/" + outer + suffix))).write_bytes(b"1")
        for inner in names:
            folder = base + b"/" + outer + b"/" + inner
            os.makedirs(folder)
            for i in range(2):
                Path(os.fsdecode(folder + b"/f%d.ckpt" % i)).write_bytes(b"x" * i)
    make_runs(root, runs=2, files=3)
    (root / "lightning_logs" / "version_0.txt").write_text("x")
    os.symlink("nowhere", root / "a-b" / "dangling")


def test_a_first_load_writes_the_rows_the_general_path_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first load builds its rows from the walk's per-folder lists in key order, not
    by sorting every path: the index must be the one the general path writes."""
    root = tmp_path / "root"
    make_interleaved(root)
    dumps = []
    for name, flood in (("general.db", 10**9), ("first.db", 10)):
        monkeypatch.setattr(scan, "EVENT_FLOOD", flood)  # a first load needs more files
        db = open_db(tmp_path / name)
        indexer = Indexer(db, root, clock=lambda: 2_000_000_000.0)
        report = indexer.scan(defer_summaries=True)
        assert indexer.fill_summaries() == report.runs > 2
        dumps.append(dump(db))
        db.close()
    assert report.added == len(ground_truth(root)) > 200
    general, first = dumps
    assert [kind for _, _, kind, *_ in first["events"]].count("scan") == 1
    assert len(general["events"]) > report.added
    for table in ("roots", "artifacts", "runs", "dirs"):
        assert first[table] == general[table], table


def test_a_walk_with_a_folder_no_listing_reaches_is_not_a_first_load() -> None:
    """A listing (an object store's) may hold a folder its parent's listing does not name:
    the first load, which reaches folders through the listings, would lose its files."""
    walk = scan._Walk(
        entries=[(b"f", 1, 1, 1, 1, "file"), (b"g", 2, 1, 1, 1, "file")],
        subdirs={b"": [b"a"], b"a": [], b"lost": []},
        slices={b"": (0, 0), b"a": (0, 1), b"lost": (1, 2)},
    )
    assert not walk.reaches_every_folder()
    walk.subdirs[b""].append(b"lost")
    assert walk.reaches_every_folder()
    assert [(folder, [e[0] for e in files]) for folder, files in scan._in_key_order(walk)] == [
        (b"a", [b"f"]),
        (b"lost", [b"g"]),
    ]


def test_a_first_load_finds_the_runs_holding_references_as_a_pass_over_the_rows_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first load that reads the summaries at once takes the runs holding a link or a
    ``trainer_state.json`` from its walk, not from a pass over every row: each run's
    integrity problems must be the ones the general path finds."""
    from store import runs as runs_module

    monkeypatch.setattr(runs_module, "BATCH_RUNS", 2)  # the batch path, as over many runs
    root = tmp_path / "root"
    make_runs(root, runs=6, files=3)
    logs = root / "lightning_logs"
    (logs / "version_1" / "last.ckpt").symlink_to("checkpoints/epoch=9.ckpt")  # dangling
    (logs / "version_3" / "checkpoints" / "nested").mkdir()
    (logs / "version_3" / "checkpoints" / "nested" / "best.ckpt").symlink_to("gone")
    state = {"best_model_checkpoint": "out/checkpoint-50"}  # rotated away
    (logs / "version_4" / "aaa-empty").mkdir()  # folders of no files, sorted first
    (logs / "version_4" / "checkpoints" / "a").mkdir()
    (logs / "version_4" / "checkpoints" / "trainer_state.json").write_text(json.dumps(state))
    (logs / "version_5" / "trainer_state.json").write_text(json.dumps(state))
    dumps = []
    for name, flood in (("general.db", 10**9), ("first.db", 10)):
        monkeypatch.setattr(scan, "EVENT_FLOOD", flood)
        db = open_db(tmp_path / name)
        Indexer(db, root, clock=lambda: 2_000_000_000.0).scan()
        dumps.append(dump(db))
        flagged = {
            bytes(path).decode()
            for path, meta in db.execute("SELECT path, meta FROM runs")
            if json.loads(meta or "{}").get("integrity")
        }
        assert flagged == {f"lightning_logs/version_{r}" for r in (1, 3, 4, 5)}, name
        db.close()
    general, first = dumps
    assert first["runs"] == general["runs"]


def test_an_empty_folder_listed_just_before_another_does_not_take_its_references(
    tmp_path: Path,
) -> None:
    """Folders of no files share where their files would start with the folder listed
    next: a ``trainer_state.json`` must still count for the run of the folder holding it."""
    root = tmp_path / "root"
    make_runs(root, runs=2, files=1)
    indexer = Indexer(open_db(tmp_path / "index.db"), root)
    indexer.scan()
    run = b"lightning_logs/version_0"
    entry = (b"trainer_state.json", 1, 2, 3, 4, "file")
    walk = scan._Walk(
        entries=[entry],
        slices={run: (0, 1), b"lightning_logs/zz": (0, 0), b"zz": (0, 0)},
    )
    (run_id,) = indexer.db.execute("SELECT id FROM runs WHERE path = ?", [run]).fetchone()
    assert indexer._runs_with_refs(walk) == {run_id}
    indexer.db.close()
