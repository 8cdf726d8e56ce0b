"""Explorer benchmark on a big index: 1,000,000 artifacts in 5,000 runs (rows only, no files).

    cd /work/main && /work/venv/bin/python tests/bench/bench_tui.py [--artifacts N --runs M]

Prints: time to interactive of the explorer vs a bare Textual app with the same widgets,
time spent on the UI thread to open the largest run's tree (and its 100,000-file folder),
and peak memory.  Targets: interactive within 1.5x the bare app, tree under 100 ms on the
UI thread, peak under 250 MB.

"Interactive" is measured the same way for both apps, from the outside, as a user sees it:
each app is started as a fresh ``python`` process in a pseudo-terminal of 120x40 (so Python
start-up and every import count), and the clock stops when (1) the first frame is on the
terminal (the Footer's "^p palette" has been written) and (2) ``ctrl+p``, sent the moment
that frame appears, has been answered (the command palette's prompt is drawn).  The two
apps alternate, TRIALS times each, and the medians are compared.  For artlens the time
until the first run rows are on screen is reported too (from separate launches, no key).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import re
import resource
import select
import statistics
import struct
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.index.db import open_db, write_transaction
from store.index.views import largest_run
from store.lock import WriterLock
from tui.app import ArtlensApp
from tui.messages import ChildrenLoaded
from tui.screens.explorer import ExplorerScreen
from tui.widgets.artifact_tree import ArtifactTree

NOW = 1_780_000_000.0
BIG_FOLDER = 100_000
"""Files in one folder of the largest run: the worst case for opening a tree node."""
TRIALS = 5
"""Launches of each app for the start-up comparison (medians are compared)."""
PROJECT = str(Path(__file__).resolve().parents[2])

BARE_SCRIPT = """
from textual.app import App
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Tree

class BareApp(App):
    def compose(self):
        yield DataTable()
        with Horizontal():
            yield Tree("root")
            yield VerticalScroll()
        yield Footer()

BareApp().run()
"""
"""The floor: the explorer's widget types, no data, started like a user starts an app."""
ARTLENS_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
from tui.launch import keep_bytecode
keep_bytecode()
from tui.app import run_app
run_app(sys.argv[1], [], watch=False)
"""
"""The explorer exactly as ``artlens`` opens it (minus the CLI's argument parsing): the
console script keeps artlens's compiled modules first (``tui.launch``), so where
``PYTHONDONTWRITEBYTECODE`` is set they are not compiled again at every start."""
_ESCAPES = re.compile(
    rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]"
)
"""Terminal control sequences, dropped so the text on screen can be searched."""


def generate(db_path: Path, n_artifacts: int, n_runs: int) -> None:
    """Rows straight into a fresh index: one root, runs, their folders and files."""
    with WriterLock(db_path):
        db = open_db(db_path)
        conn = db.conn
        with write_transaction(db):
            conn.execute(
                "INSERT INTO roots (id, path, display, added_at) VALUES (1, ?, '/bench', ?)",
                [b"/bench", NOW],
            )
            conn.executemany(
                "INSERT INTO runs (id, root_id, path, name, framework, started, last_write,"
                " status, metrics, size_bytes, n_artifacts, updated_at)"
                " VALUES (?, 1, ?, ?, 'lightning', ?, ?, 'finished', ?, 0, 0, ?)",
                (
                    (
                        i + 1,
                        f"runs/run-{i:05d}".encode(),
                        f"run-{i:05d}",
                        NOW - i * 60,
                        NOW - i * 30,
                        json.dumps(
                            {"train_loss": {"last": 1.0 / (i + 1)}, "val_acc": {"last": i / n_runs}}
                        ),
                        NOW,
                    )
                    for i in range(n_runs)
                ),
            )
            dirs: list[tuple[bytes, bytes]] = [(b"runs", b"")]
            for i in range(n_runs):
                run = f"runs/run-{i:05d}".encode()
                dirs += [(run, b"runs"), (run + b"/checkpoints", run), (run + b"/logs", run)]
            conn.executemany(
                "INSERT INTO dirs (root_id, path, parent, mtime_ns) VALUES (1, ?, ?, 0)", dirs
            )
            per_run = max(1, (n_artifacts - BIG_FOLDER) // max(1, n_runs - 1))
            big = n_runs // 2  # not the first row, so opening it is measured

            def rows() -> Iterator[tuple[Any, ...]]:
                made = 0
                for i in range(n_runs):
                    run = f"runs/run-{i:05d}".encode()
                    count = BIG_FOLDER if i == big else per_run
                    for j in range(count):
                        if made >= n_artifacts:
                            return
                        folder = run + (b"/checkpoints" if i == big or j % 3 else b"/logs")
                        name = f"step-{j:06d}.ckpt"
                        made += 1
                        yield (
                            made,
                            i + 1,
                            folder + b"/" + name.encode(),
                            folder,
                            name,
                            1000 + j,
                            int((NOW - j) * 1e9),
                            made,
                            NOW,
                            NOW,
                        )

            conn.executemany(
                "INSERT INTO artifacts (id, root_id, run_id, path, parent, name, kind, size,"
                " mtime_ns, inode, dev, first_seen, last_seen)"
                " VALUES (?, 1, ?, ?, ?, ?, 'checkpoint', ?, ?, ?, 0, ?, ?)",
                rows(),
            )
            conn.execute(
                "UPDATE runs SET n_artifacts = (SELECT count(*) FROM artifacts"
                " WHERE run_id = runs.id), size_bytes = (SELECT coalesce(sum(size), 0)"
                " FROM artifacts WHERE run_id = runs.id)"
            )
        conn.close()


def launch(script: str, args: list[str], *, press_key: bool, wait_for: bytes) -> dict[str, float]:
    """Start ``script`` in a 120x40 pseudo-terminal; seconds from spawn to the first frame,
    to ctrl+p answered (if ``press_key``) and to ``wait_for`` on screen (if given)."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: a fresh interpreter, as a user would start it
        os.environ["TERM"] = "xterm-256color"
        os.environ.pop("NO_COLOR", None)
        os.execv(sys.executable, [sys.executable, "-c", script, *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    screen, after_key = b"", b""
    found: dict[str, float] = {}
    deadline = start + 30
    try:
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.005)
            if not ready:
                continue
            try:
                data = _ESCAPES.sub(b"", os.read(fd, 1 << 16))
            except OSError:
                break
            now = time.perf_counter() - start
            screen += data
            if "frame" not in found:
                if b"palette" in screen:
                    found["frame"] = now
                    if press_key:
                        os.write(fd, b"\x10")  # ctrl+p
            elif press_key and "key" not in found:
                after_key += data
                if b"for commands" in after_key:
                    found["key"] = now
            if wait_for and "wanted" not in found and wait_for in screen:
                found["wanted"] = now
            answered = "frame" in found and (not press_key or "key" in found)
            if answered and (not wait_for or "wanted" in found):
                break
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    if "frame" not in found or (press_key and "key" not in found):
        raise SystemExit(f"no frame or no answer to ctrl+p within 30 s: {screen[-400:]!r}")
    return found


def start_times(db_path: Path, trials: int) -> dict[str, list[float]]:
    """Interactive times of the bare app and artlens (alternating), and artlens' first rows."""
    times: dict[str, list[float]] = {"bare": [], "artlens": [], "rows": [], "frame": []}
    ours = [str(db_path), PROJECT]
    for _ in range(trials):
        times["bare"].append(launch(BARE_SCRIPT, [], press_key=True, wait_for=b"")["key"])
        found = launch(ARTLENS_SCRIPT, ours, press_key=True, wait_for=b"")
        times["artlens"].append(found["key"])
        times["frame"].append(found["frame"])
        rows = launch(ARTLENS_SCRIPT, ours, press_key=False, wait_for=b"run-00000")
        times["rows"].append(rows["wanted"])
    return times


async def settle(pilot: Any) -> None:
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def explorer_run(db_path: Path) -> dict[str, float]:
    ui_times: list[float] = []
    original = ArtifactTree.on_children_loaded
    original_expand = ArtifactTree.on_tree_node_expanded
    expand_times: list[float] = []

    def timed_expand(self: ArtifactTree, event: Any) -> None:
        began = time.perf_counter()
        original_expand(self, event)
        expand_times.append(time.perf_counter() - began)

    def timed(self: ArtifactTree, message: ChildrenLoaded) -> None:
        began = time.perf_counter()
        original(self, message)
        ui_times.append(time.perf_counter() - began)

    ArtifactTree.on_children_loaded = timed  # type: ignore[method-assign]
    ArtifactTree.on_tree_node_expanded = timed_expand  # type: ignore[method-assign]
    start = time.perf_counter()
    app = ArtlensApp(db_path, [], watch=False, clock=lambda: NOW)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            while not (isinstance(screen, ExplorerScreen) and screen.table.row_count):
                await pilot.pause(0.005)
                screen = app.screen
            first_rows = time.perf_counter() - start
            await settle(pilot)
            db = open_db(db_path, readonly=True)
            big = largest_run(db)
            db.conn.close()
            assert big is not None
            ui_times.clear()
            began = time.perf_counter()
            screen.jump_to_run(big)
            show_run = time.perf_counter() - began
            await settle(pilot)
            root_page = max(ui_times, default=0.0)
            ui_times.clear()
            tree = screen.file_tree
            await pilot.press("2")
            tree.jump_to("checkpoints")
            expand_times.clear()
            await pilot.press("l")
            expand_key = max(expand_times, default=0.0)
            await settle(pilot)
            big_page = max(ui_times, default=0.0)
            shown = len(tree.cursor_node.children) if tree.cursor_node else 0
            return {
                "first_rows": first_rows,
                "show_run": show_run,
                "root_page": root_page,
                "expand_key": expand_key,
                "big_page": big_page,
                "big_children": float(shown),
            }
    finally:
        ArtifactTree.on_children_loaded = original  # type: ignore[method-assign]
        ArtifactTree.on_tree_node_expanded = original_expand  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5_000)
    parser.add_argument("--trials", type=int, default=TRIALS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="artlens-bench-tui-") as tmp:
        db_path = Path(tmp) / "index.db"
        began = time.perf_counter()
        generate(db_path, args.artifacts, args.runs)
        seconds, megabytes = time.perf_counter() - began, db_path.stat().st_size / 1e6
        print(f"generated {args.artifacts:,} artifacts in {args.runs:,} runs "
              f"in {seconds:.1f}s ({megabytes:.0f} MB)")  # fmt: skip
        times = start_times(db_path, args.trials)
        bare, ours_tti = statistics.median(times["bare"]), statistics.median(times["artlens"])
        ratio = ours_tti / bare

        def ms(values: list[float]) -> str:
            return " ".join(f"{v * 1000:.0f}" for v in values)

        print(f"time to interactive (first frame + ctrl+p answered, median of {args.trials}): "
              f"bare Textual app {bare * 1000:.0f} ms [{ms(times['bare'])}], "
              f"artlens {ours_tti * 1000:.0f} ms [{ms(times['artlens'])}] -> {ratio:.2f}x "
              f"({'ok' if ratio <= 1.5 else 'OVER'} <= 1.5x)")  # fmt: skip
        print(f"artlens first frame {statistics.median(times['frame']) * 1000:.0f} ms, "
              f"first run rows on screen {statistics.median(times['rows']) * 1000:.0f} ms "
              f"[{ms(times['rows'])}]")  # fmt: skip
        child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        ours = asyncio.run(explorer_run(db_path))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"in-process: first rows after {ours['first_rows'] * 1000:.0f} ms (imports done)")
        ui_ms = max(ours["show_run"], ours["root_page"], ours["expand_key"], ours["big_page"])
        print(f"UI thread to open the largest run: show_run {ours['show_run'] * 1000:.1f} ms, "
              f"first page {ours['root_page'] * 1000:.1f} ms; its {BIG_FOLDER:,}-file folder: "
              f"expand handler {ours['expand_key'] * 1000:.1f} ms, "
              f"page {ours['big_page'] * 1000:.1f} ms "
              f"({ours['big_children']:.0f} nodes shown) -> max {ui_ms * 1000:.1f} ms "
              f"({'ok' if ui_ms < 0.1 else 'OVER'} < 100 ms)")  # fmt: skip
        print(f"peak memory (whole process, incl. generation): {peak_mb:.0f} MB "
              f"({'ok' if peak_mb < 250 else 'OVER'} < 250 MB); "
              f"largest launched app {child_mb:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
