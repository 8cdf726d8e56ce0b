"""Regenerate screenshots/*.svg and *.png of every pane from the demo data.

    .venv/bin/python scripts/screenshots.py [--size 120x40]

SVGs come from ``App.save_screenshot`` under ``run_test`` (a fixed clock, so ages and
hashes are stable).  PNGs are converted from the SVGs with ``rsvg-convert`` (Debian:
``apt-get install librsvg2-bin``), or with ``cairosvg`` when that is importable; without
either, only SVGs are written and the script says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.pilot import Pilot

from store.demo import write_demo
from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tests.fixedfolder import fixed_folder
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen

NOW = 1_780_000_000.0
OUT = Path(__file__).resolve().parent.parent / "screenshots"
Scene = Callable[[Pilot[Any], ExplorerScreen], Awaitable[None]]


def build(base: Path) -> tuple[Path, Path]:
    root, db_path = base / "demo", base / "index.db"
    write_demo(root, now=NOW, seed=0)
    with WriterLock(db_path):
        db = open_db(db_path)
        indexer = Indexer(db, root, clock=lambda: NOW)
        indexer.scan()
        indexer.hash_pending()
        db.conn.close()
    return root, db_path


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_path(pilot: Pilot[Any], screen: ExplorerScreen, run: str, rel: str) -> None:
    run_id = next(r.id for r in screen.runs.values() if r.name == run)
    screen.jump_to_run(run_id)
    await settle(pilot)
    await pilot.press("2")
    for part in rel.split("/"):
        screen.file_tree._typed = ""
        screen.file_tree.jump_to(part.lower())
        await pilot.press("l")
        await settle(pilot)


async def runs(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await pilot.press("j")


async def tree(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await open_path(pilot, screen, "experiments", "untrusted")
    screen.file_tree.jump_to("quick-test")
    await pilot.press("l")
    await settle(pilot)


async def preview_csv(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await open_path(pilot, screen, "version_0", "metrics.csv")


async def preview_model(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await open_path(pilot, screen, "experiments", "untrusted/model.pkl")


async def preview_image(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await open_path(pilot, screen, "experiments", "quick-test/loss.png")


async def preview_yaml(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await open_path(pilot, screen, "version_0", "hparams.yaml")


async def filtered(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await pilot.press("slash", *"lightning")
    await settle(pilot)


async def help_screen(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await pilot.press("question_mark")


async def palette(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*"run: ver")
    await pilot.pause(0.5)


async def light(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await open_path(pilot, screen, "version_0", "hparams.yaml")
    await pilot.press("t")


async def mark_runs(pilot: Pilot[Any], screen: ExplorerScreen, names: list[str]) -> None:
    for name in names:
        screen.jump_to_run(next(r.id for r in screen.runs.values() if r.name == name))
        await settle(pilot)
        await pilot.press("1", "space")
    await settle(pilot)


async def run_diff(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await mark_runs(pilot, screen, ["version_0", "version_2"])
    await pilot.press("d")


async def file_diff(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await open_path(pilot, screen, "version_0", "metrics.csv")
    await pilot.press("space")
    await open_path(pilot, screen, "version_2", "metrics.csv")
    await pilot.press("space")
    await settle(pilot)
    await pilot.press("d")


async def metrics(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await mark_runs(pilot, screen, ["version_0", "version_1", "version_2"])
    await pilot.press("m")


async def retention(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    await pilot.press("r")


async def usage(pilot: Pilot[Any], screen: ExplorerScreen) -> None:
    """The disk usage view (U): the demo root's experiments, largest first."""
    await pilot.press("U")


SCENES: dict[str, Scene] = {
    "runs": runs,
    "tree": tree,
    "preview-csv": preview_csv,
    "preview-model": preview_model,
    "preview-image": preview_image,
    "preview-yaml": preview_yaml,
    "filter": filtered,
    "help": help_screen,
    "palette": palette,
    "light": light,
    "run-diff": run_diff,
    "file-diff": file_diff,
    "metrics": metrics,
    "retention": retention,
    "usage": usage,
}


async def shoot(db_path: Path, root: Path, name: str, scene: Scene, size: tuple[int, int]) -> Path:
    app = ArtlensApp(db_path, [root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        await scene(pilot, screen)
        await settle(pilot)
        path = OUT / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(OUT))
    return path


def to_png(svg: Path) -> str | None:
    """Convert one SVG; returns the tool used, or None when no converter is available."""
    png = svg.with_suffix(".png")
    # Rich's SVG relies on browsers keeping runs of spaces; converters collapse them
    # (right-aligned columns shift left) unless told to preserve them
    source = svg.read_text(encoding="utf-8").replace("<svg ", '<svg xml:space="preserve" ', 1)
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-o", str(png)], input=source.encode(), check=True)
        return "rsvg-convert"
    try:
        import cairosvg
    except ImportError:
        return None
    cairosvg.svg2png(bytestring=source.encode(), write_to=str(png))
    return "cairosvg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="120x40", help="terminal size, COLSxROWS")
    parser.add_argument("--small", action="store_true", help="also shoot runs/tree at 80x24")
    args = parser.parse_args()
    cols, rows = (int(v) for v in args.size.split("x"))
    OUT.mkdir(exist_ok=True)
    os.environ.setdefault("TZ", "UTC")
    # a fixed folder, so the paths shown in the pictures do not change between runs
    with fixed_folder(Path(tempfile.gettempdir()) / "artlens-screenshots") as base:
        root, db_path = build(base)
        shots = [(name, scene, (cols, rows)) for name, scene in SCENES.items()]
        if args.small:
            shots += [(f"{n}-80x24", SCENES[n], (80, 24)) for n in ("runs", "tree", "preview-csv")]
        for name, scene, size in shots:
            svg = asyncio.run(shoot(db_path, root, name, scene, size))
            tool = to_png(svg)
            print(f"{svg.relative_to(OUT.parent)}" + (f" + png ({tool})" if tool else " (no png)"))
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
