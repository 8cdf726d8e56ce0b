"""The live view end to end: a real watcher, real files, real SQLite, the real app.

Each test writes to a run the way training code does and waits (with a timeout, never a
guessed sleep) until the change is on the screen: a new run row, a tree node that comes
and goes, sizes and ages that tick, the live marker turning on and off, the metrics
view and a log tail that move; cursors and scroll positions stay where the user left
them.  The last test runs two explorers and ``artlens watch`` on one index together.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.widgets.tree import TreeNode
from textual.worker import Worker, WorkerState

import store.runs
import store.scan
import store.watch.watcher as watcher_module
from store.index.db import open_db
from store.lock import WriterLock, holder
from store.scan import Indexer
from tests.conftest import ground_truth
from tui.app import ArtlensApp
from tui.cli.open_app import open_first
from tui.format import human_size
from tui.screens.explorer import ExplorerScreen
from tui.screens.metrics import MetricsScreen
from tui.widgets.artifact_tree import NodeInfo

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

REPO = Path(__file__).resolve().parent.parent
RUNS = 30
"""Runs in the tree: more than the table shows at once, so it can scroll."""
OLD = 3600.0
"""Files start this old: not live, and their age ("1h") visibly ticks when written."""
HEADER = "epoch,step,train_loss,val_acc,val_loss\n"


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no asyncio plugin is installed)."""

    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        asyncio.run(test(*args, **kwargs))  # type: ignore[arg-type]

    return run


def write_run(run: Path, rows: int = 5) -> None:
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.001\nbatch_size: 64\n")
    lines = [f"0,{step},{2.0 / (step + 1):.4f},,\n" for step in range(rows)]
    (run / "metrics.csv").write_text(HEADER + "".join(lines))
    (run / "train.log").write_text("".join(f"step {s}\n" for s in range(rows)))
    (run / "checkpoints" / "epoch=0-step=10.ckpt").write_bytes(b"\0" * 4096)


def age_everything(root: Path, seconds: float) -> None:
    then = time.time() - seconds
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (then, then), follow_symlinks=False)
    os.utime(root, (then, then))


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(text)


def atomic_write(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def build_index(root: Path, db_path: Path) -> None:
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            Indexer(db, root).scan()
        finally:
            db.conn.close()


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins and notes of these tests never reach the user's own state file."""
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("ARTLENS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def live_tree(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``RUNS`` Lightning runs, all an hour old, indexed: (root, index path)."""
    root = tmp_path / "root"
    for number in range(RUNS):
        write_run(root / "lightning_logs" / f"version_{number}")
    age_everything(root, OLD)
    db_path = tmp_path / "index.db"
    build_index(root, db_path)
    yield root, db_path


async def until(
    pilot: Pilot[None], condition: Callable[[], bool], what: str, timeout: float = 30.0
) -> float:
    """Let the app run until ``condition`` holds; the seconds it took.  Fails on timeout."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.02)
    return time.monotonic() - started


async def start(pilot: Pilot[None]) -> ExplorerScreen:
    """Wait for the first load and for the in-process watcher to follow the root."""
    app = pilot.app
    assert isinstance(app, ArtlensApp)
    await until(pilot, lambda: app.watcher is not None, "the watcher to start")
    screen = app.screen
    assert isinstance(screen, ExplorerScreen)
    await until(pilot, lambda: screen.loaded and screen.table.row_count == RUNS, "the runs")
    return screen


def run_id_of(screen: ExplorerScreen, name: str) -> int:
    return next(r.id for r in screen.runs.values() if r.path.endswith(name.encode()))


def cell(screen: ExplorerScreen, run_id: int, column: str) -> str:
    if str(run_id) not in screen.table.rows:
        return ""
    return screen.table.get_cell(str(run_id), column).plain


def nodes(node: TreeNode[NodeInfo]) -> Iterator[TreeNode[NodeInfo]]:
    yield node
    for child in node.children:
        yield from nodes(child)


def node_at(screen: ExplorerScreen, key: bytes) -> TreeNode[NodeInfo] | None:
    for node in nodes(screen.file_tree.root):
        if node.data is not None and node.data.key == key and node.data.more_offset is None:
            return node
    return None


def label(screen: ExplorerScreen, key: bytes) -> str:
    node = node_at(screen, key)
    return "" if node is None else str(node.label)


async def open_run(pilot: Pilot[None], screen: ExplorerScreen, name: str) -> bytes:
    """Show run ``name`` in the tree, its checkpoints folder open; the run's key."""
    run_id = run_id_of(screen, name)
    screen.jump_to_run(run_id)
    key = screen.runs[run_id].path
    await until(pilot, lambda: node_at(screen, key + b"/checkpoints") is not None, "the tree")
    folder = node_at(screen, key + b"/checkpoints")
    assert folder is not None
    folder.expand()
    ckpt = key + b"/checkpoints/epoch=0-step=10.ckpt"
    await until(pilot, lambda: node_at(screen, ckpt) is not None, "the checkpoints")
    return key


def live_app(db_path: Path, root: Path) -> ArtlensApp:
    return ArtlensApp(db_path, [root], watch=True)


@sync
async def test_new_run_row_appears_cursor_and_scroll_kept(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(100, 24)) as pilot:
        screen = await start(pilot)
        await pilot.press(*"j" * 20)
        await until(pilot, lambda: screen.table.scroll_y > 0, "the table to scroll")
        table = screen.table
        cursor_before, line_before = table.current_run_id, table.cursor_row - table.scroll_y
        write_run(root / "lightning_logs" / "version_99")
        await until(pilot, lambda: screen.table.row_count == RUNS + 1, "the new run's row")
        new_id = run_id_of(screen, "version_99")
        assert str(new_id) in screen.table.rows
        # The new run sorts to the top: the view scrolls with it, the cursor stays put.
        assert table.current_run_id == cursor_before
        # the scroll offset follows on the next refresh after the row lands
        await until(
            pilot,
            lambda: table.cursor_row - table.scroll_y == line_before,
            "the cursor to keep its line on screen",
            2.0,
        )
        assert table.current_run_id == cursor_before


@sync
async def test_new_run_row_shows_its_files_and_is_live(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start(pilot)
        write_run(root / "lightning_logs" / "version_99")
        await until(pilot, lambda: screen.table.row_count == RUNS + 1, "the new run's row")
        new_id = run_id_of(screen, "version_99")
        await until(pilot, lambda: cell(screen, new_id, "artifacts") == "4", "its files", 3)
        assert cell(screen, new_id, "status") == "● live"


@sync
async def test_tree_node_appears_and_disappears_cursor_kept(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await start(pilot)
        key = await open_run(pilot, screen, "version_3")
        tree = screen.file_tree
        tree.focus()
        metrics_node = node_at(screen, key + b"/metrics.csv")
        assert metrics_node is not None
        tree.move_cursor(metrics_node)
        await pilot.pause()
        run_dir = root / "lightning_logs" / "version_3"
        new = key + b"/checkpoints/epoch=1-step=20.ckpt"
        atomic_write(run_dir / "checkpoints" / "epoch=1-step=20.ckpt", b"\1" * 8192)
        await until(pilot, lambda: node_at(screen, new) is not None, "the new checkpoint")
        assert node_at(screen, key + b"/checkpoints/.epoch=1-step=20.ckpt.tmp") is None
        assert human_size(8192) in label(screen, new)
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.key == key + b"/metrics.csv"
        (run_dir / "checkpoints" / "epoch=0-step=10.ckpt").unlink()
        old = key + b"/checkpoints/epoch=0-step=10.ckpt"
        await until(pilot, lambda: node_at(screen, old) is None, "the deleted checkpoint to go")
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.key == key + b"/metrics.csv"
        (run_dir / "extra").mkdir()
        (run_dir / "extra" / "notes.txt").write_text("a new folder\n")
        await until(pilot, lambda: node_at(screen, key + b"/extra") is not None, "a new folder")
        assert tree.cursor_node.data.key == key + b"/metrics.csv"


@sync
async def test_sizes_and_last_write_tick(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start(pilot)
        key = await open_run(pilot, screen, "version_5")
        run_id = run_id_of(screen, "version_5")
        size_before = cell(screen, run_id, "size")
        files_before = cell(screen, run_id, "artifacts")
        assert cell(screen, run_id, "last_write").startswith("1h")
        metrics_label = label(screen, key + b"/metrics.csv")
        run_dir = root / "lightning_logs" / "version_5"
        append(run_dir / "metrics.csv", "".join(f"0,{s},0.1,,\n" for s in range(5, 400)))
        await until(pilot, lambda: cell(screen, run_id, "size") != size_before, "the run's size")
        assert not cell(screen, run_id, "last_write").startswith("1h")
        await until(
            pilot,
            lambda: label(screen, key + b"/metrics.csv") != metrics_label,
            "the file's size and age in the tree",
        )
        assert "1h" not in label(screen, key + b"/metrics.csv")
        (run_dir / "checkpoints" / "epoch=1-step=20.ckpt").write_bytes(b"\0" * 10)
        await until(
            pilot,
            lambda: cell(screen, run_id, "artifacts") == str(int(files_before) + 1),
            "the file count",
        )


@sync
async def test_tree_changes_in_the_same_turn_as_the_runs_table(
    live_tree: tuple[Path, Path],
) -> None:
    """The change reader reads the open folders it touched too: the tree does not wait
    for a worker of its own (and a second redraw) after the table moved."""
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start(pilot)
        key = await open_run(pilot, screen, "version_6")
        run_id = run_id_of(screen, "version_6")
        run_dir = root / "lightning_logs" / "version_6"
        for step in range(3):
            size_before = cell(screen, run_id, "size")
            metrics_label = label(screen, key + b"/metrics.csv")
            append(run_dir / "metrics.csv", "".join(f"0,{s},0.1,,\n" for s in range(400)))
            started = time.monotonic()
            while cell(screen, run_id, "size") == size_before:  # look at every turn
                assert time.monotonic() - started < 30, "the run's size never changed"
                await asyncio.sleep(0)
            assert label(screen, key + b"/metrics.csv") != metrics_label, step
            atomic_write(run_dir / "checkpoints" / f"epoch={step + 1}.ckpt", b"\0" * 64)
            new = key + b"/checkpoints/" + f"epoch={step + 1}.ckpt".encode()
            files_before = cell(screen, run_id, "artifacts")
            started = time.monotonic()
            while cell(screen, run_id, "artifacts") == files_before:
                assert time.monotonic() - started < 30, "the run's file count never changed"
                await asyncio.sleep(0)
            assert node_at(screen, new) is not None, step


@sync
async def test_live_marker_turns_on_then_off(
    live_tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.runs, "LIVE_SECONDS", 1.5)
    monkeypatch.setattr(watcher_module, "STATUS_EVERY", 0.25)
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start(pilot)
        run_id = run_id_of(screen, "version_7")
        assert cell(screen, run_id, "status") == "unknown"
        cursor = screen.table.current_run_id
        metrics = root / "lightning_logs" / "version_7" / "metrics.csv"
        append(metrics, "1,5,0.2,,\n")
        written = metrics.stat().st_mtime
        await until(pilot, lambda: cell(screen, run_id, "status") == "● live", "live on")
        await until(pilot, lambda: cell(screen, run_id, "status") == "unknown", "live off")
        # Off only after the quiet period (counted from the write, which a busy machine can
        # only make longer), and by the watcher's own status refresh.
        assert time.time() - written >= 1.5 - 0.05
        assert screen.table.current_run_id == cursor


@sync
async def test_metrics_view_follows_a_writing_run(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await start(pilot)
        run_id = run_id_of(screen, "version_2")
        screen.jump_to_run(run_id)
        await pilot.press("m")
        metrics = app.screen
        assert isinstance(metrics, MetricsScreen)

        def points() -> int:
            series = metrics.series.get(run_id)
            line = series.line("train_loss") if series is not None else None
            return len(line.points) if line is not None else 0

        await until(pilot, lambda: points() == 5, "the series")
        table: DataTable[object] = metrics.query_one("#metrics-table", DataTable)
        row = f"{run_id}\x1ftrain_loss"
        spark_before = str(table.get_cell(row, "trend"))
        last_before = str(table.get_cell(row, "last"))
        cursor_before = table.cursor_row
        plot_before = metrics.plot_lines("train_loss")
        run_dir = root / "lightning_logs" / "version_2"
        append(run_dir / "metrics.csv", "".join(f"0,{s},{5.0 + s},,\n" for s in range(5, 12)))
        await until(pilot, lambda: points() == 12, "new points in the metrics view")
        await until(
            pilot, lambda: str(table.get_cell(row, "trend")) != spark_before, "the sparkline"
        )
        assert str(table.get_cell(row, "last")) != last_before
        assert len(metrics.plot_lines("train_loss")[0].points) > len(plot_before[0].points)
        assert table.cursor_row == cursor_before


@sync
async def test_log_tail_moves_in_the_preview(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start(pilot)
        key = await open_run(pilot, screen, "version_4")
        tree = screen.file_tree
        tree.focus()
        log_node = node_at(screen, key + b"/train.log")
        assert log_node is not None
        tree.move_cursor(log_node)
        pane = screen.preview_pane
        await until(pilot, lambda: "step 4" in pane.plain_text(), "the log's preview")
        log = root / "lightning_logs" / "version_4" / "train.log"
        append(log, "".join(f"step {s}\n" for s in range(5, 80)))
        await until(pilot, lambda: "step 79" in pane.plain_text(), "the log tail to move")
        await until(pilot, lambda: pane.max_scroll_y > 0, "a preview taller than the pane")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y, "the view at the tail")
        append(log, "step 80 the newest line\n")
        await until(pilot, lambda: "step 80" in pane.plain_text(), "the tail to move again")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y, "the view to follow")
        # Scrolled up to read, the user stays there while the log keeps growing.
        seen = -1
        while screen.last_event != seen:  # no refresh of the log still in flight
            seen = screen.last_event
            await app.workers.wait_for_complete()
            await pilot.pause(0.5)
        pane.focus()
        await pilot.press("g")  # to the top, as a reader would: following pauses
        assert pane.scroll_y == 0 and not pane.following
        append(log, "step 81 while reading above\n")
        await until(pilot, lambda: "step 81" in pane.plain_text(), "the tail while reading")
        await pilot.pause()
        assert pane.scroll_y == 0
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.key == key + b"/train.log"


# -- two explorers and one watcher ------------------------------------------------------

SECOND_APP = """
import asyncio, json, sys, time
from pathlib import Path
from textual.worker import Worker, WorkerState
from tui.app import ArtlensApp

db, root, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
errors = []

def hook(message):
    if isinstance(message, Worker.StateChanged) and message.state == WorkerState.ERROR:
        errors.append(repr(message.worker.error))

async def main():
    app = ArtlensApp(db, [root], watch=True)
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        keys = 0
        deadline = time.monotonic() + 60
        while not stop.exists() and time.monotonic() < deadline:
            await pilot.press("j" if keys % 10 < 5 else "k")
            keys += 1
            await pilot.pause(0.02)
        from store.index.db import open_db
        conn = open_db(db, readonly=True)
        last = conn.execute("SELECT max(id) FROM events").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM artifacts").fetchone()[0]
        conn.close()
        screen = app.screen
        deadline = time.monotonic() + 15
        while screen.last_event < last and time.monotonic() < deadline:
            await pilot.pause(0.05)
        # the status line's totals are read after the change, in a worker of their own
        status = screen.query_one("#status").info
        while time.monotonic() < deadline and (
            status.counts is None or status.counts.artifacts != count
        ):
            await pilot.pause(0.05)
            status = screen.query_one("#status").info
        errors.extend(n.message for n in app._notifications if n.severity == "error")
        print(json.dumps({
            "errors": errors, "keys": keys, "runs": len(screen.runs),
            "last_event": screen.last_event, "wanted": last,
            "artifacts": status.counts.artifacts if status.counts else -1,
            "watcher": status.watcher,
        }))

asyncio.run(main())
"""


def locked(text: str) -> bool:
    return "locked" in text.lower() or "busy" in text.lower()


@sync
async def test_two_explorers_and_a_watcher_share_the_index(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_run(root / "lightning_logs" / "version_0")
    db_path = tmp_path / "index.db"
    build_index(root, db_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    watch = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", str(root), "--db", str(db_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while holder(db_path) is None:  # the watcher, not an explorer, must be the writer
        assert watch.poll() is None and time.monotonic() < deadline, "artlens watch did not start"
        time.sleep(0.02)
    stop = tmp_path / "stop"
    second = subprocess.Popen(
        [sys.executable, "-c", SECOND_APP, str(db_path), str(root), str(stop)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []

    def hook(message: Message) -> None:
        if isinstance(message, Worker.StateChanged) and message.state == WorkerState.ERROR:
            errors.append(repr(message.worker.error))

    try:
        app = ArtlensApp(db_path, [root], watch=True)
        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            await until(pilot, lambda: "following pid" in app.watch_state[0], "the other watcher")

            def write() -> None:
                for number in range(1, 9):
                    run = root / "lightning_logs" / f"version_{number}"
                    write_run(run)
                    for step in range(20):
                        append(run / "metrics.csv", f"0,{step + 5},0.5,,\n")
                        (run / "checkpoints" / f"f{step}.bin").write_bytes(b"x" * step)
                        time.sleep(0.01)

            writer = threading.Thread(target=write)
            writer.start()
            keys = 0
            while writer.is_alive() or keys < 20:
                await pilot.press("j" if keys % 10 < 5 else "k")
                keys += 1
                await pilot.pause(0.02)
            writer.join()

            def converged() -> bool:
                db = open_db(db_path, readonly=True)
                try:
                    rows = {bytes(p): s for p, s in db.execute("SELECT path, size FROM artifacts")}
                finally:
                    db.conn.close()
                return rows == ground_truth(root)

            await until(pilot, converged, "the watcher to converge", timeout=60)
            await until(pilot, lambda: len(screen.runs) == 9, "all nine runs on screen", 10)
            truth = len(ground_truth(root))
            await until(
                pilot,
                lambda: (
                    (c := screen.query_one("#status").info.counts) is not None  # type: ignore[attr-defined]
                    and c.artifacts == truth
                ),
                "the counts on screen",
            )
            status_text = str(screen.query_one("#status").info.watcher)  # type: ignore[attr-defined]
            errors.extend(n.message for n in app._notifications if n.severity == "error")
            stop.touch()
            out, err = second.communicate(timeout=40)
        assert second.returncode == 0, err[-2000:]
        report = json.loads(out.strip().splitlines()[-1])
        assert report["keys"] > 10 and keys > 10
        assert report["runs"] == 9, report
        assert report["artifacts"] == truth, report
        assert "following pid" in report["watcher"], report
        assert not report["errors"], report
        assert not errors, errors
        assert not locked(status_text), status_text
        assert not locked(err), err[-2000:]
    finally:
        stop.touch()
        if second.poll() is None:
            second.kill()
            second.communicate()
        watch.terminate()
        watch_out, watch_err = watch.communicate(timeout=20)
    assert watch.returncode == 0, watch_err[-2000:]
    assert not locked(watch_out + watch_err), (watch_out + watch_err)[-2000:]


@sync
async def test_artlens_root_beside_a_writer_opens_as_a_reader_that_follows_it(
    live_tree: tuple[Path, Path],
) -> None:
    """``artlens ROOT`` while ``artlens watch ROOT`` runs: no exit 2, a reader that says so."""
    from store.errors import ArtlensError
    from tui.cli.open_app import index_or_follow

    root, db_path = live_tree
    with WriterLock(db_path, role="watch"):
        writer = index_or_follow([root], db_path)
        assert writer is not None and "watch" in writer
        other = root.parent / "other"
        other.mkdir()
        with pytest.raises(ArtlensError, match="not in the index"):
            index_or_follow([other], db_path)
        app = ArtlensApp(db_path, [root], watch=True, writer=writer)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await until_loaded(pilot)
            assert app.watcher is None
            assert app.watch_state[0].startswith(f"following pid {os.getpid()}")
            assert "following pid" in screen.query_one("#status").render_info().plain  # type: ignore[attr-defined]
            assert any("opened as a reader" in n.message for n in app._notifications)
            # Another process's commits show up: here we write as that writer would.
            write_run(root / "lightning_logs" / f"version_{RUNS}")
            db = open_db(db_path)
            try:
                Indexer(db, root).scan()
            finally:
                db.conn.close()
            await until(pilot, lambda: len(screen.runs) == RUNS + 1, "the writer's new run")
    assert index_or_follow([root], db_path) is None  # no writer: we index, as before


async def until_loaded(pilot: Pilot[None]) -> ExplorerScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ExplorerScreen)
    await until(pilot, lambda: screen.loaded and screen.table.row_count == RUNS, "the runs")
    return screen


@sync
async def test_preview_of_a_file_that_rotates_away_follows_without_a_key(
    live_tree: tuple[Path, Path],
) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start(pilot)
        key = await open_run(pilot, screen, "version_3")
        folder = root / "lightning_logs" / "version_3" / "checkpoints"
        (folder / "epoch=1-step=20.ckpt").write_bytes(b"\0" * 4096)
        newer = key + b"/checkpoints/epoch=1-step=20.ckpt"
        await until(pilot, lambda: node_at(screen, newer) is not None, "the new checkpoint")
        old = key + b"/checkpoints/epoch=0-step=10.ckpt"
        tree = screen.file_tree
        tree.focus()
        node = node_at(screen, old)
        assert node is not None
        tree.move_cursor(node)
        pane = screen.preview_pane
        await until(pilot, lambda: pane.shown_key == old, "the old checkpoint's preview")
        assert "epoch=0-step=10.ckpt" in pane.plain_text()
        (folder / "epoch=0-step=10.ckpt").unlink()  # keep-last-1 rotation
        await until(pilot, lambda: node_at(screen, old) is None, "the tree to drop it")
        await until(pilot, lambda: pane.shown_key != old, "the preview to drop it")
        # Its first line names the file shown; later lines may list other runs' copies of the
        # same bytes (every fixture checkpoint is alike), which can carry the old name.
        assert "epoch=0-step=10.ckpt" not in pane.plain_text().splitlines()[0]
        cursor = tree.cursor_node
        assert cursor is not None and cursor.data is not None
        assert pane.shown_key in (cursor.data.key, None)


@sync
async def test_a_live_metrics_csv_is_followed_and_f_resumes(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start(pilot)
        key = await open_run(pilot, screen, "version_2")
        tree = screen.file_tree
        tree.focus()
        node = node_at(screen, key + b"/metrics.csv")
        assert node is not None
        tree.move_cursor(node)
        pane = screen.preview_pane
        await until(pilot, lambda: pane.shown_key == key + b"/metrics.csv", "the CSV's preview")
        csv_path = root / "lightning_logs" / "version_2" / "metrics.csv"
        append(csv_path, "".join(f"0,{step},0.{step:04d},,\n" for step in range(5, 80)))
        await until(pilot, lambda: "0.0079" in pane.plain_text(), "the newest row")
        await until(pilot, lambda: pane.max_scroll_y > 0, "a table taller than the pane")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y, "the newest rows shown")
        assert pane.following and "following" in str(pane.border_subtitle)
        await pilot.press("3", "k", "k")
        assert not pane.following and "F follows" in str(pane.border_subtitle)
        place = pane.scroll_y
        append(csv_path, "0,80,0.0080,,\n")
        await until(pilot, lambda: "0.0080" in pane.plain_text(), "the next row")
        await pilot.pause()
        assert pane.scroll_y == place  # paused: the reader's place is kept
        await pilot.press("F")
        assert pane.following and pane.scroll_y == pane.max_scroll_y
        append(csv_path, "0,81,0.0081,,\n")
        await until(pilot, lambda: "0.0081" in pane.plain_text(), "one more row")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y, "following again")


@sync
async def test_the_tree_follows_a_scan_event_below_the_root(
    live_tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan of a run's folder writes one 'scan' event naming it (as a chunk of a first
    scan does): the open folder below it shows each file come and go, the runs stay."""
    monkeypatch.setattr(store.scan, "EVENT_FLOOD", 0)
    root, db_path = live_tree
    app = ArtlensApp(db_path, [root], watch=False)  # the scans below are the only writer
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        await until(pilot, lambda: screen.loaded and screen.table.row_count == RUNS, "the runs")
        key = await open_run(pilot, screen, "version_3")
        run_dir = root / "lightning_logs" / "version_3"

        def scan() -> None:
            db = open_db(db_path)
            try:
                Indexer(db, root).scan(key)
            finally:
                db.close()

        new = key + b"/checkpoints/epoch=1-step=20.ckpt"
        atomic_write(run_dir / "checkpoints" / "epoch=1-step=20.ckpt", b"\1" * 8192)
        (run_dir / "checkpoints" / "epoch=0-step=10.ckpt").unlink()
        await asyncio.to_thread(scan)
        old = key + b"/checkpoints/epoch=0-step=10.ckpt"
        await until(pilot, lambda: node_at(screen, new) is not None, "the new checkpoint")
        await until(pilot, lambda: node_at(screen, old) is None, "the deleted checkpoint to go")
        assert len(screen.runs) == RUNS
        db = open_db(db_path)
        found = db.conn.execute("SELECT path FROM events WHERE kind = 'scan'")
        scans = [bytes(p) for (p,) in found]
        db.close()
        assert scans == [key]  # the run, above the open folder


@sync
async def test_checklists_wait_for_a_first_scan_then_every_run_has_one(tmp_path: Path) -> None:
    """A root never indexed: its runs come in while the scan goes on, their checklists
    are held meanwhile (a run's summaries come last) and made for every run after."""
    root = tmp_path / "root"
    for number in range(RUNS):
        write_run(root / "lightning_logs" / f"version_{number}")
    age_everything(root, OLD)
    db_path = tmp_path / "index.db"
    assert open_first([root], db_path, remember_db=False)  # as `artlens ROOT` opens it
    app = live_app(db_path, root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start(pilot)
        # the watcher is set before the end of the first scan is told: wait for both
        await until(
            pilot,
            lambda: (
                screen.runs_pane._checklists_held is None
                and len(screen.runs) == RUNS
                and set(screen.checklists) >= set(screen.runs)
            ),
            "the first scan over and every run checked",
        )
        assert all(cell(screen, run_id, "check") for run_id in screen.runs)


@sync
async def test_a_held_checklist_is_made_once_released(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start(pilot)
        await until(pilot, lambda: len(screen.checklists) == RUNS, "the first checklists")
        screen.first_scan_running(True)
        write_run(root / "lightning_logs" / "version_new")
        await until(pilot, lambda: len(screen.runs) == RUNS + 1, "the new run")
        new = run_id_of(screen, "version_new")
        await until(pilot, lambda: str(new) in screen.table.rows, "its row")
        held = screen.runs_pane._checklists_held
        assert held is not None and new in held  # asked for, not made
        assert new not in screen.checklists and cell(screen, new, "check") == ""
        screen.jump_to_run(new)  # its detail in the preview says so too

        def detail() -> str:
            return screen.preview_pane.plain_text(width=120)

        await until(pilot, lambda: "checklist after the first scan" in detail(), "the detail")
        screen.first_scan_running(False)
        await until(pilot, lambda: new in screen.checklists, "its checklist")
        await until(pilot, lambda: cell(screen, new, "check") != "", "its check cell")
        await until(pilot, lambda: "checklist 3/3" in detail(), "the detail's checklist")
        assert "after the first scan" not in detail()
        assert screen.runs_pane._checklists_held is None


@sync
async def test_a_first_scans_end_told_once_the_screen_is_taken_down_is_ignored(
    live_tree: tuple[Path, Path],
) -> None:
    """Quitting during a first scan: the watcher's thread tells its end (``FirstScanOver``)
    while the app takes the explorer's widgets down; that must not raise (no traceback
    on the way out)."""
    from tui.app import FirstScanOver

    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await start(pilot)
        await until(pilot, lambda: len(screen.checklists) == RUNS, "the first checklists")
        screen.first_scan_running(True)
        screen.jump_to_run(next(iter(screen.runs)))  # the preview shows a run's detail
        await until(
            pilot, lambda: "checklist after" in screen.preview_pane.plain_text(120), "the detail"
        )
        await screen.preview_pane.remove()
        app.post_message(FirstScanOver())
        await until(pilot, lambda: screen.runs_pane._checklists_held is None, "the release")
        await pilot.pause()
    # leaving run_test re-raises whatever a handler raised


@sync
async def test_the_run_detail_follows_a_writing_run(live_tree: tuple[Path, Path]) -> None:
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await start(pilot)
        run_id = run_id_of(screen, "version_4")
        screen.jump_to_run(run_id)
        pane = screen.preview_pane
        await until(pilot, lambda: "train_loss: 0.4" in pane.plain_text(), "the run detail")
        assert "unknown" in pane.plain_text()
        append(root / "lightning_logs" / "version_4" / "metrics.csv", "0,5,0.0123,,\n")
        await until(
            pilot,
            lambda: screen.runs[run_id].metrics["train_loss"]["last"] == 0.0123,
            "the run's new metrics in the table",
        )
        assert cell(screen, run_id, "status") == "● live"
        await until(pilot, lambda: "train_loss: 0.0123" in pane.plain_text(), "the new detail")
        assert "live" in pane.plain_text() and "train_loss: 0.4" not in pane.plain_text()
        assert screen.table.current_run_id == run_id


@sync
async def test_the_run_detail_says_when_its_run_went_quiet(
    live_tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher's status refresh changes a row and no file: the runs table said
    ``unknown`` while the run detail beside it still said ``live``, for as long as the
    cursor stayed there."""
    monkeypatch.setattr(store.runs, "LIVE_SECONDS", 1.5)
    monkeypatch.setattr(watcher_module, "STATUS_EVERY", 0.25)
    root, db_path = live_tree
    app = live_app(db_path, root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await start(pilot)
        run_id = run_id_of(screen, "version_7")
        screen.jump_to_run(run_id)
        pane = screen.preview_pane
        await until(pilot, lambda: "lightning · unknown" in pane.plain_text(), "the run detail")
        append(root / "lightning_logs" / "version_7" / "metrics.csv", "1,5,0.2,,\n")
        await until(pilot, lambda: cell(screen, run_id, "status") == "● live", "live on")
        await until(pilot, lambda: "lightning · live" in pane.plain_text(), "live in the detail")
        await until(pilot, lambda: cell(screen, run_id, "status") == "unknown", "live off")
        await until(
            pilot, lambda: "lightning · unknown" in pane.plain_text(), "quiet in the detail"
        )
