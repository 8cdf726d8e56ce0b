"""The live watcher against real observers, real files and a real SQLite index.

Every scenario ends with the convergence oracle: a fresh walk of the disk equals the index.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import mmap
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import watchdog.events
import watchdog.observers.inotify
import watchdog.observers.inotify_c as inotify_c

import store.index.db
import store.index.write
import store.runs
import store.scan
import store.watch.watcher as watcher_module
from store.index.db import open_db
from store.lock import WriterBusyError
from store.scan import Indexer
from store.watch import FolderBatcher, Watcher
from tests.conftest import ground_truth, unprivileged_python

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

RUNNER = "import sys; from tui.cli import main; main(['watch', *sys.argv[1:]])"
REPO = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds.

    The deadline is generous on purpose: a passing wait returns as soon as the condition
    holds, and a loaded machine (the suite beside other work) must not fail a correct run.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)


def index_rows(db_path: Path) -> dict[bytes, int]:
    db = open_db(db_path, readonly=True)
    try:
        return {bytes(p): s for p, s in db.execute("SELECT path, size FROM artifacts")}
    finally:
        db.close()


def converged(root: Path, db_path: Path) -> Callable[[], bool]:
    return lambda: index_rows(db_path) == ground_truth(root)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            return
        time.sleep(0.02)
    pytest.fail(f"threads left running: {[t.name for t in extra]}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    (path / "run1").mkdir(parents=True)
    (path / "run1" / "config.yaml").write_text("lr: 0.1\n")
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "index.db"


@contextmanager
def watching(db_path: Path, *roots: Path, **options: object) -> Iterator[Watcher]:
    watcher = Watcher(db_path, list(roots), **options)  # type: ignore[arg-type]
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()


def health_of(watcher: Watcher) -> dict[str, object]:
    return next(iter(watcher.health().values()))


# -- the batcher -----------------------------------------------------------------------


def test_batcher_coalesces_until_quiet_and_caps_the_wait() -> None:
    batcher = FolderBatcher(window=0.05, max_wait=0.3)
    for folder in (b"a", b"a", b"b"):
        batcher.add(0, folder)
    batch, events = batcher.take(timeout=1.0)
    assert batch == {0: {b"a", b"b"}} and events == 3

    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            batcher.add(1, b"busy")
            time.sleep(0.01)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    started = time.monotonic()
    try:
        batch, _ = batcher.take(timeout=5.0)
    finally:
        stop.set()
        writer.join()
    assert batch == {1: {b"busy"}}
    # the cap is 0.3 s and the take's own timeout 5 s: anything well under 5 s shows the cap
    assert time.monotonic() - started < 2.5, "a continuous writer must not starve the batch"
    assert batcher.take(timeout=0.05) in (({}, 0), ({1: {b"busy"}}, 1))


def test_batcher_a_close_after_write_ends_the_wait_sooner() -> None:
    batcher = FolderBatcher(window=30.0, max_wait=60.0)
    started = time.monotonic()
    batcher.add(0, b"a")
    batcher.add(0, b"a", closed=True)
    assert batcher.take(timeout=20.0) == ({0: {b"a"}}, 2)
    assert time.monotonic() - started < 10.0, "a close must not wait for the 30 s window"


# -- events ----------------------------------------------------------------------------


def test_start_reconciles_then_new_append_and_delete_follow(root: Path, db_path: Path) -> None:
    (root / "before.txt").write_text("already there\n")
    with watching(db_path, root) as watcher:
        assert index_rows(db_path) == ground_truth(root), "start must reconcile first"
        log = root / "run1" / "train.log"
        log.write_text("step 1\n")
        wait_for(lambda: index_rows(db_path).get(b"run1/train.log") == 7, what="new file")
        with open(log, "a") as f:
            f.write("step 2\n")
        wait_for(lambda: index_rows(db_path).get(b"run1/train.log") == 14, what="append")
        log.unlink()
        wait_for(lambda: b"run1/train.log" not in index_rows(db_path), what="delete")
        assert health_of(watcher)["mode"] == "inotify"
        assert health_of(watcher)["problems"] == []


def test_a_new_mtime_alone_reaches_the_index(root: Path, db_path: Path) -> None:
    """``touch``, ``os.utime``, ``cp -p`` and ``tar`` change a file's mtime with no write:
    the index (and retention's age rules over it) kept the old one until a reconcile."""
    config = root / "run1" / "config.yaml"

    def mtime_in_index() -> int | None:
        db = open_db(db_path, readonly=True)
        try:
            row = db.execute(
                "SELECT mtime_ns FROM artifacts WHERE path = ?", [b"run1/config.yaml"]
            ).fetchone()
        finally:
            db.close()
        return None if row is None else int(row[0])

    with watching(db_path, root, reconcile_every=3600):
        os.utime(config, ns=(1_000_000_000, 1_000_000_000))  # dated 1970, as tar may
        wait_for(lambda: mtime_in_index() == 1_000_000_000, timeout=60, what="the new mtime")


def test_a_file_written_through_another_hard_link_changes_at_every_path(
    root: Path, db_path: Path
) -> None:
    """A write through one link of a file raises events for that path's folder only; the
    other paths of the same inode (``cp -al`` snapshots, hard-linked checkpoints) changed
    as much and kept their old size in the index."""
    best = root / "run1" / "best.ckpt"
    best.write_bytes(b"\x00" * 10)
    (root / "snapshot").mkdir()
    os.link(best, root / "snapshot" / "best.ckpt")
    with watching(db_path, root, reconcile_every=3600):
        with open(root / "snapshot" / "best.ckpt", "ab") as f:
            f.write(b"\x01" * 90)
        wait_for(converged(root, db_path), timeout=60, what="both paths at 100 bytes")
        assert index_rows(db_path)[b"run1/best.ckpt"] == 100
        # a link made and written through at once: a new path, the old one as changed
        os.link(best, root / "snapshot" / "again.ckpt")
        with open(root / "snapshot" / "again.ckpt", "ab") as f:
            f.write(b"\x02" * 100)
        wait_for(converged(root, db_path), timeout=60, what="all three paths at 200 bytes")


def test_atomic_save_lands_under_the_final_name(root: Path, db_path: Path) -> None:
    with watching(db_path, root):
        tmp = root / "run1" / "last.ckpt.tmp"
        tmp.write_bytes(b"\x00" * 100)
        os.replace(tmp, root / "run1" / "last.ckpt")
        wait_for(converged(root, db_path), what="rename")
        assert b"run1/last.ckpt.tmp" not in index_rows(db_path)
        tmp.write_bytes(b"\x00" * 200)
        os.replace(tmp, root / "run1" / "last.ckpt")
        wait_for(lambda: index_rows(db_path).get(b"run1/last.ckpt") == 200, what="overwrite")


def test_run_folders_moved_and_removed_whole(root: Path, db_path: Path) -> None:
    with watching(db_path, root):
        ckpts = root / "run1" / "checkpoints"
        ckpts.mkdir()
        for step in range(5):
            (ckpts / f"checkpoint-{step}.pt").write_bytes(b"w" * step)
        wait_for(converged(root, db_path), what="checkpoints written")
        (root / "archive").mkdir()
        os.rename(root / "run1", root / "archive" / "run1")
        wait_for(converged(root, db_path), what="folder moved")
        assert b"archive/run1/checkpoints/checkpoint-4.pt" in index_rows(db_path)
        for step in range(3):
            (root / "archive" / "run1" / "checkpoints" / f"checkpoint-{step}.pt").unlink()
        wait_for(converged(root, db_path), what="old checkpoints deleted")
        shutil.rmtree(root / "archive")
        wait_for(converged(root, db_path), what="folder removed")
        assert not any(k.startswith(b"archive") for k in index_rows(db_path))


def runs_of(db_path: Path) -> dict[bytes, str]:
    db = open_db(db_path, readonly=True)
    try:
        return {bytes(p): f for p, f in db.execute("SELECT path, framework FROM runs")}
    finally:
        db.close()


def test_a_folder_given_its_first_model_becomes_a_run_while_watched(
    root: Path, db_path: Path
) -> None:
    """Training makes its folder, then writes its model: the folder is a generic run from
    the model on (no marker file says so), and is none again once the model is gone."""
    with watching(db_path, root, hash_files=False):
        (root / "exp").mkdir()
        (root / "exp" / "train.txt").write_text("step 1\n")
        wait_for(converged(root, db_path), what="the folder indexed")
        assert b"exp" not in runs_of(db_path)
        (root / "exp" / "model.safetensors").write_bytes(b"\x00" * 8)
        wait_for(lambda: runs_of(db_path).get(b"exp") == "generic", what="exp a run")
        (root / "exp" / "model.safetensors").unlink()
        wait_for(lambda: b"exp" not in runs_of(db_path), what="exp no run")


def test_mkdir_p_and_touch_is_seen_in_full(root: Path, db_path: Path) -> None:
    with watching(db_path, root):
        deep = root / "a" / "b" / "c"
        deep.mkdir(parents=True)
        (deep / "x").touch()
        for i in range(20):
            nested = root / "many" / f"d{i}" / "e" / "f"
            nested.mkdir(parents=True)
            (nested / "metrics.json").write_text("{}")
        wait_for(converged(root, db_path), what="mkdir -p burst")
        assert b"a/b/c/x" in index_rows(db_path)


def test_a_root_that_is_a_symlink_sees_what_is_made_directly_in_it(
    root: Path, db_path: Path, tmp_path: Path
) -> None:
    """~/outputs -> /data/outputs: inotify must watch the folder, not the link (which never
    reports a thing), or new runs made at the top are missed, and every file in them."""
    link = tmp_path / "outputs"
    link.symlink_to(root)
    with watching(db_path, link, reconcile_every=3600.0) as watcher:
        (link / "top.txt").write_text("top\n")
        run = link / "run2" / "checkpoints"
        run.mkdir(parents=True)
        (run / "epoch=0.ckpt").write_bytes(b"w" * 10)
        wait_for(converged(link, db_path), what="files made at the top of a linked root")
        matches = converged(link, db_path)

        def written_and_seen() -> bool:
            # written again until seen: the first write can come before the new folder's
            # watch is in place (no sleep guesses how long that takes on a busy machine)
            (run / "epoch=1.ckpt").write_bytes(b"w" * 20)
            return matches()

        wait_for(written_and_seen, what="a file in a new folder of a linked root")
        assert health_of(watcher)["problems"] == []


def test_a_root_inside_another_is_kept_current_in_both(root: Path, db_path: Path) -> None:
    inner = root / "run1"
    with watching(db_path, root, inner, reconcile_every=3600.0):
        (inner / "new.txt").write_text("new\n")
        (root / "top.txt").write_text("top\n")

        def both() -> bool:
            db = open_db(db_path, readonly=True)
            try:
                rows = db.execute(
                    "SELECT r.path, a.path, a.size FROM artifacts a"
                    " JOIN roots r ON r.id = a.root_id"
                ).fetchall()
            finally:
                db.close()
            by_root: dict[bytes, dict[bytes, int]] = {}
            for where, path, size in rows:
                by_root.setdefault(bytes(where), {})[bytes(path)] = size
            return by_root.get(os.fsencode(root)) == ground_truth(root) and by_root.get(
                os.fsencode(inner)
            ) == ground_truth(inner)

        wait_for(both, what="a file of the inner root in both roots' rows")


def test_burst_of_2000_files_converges(root: Path, db_path: Path) -> None:
    with watching(db_path, root):
        for folder in range(20):
            target = root / "burst" / f"f{folder:02d}"
            target.mkdir(parents=True)
            for i in range(100):
                (target / f"{i}.bin").write_bytes(b"x" * (i % 7))
        wait_for(converged(root, db_path), timeout=60, what="2,000-file burst")
        assert len(index_rows(db_path)) == 2001


def _settled_batches(watcher: Watcher, quiet: float = 0.5, timeout: float = 10.0) -> object:
    """The batch count once it has not moved for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = health_of(watcher)["batches"]
    still_since = time.monotonic()
    while time.monotonic() - still_since < quiet:
        assert time.monotonic() < deadline, "the watcher never stopped batching"
        time.sleep(0.05)
        now = health_of(watcher)["batches"]
        if now != last:
            last, still_since = now, time.monotonic()
    return last


def test_our_own_files_inside_a_root_are_ignored(root: Path) -> None:
    db_inside = root / "index.db"
    with watching(db_inside, root) as watcher:
        (root / "run1" / "a.txt").write_text("a")
        wait_for(lambda: b"run1/a.txt" in index_rows(db_inside), what="a.txt")
        # a.txt's own late events (modified, closed) may still make one more batch under
        # load; a watcher reacting to its own writes would never settle at all
        settled = _settled_batches(watcher)
        time.sleep(1.0)
        assert health_of(watcher)["batches"] == settled
        own = {b"index.db", b"index.db-wal", b"index.db-shm", b"index.db.lock"}
        assert not own & set(index_rows(db_inside))


# -- losing events, and finding out ------------------------------------------------------


def test_root_deleted_and_recreated_converges(root: Path, db_path: Path) -> None:
    with watching(db_path, root) as watcher:
        shutil.rmtree(root)
        wait_for(
            lambda: any("missing" in p for p in health_of(watcher)["problems"]),  # type: ignore[attr-defined]
            what="missing root reported",
        )
        (root / "fresh").mkdir(parents=True)
        (root / "fresh" / "model.safetensors").write_bytes(b"\x00" * 16)
        wait_for(converged(root, db_path), what="recreated root")
        (root / "fresh" / "after.txt").write_text("events flow again")
        wait_for(converged(root, db_path), what="events after recreation")
        assert health_of(watcher)["problems"] == []


def test_reported_overflow_triggers_a_full_reconcile(root: Path, db_path: Path) -> None:
    (root / "run1" / "lost.txt").write_text("the event for this row will be 'lost'")
    with watching(db_path, root):
        raw = sqlite3.connect(db_path)
        with raw:
            raw.execute("DELETE FROM artifacts WHERE path = ?", [b"run1/lost.txt"])
        raw.close()
        assert b"run1/lost.txt" not in index_rows(db_path)
        # what watchdog 7.1 does on IN_Q_OVERFLOW: it only logs
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        wait_for(converged(root, db_path), what="reconcile after overflow")


needs_events_lost = pytest.mark.skipif(
    not hasattr(watchdog.events, "EventsLostEvent"),
    reason="this watchdog loses the overflow itself (no EventsLostEvent)",
)


def _kernel_overflow(watcher: Watcher) -> None:
    """What watchdog's reader does when the kernel reports IN_Q_OVERFLOW (wd -1): log,
    rebuild every recursive watch, then queue the loss for each watch."""
    observer = watcher._observer
    assert observer is not None
    inotify_fd = observer._inotify_fd  # type: ignore[attr-defined]
    inotify_fd.handle_event(
        inotify_c.InotifyEvent(
            inotify_c.WatchDescriptor(-1), inotify_c.InotifyConstants.IN_Q_OVERFLOW, 0, b""
        )
    )


@needs_events_lost
def test_an_overflow_is_noticed_whatever_the_logging_level(root: Path, db_path: Path) -> None:
    """An application that quiets watchdog's loggers (or all logging below ERROR) must not
    quiet the overflow with them: a burst then left files missing from the index for good."""
    (root / "run1" / "lost.txt").write_text("the event for this row was lost")
    quiet = logging.getLogger("watchdog")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with watching(db_path, root, reconcile_every=3600) as watcher:
            raw = sqlite3.connect(db_path)
            with raw:
                raw.execute("DELETE FROM artifacts WHERE path = ?", [b"run1/lost.txt"])
            raw.close()
            _kernel_overflow(watcher)
            wait_for(converged(root, db_path), timeout=60, what="reconcile after overflow")
    finally:
        quiet.setLevel(level)


@needs_events_lost
def test_the_reconcile_after_an_overflow_follows_the_rebuilt_watches(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchdog logs the overflow, then drops and re-adds every watch: a file made in a
    folder after a reconcile listed it and before its watch is back raises no event.  The
    reconcile that counts is the one after watchdog says the watches are back."""
    reconciled = threading.Event()
    made: list[Path] = []
    rebuilding = threading.Event()
    real = watchdog.observers.inotify.InotifyWatchGroup._add_all_callbacks

    def add_all(self: Any, path: bytes) -> None:
        if rebuilding.is_set():  # the watches are down: a write now is seen by no one
            rebuilding.clear()
            reconciled.wait(60)  # by a reconcile started on the log line, if any
            late = root / "run1" / "late.bin"
            late.write_bytes(b"written while the watches were down")
            made.append(late)
        real(self, path)

    monkeypatch.setattr(watchdog.observers.inotify.InotifyWatchGroup, "_add_all_callbacks", add_all)

    def on_batch(report: watcher_module.BatchReport) -> None:
        if "overflow" in report.reason:
            reconciled.set()

    with watching(db_path, root, reconcile_every=3600, on_batch=on_batch) as watcher:
        rebuilding.set()
        _kernel_overflow(watcher)
        assert made, "watchdog did not rebuild its watches"
        wait_for(converged(root, db_path), timeout=60, what="the file made during the rebuild")


def _fail_watches(monkeypatch: pytest.MonkeyPatch, under: Path, allow: int) -> None:
    """The kernel's answer when fs.inotify.max_user_watches is used up (after ``allow``)."""
    real = inotify_c.inotify_add_watch
    prefix = os.fsencode(under)
    calls = [0]

    def add_watch(fd: int, path: bytes, mask: int) -> int:
        if path.startswith(prefix):
            calls[0] += 1
            if calls[0] > allow:
                ctypes.set_errno(errno.ENOSPC)
                return -1
        return int(real(fd, path, mask))

    monkeypatch.setattr(inotify_c, "inotify_add_watch", add_watch)


@pytest.mark.parametrize("allow", [0, 3])
def test_watch_limit_falls_back_to_polling(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, allow: int
) -> None:
    for i in range(30):
        (root / "deep" / f"d{i}").mkdir(parents=True)
    _fail_watches(monkeypatch, root, allow)
    with watching(db_path, root, fallback_poll=0.3) as watcher:
        health = health_of(watcher)
        assert health["mode"] == "polling"
        assert any("max_user_watches" in p for p in health["problems"])  # type: ignore[attr-defined]
        (root / "deep" / "d7" / "new.txt").write_text("seen by the poll")
        wait_for(converged(root, db_path), what="polled change")
    db = open_db(db_path, readonly=True)
    assert db.execute("SELECT watch_mode FROM roots").fetchone()[0] == "none"
    db.close()


def test_the_instance_limit_is_named_for_what_it_is(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify_init's EMFILE (fs.inotify.max_user_instances, used up by the user's other
    watchers) is not the watch limit: raising max_user_watches, as the health said, does
    nothing for it."""

    def no_instance() -> int:
        ctypes.set_errno(errno.EMFILE)
        return -1

    monkeypatch.setattr(inotify_c, "inotify_init", no_instance)
    with watching(db_path, root, fallback_poll=0.3) as watcher:
        health = health_of(watcher)
        assert health["mode"] == "polling"
        problems = " ".join(health["problems"])  # type: ignore[arg-type]
        assert "max_user_instances" in problems
        assert "max_user_watches" not in problems
        (root / "run1" / "new.txt").write_text("seen by the poll")
        wait_for(converged(root, db_path), what="polled change")


def indexed_mtime(db_path: Path, key: bytes) -> int | None:
    db = open_db(db_path, readonly=True)
    try:
        row = db.execute("SELECT mtime_ns FROM artifacts WHERE path = ?", [key]).fetchone()
        return None if row is None else int(row[0])
    finally:
        db.close()


def test_a_network_mount_below_a_root_is_polled_beside_its_events(
    root: Path, db_path: Path
) -> None:
    """``shared/`` below a local root is an NFS mount (given as the mount table: this
    machine has none): a change there on another machine raises no event here.  Stood in
    for by a write through a memory map, which raises none either (nor does it close)."""
    shared = root / "shared"
    shared.mkdir()
    weights = shared / "weights.bin"
    weights.write_bytes(b"\0" * 4096)
    os.utime(weights, (time.time() - 3600,) * 2)  # a write through the map moves it to now
    mounts = f"/dev/vda / ext4 rw 0 0\nserver:/export {shared} nfs4 rw 0 0\n"
    with (
        open(weights, "r+b") as file,
        mmap.mmap(file.fileno(), 4096) as mapped,
        watching(db_path, root, fallback_poll=0.3, mounts=mounts) as watcher,
    ):
        health = health_of(watcher)
        assert health["mode"] == "inotify"  # the rest of the root keeps its events
        problems = " ".join(health["problems"])  # type: ignore[arg-type]
        assert "(nfs4) is mounted at shared" in problems, problems
        wait_for(converged(root, db_path), what="the first scan")
        before = weights.stat().st_mtime_ns
        assert indexed_mtime(db_path, b"shared/weights.bin") == before
        mapped[:5] = b"step2"
        mapped.flush()
        after = weights.stat().st_mtime_ns
        if after == before:
            pytest.skip("a write through a memory map leaves the mtime here (tmpfs)")
        wait_for(
            lambda: indexed_mtime(db_path, b"shared/weights.bin") == after,
            what="the polled change below the mount",
        )
        (root / "run1" / "new.txt").write_text("an event, as before")
        wait_for(converged(root, db_path), what="an event outside the mount")


def test_poll_mode_records_mode_and_health(root: Path, db_path: Path) -> None:
    with watching(db_path, root, poll=0.2) as watcher:
        db = open_db(db_path, readonly=True)
        mode, health = db.execute("SELECT watch_mode, watch_health FROM roots").fetchone()
        db.close()
        assert mode == "polling" and '"polling"' in health
        (root / "run1" / "metrics.csv").write_text("step,loss\n1,0.5\n")
        wait_for(converged(root, db_path), what="polled file")
        assert health_of(watcher)["poll_interval"] == 0.2


def test_runs_turn_from_live_when_quiet(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.runs, "LIVE_SECONDS", 1.0)
    monkeypatch.setattr(watcher_module, "STATUS_EVERY", 0.3)
    version = root / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    (version / "hparams.yaml").write_text("lr: 0.1\n")

    def statuses() -> set[str]:
        db = open_db(db_path, readonly=True)
        try:
            return {s for (s,) in db.execute("SELECT status FROM runs")}
        finally:
            db.close()

    with watching(db_path, root):
        (version / "metrics.csv").write_text("step,loss\n1,0.5\n")
        wait_for(lambda: "live" in statuses(), what="a live run")
        wait_for(lambda: "live" not in statuses(), what="run no longer live")


def summaries(db_path: Path) -> dict[bytes, tuple[str, bool]]:
    """Each run's params (JSON) and whether its summary is still pending."""
    db = open_db(db_path, readonly=True)
    try:
        return {
            bytes(p): (params, pending is not None)
            for p, params, pending in db.execute(
                "SELECT path, params, json_extract(meta, '$.summary_pending') FROM runs"
            )
        }
    finally:
        db.close()


def test_summaries_left_pending_are_read_by_the_watcher(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index whose runs a migration (or a cold load) left pending, and that only the
    watcher writes from then on: their params were never read, whatever it waited.  It
    reads them a few at a time, events handled between."""
    monkeypatch.setattr(watcher_module, "SUMMARY_BATCH", 2)
    for number in range(5):
        version = root / "lightning_logs" / f"version_{number}"
        version.mkdir(parents=True)
        (version / "hparams.yaml").write_text(f"lr: 0.{number}\n")
    db = open_db(db_path)
    try:
        Indexer(db, root).scan()
        with db.conn:  # as ``m006`` leaves them, with nothing read yet
            db.conn.execute("UPDATE runs SET params = '{}'")
            store.index.write.read_every_run_again(db.conn)
    finally:
        db.conn.close()
    assert set(summaries(db_path).values()) == {("{}", True)}
    expected = {
        f"lightning_logs/version_{n}".encode(): (f'{{"lr": 0.{n}}}', False) for n in range(5)
    }
    with watching(db_path, root, hash_files=False):
        (root / "run1" / "model.safetensors").write_bytes(b"\x00" * 8)
        wait_for(
            lambda: summaries(db_path) == expected | {b"run1": ('{"lr": 0.1}', False)}, what="read"
        )


# -- one writer, many readers, crashes ---------------------------------------------------


def test_second_writer_is_refused_naming_the_holder(root: Path, db_path: Path) -> None:
    with watching(db_path, root):
        with pytest.raises(WriterBusyError, match=f"pid {os.getpid()}"):
            Watcher(db_path, [root]).start()
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, str(root), "--db", str(db_path), "-q"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        assert "is already being written by pid" in result.stderr
        assert "Traceback" not in result.stderr


def test_readers_never_see_database_is_locked(root: Path, db_path: Path) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        db = open_db(db_path, readonly=True)
        try:
            while not stop.is_set():
                db.execute("SELECT count(*), sum(size) FROM artifacts").fetchone()
                db.execute("SELECT * FROM runs").fetchall()
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    with watching(db_path, root):
        readers = [threading.Thread(target=read_loop) for _ in range(2)]
        for reader in readers:
            reader.start()
        try:
            for i in range(600):
                (root / "run1" / f"f{i % 40}" if i % 3 == 0 else root / "run1").mkdir(exist_ok=True)
                (root / "run1" / f"{i}.txt").write_text(str(i))
            wait_for(converged(root, db_path), what="writes under reader load")
        finally:
            stop.set()
            for reader in readers:
                reader.join()
    assert errors == []


def test_sigkill_mid_batch_then_restart_equals_a_fresh_scan(
    root: Path, db_path: Path, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(root), "--db", str(db_path), "--reconcile", "3600"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(2)]
        assert any(line.startswith("watching") for line in lines), lines
        for i in range(1500):
            folder = root / "storm" / f"f{i // 100}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.bin").write_bytes(b"z" * (i % 11))
            if i == 1000:
                child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    with watching(db_path, root):
        db = open_db(db_path, readonly=True)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        assert index_rows(db_path) == ground_truth(root)
    fresh = open_db(tmp_path / "fresh.db")
    try:
        Indexer(fresh, root).scan()
        fresh_rows = {bytes(p): s for p, s in fresh.execute("SELECT path, size FROM artifacts")}
    finally:
        fresh.close()
    assert index_rows(db_path) == fresh_rows


def test_a_folder_deleted_for_good_keeps_the_other_watches(root: Path, db_path: Path) -> None:
    """Checkpoint rotation deletes folders all day: that must not re-watch the whole root
    (only a move that made watchdog drop live watches does)."""
    for step in range(3):
        (root / "out" / f"checkpoint-{step}").mkdir(parents=True)
        (root / "out" / f"checkpoint-{step}" / "model.bin").write_bytes(b"m")
    with watching(db_path, root) as watcher:
        state = watcher._roots[0]
        shutil.rmtree(root / "out" / "checkpoint-0")
        wait_for(converged(root, db_path), what="the folder's rows removed")
        wait_for(lambda: state.rewatch_at is not None or state.rewatches > 0, what="the check")
        wait_for(lambda: state.rewatch_at is None, what="the watches checked")
        assert state.rewatches == 0
        (root / "out" / "checkpoint-1" / "optimizer.pt").write_bytes(b"o")
        wait_for(converged(root, db_path), what="a write next to the deleted folder")


def test_a_killed_watchers_canary_folder_is_reclaimed_by_the_next(
    root: Path, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watcher killed before its teardown leaves its canary folder in the temporary
    folder; the next watcher removes it, and leaves alone what is no dead watcher's canary:
    a live process's, one holding other files, one named the old way, a link."""
    import tempfile

    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    child = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(root), "--db", str(db_path), "-q"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    mine = f"artlens-canary-{child.pid}-"
    try:
        wait_for(
            lambda: any(p.name.startswith(mine) for p in temp.iterdir()),
            60,
            "the watcher's canary folder",
        )
    finally:
        child.kill()
        child.wait()
    (left,) = [p for p in temp.iterdir() if p.name.startswith(mine)]  # no teardown ran
    kept = [temp / f"artlens-canary-{os.getpid()}-alive", temp / "artlens-canary-k3x9q2ab"]
    full = temp / f"artlens-canary-{child.pid}-full"
    for folder in (*kept, full):
        folder.mkdir()
    (full / "notes.txt").write_text("not a canary's\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    link = temp / f"artlens-canary-{child.pid}-link"
    link.symlink_to(outside, target_is_directory=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with watching(db_path, root) as watcher:
        own = Path(watcher._canary_dir or "")
        assert own.parent == temp and own.name.startswith(f"artlens-canary-{os.getpid()}-")
        assert not left.exists()
        assert all(folder.is_dir() for folder in kept)
        assert (full / "notes.txt").exists() and link.is_symlink() and outside.is_dir()
    assert not own.exists()


def test_hashing_at_a_share_of_the_time_rests_between_batches_and_finishes(
    tmp_path: Path,
) -> None:
    """The explorer's watcher hashes a quarter of the time: it rests between batches
    about three times as long as each worked, stops at once when asked, and still hashes
    every file."""
    stopping = threading.Event()
    rest = watcher_module._Rest(0.25, stopping)
    busy_until = time.monotonic() + 0.1
    while time.monotonic() < busy_until:
        pass
    started = time.monotonic()
    assert rest.after_work() is False
    assert time.monotonic() - started >= 0.25  # three times the 0.1 s worked, less slack
    stopping.set()
    started = time.monotonic()
    busy_until = time.monotonic() + 0.1
    while time.monotonic() < busy_until:
        pass
    assert rest.after_work() is True
    assert time.monotonic() - started < 10
    assert watcher_module._Rest(1.0, threading.Event()).after_work() is False
    waited = watcher_module._Rest(0.25, threading.Event())
    waited.since -= 10  # ten seconds spent waiting for work: no rest is owed for them
    waited.begin()
    started = time.monotonic()
    assert waited.after_work() is False
    assert time.monotonic() - started < 5  # not the 30 s it would rest for 10 s of work

    root = tmp_path / "root"
    root.mkdir()
    old = time.time() - 60
    for index in range(80):
        (root / f"f{index}.bin").write_bytes(os.urandom(64) * (index + 1))
        os.utime(root / f"f{index}.bin", (old, old))
    db_path = tmp_path / "index.db"
    watcher = Watcher(db_path, [root], hash_share=0.25)
    watcher.start()
    try:

        def all_hashed() -> bool:
            db = open_db(db_path, readonly=True)
            try:
                states = db.execute("SELECT hash_state, count(*) FROM artifacts GROUP BY 1")
                return dict(states.fetchall()) == {"done": 80}
            finally:
                db.close()

        wait_for(all_hashed, timeout=60, what="every file hashed")
    finally:
        watcher.stop()


def hash_states(db_path: Path) -> dict[bytes, str]:
    db = open_db(db_path, readonly=True)
    try:
        return {bytes(p): s for p, s in db.execute("SELECT path, hash_state FROM artifacts")}
    finally:
        db.close()


def test_a_file_dated_in_the_future_is_hashed_while_watched(root: Path, db_path: Path) -> None:
    """An mtime ahead of the clock (``touch -d tomorrow``, clock skew) never 'rests' by the
    clock: the watcher hashes it once the version it recorded has stayed."""
    with watching(db_path, root):
        target = root / "run1" / "model.safetensors"
        target.write_bytes(b"\x00" * 64)
        tomorrow = time.time() + 86400
        os.utime(target, (tomorrow, tomorrow))
        wait_for(
            lambda: hash_states(db_path).get(b"run1/model.safetensors") == "done",
            what="the future-dated file hashed",
        )


def test_hashing_that_cannot_write_retries_less_often_and_logs_once(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another program holding the index's write lock (a ``sqlite3`` shell left inside a
    transaction; a full disk fails the same writes) fails every hashing pass: the passes
    come less and less often, up to a cap, the error is logged once, and once more the
    line that hashing works again, after which the file is hashed."""
    monkeypatch.setattr(store.index.db, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(watcher_module, "HASH_PENDING_WAIT", 0.05)
    monkeypatch.setattr(watcher_module, "HASH_RETRY_MAX", 0.4)
    monkeypatch.setattr(store.scan, "QUIET_SECONDS", 3600.0)  # not hashed before the lock
    (root / "run1" / "model.bin").write_bytes(os.urandom(4096))
    caplog.set_level(logging.WARNING, logger="artlens.watch")
    with watching(db_path, root) as watcher:
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            monkeypatch.setattr(store.scan, "QUIET_SECONDS", 0.0)
            wait_for(
                lambda: int(health_of(watcher)["hash_failures"]) >= 6,  # type: ignore[call-overload]
                what="six failed hashing passes",
            )
            health = health_of(watcher)
            failures = int(health["hash_failures"])  # type: ignore[call-overload]
            assert health["hash_retry_in"] == min(0.4, 0.05 * 2 ** (failures - 1)) == 0.4
            assert any("database is locked" in p for p in health["problems"])  # type: ignore[attr-defined]
            assert hash_states(db_path)[b"run1/model.bin"] == "pending"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_for(
            lambda: hash_states(db_path)[b"run1/model.bin"] == "done",
            what="the file hashed once the index can be written",
        )
        wait_for(lambda: health_of(watcher)["hash_failures"] == 0, what="failures cleared")
        assert health_of(watcher)["problems"] == []
    said = [r.getMessage() for r in caplog.records if r.name == "artlens.watch"]
    failed = [m for m in said if "hashing failed" in m]
    assert len(failed) == 1 and "database is locked" in failed[0], said
    assert len([m for m in said if "hashing works again" in m]) == 1, said


def test_hashing_whose_index_cannot_be_opened_retries_and_says_so(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The hashing thread opens its own connection to the index.  When that fails (too
    many open files, the index unreadable for a moment) the thread ended silently and no
    file was ever hashed again, with the watcher reporting itself healthy: it now retries,
    less often while it fails, and says so in health and the log once."""
    monkeypatch.setattr(watcher_module, "HASH_PENDING_WAIT", 0.05)
    monkeypatch.setattr(watcher_module, "HASH_RETRY_MAX", 0.2)
    real_connect = sqlite3.connect
    failures = threading.Event()
    refused: list[int] = []

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        if threading.current_thread().name == "artlens-watch-hash" and not failures.is_set():
            refused.append(1)
            raise sqlite3.OperationalError("unable to open database file")
        connection: sqlite3.Connection = real_connect(*args, **kwargs)
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect)
    (root / "run1" / "model.bin").write_bytes(os.urandom(4096))
    old = time.time() - 60
    os.utime(root / "run1" / "model.bin", (old, old))
    caplog.set_level(logging.WARNING, logger="artlens.watch")
    with watching(db_path, root) as watcher:
        wait_for(lambda: len(refused) >= 3, what="three refused opens")
        health = health_of(watcher)
        assert int(health["hash_failures"]) >= 1  # type: ignore[call-overload]
        assert any("cannot open the index" in p for p in health["problems"])  # type: ignore[attr-defined]
        assert hash_states(db_path)[b"run1/model.bin"] == "pending"
        failures.set()
        wait_for(
            lambda: hash_states(db_path)[b"run1/model.bin"] == "done",
            what="the file hashed once the index opens",
        )
        wait_for(lambda: health_of(watcher)["hash_failures"] == 0, what="failures cleared")
    said = [r.getMessage() for r in caplog.records if r.name == "artlens.watch"]
    assert len([m for m in said if "cannot open the index" in m]) == 1, said
    assert len([m for m in said if "hashing works again" in m]) == 1, said


def test_index_updates_that_cannot_write_retry_less_often_and_log_once(
    root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The same for the watcher's own updates: a failed batch is followed by reconciles of
    the whole root, less and less often (not one every five seconds for as long as the
    disk is full), logged once, and once more when they work again."""
    monkeypatch.setattr(store.index.db, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(watcher_module, "RETRY_SECONDS", 0.05)
    monkeypatch.setattr(watcher_module, "RETRY_MAX", 0.4)
    caplog.set_level(logging.WARNING, logger="artlens.watch")
    with watching(db_path, root, hash_files=False) as watcher:
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            (root / "run1" / "metrics.csv").write_text("step,loss\n1,0.5\n")
            wait_for(
                lambda: int(health_of(watcher)["update_failures"]) >= 6,  # type: ignore[call-overload]
                what="six failed updates",
            )
            health = health_of(watcher)
            failures = int(health["update_failures"])  # type: ignore[call-overload]
            assert health["update_retry_in"] == min(0.4, 0.05 * 2 ** (failures - 1)) == 0.4
            assert b"run1/metrics.csv" not in index_rows(db_path)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_for(converged(root, db_path), what="the file indexed once the index can be written")
        wait_for(lambda: health_of(watcher)["update_failures"] == 0, what="failures cleared")
    said = [r.getMessage() for r in caplog.records if r.name == "artlens.watch"]
    assert len([m for m in said if "index update failed" in m]) == 1, said
    assert len([m for m in said if "index updates work again" in m]) == 1, said


# -- permissions, as an unprivileged watcher (as root they would pass vacuously) -----------


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder the unprivileged user may enter (pytest's tmp_path sits below a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="artlens-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for folder, _, _ in os.walk(path):
            with contextlib.suppress(OSError):
                os.chmod(folder, 0o755)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def unprivileged_watcher(root: Path, db_path: Path, out: Path) -> Iterator[Path]:
    """``artlens watch root`` as nobody, its output to ``out``; yields ``out`` once it
    says it is watching.  Every folder and file below ``root`` that is not closed
    (mode 000) is opened to everyone first."""
    unprivileged = unprivileged_python()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    for folder in [db_path.parent, root.parent, *(p for p in root.rglob("*") if p.is_dir())]:
        if folder.stat().st_mode & 0o777:
            folder.chmod(0o777)
    root.chmod(0o777)
    for file in (p for p in root.rglob("*") if p.is_file()):
        file.chmod(0o666)
    with out.open("w") as sink, (out.parent / "stderr.txt").open("w") as errors:
        child = subprocess.Popen(
            [*unprivileged, "-c", RUNNER, str(root), "--db", str(db_path)],
            cwd=REPO,
            stdout=sink,
            stderr=errors,
        )
    try:
        wait_for(lambda: "watching" in out.read_text(), what="the watcher started")
        yield out
    finally:
        child.terminate()
        child.wait(timeout=30)
        said = (out.parent / "stderr.txt").read_text()
        assert "Traceback" not in said, said


def unreadable_paths(db_path: Path) -> set[bytes]:
    db = open_db(db_path, readonly=True)
    try:
        return {bytes(p) for (p,) in db.execute("SELECT path FROM unreadable")}
    finally:
        db.close()


def test_a_folder_made_readable_again_is_indexed_and_watched(open_tmp: Path) -> None:
    """``chmod 000`` then back raises no event the watcher follows, and a folder closed
    when the root was watched got no watch: the records of what could not be read are
    tried again, so its files come in (and later writes there are seen) within seconds,
    not at the next full reconcile."""
    root = open_tmp / "root"
    closed = root / "run1" / "closed"
    (closed / "inner").mkdir(parents=True)
    (closed / "secret.txt").write_text("s")
    (closed / "inner" / "deep.txt").write_text("d")
    (root / "run1" / "open.txt").write_text("o")
    db_path = open_tmp / "db" / "index.db"
    closed.chmod(0o000)
    with unprivileged_watcher(root, db_path, open_tmp / "out.txt"):
        wait_for(
            lambda: db_path.exists() and b"run1/closed" in unreadable_paths(db_path),
            what="the closed folder recorded",
        )
        assert b"run1/closed/secret.txt" not in index_rows(db_path)
        closed.chmod(0o777)
        wait_for(
            lambda: (
                {b"run1/closed/secret.txt", b"run1/closed/inner/deep.txt"}
                <= set(index_rows(db_path))
            ),
            what="the files of the folder made readable",
        )
        wait_for(lambda: not unreadable_paths(db_path), what="the record forgotten")
        (closed / "inner" / "later.txt").write_text("written after")
        wait_for(
            lambda: b"run1/closed/inner/later.txt" in index_rows(db_path),
            what="a file written in it afterwards (its watch)",
        )


def test_folders_no_one_may_read_are_not_a_watch_limit(open_tmp: Path) -> None:
    """Twelve private folders cannot be watched by anyone: that is no sign the inotify
    watch limit ran out, and the root stays watched by events, not polled."""
    root = open_tmp / "root"
    (root / "run1").mkdir(parents=True)
    (root / "run1" / "a.txt").write_text("a")
    for i in range(12):
        (root / f"private{i}").mkdir()
        (root / f"private{i}" / "p.txt").write_text("p")
    db_path = open_tmp / "db" / "index.db"
    for i in range(12):
        (root / f"private{i}").chmod(0o000)
    with unprivileged_watcher(root, db_path, open_tmp / "out.txt") as out:
        assert "(inotify)" in out.read_text(), out.read_text()
        (root / "run1" / "b.txt").write_text("b")
        wait_for(lambda: b"run1/b.txt" in index_rows(db_path), what="an event-driven batch")
    said = (open_tmp / "stderr.txt").read_text()
    assert "watch limit" not in said, said


@contextmanager
def bound(source: Path, target: Path) -> Iterator[None]:
    """``source`` mounted again at ``target`` (a bind mount), when the machine allows it."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode:
        pytest.skip(f"no bind mounts here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


def fresh_rows(tmp_path: Path, root: Path) -> dict[bytes, int]:
    """What a fresh index of ``root`` holds."""
    fresh = tmp_path / "fresh" / f"{time.monotonic_ns()}.db"
    fresh.parent.mkdir(exist_ok=True)
    db = open_db(fresh)
    try:
        Indexer(db, root).scan()
    finally:
        db.close()
    return index_rows(fresh)


def test_a_bind_mount_of_a_parent_is_a_loop_live_as_in_a_fresh_index(
    root: Path, db_path: Path, tmp_path: Path
) -> None:
    """The root mounted again inside itself (run1/loop): a fresh index skips the loop,
    but inotify reported the root's events under the loop's name (one watch per folder,
    named by the last path that added it), and the watcher indexed run1/loop/... as
    files of its own and never the new file where it is.  Live, the index is what a fresh
    index of the same tree holds."""
    (root / "before.txt").write_text("x")
    with bound(root, root / "run1" / "loop"):
        expected = fresh_rows(tmp_path, root)
        assert not any(k.startswith(b"run1/loop/") for k in expected)
        with watching(db_path, root):
            assert index_rows(db_path) == expected
            (root / "new.txt").write_text("new")
            (root / "run1" / "deep").mkdir()
            (root / "run1" / "deep" / "file.txt").write_text("deep")
            wait_for(
                lambda: index_rows(db_path) == fresh_rows(tmp_path, root),
                what="the files made, where they are, and nothing through the loop",
            )
            assert b"new.txt" in index_rows(db_path)
            (root / "before.txt").unlink()
            wait_for(lambda: index_rows(db_path) == fresh_rows(tmp_path, root), what="a delete")


def test_a_folder_named_through_many_loops_is_rescanned_where_it_is(
    root: Path, db_path: Path, tmp_path: Path
) -> None:
    """watchdog adds its watches with os.walk, which goes round a bind mount of a parent
    until the path is too long, so an event can name a folder through hundreds of loops
    (run1/loop/run1/loop/.../run1).  Each loop is dropped, however many, and the path is
    looked at as it shrinks (the whole name is past PATH_MAX): the new file is indexed
    where it is, as a fresh index has it.  At 65 loops the rescan went round 64 times,
    then took the folder for a loop and indexed nothing."""
    with bound(root, root / "run1" / "loop"):
        db = open_db(db_path)
        try:
            indexer = Indexer(db, root)
            indexer.scan()
            for loops in (65, 400):
                (root / "run1" / f"new{loops}.txt").write_text("new")
                named = "/".join(["run1/loop"] * loops) + "/run1"
                indexer.scan_folders([named])
                assert index_rows(db_path) == fresh_rows(tmp_path, root)
                assert f"run1/new{loops}.txt".encode() in index_rows(db_path)
            (root / "run1" / "sub.txt").write_text("sub")
            indexer.scan("/".join(["run1/loop"] * 100) + "/run1")
            assert index_rows(db_path) == fresh_rows(tmp_path, root)
        finally:
            db.close()


def test_a_batch_of_a_deep_chain_looks_at_each_folder_once(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch naming every folder of a chain 300 deep (mkdir -p, a file in each) looked at
    every folder above each one, twice (a loop check and the folders above): 180,000
    lstat calls, each resolving a long path; 1,000 deep took 28 s against 0.14 s for a
    fresh index.  Each folder of the chain is looked at a bounded number of times."""
    root = tmp_path / "root"
    folder = root
    for _ in range(300):
        folder = folder / "d"
    folder.mkdir(parents=True)
    db = open_db(db_path)
    try:
        indexer = Indexer(db, root)
        indexer.scan()
        folders = ["/".join(["d"] * depth) for depth in range(1, 301)]
        for name in folders[::30]:
            (root / name / "f.txt").write_text("x")
        calls = 0
        real_lstat = os.lstat

        def counting(*args: Any, **kwargs: Any) -> os.stat_result:
            nonlocal calls
            calls += 1
            return real_lstat(*args, **kwargs)

        monkeypatch.setattr(os, "lstat", counting)
        indexer.scan_folders(folders)
        monkeypatch.undo()
        assert calls <= 4 * len(folders), calls
        assert index_rows(db_path) == fresh_rows(tmp_path, root)
    finally:
        db.close()


def test_folders_deleted_while_the_watch_is_set_are_no_watch_limit(
    root: Path, db_path: Path
) -> None:
    """Checkpoint rotation removes a tree while the watcher starts: the start's scan has
    listed its folders, their watches went with them.  That is no sign the inotify watch
    limit ran out: the root stays watched by events (not polled every 30 s under a false
    hint to raise the limit), and the index loses the folders."""
    for i in range(40):
        (root / "old" / f"checkpoint-{i}").mkdir(parents=True)
        (root / "old" / f"checkpoint-{i}" / "model.pt").write_bytes(b"w" * i)
    removed = threading.Event()
    holder: list[Watcher] = []

    def watched() -> int:
        found = holder[0]._watched_paths(holder[0]._roots[0])
        return len(found) if found is not None else -1

    def rotate_once() -> None:  # after the start's scan committed, before its checks
        if removed.is_set() or not holder:
            return
        removed.set()
        shutil.rmtree(root / "old")
        wait_for(lambda: watched() == 2, what="the removed folders' watches dropped")

    watcher = Watcher(db_path, [root], on_commit=rotate_once, reconcile_every=3600.0)
    holder.append(watcher)
    watcher.start()
    try:
        assert removed.is_set()
        health = health_of(watcher)
        assert health["mode"] == "inotify", health
        assert not any("watch limit" in p for p in health["problems"])  # type: ignore[attr-defined]
        wait_for(converged(root, db_path), what="the removed tree gone from the index")
        (root / "run1" / "after.txt").write_text("seen by an event")
        wait_for(converged(root, db_path), what="a file written after the start")
    finally:
        watcher.stop()


def test_a_root_whose_parent_moves_away_and_back_keeps_its_rows(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent of a watched root renamed for a while (a project folder reorganised, a
    root inside another root whose folder moved): inotify still reports the files made
    in it, under the root's old name, and a batch of those found every folder gone and
    removed the root's rows; the root came back as the same folder, so nothing rescanned
    it and the index stayed empty.  (The root's identity is checked once a second: a
    root away for less, as here, is never seen missing by that check.)"""
    monkeypatch.setattr(watcher_module, "IDENTITY_EVERY", 3600.0)
    parent = tmp_path / "team"
    root = parent / "root"
    (root / "run1").mkdir(parents=True)
    (root / "run1" / "config.yaml").write_text("lr: 0.1\n")
    for i in range(5):
        (root / "run1" / f"checkpoint-{i}.pt").write_bytes(b"w" * (i + 1))
    with watching(db_path, root, reconcile_every=3600.0, hash_files=False) as watcher:
        wait_for(converged(root, db_path), what="the first scan")
        batches = int(health_of(watcher)["batches"])  # type: ignore[call-overload]
        (root / "run1" / "a.txt").write_text("written just before the move")
        parent.rename(tmp_path / "away")
        (tmp_path / "away" / "root" / "run1" / "b.txt").write_text("written while away")

        def taken_while_away() -> bool:  # a batch ran, or was put off until the root is back
            ran = int(health_of(watcher)["batches"]) > batches  # type: ignore[call-overload]
            return ran or watcher._roots[0].rescan_reason is not None

        wait_for(taken_while_away, what="the events taken while the root is away")
        (tmp_path / "away").rename(parent)
        wait_for(converged(root, db_path), what="the root back, as the disk has it")
        assert b"run1/checkpoint-4.pt" in index_rows(db_path)
        assert b"run1/b.txt" in index_rows(db_path)
