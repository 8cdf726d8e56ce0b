"""Progressive open: a root never indexed is indexed in pieces the explorer shows at once,
and ends exactly as ``artlens index`` leaves it."""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import store.scan
import tui.app
from store import progressive
from store.index.db import open_db
from store.index.events import in_scope
from store.lock import WriterLock
from store.progressive import ScanStopped, first_scan, is_fresh, pieces
from store.scan import Indexer
from store.watch import Watcher
from tui.app import ArtlensApp
from tui.cli.index import index_roots
from tui.messages import IndexChanged
from tui.screens.explorer import ExplorerScreen
from tui.widgets.runs_table import RunsTable
from tui.widgets.status import StatusLine

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("ARTLENS_CACHE", str(tmp_path / "cache"))


def snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What a user can see of an index: its folders, files and runs (no ids, no clocks)."""
    conn = sqlite3.connect(db_path)
    try:
        return {
            "dirs": sorted(conn.execute("SELECT path, parent, mtime_ns, digest FROM dirs")),
            "artifacts": sorted(
                conn.execute(
                    "SELECT a.path, a.parent, a.name, a.kind, a.size, a.mtime_ns, a.inode,"
                    " a.verdict, r.path FROM artifacts a LEFT JOIN runs r ON r.id = a.run_id"
                )
            ),
            "runs": sorted(
                conn.execute(
                    "SELECT path, name, framework, experiment, status, params, metrics,"
                    " meta, started, n_artifacts, size_bytes, last_write FROM runs"
                )
            ),
        }
    finally:
        conn.close()


def copy_fixtures(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES, root, symlinks=True)
    return root


def test_pieces_descend_to_a_level_with_enough_folders(tmp_path: Path) -> None:
    for n in range(20):
        (tmp_path / "lightning_logs" / f"version_{n}" / "checkpoints").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("x")
    found = pieces(bytes(tmp_path))
    assert found == sorted(f"lightning_logs/version_{n}".encode() for n in range(20))


def test_a_first_scan_in_pieces_equals_a_plain_index(tmp_path: Path) -> None:
    root = copy_fixtures(tmp_path)
    plain = tmp_path / "plain.db"
    index_roots([root], plain, hash_files=False, remember_db=False)
    piecewise = tmp_path / "pieces.db"
    commits: list[int] = []
    with WriterLock(piecewise):
        db = open_db(piecewise)
        indexer = Indexer(db, root)
        assert is_fresh(indexer)

        def committed() -> None:
            commits.append(db.conn.execute("SELECT count(*) FROM runs").fetchone()[0])

        first_scan(indexer, on_commit=committed, budget=60.0)
        assert not is_fresh(indexer)
        db.close()
    total = len(snapshot(plain)["runs"])
    assert total > 10
    assert len(commits) > 2 and 0 < commits[0] < total, commits
    assert snapshot(piecewise) == snapshot(plain)


def test_the_watcher_indexes_a_new_root_in_pieces(tmp_path: Path) -> None:
    root = copy_fixtures(tmp_path)
    plain = tmp_path / "plain.db"
    index_roots([root], plain, hash_files=False, remember_db=False)
    live = tmp_path / "live.db"
    commits: list[float] = []
    walked: list[int] = []
    watcher = Watcher(
        live,
        [root],
        hash_files=False,
        progressive=True,
        on_commit=lambda: commits.append(time.monotonic()),
        on_progress=lambda files, _total: walked.append(files),
    )
    watcher.start()
    watcher.stop()
    assert len(commits) > 2
    assert snapshot(live) == snapshot(plain)
    assert walked and walked[-1] == len(snapshot(plain)["artifacts"])  # "all files in"


def test_a_first_scan_committed_piece_by_piece_equals_a_plain_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk detects runs in its own pieces only: the whole root's detection at the
    end still makes every framework's runs what ``artlens index`` makes them."""
    monkeypatch.setattr(progressive, "CHUNK_SECONDS", 0.0)  # a commit after every piece
    monkeypatch.setattr(progressive, "CHUNK_SHARE", 0.0)
    root = copy_fixtures(tmp_path)
    plain = tmp_path / "plain.db"
    index_roots([root], plain, hash_files=False, remember_db=False)
    live = tmp_path / "live.db"
    counts: list[int] = []
    with WriterLock(live):
        db = open_db(live)

        def committed() -> None:
            counts.append(db.conn.execute("SELECT count(*) FROM runs").fetchone()[0])

        with pytest.raises(ScanStopped):  # stopped after a few chunks, as quitting does
            first_scan(
                Indexer(db, root),
                on_commit=committed,
                budget=0.0,
                should_stop=lambda: len(counts) >= 3,
            )
        stopped = len(snapshot(live)["artifacts"])
        assert 0 < stopped < len(snapshot(plain)["artifacts"])
        counts.clear()
        first_scan(Indexer(db, root), on_commit=committed, budget=0.0)  # the next open
        db.close()
    assert len(set(counts)) > 5, counts
    assert snapshot(live) == snapshot(plain)


def test_runs_keep_appearing_through_the_first_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progressive, "PIECE_BUDGET", 0.0)  # the first piece only
    monkeypatch.setattr(progressive, "CHUNK_SECONDS", 0.0)
    monkeypatch.setattr(progressive, "CHUNK_SHARE", 0.0)
    root = tmp_path / "root"
    make_runs(root, runs=40, folders=2)
    plain = tmp_path / "plain.db"
    index_roots([root], plain, hash_files=False, remember_db=False)
    live = tmp_path / "live.db"
    shown: list[int] = []
    walked: list[tuple[int, int]] = []
    reader = sqlite3.connect(live)  # another connection, as the explorer reads

    def committed() -> None:
        shown.append(reader.execute("SELECT count(*) FROM runs").fetchone()[0])

    watcher = Watcher(
        live,
        [root],
        hash_files=False,
        progressive=True,
        on_commit=committed,
        on_progress=lambda files, about: walked.append((files, about)),
    )
    watcher.start()
    watcher.stop()
    reader.close()
    assert shown == sorted(shown) and shown[-1] == 40
    assert len([n for n in shown if 0 < n < 40]) >= 5, shown  # seen rising, not at once
    assert snapshot(live) == snapshot(plain)
    total = len(snapshot(plain)["artifacts"])
    assert walked[-1] == (total, total)  # "all files in", said once the walk ended
    assert all(files < about for files, about in walked[:-1] if about)  # never "all in" early
    estimates = [about for files, about in walked if about and files < total]
    assert estimates and all(total // 2 <= about <= total * 2 for about in estimates[2:])


def test_a_run_above_the_pieces_owns_the_files_the_chunks_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run whose folder holds the pieces (and a nested run in one of them): the rows
    of every chunk end in the run that owns them."""
    monkeypatch.setattr(progressive, "CHUNK_SECONDS", 0.0)
    monkeypatch.setattr(progressive, "CHUNK_SHARE", 0.0)
    run = tmp_path / "root" / "lightning_logs" / "version_0"
    for n in range(20):
        (run / f"part_{n:02}" / "deep").mkdir(parents=True)
        (run / f"part_{n:02}" / "deep" / f"{n}.ckpt").write_bytes(b"x")
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    inner = run / "part_07" / "lightning_logs" / "version_3"
    inner.mkdir(parents=True)
    (inner / "hparams.yaml").write_text("lr: 0.2\n")
    (inner / "last.ckpt").write_bytes(b"y")
    # a Hydra run found only once its '.hydra' piece is walked, after pieces that sort
    # before it were committed outside any run
    exp = tmp_path / "hydra" / "outputs" / "exp"
    for n in range(20):
        (exp / f"+job{n:02}").mkdir(parents=True)
        (exp / f"+job{n:02}" / "model.pt").write_bytes(b"z")
    (exp / ".hydra").mkdir()
    (exp / ".hydra" / "config.yaml").write_text("lr: 0.3\n")
    for name in ("root", "hydra"):
        plain = tmp_path / f"plain-{name}.db"
        index_roots([tmp_path / name], plain, hash_files=False, remember_db=False)
        live = tmp_path / f"live-{name}.db"
        with WriterLock(live):
            db = open_db(live)
            first_scan(Indexer(db, tmp_path / name), budget=0.0)
            db.close()
        assert len(snapshot(plain)["runs"]) >= 1
        assert snapshot(live) == snapshot(plain)


def make_runs(root: Path, runs: int, folders: int) -> None:
    """``runs`` Lightning runs of ``folders`` subfolders each (the walk reports progress
    every 256 folders)."""
    for r in range(runs):
        run = root / "lightning_logs" / f"version_{r}"
        for f in range(folders):
            (run / f"f{f}").mkdir(parents=True)
        (run / "hparams.yaml").write_text(f"lr: 0.001\nseed: {r}\n")
        (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n")


class HeldApp(ArtlensApp):
    """Holds its watcher's first scan at the first progress report of the full walk (after
    the pieces committed) until the test lets it go: the scan is then observably running."""

    CSS_PATH = str(Path(tui.app.__file__).with_name("app.tcss"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = threading.Event()
        self.release = threading.Event()

    def _scan_progress(self, files: int, total: int) -> None:
        super()._scan_progress(files, total)
        if not self.held.is_set():
            self.held.set()
            self.release.wait(60)


def test_the_explorer_shows_runs_before_the_first_scan_ends(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_runs(root, runs=30, folders=12)
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        open_db(db_path).close()

    async def scenario() -> None:
        app = HeldApp(db_path, [root], watch=True)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            table = screen.query_one(RunsTable)
            status = screen.query_one(StatusLine)
            deadline = time.monotonic() + 30
            while not app.held.is_set() or not table.row_count:
                assert time.monotonic() < deadline, "no run on screen during the first scan"
                await pilot.pause(0.02)
            assert table.row_count > 0
            assert app.watcher is None  # the scan has not ended: the root is not whole yet
            conn = sqlite3.connect(db_path)
            assert conn.execute("SELECT last_full_scan FROM roots").fetchall() == [(None,)]
            conn.close()
            tree = screen.file_tree  # the panes work on what is in: the run's files show

            def names() -> list[str]:
                return [c.data.entry.name for c in tree.root.children if c.data and c.data.entry]

            while "hparams.yaml" not in names():
                assert time.monotonic() < deadline, names()
                await pilot.pause(0.02)
            while "indexing" not in status.info.watcher:
                assert time.monotonic() < deadline, status.info.watcher
                await pilot.pause(0.02)
            assert re.fullmatch(
                r"indexing: [\d,]+ of ~[\d,]+ files \(\d+%\)", status.info.watcher
            ), status.info.watcher  # how far, from the first piece walked
            app.release.set()
            while status.info.watcher != "watching" or table.row_count < 30:
                assert time.monotonic() < deadline + 30, "the scan never filled in"
                await pilot.pause(0.02)
            for _ in range(5):  # no late progress line overwrites it
                await pilot.pause(0.02)
            assert status.info.watcher == "watching"

    asyncio.run(scenario())


def test_open_lets_the_explorer_index_only_new_roots(tmp_path: Path) -> None:
    from store.errors import ArtlensError
    from tui.cli.open_app import open_first

    root = tmp_path / "root"
    make_runs(root, runs=2, folders=1)
    db_path = tmp_path / "index.db"
    assert open_first([root], db_path, remember_db=False)
    assert db_path.exists()  # empty, for the explorer's first frame
    assert snapshot(db_path)["runs"] == []
    index_roots([root], db_path, hash_files=False, remember_db=False)
    assert not open_first([root], db_path, remember_db=False)  # rescanned before, as ever
    with pytest.raises(ArtlensError, match="not a folder"):
        open_first([tmp_path / "missing"], db_path, remember_db=False)
    with WriterLock(db_path, role="watch"):  # another writer: follow it instead
        assert not open_first([tmp_path], db_path, remember_db=False)


def test_a_cancelled_first_scan_leaves_the_root_fresh_and_the_next_start_completes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    make_runs(root, runs=60, folders=12)  # 780 folders: the walk reports at 256 and 512
    plain = tmp_path / "plain.db"
    index_roots([root], plain, hash_files=False, remember_db=False)
    live = tmp_path / "live.db"
    reports: list[int] = []

    def walked(files: int, _total: int) -> None:
        reports.append(files)
        watcher.cancel()  # as quitting does, from another thread, mid-walk

    watcher = Watcher(live, [root], hash_files=False, progressive=True, on_progress=walked)
    with pytest.raises(ScanStopped):
        watcher.start()
    assert len(reports) == 1  # stopped at the walk's next report, nothing written by it
    with WriterLock(live):  # the lock is free again
        db = open_db(live)
        assert is_fresh(Indexer(db, root))
        db.close()
    again = Watcher(live, [root], hash_files=False, progressive=True)
    again.start()
    again.stop()
    assert snapshot(live) == snapshot(plain)
    with pytest.raises(ScanStopped):  # a watcher once cancelled does not start
        watcher.start()


class QuitDuringScanApp(HeldApp):
    """Held like HeldApp; quitting lets the scan go on, as a long walk would."""

    def on_unmount(self) -> None:
        super().on_unmount()
        self.release.set()


def test_quitting_during_the_first_scan_stops_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_runs(root, runs=60, folders=12)
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        open_db(db_path).close()
    app = QuitDuringScanApp(db_path, [root], watch=True)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            table = screen.query_one(RunsTable)
            deadline = time.monotonic() + 30
            while not app.held.is_set() or not table.row_count:  # the explorer is up
                assert time.monotonic() < deadline, "the first scan never reported"
                await pilot.pause(0.02)
            await app.action_quit()

    asyncio.run(scenario())
    assert app.watcher is None
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT last_full_scan FROM roots").fetchall() == [(None,)]
    conn.close()
    with WriterLock(db_path):  # released: the next open indexes the root again
        pass


def test_a_first_scan_stopped_while_it_writes_rolls_back_whole(tmp_path: Path) -> None:
    root = copy_fixtures(tmp_path)
    plain = tmp_path / "plain.db"
    index_roots([root], plain, hash_files=False, remember_db=False)
    live = tmp_path / "live.db"
    with WriterLock(live):
        db = open_db(live)
        indexer = Indexer(db, root)
        indexes = db.conn.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()
        asked: list[bool] = []

        def writing() -> bool:
            """Asked to stop once the rows are being written (and from then on)."""
            if db.conn.in_transaction:
                asked.append(True)
            return bool(asked)

        with pytest.raises(ScanStopped):
            first_scan(indexer, budget=0.0, should_stop=writing)
        assert not db.conn.in_transaction
        assert db.conn.execute("SELECT count(*) FROM artifacts").fetchone() == (0,)
        assert db.conn.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall() == (
            indexes
        )  # the indexes a bulk load drops are back
        assert is_fresh(indexer)
        first_scan(Indexer(db, root), budget=0.0, should_stop=lambda: False)
        db.close()
    assert snapshot(live) == snapshot(plain)


class DeltaApp(ArtlensApp):
    """Keeps every change-feed delta the explorer read, as the app hands it on."""

    CSS_PATH = str(Path(tui.app.__file__).with_name("app.tcss"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deltas: list[IndexChanged] = []

    def on_index_changed(self, message: IndexChanged) -> None:
        self.deltas.append(message)
        super().on_index_changed(message)

    def _index_committed(self) -> None:
        """On the watcher's thread: the next chunk waits until the explorer read this one
        (each chunk is then a delta of its own, however fast the machine)."""
        super()._index_committed()
        conn = sqlite3.connect(self.db_path)
        (newest,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        conn.close()
        deadline = time.monotonic() + 10
        while not any(d.last_event >= newest for d in list(self.deltas)):
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)


def test_during_a_first_scan_the_explorer_reads_only_the_runs_a_chunk_covered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk's 'scan' event names its pieces: the explorer rereads the runs there
    (and above), not every run of the root, and ends showing every run."""
    monkeypatch.setattr(progressive, "PIECE_BUDGET", 0.0)
    monkeypatch.setattr(progressive, "CHUNK_SECONDS", 0.0)  # a commit after every piece
    monkeypatch.setattr(progressive, "CHUNK_SHARE", 0.0)
    monkeypatch.setattr(store.scan, "EVENT_FLOOD", 1)  # each chunk's events: one 'scan'
    root = tmp_path / "root"
    make_runs(root, runs=40, folders=1)
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        open_db(db_path).close()

    async def scenario() -> None:
        app = DeltaApp(db_path, [root], watch=True)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            table = screen.query_one(RunsTable)
            status = screen.query_one(StatusLine)
            deadline = time.monotonic() + 60
            while status.info.watcher != "watching" or table.row_count < 40:
                assert time.monotonic() < deadline, (status.info.watcher, table.row_count)
                await pilot.pause(0.02)
            conn = sqlite3.connect(db_path)
            ids = {rid for (rid,) in conn.execute("SELECT id FROM runs")}
            scoped = 0
            after = 0
            for delta in app.deltas:
                assert not delta.full
                # the runs read: those the chunks' scans covered, and those named by an
                # event of the batch (a run's summary read at the end), no other
                named = {
                    rid
                    for (rid,) in conn.execute(
                        "SELECT run_id FROM events WHERE id > ? AND id <= ?",
                        [after, delta.last_event],
                    )
                }
                covered = in_scope(delta.rescanned_folders)
                for run in delta.updated:
                    assert (
                        run.id in named
                        or run.root_id in delta.rescanned_roots
                        or covered(run.root_id, run.path)
                    ), run.path
                scoped += bool(delta.rescanned_folders)
                after = delta.last_event
            (root_wide,) = conn.execute(
                "SELECT count(*) FROM events WHERE kind = 'scan' AND path = X''"
            ).fetchone()
            conn.close()
            # the whole root once: the first chunk holds the folders above the pieces (a
            # busy UI may read that event twice, when its first load and a change read race)
            assert root_wide <= 1
            assert scoped >= 20, [len(d.updated) for d in app.deltas]
            assert set(screen.runs) == ids and len(ids) == 40

    asyncio.run(scenario())
