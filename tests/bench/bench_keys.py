"""Key-to-screen latency in the file tree while big previews load, beside an empty preview.

    .venv/bin/python tests/bench/bench_keys.py [--keys N] [--gap SECONDS]

One run holds an 8 MB single-line JSON, a 50 MB log and a 1 GiB (sparse) checkpoint; each
``j``/``k`` in the tree moves between them, so every key cancels one preview and starts
the next: a preview is always being read, rendered or laid out on a worker.  The anchor is
the same keys in a run of empty files (the preview has nothing to build), in the same
process, at the same terminal size (80x24).  A big text's whole view (3,000 lines) is laid
out only once the cursor rests on it (``tui.widgets.preview.REST_SECONDS``): the "resting"
line leaves that long and a bit more between keys, so each key lands while the whole view
of the file left is being laid out.  A last line scrolls the preview of the JSON.

Latency is from posting the key to the end of the first screen update that shows the
moved cursor (the compositor's frame, which draws the visible lines; headless, so the
terminal's own write is not counted).  Target: p99 under 50 ms while previews load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from textual import events

from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen
from tui.widgets.preview import REST_SECONDS


class TimedApp(ArtlensApp):
    """Records when a frame first shows what ``waiting_for`` checks."""

    CSS_PATH = str(Path(__file__).resolve().parents[2] / "tui" / "app.tcss")

    waiting_for: Any = None
    started = 0.0
    latencies: list[float]

    def _display(self, screen: Any, renderable: Any) -> None:
        super()._display(screen, renderable)
        if renderable is not None and self.waiting_for is not None and self.waiting_for():
            self.latencies.append(time.perf_counter() - self.started)
            self.waiting_for = None


def build(base: Path) -> Path:
    big = base / "tree" / "lightning_logs" / "version_0"
    empty = base / "tree" / "lightning_logs" / "version_1"
    for run in (big, empty):
        run.mkdir(parents=True)
        (run / "hparams.yaml").write_text("lr: 0.001\n")
    (big / "a-tokenizer.json").write_text(
        json.dumps({"vocab": {f"tok{i}": i for i in range(420_000)}})
    )
    with open(big / "b-train.log", "w") as log:
        line = "step {} loss 0.{:05d} lr 0.001 throughput 1234.5 samples/s\n"
        log.writelines(line.format(i, i % 99999) for i in range(800_000))
    with open(big / "c-model.ckpt", "wb") as ckpt:
        ckpt.truncate(1 << 30)
    for name in ("a-tokenizer.json", "b-train.log", "c-model.ckpt"):
        (empty / name).write_bytes(b"")
    db_path = base / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, base / "tree").scan()
        db.conn.close()
    return db_path


async def press(pilot: Any, app: TimedApp, key: str, moved: Any, gap: float) -> None:
    app.waiting_for = moved
    app.started = time.perf_counter()
    app.post_message(events.Key(key, key))
    deadline = time.monotonic() + 10
    while app.waiting_for is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    await asyncio.sleep(gap)


async def measure(db_path: Path, keys: int, gap: float) -> dict[str, list[float]]:
    app = TimedApp(db_path, [], watch=False)
    app.latencies = []
    found: dict[str, list[float]] = {}
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        while not (isinstance(screen, ExplorerScreen) and screen.table.row_count == 2):
            await pilot.pause(0.01)
            screen = app.screen
        await pilot.pause(0.3)
        runs = {run.name: run.id for run in screen.runs.values()}
        tree = screen.file_tree
        phases = (
            ("empty preview", "version_1", keys, gap),
            ("previews loading", "version_0", keys, gap),
            (f"loading, resting {REST_SECONDS + 0.05:.2f} s", "version_0", keys // 4,
             REST_SECONDS + 0.05),
        )  # fmt: skip
        for label, run, count, pause in phases:
            screen.jump_to_run(runs[run])
            await pilot.pause(0.3)
            await pilot.press("2")
            while tree.last_line < 4:
                await pilot.pause(0.01)
            tree.cursor_line = 1
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            app.latencies = []
            for number in range(count):
                # 1 -> 2 -> 3 -> 2 -> 1 ...: the JSON, the log, the checkpoint
                key = "j" if number % 4 in (0, 1) else "k"
                want = tree.cursor_line + (1 if key == "j" else -1)
                await press(pilot, app, key, lambda w=want: tree.cursor_line == w, pause)
            found[label] = list(app.latencies)
        # Scrolling the preview of the JSON once it is shown.
        tree.cursor_line = 1
        pane = screen.preview_pane
        while pane.shown_key is None or not pane.shown_key.endswith(b".json"):
            await pilot.pause(0.01)
        await app.workers.wait_for_complete()
        await pilot.press("3")
        app.latencies = []
        for number in range(keys):
            key = "j" if number % 20 < 10 else "k"
            target = pane.scroll_y + (1 if key == "j" else -1)
            await press(pilot, app, key, lambda w=target: pane.scroll_y == w, 0.02)
        found["scrolling the JSON preview"] = list(app.latencies)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.08, help="seconds between keys")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="artlens-bench-keys-") as tmp:
        began = time.perf_counter()
        db_path = build(Path(tmp))
        print(f"tree written and indexed in {time.perf_counter() - began:.1f} s", flush=True)
        found = asyncio.run(measure(db_path, args.keys, args.gap))
    print(f"{'key to screen (80x24)':<34} {'keys':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, values in found.items():
        if not values:
            print(f"{label:<34} no key was answered")
            continue
        print(
            f"{label:<34} {len(values):>5} {statistics.median(values) * 1000:>8.1f} "
            f"{percentile(values, 0.99) * 1000:>8.1f} {max(values) * 1000:>8.1f}"
        )
    loading = found.get("previews loading", [])
    verdict = "met" if loading and percentile(loading, 0.99) < 0.05 else "NOT met"
    print(f"target p99 < 50 ms while previews load: {verdict}")


if __name__ == "__main__":
    main()
