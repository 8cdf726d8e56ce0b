"""The walk shared with a forked helper: the same walk as one process makes, or none.

Real trees on disk, a real fork: ``SPLIT_AFTER`` is lowered so a small tree is shared.
A scan forks only in a process with one thread, and a test suite may have others alive
(another test's observer winding down): each check that needs the fork runs in a new
Python (``in_fresh_python``), which must then have forked.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from store import forked, scan
from store.index.db import open_db
from store.scan import Indexer, ScanReport, _Walk
from tests.conftest import ground_truth, make_hostile_tree
from tests.test_scan_fastpaths import dump, make_interleaved, make_runs

needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
    reason="scans fork helpers on Linux with two cores or more",
)
ROOT = Path(__file__).resolve().parents[1]


def in_fresh_python(check: str, tmp_path: Path) -> None:
    """Run ``check(tmp_path)`` of this module in a new single-threaded Python."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ARTLENS_NO_FORK", None)
    run = subprocess.run(
        [sys.executable, "-c", f"import tests.test_walk_helper as t; t.{check}({str(tmp_path)!r})"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]


def walk_of(root: Path, tmp_path: Path, name: str) -> tuple[_Walk, ScanReport]:
    db = open_db(tmp_path / name)
    report = ScanReport(root="")
    try:
        return Indexer(db, root)._walk(b"", report, None), report
    finally:
        db.close()


def shape(walk: _Walk) -> dict[str, object]:
    """What a walk found, whatever order the folders were listed in."""
    return {
        "files": {folder: sorted(walk.entries[a:b]) for folder, (a, b) in walk.slices.items()},
        "count": walk.count(),
        "dirs": walk.dirs,
        "subdirs": {k: sorted(v) for k, v in walk.subdirs.items()},
        "links": walk.links,
        "unreadable": sorted(walk.unreadable),
        "digests": walk.digests(),  # each part's found where it was walked
        "listing": {k: (sorted(d), sorted(f)) for k, (d, f) in walk.listing().items()},
    }


def make_wide(root: Path) -> None:
    make_interleaved(root)
    make_hostile_tree(root / "hostile")
    make_runs(root / "more", runs=12, files=9)
    os.mkfifo(root / "more" / "a-fifo")


def count_forks() -> list[bool]:
    """Each ``forked.Helper`` made from now on in this (fresh) Python: whether it waits."""
    forks: list[bool] = []
    fork = forked.Helper.__init__

    def counted(self: forked.Helper, job: Callable[..., bytes], *, waits: bool = False) -> None:
        forks.append(waits)
        fork(self, job, waits=waits)

    forked.Helper.__init__ = counted  # type: ignore[method-assign]
    return forks


def check_shared_walk(tmp: str) -> None:
    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    make_wide(root)
    scan.SPLIT_AFTER = 10**9
    alone, alone_report = walk_of(root, tmp_path, "alone.db")
    scan.SPLIT_AFTER = 5
    shared, shared_report = walk_of(root, tmp_path, "shared.db")
    assert not alone.helped and shared.helped
    assert shape(shared) == shape(alone)
    assert shared.reaches_every_folder()
    assert shared_report.warnings == alone_report.warnings
    assert shared_report.warnings["skipped FIFO"] >= 2
    assert {k: sorted(v) for k, v in shared_report.samples.items()} == {
        k: sorted(v) for k, v in alone_report.samples.items()
    }


@needs_fork
def test_a_shared_walk_finds_what_one_process_finds(tmp_path: Path) -> None:
    in_fresh_python("check_shared_walk", tmp_path)


def check_shared_index(tmp: str) -> None:
    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    make_wide(root)
    scan.EVENT_FLOOD = 10  # the cold-load path, as on a big tree
    forks = count_forks()
    dumps = []
    for name, split in (("alone.db", 10**9), ("shared.db", 5)):
        scan.SPLIT_AFTER = split
        db = open_db(tmp_path / name)
        indexer = Indexer(db, root, clock=lambda: 2_000_000_000.0)
        report = indexer.scan(defer_summaries=True)
        indexer.fill_summaries()
        dumps.append(dump(db))
        db.close()
    # summaries deferred: a child that only detects the runs, then the walk's helper
    assert forks == [True, False]
    assert report.added == len(ground_truth(root)) > 300
    for table in ("roots", "artifacts", "runs", "dirs"):
        assert dumps[0][table] == dumps[1][table], table


@needs_fork
def test_an_index_built_by_a_shared_walk_is_the_same_index(tmp_path: Path) -> None:
    in_fresh_python("check_shared_index", tmp_path)


def check_walk_shared_four_ways(tmp: str) -> None:
    """A machine of four cores: three helpers, each its every third folder; one of them
    dies, so its folders are walked by the parent after all."""
    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    make_wide(root)
    scan.SPLIT_AFTER = 10**9
    alone, alone_report = walk_of(root, tmp_path, "alone.db")
    forked.spare_cores = lambda: 3  # what this machine cannot have
    scan.SPLIT_AFTER = 5
    forks = count_forks()
    shared, shared_report = walk_of(root, tmp_path, "shared.db")
    assert forks == [True, False, False, False]  # the runs' reader, then three walkers
    assert shared.helped and shape(shared) == shape(alone)
    assert shared_report.warnings == alone_report.warnings
    fork = forked.Helper.__init__
    made: list[int] = []

    def second_dies(self: forked.Helper, job: Callable[..., bytes], *, waits: bool = False) -> None:
        made.append(1)
        if len(made) == 3:  # the second walker
            job = lambda _counter: os._exit(3)  # noqa: E731
        fork(self, job, waits=waits)

    forked.Helper.__init__ = second_dies  # type: ignore[method-assign]
    again, again_report = walk_of(root, tmp_path, "again.db")
    assert len(made) == 4
    assert shape(again) == shape(alone)
    assert again_report.warnings == alone_report.warnings
    scan.EVENT_FLOOD = 10  # the cold-load path: the same index as one walker writes
    dumps = []
    for name, split in (("alone-index.db", 10**9), ("shared-index.db", 5)):
        scan.SPLIT_AFTER = split
        db = open_db(tmp_path / name)
        indexer = Indexer(db, root, clock=lambda: 2_000_000_000.0)
        indexer.scan()
        dumps.append(dump(db))
        db.close()
    for table in ("roots", "artifacts", "runs", "dirs"):
        assert dumps[0][table] == dumps[1][table], table


@needs_fork
def test_a_walk_shared_four_ways_finds_what_one_process_finds(tmp_path: Path) -> None:
    in_fresh_python("check_walk_shared_four_ways", tmp_path)


def check_walk_after_a_first_load(tmp: str) -> None:
    """A first load leaves its log to a checkpoint on a thread of its own; the next scan
    waits for it, or it could not fork its walk's helper (one thread only)."""
    import time

    from store.index import db as index_db

    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    make_wide(root)
    scan.EVENT_FLOOD = 10
    scan.SPLIT_AFTER = 10**9
    copy = index_db._checkpoint

    def slow_copy(path: str) -> None:  # a slow disk: still copying when the next scan starts
        time.sleep(2)
        copy(path)

    index_db._checkpoint = slow_copy
    db = open_db(tmp_path / "index.db")
    first = Indexer(db, root).scan(defer_summaries=True)
    assert first.added == len(ground_truth(root)) > 300
    (root / "more" / "new.txt").write_text("new")
    scan.SPLIT_AFTER = 5
    forks = count_forks()
    again = Indexer(db, root).scan()
    db.close()
    assert forks == [False]  # the walk's helper
    assert again.added == 1 and again.removed == again.changed == 0


@needs_fork
def test_a_scan_after_a_first_load_still_shares_its_walk(tmp_path: Path) -> None:
    in_fresh_python("check_walk_after_a_first_load", tmp_path)


def check_shared_progress(tmp: str) -> None:
    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    for i in range(600):
        (root / f"d{i:03}").mkdir(parents=True)
        (root / f"d{i:03}" / "f").write_bytes(b"x")
    scan.SPLIT_AFTER = 1
    seen: list[int] = []
    db = open_db(tmp_path / "i.db")
    walk = Indexer(db, root)._walk(b"", ScanReport(root=""), lambda done, _t: seen.append(done))
    db.close()
    assert walk.helped and walk.count() == 600
    assert seen and max(seen) <= 600 and seen == sorted(seen)


@needs_fork
def test_a_shared_walk_reports_progress_of_both_walkers(tmp_path: Path) -> None:
    in_fresh_python("check_shared_progress", tmp_path)


def test_without_drops_a_folder_and_all_below_it() -> None:
    walk = _Walk()
    for folder, names in ((b"", [b"a", b"ab"]), (b"a", [b"b"]), (b"a/b", []), (b"ab", [])):
        first = len(walk.entries)
        walk.entries.append((b"f", 1, 1, 1, 1, "file"))
        walk.slices[folder] = (first, len(walk.entries))
        walk.subdirs[folder] = names
        if folder:
            walk.dirs[folder] = (folder.rpartition(b"/")[0], 1)
    walk.links[b"a/b/link"] = "x"
    walk.unreadable.append(b"a/b/c")
    left = walk.without([b"a"])
    assert set(left.slices) == {b"", b"ab"} and left.count() == 2
    assert left.subdirs[b""] == [b"ab"] and set(left.dirs) == {b"ab"}
    assert not left.links and not left.unreadable
    assert left.reaches_every_folder()


def run_helper(job: Callable[[Callable[[int], None]], bytes]) -> bytes | None:
    helper = forked.Helper(job)
    try:
        return helper.result()
    finally:
        helper.abandon()


def check_helper_answers(_tmp: str) -> None:
    assert forked.can_fork()
    big = os.urandom(3 << 20)  # more than a pipe holds
    assert run_helper(lambda counter: big) == big

    def raises(counter: Callable[[int], None]) -> bytes:
        raise ValueError("boom")

    def exits(counter: Callable[[int], None]) -> bytes:
        os._exit(0)  # ends well, but says nothing

    def killed(counter: Callable[[int], None]) -> bytes:
        os.kill(os.getpid(), signal.SIGKILL)
        return b"never"

    for job in (raises, exits, killed):
        assert run_helper(job) is None, job.__name__

    # a helper forked early that waits for its work
    waiting = forked.Helper(lambda counter: forked.request()[::-1], waits=True)
    assert waiting.send(big)
    assert not waiting.send(b"twice")
    assert waiting.result() == big[::-1]
    never_asked = forked.Helper(lambda counter: forked.request(), waits=True)
    assert never_asked.result() is None  # not a wait for ever
    gone = forked.Helper(lambda counter: forked.request(), waits=True)
    os.kill(gone.pid, signal.SIGKILL)
    gone.send(big)  # into a pipe nobody reads: no hang, no exception
    assert gone.result() is None

    def tells(counter: Callable[[int], None]) -> bytes:
        forked.tell(b"first")
        forked.tell(big)
        return b"done"

    talker = forked.Helper(tells)
    assert (talker.message(), talker.message(), talker.result()) == (b"first", big, b"done")
    quiet = forked.Helper(killed)
    assert quiet.message() is None and quiet.result() is None


@needs_fork
def test_a_helper_returns_its_bytes_and_any_failure_as_none(tmp_path: Path) -> None:
    in_fresh_python("check_helper_answers", tmp_path)


def check_abandoned_helper(tmp: str) -> None:
    assert forked.can_fork()
    fifo = Path(tmp) / "block"
    os.mkfifo(fifo)

    def blocks(counter: Callable[[int], None]) -> bytes:
        counter(7)
        with open(fifo, "rb") as f:  # no writer ever comes
            return f.read()

    helper = forked.Helper(blocks)
    pid = helper.pid
    helper.abandon()
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # reaped: no child of that pid any more
    else:
        raise AssertionError("the helper was not reaped")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@needs_fork
def test_an_abandoned_helper_is_killed_and_reaped(tmp_path: Path) -> None:
    in_fresh_python("check_abandoned_helper", tmp_path)


def test_no_helper_where_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not forked.can_fork()
    finally:
        stop.set()
        thread.join()
    monkeypatch.setenv("ARTLENS_NO_FORK", "1")
    assert not forked.can_fork()


def check_forked_reader(tmp: str) -> None:
    """``artlens index`` reads the runs' own files in a forked child while it writes the
    rows; a summary marshal cannot carry (a YAML date) is read here instead."""
    from tui.cli.index import index_roots

    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    make_wide(root)
    odd = root / "more" / "lightning_logs" / "version_3" / "hparams.yaml"
    odd.write_text("lr: 0.1\nwhen: 2024-01-02\nnested: {a: [1, 2.5, null, true]}\n")
    scan.BULK_ROWS = 10  # the bulk path, as on a big tree
    scan.EVENT_FLOOD = 10
    forks = count_forks()
    dumps = []
    # here; a reader forked once the rows are built; one forked early (a shared walk)
    for name, no_fork, split in (
        ("here.db", "1", 10**9),
        ("late.db", "0", 10**9),
        ("early.db", "0", 5),
    ):
        os.environ["ARTLENS_NO_FORK"] = no_fork
        scan.SPLIT_AFTER = split
        forks.clear()
        path = tmp_path / name
        index_roots([root], path, hash_files=False, remember_db=False)
        db = open_db(path)
        dumps.append(dump(db))
        db.close()
    assert forks == [True, False]  # the early reader, then the walk's helper
    here = dumps[0]
    assert len(here["runs"]) > 12
    params = {row[2]: str(row[9]) for row in here["runs"]}
    assert "2024-01-02" in params[b"more/lightning_logs/version_3"]
    assert '"lr": 0.01' in params[b"more/lightning_logs/version_1"]
    for there in dumps[1:]:
        assert [row[:14] for row in there["runs"]] == [row[:14] for row in here["runs"]]
        # less first_seen and last_seen: when each was indexed
        assert [row[:17] for row in there["artifacts"]] == [row[:17] for row in here["artifacts"]]
        assert there["dirs"] == here["dirs"]


@needs_fork
def test_runs_read_by_a_forked_reader_are_the_runs_read_here(tmp_path: Path) -> None:
    in_fresh_python("check_forked_reader", tmp_path)


def check_reader_killed_while_detecting(tmp: str) -> None:
    """The forked reader detects a first load's runs; killed right then (the OOM killer),
    the scan detects and reads them itself: the same index."""
    from store.runs import RunSync
    from tui.cli.index import index_roots

    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    make_wide(root)
    scan.BULK_ROWS = scan.EVENT_FLOOD = 10
    handed = RunSync.detect_ahead
    killed: list[int] = []

    def then_killed(self: RunSync, listing: Callable[[], object]) -> bool:
        took = handed(self, listing)  # type: ignore[arg-type]
        if took and self._detecting is not None:
            os.kill(self._detecting.pid, signal.SIGKILL)
            killed.append(self._detecting.pid)
        return took

    dumps = []
    for name, split, detect in (("here.db", 10**9, handed), ("killed.db", 5, then_killed)):
        scan.SPLIT_AFTER = split
        RunSync.detect_ahead = detect  # type: ignore[method-assign]
        index_roots([root], tmp_path / name, hash_files=False, remember_db=False)
        db = open_db(tmp_path / name)
        dumps.append(dump(db))
        db.close()
    assert killed  # the reader was detecting when it died
    here, there = dumps
    assert len(here["runs"]) > 12
    assert [row[:14] for row in there["runs"]] == [row[:14] for row in here["runs"]]
    assert [row[:17] for row in there["artifacts"]] == [row[:17] for row in here["artifacts"]]


@needs_fork
def test_a_reader_killed_while_detecting_leaves_the_same_index(tmp_path: Path) -> None:
    in_fresh_python("check_reader_killed_while_detecting", tmp_path)


def check_rows_made_while_detecting(tmp: str) -> None:
    """A first load makes rows while the forked reader detects its runs; with every piece
    made so (the reader answers only then), or a few of them (``AHEAD_ROWS`` reached),
    the index is the one a single process writes."""
    import time

    from store.runs import RunSync
    from tui.cli.index import index_roots

    assert forked.can_fork()
    tmp_path = Path(tmp)
    root = tmp_path / "root"
    make_wide(root)
    scan.BULK_ROWS = scan.EVENT_FLOOD = 10
    go_on = tmp_path / "rows made"
    detect = RunSync._detect
    rows_ahead = scan.Indexer._rows_ahead
    made: list[tuple[int, int]] = []

    def detect_when_told(self: RunSync, listing: object) -> object:
        """In the reader: answer once the parent made its rows (or after a minute)."""
        deadline = time.monotonic() + 60
        while not go_on.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return detect(self, listing)  # type: ignore[arg-type]

    def counted(self: scan.Indexer, *args: object) -> list[object]:
        pieces = rows_ahead(self, *args)  # type: ignore[arg-type]
        made.append((sum(1 for p in pieces if p is not None), len(args[0])))  # type: ignore[arg-type]
        go_on.touch()
        return pieces  # type: ignore[return-value]

    RunSync._detect = detect_when_told  # type: ignore[method-assign,assignment]
    scan.Indexer._rows_ahead = counted  # type: ignore[method-assign,assignment]
    dumps = []
    for name, no_fork, split, ahead in (
        ("here.db", "1", 10**9, scan.AHEAD_ROWS),
        ("ahead.db", "0", 5, scan.AHEAD_ROWS),
        ("capped.db", "0", 5, 40),
    ):
        os.environ["ARTLENS_NO_FORK"] = no_fork
        scan.SPLIT_AFTER, scan.AHEAD_ROWS = split, ahead
        go_on.unlink(missing_ok=True)
        index_roots([root], tmp_path / name, hash_files=False, remember_db=False)
        db = open_db(tmp_path / name)
        dumps.append(dump(db))
        db.close()
    here, every, capped = made
    assert here[0] == 0  # no reader: nothing to wait for
    # every piece but the few holding links; with the cap, some made ahead and not all
    assert every[1] > every[0] > every[1] - 10
    assert 0 < capped[0] < every[0]
    for there in dumps[1:]:
        assert [row[:14] for row in there["runs"]] == [row[:14] for row in dumps[0]["runs"]]
        assert [row[:17] for row in there["artifacts"]] == [
            row[:17] for row in dumps[0]["artifacts"]
        ]
        assert there["dirs"] == dumps[0]["dirs"]


@needs_fork
def test_rows_made_while_the_runs_are_detected_are_the_rows_written(tmp_path: Path) -> None:
    in_fresh_python("check_rows_made_while_detecting", tmp_path)
