"""Retention on roots that nest (one indexed root inside another, or one folder indexed
under two names): every file is planned once, under the innermost root, by its policy,
and apply and restore move each file once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlite_utils
from test_retention_support import new_db, snapshot, write

from store.retention.drill import RemovalRefused, plan_removal
from store.retention.plan import make_plan
from store.retention.policy import from_flags
from store.retention.trash import TRASH_DIR, apply_plan, list_trash, restore
from store.scan import Indexer
from store.userstate import UserState

DAY = 86400.0
CKPTS = "lightning_logs/version_0/checkpoints"


def _run(folder: Path, size: int) -> None:
    """A Lightning run of four checkpoints, ``size`` bytes each, a day apart."""
    for epoch in range(4):
        write(folder / CKPTS / f"epoch={epoch}.ckpt", b"c" * size, age=(10 - epoch) * DAY)


def _nested(tmp_path: Path) -> tuple[Path, Path, sqlite_utils.Database]:
    outer = tmp_path / "x"
    inner = outer / "sub"
    _run(outer / "other", 100)
    _run(inner, 1000)
    db = new_db(tmp_path)
    Indexer(db, outer).scan()
    Indexer(db, inner).scan()
    return outer, inner, db


def test_an_inner_roots_files_are_planned_once_by_its_policy(tmp_path: Path) -> None:
    """Root /x and root /x/sub in one index: the files under /x/sub were planned under
    both, each root's policy deciding them again, their bytes and removals counted twice."""
    outer, inner, db = _nested(tmp_path)
    policies = {str(outer): from_flags(keep_last=3), str(inner): from_flags(keep_last=1)}
    plan = make_plan(db, [outer, inner], policies, time.time())
    removed = [(u.root, u.path) for u in plan.removals]
    assert sorted(removed) == [
        (str(outer), f"other/{CKPTS}/epoch=0.ckpt"),
        (str(inner), f"{CKPTS}/epoch=0.ckpt"),
        (str(inner), f"{CKPTS}/epoch=1.ckpt"),
        (str(inner), f"{CKPTS}/epoch=2.ckpt"),
    ]
    assert not any(u.root == str(outer) and u.path.startswith("sub/") for u in plan.items)
    assert plan.bytes_freed == 100 + 3 * 1000
    totals = {r.root: r for r in plan.roots}
    assert (totals[str(outer)].removed, totals[str(outer)].kept) == (1, 3)
    assert totals[str(outer)].total_bytes == 400  # what /x/sub holds is counted there
    assert (totals[str(inner)].removed, totals[str(inner)].bytes_removed) == (3, 3000)
    assert sum(fs.bytes_freed for fs in plan.filesystems) == 3100
    assert any(w.startswith(f"{outer}: holds the indexed root {inner}") for w in plan.warnings), (
        plan.warnings
    )
    # planned alone, the outer root still leaves the inner root's files to it, and says so
    plan = make_plan(db, [outer], policies, time.time())
    assert {u.path for u in plan.items} == {f"other/{CKPTS}/epoch={e}.ckpt" for e in range(4)}
    assert any(w.endswith("(not in this plan)") for w in plan.warnings), plan.warnings
    db.conn.close()


def test_apply_and_restore_on_nested_roots_move_each_file_once(tmp_path: Path) -> None:
    outer, inner, db = _nested(tmp_path)
    before = snapshot(outer)
    plan = make_plan(db, [outer, inner], from_flags(keep_last=1), time.time())
    assert len(plan.removals) == 6
    report = apply_plan(plan, db, settle_seconds=0)
    assert len(report.done) == 6 and not report.skipped, report.skipped
    assert sorted(e.path for e in list_trash(inner)) == [
        f"{CKPTS}/epoch={e}.ckpt" for e in range(3)
    ]
    assert sorted(e.path for e in list_trash(outer)) == [
        f"other/{CKPTS}/epoch={e}.ckpt" for e in range(3)
    ]
    assert len(restore(outer, "all", db).done) == 3
    assert len(restore(inner, "all", db).done) == 3
    after = snapshot(outer)
    assert {k: v for k, v in after.items() if TRASH_DIR not in k} == before
    db.conn.close()


def test_one_folder_indexed_under_two_names_is_planned_once(tmp_path: Path) -> None:
    """A root that is a link to another root's folder (or to a folder inside one) holds
    the same files: they are planned under the root named by the real path only."""
    outer, inner, db = _nested(tmp_path)
    link = tmp_path / "linked"
    os.symlink(inner, link)
    Indexer(db, link).scan()
    also_outer = tmp_path / "x-again"
    os.symlink(outer, also_outer)
    Indexer(db, also_outer).scan()
    plan = make_plan(db, [outer, inner, link, also_outer], from_flags(keep_last=1), time.time())
    assert sorted((u.root, u.path) for u in plan.removals) == sorted(
        [(str(outer), f"other/{CKPTS}/epoch={e}.ckpt") for e in range(3)]
        + [(str(inner), f"{CKPTS}/epoch={e}.ckpt") for e in range(3)]
    )
    assert plan.bytes_freed == 3300
    assert any(w.startswith(f"{link}: the same folder as") for w in plan.warnings)
    assert any(w.startswith(f"{also_outer}: the same folder as") for w in plan.warnings)
    db.conn.close()


def test_a_checkpoint_folder_holding_an_inner_root_is_kept(tmp_path: Path) -> None:
    """Removing a checkpoint folder that holds another indexed root would carry that root,
    its trash and manifest with it: the outer root keeps it, saying why.  A checkpoint
    folder that is an indexed root itself is that root's to plan."""
    outer = tmp_path / "x"
    run = outer / "hf"
    for step in (1, 2, 3, 4):
        write(run / f"checkpoint-{step}" / "model.safetensors", b"m" * step, age=(6 - step) * DAY)
        write(run / f"checkpoint-{step}" / "trainer_state.json", b"{}", age=(6 - step) * DAY)
    write(run / "checkpoint-1" / "samples" / "out.txt", b"s", age=6 * DAY)
    write(run / "config.json", b"{}", age=DAY)
    db = new_db(tmp_path)
    Indexer(db, outer).scan()
    Indexer(db, run / "checkpoint-1" / "samples").scan()
    Indexer(db, run / "checkpoint-2").scan()
    plan = make_plan(db, [outer], from_flags(keep_last=1), time.time())
    decided = {u.path: (u.keep, u.reasons) for u in plan.items}
    assert decided == {
        "hf/checkpoint-1": (True, [f"holds the indexed root {run / 'checkpoint-1' / 'samples'}"]),
        "hf/checkpoint-3": (False, ["kept by no rule"]),
        "hf/checkpoint-4": (True, ["latest 1"]),
    }
    db.conn.close()


def test_a_pin_made_in_one_root_keeps_the_file_in_a_root_that_nests(tmp_path: Path) -> None:
    """A file pinned while only /x was indexed (the pin is /x's) was removed by the plan
    of /x/sub once that was indexed too, and apply trashed it: a pin protects the file
    whichever root holds it, in the plan and again when the plan is applied."""
    outer, inner, db = _nested(tmp_path)
    pinned = f"{CKPTS}/epoch=0.ckpt"
    with UserState(tmp_path / "state.db") as state:
        state.pin(outer, f"sub/{pinned}")
        plan = make_plan(db, [outer, inner], from_flags(keep_last=1), time.time(), state)
        decided = {(u.root, u.path): (u.keep, u.reasons) for u in plan.items}
        assert decided[(str(inner), pinned)] == (True, ["pinned"])
        # a plan made before the pin is applied after it: the pin still keeps the file
        stale = make_plan(db, [outer, inner], from_flags(keep_last=1), time.time())
        assert (str(inner), pinned) in {(u.root, u.path) for u in stale.removals}
        report = apply_plan(stale, db, settle_seconds=0, pins=state)
        assert [(r.path, r.reason) for r in report.skipped] == [
            (pinned, "pinned; retention never removes it")
        ]
        assert (inner / pinned).exists()
        # and the other way round: a pin made in the inner root keeps its folder in the
        # outer root (trashing sub/lightning_logs from /x, as the disk-usage view can)
        state.unpin(outer, f"sub/{pinned}")
        state.pin(inner, pinned)
        whole = plan_removal(db, str(outer), "sub/lightning_logs")
        report = apply_plan(whole, db, settle_seconds=0, pins=state)
        assert not report.done and "is pinned" in report.skipped[0].reason
        assert (inner / pinned).exists()
    db.conn.close()


def _cli(db: Path, *args: str) -> str:
    from click.testing import CliRunner

    from tui.cli import main

    out = CliRunner().invoke(main, [*args, "--db", str(db)], catch_exceptions=False)
    assert out.exit_code == 0, (args, out.output)
    return out.output


def _index_rows(
    db_path: Path,
) -> dict[str, tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """Each root's artifact rows (path, size, mtime_ns, inode, ftype, kind, its run's path)
    and runs (path, size, files), as a fresh index would compare."""
    db = sqlite_utils.Database(db_path)
    found = {}
    for root_id, root in db.conn.execute("SELECT id, path FROM roots"):
        rows = db.conn.execute(
            "SELECT a.path, a.size, a.mtime_ns, a.inode, a.ftype, a.kind, r.path FROM artifacts a"
            " LEFT JOIN runs r ON r.id = a.run_id WHERE a.root_id = ? ORDER BY a.path",
            (root_id,),
        ).fetchall()
        runs = db.conn.execute(
            "SELECT path, size_bytes, n_artifacts FROM runs WHERE root_id = ? ORDER BY path",
            (root_id,),
        ).fetchall()
        found[os.fsdecode(bytes(root))] = ([tuple(r) for r in rows], [tuple(r) for r in runs])
    db.conn.close()
    return found


def _as_fresh(tmp_path: Path, db: Path, roots: list[Path], name: str) -> None:
    """The index ``db`` holds what a fresh ``artlens index`` of ``roots`` finds, root by
    root: rows, sizes, runs and their totals."""
    fresh = tmp_path / f"fresh-{name}.db"
    _cli(fresh, "index", *map(str, roots))
    assert _index_rows(db) == _index_rows(fresh)


@pytest.mark.parametrize("linked", [None, "x/sub", "x"])
def test_apply_and_restore_keep_every_root_that_holds_the_files_as_fresh(
    tmp_path: Path, isolated_cache: Path, linked: str | None
) -> None:
    """Apply moved files of /x/sub to its trash and took them out of /x/sub's index
    only: /x (and a root that is a link to /x/sub) still held their rows, so `du` and
    the runs of /x counted the trashed files until the next index; restore put them back
    in /x/sub's rows only.  Every root that holds them follows, as a fresh index would."""
    outer = tmp_path / "x"
    inner = outer / "sub"
    _run(outer / "other", 100)
    _run(inner, 1000)
    roots = [outer, inner]
    if linked is not None:  # one folder indexed under two names
        os.symlink(tmp_path / linked, tmp_path / "linked")
        roots.append(tmp_path / "linked")
    db = tmp_path / "i.db"
    _cli(db, "index", *map(str, roots))
    _as_fresh(tmp_path, db, roots, "before")
    _cli(db, "retention", "apply", "--keep-last", "1", "--yes")
    assert sorted(e.path for e in list_trash(inner)) == [
        f"{CKPTS}/epoch={e}.ckpt" for e in range(3)
    ]
    rows = _index_rows(db)
    assert [r[0] for r in rows[str(outer)][0]] == [
        f"other/{CKPTS}/epoch=3.ckpt".encode(),
        f"sub/{CKPTS}/epoch=3.ckpt".encode(),
    ]
    _as_fresh(tmp_path, db, roots, "applied")
    _cli(db, "trash", "restore", "--all")
    assert not list_trash(inner) and not list_trash(outer)
    _as_fresh(tmp_path, db, roots, "restored")


def test_a_file_of_an_inner_root_trashed_from_the_outer_root_leaves_both(
    tmp_path: Path,
) -> None:
    """The disk-usage view trashes a file of /x/sub from /x: /x/sub's rows follow."""
    outer, inner, db = _nested(tmp_path)
    apply_plan(plan_removal(db, str(outer), f"sub/{CKPTS}"), db, settle_seconds=0)
    held = {
        bytes(p)
        for (p,) in db.conn.execute(
            "SELECT a.path FROM artifacts a JOIN roots r ON r.id = a.root_id WHERE r.path = ?",
            (os.fsencode(str(inner)),),
        )
    }
    assert held == set()
    assert restore(outer, "all", db).done
    held = db.conn.execute(
        "SELECT count(*), sum(a.size) FROM artifacts a JOIN roots r ON r.id = a.root_id"
        " WHERE r.path = ?",
        (os.fsencode(str(inner)),),
    ).fetchone()
    assert tuple(held) == (4, 4000)
    sizes = db.conn.execute(
        "SELECT n.n_artifacts, n.size_bytes FROM runs n JOIN roots r ON r.id = n.root_id"
        " WHERE r.path = ?",
        (os.fsencode(str(inner)),),
    ).fetchall()
    assert [tuple(s) for s in sizes] == [(4, 4000)]
    db.conn.close()


def test_the_disk_usage_view_never_trashes_another_indexed_root(tmp_path: Path) -> None:
    """A folder that is, or holds, another indexed root is that root's: trashing it whole
    from the outer root would move the other root (and its own trash) away under it."""
    outer, inner, db = _nested(tmp_path)
    with pytest.raises(RemovalRefused, match="sub is or holds the indexed root"):
        plan_removal(db, str(outer), "sub")
    (outer / "deeper").mkdir()
    os.rename(inner, outer / "deeper" / "sub")
    (tmp_path / "two").mkdir()
    other = new_db(tmp_path / "two")
    Indexer(other, outer).scan()
    Indexer(other, outer / "deeper" / "sub").scan()
    with pytest.raises(RemovalRefused, match="deeper is or holds the indexed root"):
        plan_removal(other, str(outer), "deeper")
    # what lies inside the inner root may still be chosen from the outer one
    chosen = f"deeper/sub/{CKPTS}/epoch=0.ckpt"
    assert [u.path for u in plan_removal(other, str(outer), chosen).removals] == [chosen]


@pytest.mark.parametrize("outer_policy", ["pins", "broken"])
def test_an_outer_roots_policy_pins_keep_its_files_when_only_the_inner_root_is_planned(
    tmp_path: Path, outer_policy: str
) -> None:
    """/x's ``.artlens.toml`` pins ``sub/**/epoch=0.ckpt``: planned with /x, /x/sub keeps
    that file; planned alone (``artlens retention plan /x/sub``), the outer root's policy
    was never read and the pinned checkpoint was removed.  An outer policy file that
    cannot be read leaves its pins unknown: the files it holds are kept, with a warning."""
    from store.retention import service

    outer, inner, db = _nested(tmp_path)
    (inner / ".artlens.toml").write_text("[retention]\nkeep_last = 1\n")
    (outer / ".artlens.toml").write_text(
        '[retention]\nkeep_last = 1\npin = ["sub/**/epoch=0.ckpt"]\n'
        if outer_policy == "pins"
        else "[retention\nkeep_last = 1\n"
    )
    pinned = f"{CKPTS}/epoch=0.ckpt"
    for chosen in ([str(outer), str(inner)], [str(inner)]):
        planned = service.make(db, chosen)
        decided = {(u.root, u.path): u.keep for u in planned.plan.items}
        if outer_policy == "pins":
            assert decided[(str(inner), pinned)] is True, chosen
            assert decided[(str(inner), f"{CKPTS}/epoch=1.ckpt")] is False, chosen
        else:
            assert all(keep for (root, _), keep in decided.items() if root == str(inner))
            assert any(str(outer) in w and "kept" in w for w in planned.plan.warnings), (
                planned.plan.warnings
            )
    db.conn.close()
