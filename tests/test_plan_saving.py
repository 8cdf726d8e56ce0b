"""A plan saved in a forked child while the command prints it is the plan, saved whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils
from test_retention_support import index_tree, new_db, write

from store import forked
from store.retention.plan import Plan, PlanError, load_plan, make_plan
from store.retention.policy import from_flags
from store.retention.saving import saved_meanwhile

DAY = 86400.0


@pytest.fixture(autouse=True)
def plans_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    return tmp_path / "xdg-state" / "artlens" / "plans"


def _plan(tmp_path: Path) -> tuple[sqlite_utils.Database, Plan]:
    root = tmp_path / "root"
    for run in ("a", "b"):
        for step in range(1, 6):
            write(root / run / f"step_{step}.pt", b"w" * step, age=(10 - step) * DAY)
    db = new_db(tmp_path)
    index_tree(db, root, {"a": ("generic", "finished"), "b": ("generic", "finished")})
    return db, make_plan(db, [root], from_flags(keep_last=2), time.time())


def _saved_fields(plan: Plan, path: Path) -> dict[str, list[tuple[str, int, int, int]]]:
    """What a saved plan holds, with the plan made here beside it."""
    loaded = load_plan(path)
    assert loaded.id == plan.id
    return {
        "removed": sorted((u.path, u.size, u.mtime_ns, u.inode) for u in loaded.removals),
        "wanted": sorted((u.path, u.size, u.mtime_ns, u.inode) for u in plan.removals),
    }


@pytest.mark.parametrize("fork", ["1", "0"])
def test_the_plan_is_saved_while_the_body_runs_and_waited_for(
    tmp_path: Path, plans_here: Path, monkeypatch: pytest.MonkeyPatch, fork: str
) -> None:
    monkeypatch.setenv("ARTLENS_NO_FORK", "0" if fork == "1" else "1")
    if fork == "1" and not forked.can_fork():
        pytest.skip("no fork here (not Linux, one core, or a thread running)")
    db, plan = _plan(tmp_path)
    with saved_meanwhile(plan) as path:
        assert plan.path == path == plans_here / f"{plan.id}.json"
        if fork == "1":  # the child writes it while this body still runs
            deadline = time.monotonic() + 60
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert path.exists()
        else:
            assert not path.exists()
    assert path.is_file()
    fields = _saved_fields(plan, path)
    assert fields["removed"] == fields["wanted"] and len(fields["removed"]) == 6
    copy = tmp_path / "copy.json"
    plan.save(copy)
    assert json.loads(path.read_bytes()) == json.loads(copy.read_bytes())
    db.conn.close()


_IN_A_FRESH_PROCESS = """
import json, sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[2], sys.argv[3]]
from test_plan_saving import _plan, _saved_fields
from store import forked
from store.retention.saving import saved_meanwhile
tmp = Path(sys.argv[1])
assert forked.can_fork(), "a fresh process of one thread forks"
db, plan = _plan(tmp)
with saved_meanwhile(plan) as path:
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    during = path.exists()
fields = _saved_fields(plan, path)
copy = tmp / "copy.json"
plan.save(copy)
same = json.loads(path.read_bytes()) == json.loads(copy.read_bytes())
print(json.dumps({"during": during, "same": same, "removed": len(fields["removed"]),
                  "match": fields["removed"] == fields["wanted"]}))
"""


def test_a_fresh_process_saves_in_its_child_while_the_body_runs(tmp_path: Path) -> None:
    """The forked save, where the suite's own threads (object-store servers) would stop a
    fork in this process: a new interpreter of one thread, as a command is."""
    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2:
        pytest.skip("forked helpers run on Linux with two cores or more")
    tests = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if k != "ARTLENS_NO_FORK"}
    done = subprocess.run(
        [sys.executable, "-c", _IN_A_FRESH_PROCESS, str(tmp_path), str(tests), str(tests.parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"during": True, "same": True, "removed": 6, "match": True}


def test_a_body_that_fails_still_leaves_the_plan_saved(tmp_path: Path) -> None:
    """``artlens retention plan | head``: the id was printed, the pipe closed."""
    db, plan = _plan(tmp_path)
    with pytest.raises(BrokenPipeError), saved_meanwhile(plan) as path:
        raise BrokenPipeError
    fields = _saved_fields(plan, path)
    assert fields["removed"] == fields["wanted"]
    db.conn.close()


def test_an_interrupt_stops_the_save(tmp_path: Path, plans_here: Path) -> None:
    db, plan = _plan(tmp_path)
    with pytest.raises(KeyboardInterrupt), saved_meanwhile(plan):
        raise KeyboardInterrupt
    assert not (plans_here / f"{plan.id}.json").exists()
    db.conn.close()


@pytest.mark.parametrize("fork", ["1", "0"])
def test_a_plan_that_cannot_be_saved_fails_after_the_body(
    tmp_path: Path, plans_here: Path, monkeypatch: pytest.MonkeyPatch, fork: str
) -> None:
    monkeypatch.setenv("ARTLENS_NO_FORK", "0" if fork == "1" else "1")
    db, plan = _plan(tmp_path)
    plans_here.parent.mkdir(parents=True)
    plans_here.write_text("a file where the plans folder goes")
    ran = False
    with pytest.raises(PlanError, match="cannot save plan"), saved_meanwhile(plan):
        ran = True
    assert ran
    db.conn.close()
