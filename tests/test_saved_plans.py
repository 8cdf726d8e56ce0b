"""artlens's own plans folder stays bounded: every dry run saves a plan there (100 MB over
a million artifacts), so the older ones go, and nothing else in the folder is touched."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from test_plan_saving import plans_here
from test_retention_support import index_tree, new_db, write

from store.retention import saved_plans
from store.retention.plan import Plan, load_plan, make_plan
from store.retention.policy import from_flags
from tui.cli import main as cli

DAY = 86400.0
__all__ = ["plans_here"]  # its fixture: every plan here is saved under tmp_path


def _plan(tmp_path: Path) -> tuple[sqlite_utils.Database, Plan]:
    root = tmp_path / "root"
    for step in range(1, 6):
        write(root / "a" / f"step_{step}.pt", b"w" * step, age=(10 - step) * DAY)
    db = new_db(tmp_path)
    index_tree(db, root, {"a": ("generic", "finished")})
    return db, make_plan(db, [root], from_flags(keep_last=2), time.time())


def _old_plans(folder: Path, count: int, size: int = 10) -> list[str]:
    """``count`` plans as artlens names them, the first the oldest, all older than now."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"2026010{1 + i % 9}-0000{i % 10}0-{i:08x}.json"
        path = folder / name
        path.write_bytes(b"{" + b" " * (size - 2) + b"}")
        age = (count - i) * 3600.0 + DAY
        os.utime(path, (time.time() - age, time.time() - age))
        names.append(name)
    return names


def test_older_plans_past_the_newest_are_removed_and_nothing_else(
    tmp_path: Path, plans_here: Path
) -> None:
    old = _old_plans(plans_here, saved_plans.KEEP_PLANS + 5)
    outside = tmp_path / "outside.json"
    outside.write_text("keep me")
    # named like plans, but not plans artlens wrote: a link, a folder, a FIFO
    os.symlink(outside, plans_here / "20260101-000000-ffffffff.json")
    (plans_here / "20260101-000000-eeeeeeee.json").mkdir()
    os.mkfifo(plans_here / "20260101-000000-dddddddd.json")
    (plans_here / "notes.txt").write_text("mine")
    (plans_here / "my-plan.json").write_text("{}")  # a name artlens never gives
    db, plan = _plan(tmp_path)
    saved = plan.save()
    assert saved == plans_here / f"{plan.id}.json"
    left = set(os.listdir(plans_here))
    newest_old = set(old[-(saved_plans.KEEP_PLANS - 1) :])
    assert {n for n in old if n in left} == newest_old  # the new plan counts among the 20
    for name in (
        saved.name,
        "20260101-000000-ffffffff.json",
        "20260101-000000-eeeeeeee.json",
        "20260101-000000-dddddddd.json",
        "notes.txt",
        "my-plan.json",
    ):
        assert name in left
    assert outside.read_text() == "keep me"
    assert load_plan(saved).id == plan.id
    db.conn.close()


def test_the_byte_cap_keeps_the_plan_just_saved_whatever_its_size(
    tmp_path: Path, plans_here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _old_plans(plans_here, 4, size=1000)
    db, plan = _plan(tmp_path)
    monkeypatch.setattr(saved_plans, "KEEP_BYTES", 1)  # smaller than any plan
    saved = plan.save()
    assert os.listdir(plans_here) == [saved.name]
    monkeypatch.setattr(saved_plans, "KEEP_BYTES", saved.stat().st_size + 2500)
    saved.unlink()
    old = _old_plans(plans_here, 4, size=1000)
    again = plan.save(plans_here / "20991231-235959-0000000a.json")
    left = sorted(os.listdir(plans_here))
    # the newest plans that fit beside the one saved: two of the four, and the last plan
    assert left == sorted([again.name, old[-1], old[-2]])
    db.conn.close()


def test_stale_temporary_files_of_a_dead_save_go_and_fresh_ones_stay(
    tmp_path: Path, plans_here: Path
) -> None:
    plans_here.mkdir(parents=True)
    stale = plans_here / ".20260101-000000-00000001.json.0123456789ab.tmp"
    fresh = plans_here / ".20260101-000000-00000002.json.0123456789ab.tmp"
    for path in (stale, fresh):
        path.write_text("{")
    old = time.time() - 2 * DAY
    os.utime(stale, (old, old))
    db, plan = _plan(tmp_path)
    plan.save()
    assert not stale.exists() and fresh.exists()
    db.conn.close()


def test_a_plan_saved_elsewhere_prunes_nothing(tmp_path: Path, plans_here: Path) -> None:
    old = _old_plans(plans_here, saved_plans.KEEP_PLANS + 3)
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    extra = _old_plans(elsewhere, saved_plans.KEEP_PLANS + 3)
    db, plan = _plan(tmp_path)
    plan.save(elsewhere / f"{plan.id}.json")
    assert sorted(os.listdir(plans_here)) == sorted(old)
    assert sorted(os.listdir(elsewhere)) == sorted([*extra, f"{plan.id}.json"])
    db.conn.close()


def test_a_plans_folder_that_is_a_link_is_not_pruned(tmp_path: Path) -> None:
    real = tmp_path / "real"
    old = _old_plans(real, saved_plans.KEEP_PLANS + 3)
    link = tmp_path / "link"
    os.symlink(real, link)
    assert saved_plans.prune(link, "none.json") == []
    assert sorted(os.listdir(real)) == sorted(old)


def test_applying_a_pruned_plan_says_plans_are_pruned(tmp_path: Path, plans_here: Path) -> None:
    db, _ = _plan(tmp_path)
    db_path = Path(db.conn.execute("PRAGMA database_list").fetchone()[2])
    db.conn.close()
    result = CliRunner().invoke(
        cli, ["retention", "apply", "20260101-000000-00000001", "--db", str(db_path)]
    )
    assert result.exit_code != 0
    assert "no saved plan 20260101-000000-00000001" in result.output
    assert f"the {saved_plans.KEEP_PLANS} newest plans are kept" in result.output
