"""Writers that coexist: a restarted watcher waits for a one-shot writer; ``index`` while a
watcher runs has the watcher rescan instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.lock import WriterLock, holder_info
from store.watch import Watcher
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "run1").mkdir(parents=True)
    (tmp_path / "root" / "run1" / "a.txt").write_text("a")
    return tmp_path / "root"


@pytest.fixture
def watcher(root: Path, tmp_path: Path) -> Iterator[Watcher]:
    """A watcher that rescans only when asked (polling once an hour, no inotify)."""
    running = Watcher(tmp_path / "index.db", [root], poll=3600.0, hash_files=False)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _index(*args: str, db: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["index", *args, "--db", str(db)])
    return result.exit_code, result.stdout, result.stderr


def test_index_while_a_watcher_runs_has_it_rescan(
    root: Path, tmp_path: Path, watcher: Watcher, isolated_cache: Path
) -> None:
    db = tmp_path / "index.db"
    (root / "run1" / "new.bin").write_bytes(b"new")
    code, out, err = _index(str(root), db=db)
    assert code == 0, err
    assert f"rescanned by the watcher (pid {os.getpid()}): +1 ~0 -0" in out
    code, out, err = _index(str(root), db=db)
    assert code == 0, err
    assert "already fresh" in out
    assert holder_info(db) is not None  # the watcher still writes the index


def test_index_of_a_root_the_watcher_does_not_watch_says_so(
    tmp_path: Path, watcher: Watcher, isolated_cache: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    code, _out, err = _index(str(other), db=tmp_path / "index.db")
    assert code == 2
    assert err.count("\n") == 1 and "does not watch" in err and str(other) in err


def test_a_restarted_watcher_waits_for_a_one_shot_writer(
    root: Path, tmp_path: Path, isolated_cache: Path
) -> None:
    db = tmp_path / "index.db"
    lock = WriterLock(db, role="index")
    lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", str(root), "--db", str(db)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None and child.stdout is not None
        line = child.stderr.readline()
        assert "waiting for pid" in line and "(index:" in line, line
        assert child.poll() is None  # still there, not exited
        released = threading.Timer(0.2, lock.release)
        released.start()
        lines = [child.stdout.readline() for _ in range(2)]  # the start reconcile, then
        assert any(line.startswith("watching") for line in lines), lines
        released.join()
        wait_for(lambda: (holder_info(db) or {}).get("role") == "watch", what="the watcher")
    finally:
        lock.release()
        child.terminate()
        child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == 0
