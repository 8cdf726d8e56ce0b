"""Apply, restore, purge and recover on real files: nothing is lost, ever."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from test_retention_support import index_tree, new_db, snapshot, write

from store import fsops
from store.retention import trash as trash_mod
from store.retention.candidates import Candidate
from store.retention.plan import Plan, PlanError, load_plan, make_plan
from store.retention.policy import from_flags
from store.retention.trash import (
    TRASH_DIR,
    TrashError,
    apply_plan,
    list_trash,
    purge,
    read_manifest,
    recover,
    restore,
)
from tests.conftest import unprivileged_python

REPO = Path(__file__).resolve().parents[1]
RUN = "run"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = new_db(tmp_path)
    yield database
    database.conn.close()


def _steps(root: Path, n: int, *, size: int = 64, run: str = RUN) -> None:
    for step in range(1, n + 1):
        write(root / run / f"step_{step}.pt", os.urandom(size), age=3600.0 + (n - step))


def _plan(
    db: sqlite_utils.Database,
    root: Path,
    keep_last: int = 1,
    runs: dict[str, tuple[str, str]] | None = None,
) -> Plan:
    index_tree(db, root, runs or {RUN: ("generic", "finished")})
    return make_plan(db, [root], from_flags(keep_last=keep_last), time.time())


def _rows(db: sqlite_utils.Database, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in db.conn.execute(sql).fetchall()]


def test_apply_then_restore_is_byte_identical(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    _steps(root, 4)
    write(root / RUN / "checkpoint-0" / "model.safetensors", os.urandom(300), age=7200.0)
    write(root / RUN / "checkpoint-0" / "trainer_state.json", b"{}", age=7200.0)
    before = snapshot(root)
    plan = _plan(db, root, keep_last=1)
    assert {u.path for u in plan.removals} == {
        "run/checkpoint-0",
        "run/step_1.pt",
        "run/step_2.pt",
        "run/step_3.pt",
    }
    seen: list[tuple[int, int, str]] = []
    report = apply_plan(
        plan, db, progress=lambda d, t, p: seen.append((d, t, p)), policy="keep_last=1"
    )
    assert len(report.done) == 4 and not report.skipped
    assert [s[:2] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert not (root / RUN / "step_1.pt").exists() and not (root / RUN / "checkpoint-0").exists()
    entries = list_trash(root)
    assert sorted(e.path for e in entries) == sorted(u.path for u in plan.removals)
    for entry in entries:
        assert entry.state == "trashed"
        assert (root / entry.trash_path).exists()
        assert entry.trash_path.startswith(f"{TRASH_DIR}/")
    # The index follows: rows gone, one action per item, one event per removed row.
    left = {bytes(r[0]) for r in db.conn.execute("SELECT path FROM artifacts").fetchall()}
    assert left == {b"run/step_4.pt"}
    assert len(_rows(db, "SELECT * FROM retention_actions WHERE action = 'trash'")) == 4
    assert len(_rows(db, "SELECT * FROM events WHERE kind = 'removed'")) == 5
    assert plan.bytes_freed == report.bytes_done

    back = restore(root, "all", db)
    assert len(back.done) == 4 and not back.skipped
    after = snapshot(root)
    assert {k: v for k, v in after.items() if not k.startswith(TRASH_DIR)} == before
    assert len(_rows(db, "SELECT * FROM artifacts")) == 6
    assert len(_rows(db, "SELECT * FROM events WHERE kind = 'added'")) == 5
    assert list_trash(root) == []


def test_restore_refuses_an_occupied_path(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    _steps(root, 2)
    apply_plan(_plan(db, root), db)
    write(root / RUN / "step_1.pt", b"a new file took the name")
    (entry,) = list_trash(root)
    report = restore(root, [entry.id], db)
    assert not report.done
    assert report.skipped[0].reason == "something now occupies the original path"
    assert (root / RUN / "step_1.pt").read_bytes() == b"a new file took the name"
    assert list_trash(root)[0].state == "trashed"


def test_purge_deletes_only_old_entries(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    _steps(root, 3)
    apply_plan(_plan(db, root), db)
    assert purge(root, older_than=3600, db=db).done == []
    report = purge(root, older_than=3600, db=db, now=time.time() + 7200)
    assert len(report.done) == 2
    assert list_trash(root) == []
    assert {e.state for e in list_trash(root, include_gone=True)} == {"purged"}
    assert sorted(p.name for p in (root / TRASH_DIR).iterdir()) == ["audit.jsonl", "manifest.jsonl"]
    assert len(_rows(db, "SELECT * FROM retention_actions WHERE action = 'purge'")) == 2


def test_a_checkpoint_named_symlink_is_never_a_unit_and_never_moved(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """Lightning's last.ckpt may be a link: it takes no keep-last slot, is never removed on
    its own, and the plan says what it points at (here: outside the root)."""
    root = tmp_path / "root"
    outside = write(tmp_path / "outside" / "precious.ckpt", b"do not touch")
    _steps(root, 2)
    os.symlink(outside, root / RUN / "step_0.ckpt")
    os.symlink("step_1.pt", root / RUN / "last.ckpt")
    os.symlink("gone.ckpt", root / RUN / "last-v1.ckpt")  # dangling
    past = time.time() - 90000
    for name in ("step_0.ckpt", "last.ckpt", "last-v1.ckpt"):
        os.utime(root / RUN / name, (past, past), follow_symlinks=False)
    plan = _plan(db, root, keep_last=1)
    assert {u.path for u in plan.removals} == {"run/step_1.pt"}
    assert [u.path for u in plan.items if u.keep] == ["run/step_2.pt"]
    notes = "\n".join(plan.links)
    assert f"run/step_0.ckpt is a symlink to {str(outside)!r}" in notes
    assert "points outside the root" in notes
    assert "run/last.ckpt is a symlink to 'step_1.pt'" in notes and "will dangle" in notes
    assert "run/last-v1.ckpt is a symlink to 'gone.ckpt'" in notes
    report = apply_plan(plan, db)
    assert [d.path for d in report.done] == ["run/step_1.pt"]
    assert outside.read_bytes() == b"do not touch"
    assert os.path.islink(root / RUN / "step_0.ckpt") and os.path.islink(root / RUN / "last.ckpt")


def test_a_path_through_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = write(tmp_path / "outside" / "step_1.pt", b"keep me")
    (root / RUN).mkdir(parents=True)
    os.symlink(tmp_path / "outside", root / RUN / "ckpts")
    st = os.lstat(outside)
    item = Candidate(
        str(root),
        1,
        RUN,
        "generic",
        False,
        "run/ckpts/step_1.pt",
        False,
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
        "file",
        None,
        keep=False,
    )
    report = apply_plan(Plan("p-1", 0, 0, [item]), None)
    assert "symlink" in report.skipped[0].reason
    assert outside.read_bytes() == b"keep me"


def test_changed_after_the_plan_is_skipped(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    _steps(root, 4)
    write(root / RUN / "checkpoint-0" / "model.bin", b"w" * 10, age=9000.0)
    plan = _plan(db, root)
    write(root / RUN / "step_1.pt", b"rewritten", age=3000.0)  # same age class, new content
    write(root / RUN / "checkpoint-0" / "extra.bin", b"new", age=9000.0)
    report = apply_plan(plan, db)
    skipped = {s.path: s.reason for s in report.skipped}
    assert skipped["run/step_1.pt"].startswith("changed since the plan")
    assert "new file" in skipped["run/checkpoint-0"]
    assert (root / RUN / "step_1.pt").read_bytes() == b"rewritten"
    assert {d.path for d in report.done} == {"run/step_2.pt", "run/step_3.pt"}


def test_a_file_being_appended_to_is_skipped(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    _steps(root, 3)
    growing = write(root / RUN / "step_0.pt", b"partial", age=None)  # written just now
    old = time.time() - 7200
    os.utime(growing, (old, old))
    plan = _plan(db, root)
    with open(growing, "ab") as out:  # the trainer keeps appending after the preview
        out.write(b" more")
    # and one written a moment ago, unchanged since the plan: still too fresh to touch
    fresh_plan_root = tmp_path / "root2"
    write(fresh_plan_root / RUN / "step_1.pt", b"a", age=7200.0)
    write(fresh_plan_root / RUN / "step_2.pt", b"b", age=1.0)
    write(fresh_plan_root / RUN / "step_3.pt", b"c", age=0.0)
    index_tree(db, fresh_plan_root, {RUN: ("generic", "finished")})
    fresh = make_plan(db, [fresh_plan_root], from_flags(keep_last=1), time.time())
    report = apply_plan(plan, db)
    assert {s.path: s.reason[:13] for s in report.skipped} == {"run/step_0.pt": "changed since"}
    report = apply_plan(fresh, db)
    assert [s.reason[:13] for s in report.skipped] == ["being written"]
    assert (fresh_plan_root / RUN / "step_2.pt").exists()


def test_pinned_items_are_not_touched(tmp_path: Path, db: sqlite_utils.Database) -> None:
    root = tmp_path / "root"
    _steps(root, 3)
    index_tree(db, root, {RUN: ("generic", "finished")})
    plan = make_plan(
        db, [root], from_flags(keep_last=1), time.time(), {str(root): {"run/step_1.pt"}}
    )
    apply_plan(plan, db)
    assert (root / RUN / "step_1.pt").exists() and not (root / RUN / "step_2.pt").exists()


def test_read_only_file_in_a_writable_folder_moves(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    root = tmp_path / "root"
    _steps(root, 2)
    (root / RUN / "step_1.pt").chmod(0o444)
    report = apply_plan(_plan(db, root), db)
    assert [d.path for d in report.done] == ["run/step_1.pt"]


def test_cross_device_move_copies_verifies_then_removes(
    tmp_path: Path, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mount inside the root makes rename fail with EXDEV (injected: CI has no mounts)."""
    root = tmp_path / "root"
    _steps(root, 2)
    write(root / RUN / "checkpoint-1" / "model.bin", os.urandom(1000), age=99999.0)
    before = snapshot(root)
    plan = _plan(db, root)
    real_rename = fsops.rename_noreplace

    def rename(src_dir: int, name: str, dst_dir: int, dst_name: str) -> None:
        if not name.endswith(trash_mod.PARTIAL_SUFFIX):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src_dir, name, dst_dir, dst_name)

    monkeypatch.setattr(fsops, "rename_noreplace", rename)
    report = apply_plan(plan, db)
    assert len(report.done) == 2
    assert {e.method for e in list_trash(root)} == {"copy"}
    monkeypatch.setattr(fsops, "rename_noreplace", real_rename)
    restore(root, "all", db)
    assert {k: v for k, v in snapshot(root).items() if not k.startswith(TRASH_DIR)} == before


def test_unwritable_root_skips_everything_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _steps(root, 2)
    (root / TRASH_DIR).write_text("a file squatting the trash name")
    db = new_db(tmp_path)
    report = apply_plan(_plan(db, root), db)
    assert not report.done and "cannot open the trash" in report.skipped[0].reason
    assert (root / RUN / "step_1.pt").exists()
    with pytest.raises(TrashError):
        restore(root, "all")
    db.conn.close()


def _setpriv() -> list[str]:
    return unprivileged_python()


def test_read_only_folder_is_skipped_not_deleted() -> None:
    """As an unprivileged user (CI runs as root, where chmod stops nothing)."""
    setpriv = _setpriv()
    base = Path(tempfile.mkdtemp(prefix="artlens-ro-"))
    try:
        base.chmod(0o755)
        root = base / "root"
        _steps(root, 3)
        write(root / "rw" / "step_1.pt", b"movable", age=9000.0)
        write(root / "rw" / "step_2.pt", b"newest", age=10.0)
        # chown changes ctime, which apply reads as "changed since the plan": the tree is
        # handed over before the plan is made
        subprocess.run(["chown", "-R", "65534:65534", str(root)], check=True)
        db = open_db_for(base)
        index_tree(db, root, {RUN: ("generic", "finished"), "rw": ("generic", "finished")})
        plan = make_plan(db, [root], from_flags(keep_last=1), time.time())
        db.conn.close()
        plan_path = plan.save(base / "plan.json")
        for path in base.iterdir():
            if path != root:
                os.chown(path, 65534, 65534)
        os.chown(base, 65534, 65534)
        (root / RUN).chmod(0o555)
        script = (
            "import json, sys\n"
            "from store.retention.plan import load_plan\n"
            "from store.retention.trash import apply_plan\n"
            "r = apply_plan(load_plan(sys.argv[1]), None)\n"
            "print(json.dumps({'done': [d.path for d in r.done],"
            " 'skipped': [[s.path, s.reason] for s in r.skipped]}))\n"
        )
        out = subprocess.run(
            [
                *setpriv,
                "-c",
                script,
                str(plan_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "HOME": str(base)},
        )
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["done"] == ["rw/step_1.pt"]
        assert sorted(p for p, _ in result["skipped"]) == ["run/step_1.pt", "run/step_2.pt"]
        assert all("permission denied" in reason for _, reason in result["skipped"])
        assert (root / RUN / "step_1.pt").exists() and (root / RUN / "step_2.pt").exists()
        # another user's trash is refused to root, so the manifest is parsed here directly
        data = (root / TRASH_DIR / "manifest.jsonl").read_bytes()
        states = sorted(e.state for e in trash_mod.parse_manifest(data, str(root))[0].values())
        assert states == ["dropped", "dropped", "trashed"]
    finally:
        (base / "root" / RUN).chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def open_db_for(base: Path) -> sqlite_utils.Database:
    from store.index.db import open_db

    return open_db(base / "index.db")


_KILL_SCRIPT = """
import sys
from store.index.db import open_db
from store.retention.plan import load_plan
from store.retention.trash import apply_plan
db = open_db(sys.argv[1])
apply_plan(load_plan(sys.argv[2]), db, settle_seconds=0)
print("finished")
"""


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sigkill_during_apply_loses_nothing(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "root"
    _steps(root, 250, size=256)
    for n in range(1, 6):
        write(root / RUN / f"checkpoint-{n}" / "model.bin", os.urandom(128), age=99999.0 - n)
        write(root / RUN / f"checkpoint-{n}" / "opt.pt", os.urandom(64), age=99999.0 - n)
    before = snapshot(root)
    db = new_db(tmp_path)
    plan = _plan(db, root)
    db.conn.close()
    plan_path = plan.save(tmp_path / "plan.json")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path / "index.db"), str(plan_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    manifest = root / TRASH_DIR / "manifest.jsonl"
    # A random moment: after some number of manifest lines (an intent or a done) appeared.
    kill_after = random.Random(seed).randrange(1, 2 * len(plan.removals) - 20)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if manifest.read_bytes().count(b"\n") >= kill_after:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL  # killed mid-apply, not finished
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]

    db = new_db(tmp_path)
    recover(root, db)
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    entries = read_manifest(str(root))
    assert all(e.state in ("trashed", "dropped") for e in entries.values())
    trashed = {e.path: e for e in entries.values() if e.state == "trashed"}
    after = snapshot(root)
    in_index = {
        os.fsdecode(bytes(r[0])) for r in db.conn.execute("SELECT path FROM artifacts").fetchall()
    }
    for rel, digest in before.items():
        unit = rel if rel.startswith(f"{RUN}/step_") else rel.rsplit("/", 1)[0]
        if unit in trashed:
            moved = f"{trashed[unit].trash_path}{rel[len(unit) :]}"
            assert after.get(moved) == digest, rel
            assert rel not in after and rel not in in_index
        else:
            assert after.get(rel) == digest, rel
            assert rel in in_index
    actions = db.conn.execute("SELECT count(*) FROM retention_actions").fetchone()[0]
    assert actions == len(trashed)
    db.conn.close()


def test_recover_settles_both_halves_of_an_interrupted_move(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """The two crash windows, made deterministic: intent written but nothing moved, and
    moved but neither indexed nor marked done."""
    root = tmp_path / "root"
    _steps(root, 3)
    plan = _plan(db, root)
    apply_plan(Plan("p-0", 0, 0, []), db)  # creates the trash and manifest
    manifest = root / TRASH_DIR / "manifest.jsonl"
    batch = "20260101-000000-0123abcd"
    moved_rel = f"{TRASH_DIR}/{batch}/run/step_2.pt"
    (root / TRASH_DIR / batch / RUN).mkdir(parents=True)
    os.rename(root / RUN / "step_2.pt", root / moved_rel)
    with open(manifest, "a") as out:
        for n, trash_rel in ((1, f"{TRASH_DIR}/{batch}/run/step_1.pt"), (2, moved_rel)):
            out.write(
                json.dumps(
                    {
                        "op": "intent",
                        "id": f"{n:032x}",
                        "batch": batch,
                        "ts": 1.0,
                        "path": f"run/step_{n}.pt",
                        "trash": trash_rel,
                        "is_dir": False,
                        "size": 64,
                    }
                )
                + "\n"
            )
        out.write('{"op": "done", "id": "i')  # a torn line from the kill
    settled = {e.id: e.state for e in recover(root, db)}
    assert settled == {f"{1:032x}": "dropped", f"{2:032x}": "trashed"}
    assert (root / RUN / "step_1.pt").exists()
    paths = {bytes(r[0]) for r in db.conn.execute("SELECT path FROM artifacts").fetchall()}
    assert paths == {b"run/step_1.pt", b"run/step_3.pt"}
    assert recover(root, db) == []  # idempotent
    assert len(plan.removals) == 2


def test_with_the_real_scanner_plan_apply_rescan_restore(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    scan = pytest.importorskip("store.scan")
    root = tmp_path / "root"
    version = root / "lightning_logs" / "version_0"
    write(version / "hparams.yaml", b"lr: 0.1\n")
    write(version / "metrics.csv", b"epoch,step,val_loss\n0,10,0.5\n1,20,0.4\n")
    for epoch, loss in enumerate([0.2, 0.5, 0.4, 0.3]):
        write(
            version / "checkpoints" / f"epoch={epoch}-val_loss={loss}.ckpt",
            os.urandom(99),
            age=9000.0 - epoch,
        )
    hf = root / "hf-out"
    for step in (20, 100, 300):
        write(hf / f"checkpoint-{step}" / "model.safetensors", os.urandom(50), age=8000.0 - step)
        write(
            hf / f"checkpoint-{step}" / "trainer_state.json",
            json.dumps({"global_step": step, "log_history": []}).encode(),
            age=8000.0 - step,
        )
    before = snapshot(root)
    scan.Indexer(db, root).scan()
    policy = from_flags(keep_last=1, keep_best=1, metric="val_loss")
    plan = make_plan(db, [root], policy, time.time())
    removed = sorted(u.path for u in plan.removals)
    assert removed == [
        "hf-out/checkpoint-100",
        "hf-out/checkpoint-20",
        "lightning_logs/version_0/checkpoints/epoch=1-val_loss=0.5.ckpt",
        "lightning_logs/version_0/checkpoints/epoch=2-val_loss=0.4.ckpt",
    ]
    saved = load_plan(plan.save(tmp_path / "plan.json"))
    report = apply_plan(saved, db)
    assert sorted(d.path for d in report.done) == removed
    rescan = scan.Indexer(db, root).scan()
    assert rescan.added == 0 and rescan.removed == 0  # the index already followed the trash
    restore(root, "all", db)
    scan.Indexer(db, root).scan()
    assert {k: v for k, v in snapshot(root).items() if not k.startswith(TRASH_DIR)} == before
    again = make_plan(db, [root], policy, time.time())
    assert sorted(u.path for u in again.removals) == removed


def test_a_checkpoint_folder_of_links_takes_no_keep_last_slot(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """``checkpoint-2/`` holding only a link to ``checkpoint-1``'s weights is a link, not a
    checkpoint: as the newest 'checkpoint' it took the keep-last slot and the plan removed
    checkpoint-1, the only real bytes, leaving the kept folder dangling."""
    root = tmp_path / "root"
    write(root / RUN / "checkpoint-1" / "model.safetensors", os.urandom(300), age=7200.0)
    write(root / RUN / "checkpoint-1" / "trainer_state.json", b"{}", age=7200.0)
    (root / RUN / "checkpoint-2").mkdir()
    os.symlink(
        "../checkpoint-1/model.safetensors", root / RUN / "checkpoint-2" / "model.safetensors"
    )
    past = time.time() - 3600
    os.utime(root / RUN / "checkpoint-2" / "model.safetensors", (past, past), follow_symlinks=False)
    plan = _plan(db, root, keep_last=1)
    assert not plan.removals
    assert [u.path for u in plan.items if u.keep] == ["run/checkpoint-1"]
    report = apply_plan(plan, db)
    assert not report.done
    assert (root / RUN / "checkpoint-2" / "model.safetensors").read_bytes()


def test_a_kept_checkpoint_keeps_the_one_its_links_point_into(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """checkpoint-2/ has a file of its own but links its weights from checkpoint-1/ (a
    deduplicating save): keeping checkpoint-2 as the newest while removing checkpoint-1
    would leave the kept checkpoint without weights.  The target is kept, saying why."""
    root = tmp_path / "root"
    write(root / RUN / "checkpoint-1" / "model.safetensors", os.urandom(300), age=7200.0)
    write(root / RUN / "checkpoint-1" / "trainer_state.json", b"{}", age=7200.0)
    write(root / RUN / "checkpoint-2" / "trainer_state.json", b"{}", age=3600.0)
    write(root / RUN / "checkpoint-0" / "model.safetensors", os.urandom(300), age=8000.0)
    link = root / RUN / "checkpoint-2" / "model.safetensors"
    os.symlink("../checkpoint-1/model.safetensors", link)
    past = time.time() - 3600
    os.utime(link, (past, past), follow_symlinks=False)
    plan = _plan(db, root, keep_last=1)
    assert [u.path for u in plan.removals] == ["run/checkpoint-0"]
    kept = {u.path: u.reasons for u in plan.items if u.keep}
    assert set(kept) == {"run/checkpoint-1", "run/checkpoint-2"}
    assert any("run/checkpoint-2" in r and "link" in r for r in kept["run/checkpoint-1"])
    apply_plan(plan, db)
    assert link.read_bytes()


@pytest.mark.parametrize("saved", [False, True], ids=["in-memory", "saved"])
def test_a_run_whose_kept_checkpoint_is_gone_or_changed_keeps_everything(
    tmp_path: Path, db: sqlite_utils.Database, saved: bool
) -> None:
    """A stale index plans to keep what is no longer there, or no longer as planned: every
    removal of that run then waits, so the run is never left with nothing.  A run whose
    kept units are intact goes ahead.  A saved plan carries its kept units to apply."""
    root = tmp_path / "root"
    for run in ("gone", "changed", "intact"):
        _steps(root, 3, run=run)
    for step, age in ((1, 7200.0), (2, 3600.0)):
        write(root / "folder" / f"checkpoint-{step}" / "model.bin", b"w" * step, age=age)
    runs = {run: ("generic", "finished") for run in ("gone", "changed", "intact", "folder")}
    plan = _plan(db, root, runs=runs)
    if saved:
        plan = load_plan(plan.save(tmp_path / "plan.json"))
    (root / "gone" / "step_3.pt").unlink()
    write(root / "changed" / "step_3.pt", b"rewritten", age=3600.0)
    (root / "folder" / "checkpoint-2" / "model.bin").unlink()
    report = apply_plan(plan, db)
    assert sorted(d.path for d in report.done) == ["intact/step_1.pt", "intact/step_2.pt"]
    skipped = {s.path: s.reason for s in report.skipped}
    assert skipped == {
        "gone/step_1.pt": "kept gone/step_3.pt is gone since the plan: run skipped; "
        "re-index and plan again",
        "gone/step_2.pt": skipped["gone/step_1.pt"],
        "changed/step_1.pt": "kept changed/step_3.pt changed since the plan (size, mtime or "
        "inode): run skipped; re-index and plan again",
        "changed/step_2.pt": skipped["changed/step_1.pt"],
        "folder/checkpoint-1": "kept folder/checkpoint-2 is empty now: run skipped; "
        "re-index and plan again",
    }
    for run in ("gone", "changed"):
        assert (root / run / "step_1.pt").exists() and (root / run / "step_2.pt").exists()
    assert (root / "folder" / "checkpoint-1" / "model.bin").exists()


def test_a_root_or_a_removal_the_index_does_not_hold(
    tmp_path: Path, db: sqlite_utils.Database
) -> None:
    """A plan is checked against the index: a root it does not hold (compared as it stores
    roots, absolute and normalised) refuses the whole plan before anything moves; a removal
    it does not hold, or holds with another identity, is skipped with the reason."""
    root = tmp_path / "root"
    _steps(root, 3)
    canary = tmp_path / "canary"
    write(canary / RUN / "c.ckpt", b"CANARY", age=7200.0)
    plan = _plan(db, root)
    write(root / RUN / "step_0.pt", b"never indexed", age=7200.0)

    def unit(where: Path, rel: str) -> Candidate:
        st = os.stat(where / rel)
        item = plan.removals[0]
        return Candidate(
            str(where), item.run_id, RUN, "", False, rel, False,
            st.st_size, st.st_mtime_ns, st.st_ino, "file", None, keep=False, reasons=["x"],
        )  # fmt: skip

    for root_text in (str(canary), f"{root}/../canary", f"{root}/."):
        evil = unit(canary, "run/c.ckpt")
        evil.root = root_text
        with pytest.raises(PlanError, match="is not a root of this index: nothing moved"):
            apply_plan(Plan(plan.id, plan.created, plan.now, [*plan.items, evil]), db)
    assert not (canary / TRASH_DIR).exists() and not (root / TRASH_DIR).exists()
    db.conn.execute(
        "UPDATE artifacts SET size = size + 1 WHERE path = ?", (b"run/step_2.pt",)
    ).connection.commit()
    unheld = unit(root, "run/step_0.pt")
    report = apply_plan(Plan(plan.id, plan.created, plan.now, [*plan.items, unheld]), db)
    assert [d.path for d in report.done] == ["run/step_1.pt"]
    assert {s.path: s.reason.split(";")[0] for s in report.skipped} == {
        "run/step_2.pt": "the index holds it with another size, mtime, inode or type than "
        "the plan says",
        "run/step_0.pt": "not in the index (never indexed, or gone from it since the plan)",
    }
    assert (root / RUN / "step_0.pt").exists() and (canary / RUN / "c.ckpt").exists()
