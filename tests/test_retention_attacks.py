"""The trash as an attacker with write access to the root would try to turn it: tampered
manifest fields, planted intent lines, symlinked trash and batch folders, a symlink flipped
while apply runs.  Each test checks that everything outside the root is byte-identical
afterwards, that nothing from outside moved in, and that no traceback escapes."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from test_retention_support import index_tree, new_db, snapshot, write

from store.retention.plan import Plan, make_plan
from store.retention.policy import from_flags
from store.retention.trash import (
    TRASH_DIR,
    TrashRefused,
    apply_plan,
    list_trash,
    purge,
    read_manifest_checked,
    recover,
    restore,
)

REPO = Path(__file__).resolve().parents[1]
RUN = "run"
BATCH = "20260101-000000-0123abcd"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = new_db(tmp_path)
    yield database
    database.conn.close()


def _outside(tmp_path: Path) -> Path:
    """Files the attacker wants artlens to delete or pull in: outside every root."""
    outside = tmp_path / "outside"
    write(outside / "precious.ckpt", b"precious bytes", age=99999.0)
    write(outside / "folder" / "weights.bin", b"more precious bytes", age=99999.0)
    write(outside / "step_1.pt", b"an outside file named like a checkpoint", age=99999.0)
    return outside


def _steps(root: Path, n: int) -> None:
    for step in range(1, n + 1):
        write(root / RUN / f"step_{step}.pt", os.urandom(64), age=3600.0 + (n - step))


def _trashed_root(tmp_path: Path, db: sqlite_utils.Database) -> Path:
    root = tmp_path / "root"
    _steps(root, 3)
    index_tree(db, root, {RUN: ("generic", "finished")})
    report = apply_plan(make_plan(db, [root], from_flags(keep_last=1), time.time()), db)
    assert len(report.done) == 2
    return root


def _plant(root: Path, *records: dict[str, object]) -> None:
    with open(root / TRASH_DIR / "manifest.jsonl", "a") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")


def _intent(path: str, trash: str, *, batch: str = BATCH, is_dir: bool = True) -> dict[str, object]:
    return {
        "op": "intent",
        "id": uuid.uuid4().hex,
        "batch": batch,
        "ts": 1.0,
        "path": path,
        "trash": trash,
        "is_dir": is_dir,
        "size": 1,
    }


def _tampered_lines(outside: Path) -> list[dict[str, object]]:
    """Trashed entries whose fields point outside, by ``..`` and by absolute paths."""
    cases = [
        ("run/x", f"{TRASH_DIR}/../../outside/folder", BATCH),
        ("run/x", str(outside / "folder"), BATCH),
        ("../outside/precious.ckpt", f"{TRASH_DIR}/{BATCH}/../outside/precious.ckpt", BATCH),
        (str(outside / "precious.ckpt"), f"{TRASH_DIR}/{BATCH}{outside}/precious.ckpt", BATCH),
        ("run/x", f"{TRASH_DIR}/../outside/run/x", ".."),
        ("run/./x", f"{TRASH_DIR}/{BATCH}/run/./x", BATCH),
        ("precious.ckpt", f"{TRASH_DIR}/outside/precious.ckpt", "outside"),
    ]
    lines: list[dict[str, object]] = []
    for path, trash, batch in cases:
        line = _intent(path, trash, batch=batch)
        lines += [line, {"op": "done", "id": line["id"], "ts": 1.0}]
    return lines


def test_tampered_fields_purge_and_restore_touch_nothing_outside(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    outside = _outside(tmp_path)
    root = _trashed_root(tmp_path, db)
    before_outside = snapshot(outside)
    _plant(root, *_tampered_lines(outside))
    entries, problems = read_manifest_checked(str(root))
    assert len(entries) == 2  # the two honest entries only
    assert len(problems) == 14 and all(" line " in p and p.endswith("skipped") for p in problems)
    restored = restore(root, "all", db)
    assert len(restored.done) == 2 and not restored.skipped
    assert any("line 5:" in w for w in restored.warnings)
    apply_plan(make_plan(db, [root], from_flags(keep_last=1), time.time()), db)
    report = purge(root, 0, db, now=time.time() + 10)
    assert snapshot(outside) == before_outside
    assert {p.name for p in root.iterdir()} == {RUN, TRASH_DIR}
    assert all(i.outcome == "purged" for i in report.done)


def test_restore_never_pulls_a_file_in_from_outside(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    outside = _outside(tmp_path)
    root = _trashed_root(tmp_path, db)
    before_outside, before_root = snapshot(outside), snapshot(root)
    line = _intent("run/stolen.ckpt", str(outside / "precious.ckpt"), is_dir=False)
    line2 = _intent("run/stolen2.ckpt", f"{TRASH_DIR}/../../outside/precious.ckpt", is_dir=False)
    _plant(root, line, line2, {"op": "done", "id": line["id"]}, {"op": "done", "id": line2["id"]})
    report = restore(root, [str(line["id"]), str(line2["id"])], db)
    assert not report.done
    assert snapshot(outside) == before_outside
    assert not (root / RUN / "stolen.ckpt").exists() and not (root / RUN / "stolen2.ckpt").exists()
    assert snapshot(root).keys() - before_root.keys() <= {"audit.jsonl"}


def test_planted_intent_and_purge_intent_lines_cannot_point_outside(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    outside = _outside(tmp_path)
    root = _trashed_root(tmp_path, db)
    honest = list_trash(root)[0]
    before_outside = snapshot(outside)
    bad = _intent("../outside/folder", f"{TRASH_DIR}/{BATCH}/../outside/folder")
    bad_abs = _intent("run/y", str(outside))
    _plant(
        root,
        bad,  # pending: recovery would "finish the move" by deleting the original
        bad_abs,
        {"op": "purge-intent", "id": bad_abs["id"], "ts": 1.0},
        {"op": "purge-intent", "id": "../../outside", "ts": 1.0},
        {"op": "restore-intent", "id": bad["id"], "ts": 1.0},
    )
    # an unrelated restore, then an honest apply and a purge: each recovers first
    restore(root, [honest.id], db)
    apply_plan(make_plan(db, [root], from_flags(keep_last=1), time.time()), db)
    purge(root, 0, db, now=time.time() + 10)
    recover(root, db)
    assert snapshot(outside) == before_outside


def test_a_planted_intent_with_a_decoy_in_the_trash_deletes_nothing(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """Both in place and in the trash: recovery removes the original only when it is the
    file the intent named and the trash copy is byte-identical."""
    root = _trashed_root(tmp_path, db)
    keep = root / RUN / "step_3.pt"
    original = keep.read_bytes()
    write(root / TRASH_DIR / BATCH / RUN / "step_3.pt", b"decoy")
    _plant(root, _intent("run/step_3.pt", f"{TRASH_DIR}/{BATCH}/run/step_3.pt", is_dir=False))
    settled = recover(root, db)
    assert [e.state for e in settled] == ["dropped"]
    assert keep.read_bytes() == original


def test_a_symlinked_trash_folder_is_refused(tmp_path: Path, db: sqlite_utils.Database) -> None:
    outside = _outside(tmp_path)
    root = tmp_path / "root"
    _steps(root, 3)
    os.symlink(outside, root / TRASH_DIR)
    before_outside, before_root = snapshot(outside), snapshot(root)
    index_tree(db, root, {RUN: ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    with pytest.raises(TrashRefused, match="is a symlink"):
        apply_plan(plan, db)
    with pytest.raises(TrashRefused):
        restore(root, "all", db)
    with pytest.raises(TrashRefused):
        purge(root, 0, db)
    assert snapshot(outside) == before_outside and snapshot(root) == before_root


def test_a_symlinked_batch_folder_is_never_purged_through(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    outside = _outside(tmp_path)
    (outside / RUN).mkdir()
    write(outside / RUN / "step_1.pt", b"outside, named like the trashed file", age=9999.0)
    root = _trashed_root(tmp_path, db)
    before_outside = snapshot(outside)
    (entry, *_) = list_trash(root)
    batch = root / TRASH_DIR / entry.batch
    batch.rename(root / "moved-away")
    os.symlink(outside, batch)
    report = purge(root, 0, db, now=time.time() + 10)
    assert not report.done and report.skipped
    assert all("symlink" in s.reason for s in report.skipped)
    back = restore(root, "all", db)
    assert not back.done
    assert snapshot(outside) == before_outside


def test_the_cli_says_one_line_and_exits_2_on_a_symlinked_trash(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from tui.cli import main

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    outside = _outside(tmp_path)
    root = tmp_path / "root"
    _steps(root, 3)
    dbp = str(tmp_path / "i.db")
    assert CliRunner().invoke(main, ["index", str(root), "--db", dbp]).exit_code == 0
    os.symlink(outside, root / TRASH_DIR)
    before = snapshot(outside)
    for args in (
        ["retention", "apply", "--keep-last", "1", "--yes"],
        ["trash", "purge", "--older-than", "0", "--yes"],
        ["trash", "restore", "--all"],
        ["trash", "list"],
    ):
        out = CliRunner().invoke(main, [*args, "--db", dbp])
        assert out.exit_code == 2, (args, out.output)
        assert out.stderr.count("\n") == 1 and "is a symlink" in out.stderr, out.stderr
        assert out.exception is None or isinstance(out.exception, SystemExit)
    assert snapshot(outside) == before


def test_a_same_size_rewrite_with_its_mtime_put_back_is_skipped(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    _steps(root, 3)
    index_tree(db, root, {RUN: ("generic", "finished")})
    plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
    target = root / RUN / "step_1.pt"
    st = os.stat(target)
    time.sleep(0.02)  # ctime must move past the plan's creation on a coarse clock
    fd = os.open(target, os.O_WRONLY)
    os.pwrite(fd, b"X" * st.st_size, 0)  # same size, same inode
    os.close(fd)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back
    report = apply_plan(plan, db)
    assert {s.path: s.reason for s in report.skipped} == {
        "run/step_1.pt": "changed since the plan (ctime of 'run/step_1.pt' is after the plan)"
    }
    assert target.read_bytes() == b"X" * st.st_size


def _flip_race(tmp_path: Path, rounds: int) -> tuple[int, int]:
    """Apply while another thread swaps the run folder for a symlink to an outside folder
    holding same-named checkpoints; returns (rounds run, outside items moved)."""
    outside_moved = interfered = 0
    for n in range(rounds):
        base = tmp_path / f"r{n}"
        root = base / "root"
        outside = base / "outside"
        for step in range(1, 7):
            write(outside / f"step_{step}.pt", b"outside %d" % step, age=9999.0)
        _steps(root, 6)
        db = new_db(base)
        index_tree(db, root, {RUN: ("generic", "finished")})
        plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
        before = snapshot(outside)
        stop = threading.Event()

        def flip(root: Path = root, outside: Path = outside, stop: threading.Event = stop) -> None:
            real, link = root / RUN, root / "run.real"
            while not stop.is_set():
                try:
                    os.rename(real, link)
                    os.symlink(outside, real)
                    os.unlink(real)
                    os.rename(link, real)
                except OSError:
                    pass

        flipper = threading.Thread(target=flip)
        flipper.start()
        try:
            report = apply_plan(plan, db, settle_seconds=0)
            interfered += any("symlink" in item.reason for item in report.skipped)
        finally:
            stop.set()
            flipper.join()
            db.conn.close()
        after = snapshot(outside)
        outside_moved += sum(1 for k, v in before.items() if after.get(k) != v)
        assert set(after) == set(before)
        trashed = [p for p in (root / TRASH_DIR).rglob("*.pt") if b"outside" in p.read_bytes()]
        outside_moved += len(trashed)
    print(f"symlink-flip race: the flip hit apply in {interfered} of {rounds} rounds")
    return rounds, outside_moved


def test_a_symlink_flip_racing_apply_moves_nothing_from_outside(tmp_path: Path) -> None:
    rounds, moved = _flip_race(tmp_path, 50)
    assert (rounds, moved) == (50, 0)


@pytest.mark.slow
def test_a_symlink_flip_racing_apply_1000_rounds(tmp_path: Path) -> None:
    rounds, moved = _flip_race(tmp_path, 1000)
    print(f"symlink-flip race: {rounds} apply attempts, {moved} outside items moved")
    assert (rounds, moved) == (1000, 0)


def test_an_unclean_plan_path_is_skipped(tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    root = tmp_path / "root"
    (root / RUN).mkdir(parents=True)
    before = snapshot(outside)
    from store.retention.candidates import Candidate

    items = [
        Candidate(str(root), 1, RUN, "generic", False, p, True, 1, 0, 0, "dir", None, keep=False)
        for p in ("../outside/folder", str(outside / "folder"), f"{TRASH_DIR}/x", "run/../..")
    ]
    report = apply_plan(Plan("p-1", time.time(), 0, items), None)
    assert len(report.skipped) == 4 and not report.done
    assert snapshot(outside) == before


def test_a_trash_folder_of_another_user_is_refused(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """Another user could have planted anything in it (runs as root in CI: 65534 owns it)."""
    if os.geteuid() == 65534:
        pytest.skip("runs as the user the planted trash belongs to")
    root = _trashed_root(tmp_path, db)
    os.chown(root / TRASH_DIR, 65534, 65534)
    before = snapshot(root)
    with pytest.raises(TrashRefused, match="belongs to uid 65534"):
        restore(root, "all", db)
    with pytest.raises(TrashRefused):
        purge(root, 0, db, now=time.time() + 10)
    with pytest.raises(TrashRefused):
        list_trash(root)
    assert snapshot(root) == before


def test_a_hand_added_restored_or_purged_line_hides_no_trashed_file(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """Restore and purge say so only once the item has left the trash: a line claiming it
    for a file still there is a problem line, and the file stays listed, restorable and
    purgeable.  An honest restore still leaves its entry out of the list."""
    root = _trashed_root(tmp_path, db)
    first, second = list_trash(root)
    restore(root, [first.id], db)
    assert [e.id for e in list_trash(root)] == [second.id]
    _plant(root, {"op": "restored", "id": second.id, "ts": 1.0})
    assert [e.id for e in list_trash(root)] == [second.id]
    _, problems = read_manifest_checked(str(root))
    assert problems == [
        f"{TRASH_DIR}/manifest.jsonl: {second.path} is said to be restored but is still "
        "in the trash; listed as trashed"
    ]
    _plant(root, {"op": "purged", "id": second.id, "ts": 1.0})
    report = purge(root, 0, db, now=time.time() + 10)
    assert [d.path for d in report.done] == [second.path]
    assert not (root / second.trash_path).exists() and list_trash(root) == []
