"""The explorer under ``App.run_test``: a real index of the demo tree, a fixed clock."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import Input
from textual.worker import WorkerCancelled

from store.demo import write_demo
from store.index import query
from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tui.app import ArtlensApp
from tui.keys import with_keys
from tui.screens.explorer import ExplorerScreen
from tui.screens.help import HelpScreen
from tui.widgets.artifact_tree import ArtifactTree
from tui.widgets.runs_table import HEADER_PREFIX, NAME_INDEX, key_metric

NOW = 1_780_000_000.0
HOSTILE = ["[link=x]y.txt", "lr[0.1].yaml", "exp[bold]x.json", "red\x1b[31mred.log"]


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no asyncio plugin is installed)."""

    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        asyncio.run(test(*args, **kwargs))  # type: ignore[arg-type]

    return run


@dataclass
class Demo:
    root: Path
    db_path: Path


def build_demo(base: Path) -> Demo:
    """The demo tree plus hostile names, indexed (we are the writer while building it)."""
    root = base / "tree"
    write_demo(root, now=NOW, seed=0)
    quick = root / "experiments" / "quick-test"
    for name in HOSTILE:
        (quick / name).write_text("hostile \x1b]52;c;aGk=\x07 content [bold]x\n")
    (quick / "ckpt[").mkdir()
    (quick / "ckpt[" / "]evil").write_text("reads as ckpt[/]evil: a closing tag\n")
    with open(os.fsencode(quick) + b"/bad-\xff.txt", "wb") as out:
        out.write(b"invalid utf-8 name\n")
    # Old enough not to look live to the fixed clock, so pictures are the same every run.
    for path in [*quick.iterdir(), quick / "ckpt[" / "]evil", quick / "ckpt[", quick]:
        os.utime(path, (NOW - 7200, NOW - 7200), follow_symlinks=False)
    db_path = base / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        indexer = Indexer(db, root, clock=lambda: NOW)
        indexer.scan()
        indexer.hash_pending()
        db.conn.close()
    return Demo(root, db_path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("tui"))


@pytest.fixture
def fresh_demo(tmp_path: Path) -> Iterator[Demo]:
    yield build_demo(tmp_path)


def make_app(demo: Demo) -> ArtlensApp:
    return ArtlensApp(demo.db_path, [demo.root], watch=False, clock=lambda: NOW)


async def settle(pilot: Pilot[None], rounds: int = 3) -> None:
    """Let workers finish and their messages land (no sleeping on a guess)."""
    for _ in range(rounds):
        await pilot.pause()
        for worker in list(pilot.app.workers):
            # a worker a newer request replaced is cancelled: it is done as well
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
    await pilot.pause()


def explorer(app: ArtlensApp) -> ExplorerScreen:
    screen = app.screen
    assert isinstance(screen, ExplorerScreen)
    return screen


def focused(app: ArtlensApp) -> object:
    """The focused widget, typed loosely so checks after key presses are not narrowed away."""
    return app.focused


def current_screen(app: ArtlensApp) -> object:
    return app.screen


def all_runs(demo: Demo) -> list[query.RunRow]:
    db = open_db(demo.db_path, readonly=True)
    try:
        return query.list_runs(db)
    finally:
        db.conn.close()


def table_ids(screen: ExplorerScreen) -> list[int]:
    """Run ids in table order (group header rows left out)."""
    table = screen.table
    keys = [table.coordinate_to_cell_key(Coordinate(i, 0))[0].value for i in range(table.row_count)]
    return [int(key or 0) for key in keys if not (key or "").startswith(HEADER_PREFIX)]


async def open_file(pilot: Pilot[None], screen: ExplorerScreen, run_name: str, rel: str) -> None:
    """Put the runs cursor on ``run_name`` and walk the tree down to ``rel`` by type-ahead."""
    run = next(r for r in screen.runs.values() if r.name == run_name)
    screen.jump_to_run(run.id)
    await settle(pilot)
    await pilot.press("2")
    for part in rel.split("/"):
        screen.file_tree._typed = ""
        assert screen.file_tree.jump_to(part.lower()), part
        await pilot.press("l")
        await settle(pilot)


@sync
async def test_runs_listed_with_metrics(demo: Demo) -> None:
    runs = all_runs(demo)
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        assert sorted(table_ids(screen)) == sorted(r.id for r in runs)
        # Sorted by start time, newest first, by default.
        starts = [screen.runs[i].started or 0 for i in table_ids(screen)]
        assert starts == sorted(starts, reverse=True)
        lightning = next(r for r in runs if r.framework == "lightning" and r.metrics)
        picked = key_metric(lightning, "val_loss")
        assert picked is not None and "val" in picked[0]
        row = screen.table.get_row(str(lightning.id))
        assert str(row[9]) != "-"


@sync
async def test_the_status_line_counts_the_index_once_the_runs_are_shown(demo: Demo) -> None:
    """The totals are read apart from the runs (they pass over every artifact), yet come."""
    from tui.widgets.status import StatusLine

    db = open_db(demo.db_path, readonly=True)
    try:
        runs, files, size = db.conn.execute(
            "SELECT (SELECT count(*) FROM runs), count(*), sum(size) FROM artifacts"
        ).fetchone()
    finally:
        db.conn.close()
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        info = explorer(app).query_one(StatusLine).info
        assert info.counts is not None
        assert (info.counts.runs, info.counts.artifacts, info.counts.bytes) == (runs, files, size)
        assert info.shown == runs > 0


@sync
async def test_pane_cycling_and_number_keys(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        assert focused(app) is screen.table
        await pilot.press("tab")
        assert focused(app) is screen.file_tree
        await pilot.press("tab")
        assert focused(app) is screen.preview_pane
        await pilot.press("tab")
        assert focused(app) is screen.table
        await pilot.press("shift+tab")
        assert focused(app) is screen.preview_pane
        await pilot.press("2")
        assert focused(app) is screen.file_tree
        await pilot.press("1")
        assert focused(app) is screen.table


@sync
async def test_cursor_keys_move_and_select_run(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        first = screen.table.current_run_id
        await pilot.press("j")
        await settle(pilot)
        second = screen.table.current_run_id
        assert second != first
        assert screen.file_tree.run_id == second
        await pilot.press("k")
        assert screen.table.current_run_id == first
        await pilot.press("down", "up", "G")
        assert screen.table.cursor_row == screen.table.row_count - 1


@sync
async def test_a_held_key_loads_only_the_run_it_stops_on(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[int] = []
    original = ArtifactTree.show_run

    def recording(self: ArtifactTree, run_id: int, *args: Any, **kwargs: Any) -> None:
        shown.append(run_id)
        original(self, run_id, *args, **kwargs)

    monkeypatch.setattr(ArtifactTree, "show_run", recording)
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        shown.clear()
        for _ in range(4):  # as a terminal sends auto-repeat: no wait for idle between keys
            app.post_message(events.Key("j", "j"))
            await asyncio.sleep(0.01)
        await settle(pilot)
        assert screen.table.cursor_row == 4
        assert shown == [screen.table.current_run_id]
        assert screen.file_tree.run_id == screen.table.current_run_id


@sync
async def test_filter_narrows_and_escape_restores(demo: Demo) -> None:
    runs = all_runs(demo)
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("slash", *"lightning")
        await settle(pilot)
        expected = {r.id for r in runs if "lightning" in f"{r.name} {r.framework}".lower()}
        assert set(table_ids(screen)) == expected
        assert screen.query_one("#filter", Input).has_class("-shown")
        await pilot.press("enter")
        assert focused(app) is screen.table
        await pilot.press("escape")
        await settle(pilot)
        assert len(table_ids(screen)) == len(runs)
        await pilot.press("slash", *"zzzz-no-such-run")
        await settle(pilot)
        assert screen.table.row_count == 0
        assert "no runs match" in str(screen.file_tree.root.label)
        await pilot.press("escape")
        await settle(pilot)
        assert screen.table.row_count == len(runs)


@sync
async def test_experiment_root_and_group_keys(demo: Demo) -> None:
    runs = all_runs(demo)
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        first_exp = screen.experiments()[0]
        await pilot.press("e")
        await settle(pilot)
        assert screen.filter_text == f"exp:{first_exp}"
        expected = {r.id for r in runs if (r.experiment or "").lower() == first_exp}
        assert set(table_ids(screen)) == expected
        for _ in screen.experiments():
            await pilot.press("e")
        await settle(pilot)
        assert screen.filter_text == ""
        await pilot.press("R")
        assert screen.filter_text.startswith("root:")
        assert screen.table.row_count == len(runs)
        await pilot.press("R", "b")
        await settle(pilot)
        assert screen.group == "experiment"
        experiments = [screen.runs[i].experiment or "" for i in table_ids(screen)]
        keys = [(e == "", e.lower()) for e in experiments]
        assert keys == sorted(keys)


@sync
async def test_grouping_shows_headers_and_keys_step_over_them(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("1", "b")
        await settle(pilot)
        table = screen.table
        keys = [row.key.value or "" for row in table.ordered_rows]
        headers = [k for k in keys if k.startswith(HEADER_PREFIX)]
        experiments = {screen.runs[i].experiment for i in table_ids(screen)}
        assert len(headers) == len(experiments) > 1
        for header in headers:  # right before the first run of its group, naming it
            run = screen.runs[int(keys[keys.index(header) + 1])]
            label = str(table.get_row(header)[NAME_INDEX])
            assert label.startswith("▾ ") and "run" in label
            assert (run.experiment or "no experiment") in label
        table.move_cursor(row=1)
        for _ in range(len(keys)):
            await pilot.press("j")
            assert table.current_run_id is not None  # never parked on a header
        await pilot.press("b", "b")  # by root, then no grouping: headers go
        await settle(pilot)
        assert not [r for r in table.ordered_rows if (r.key.value or "").startswith("group:")]


@sync
async def test_sort_cycle_and_reverse(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        while screen.sort_column != "name":
            await pilot.press("s")
        await settle(pilot)
        names = [screen.runs[i].name.lower() for i in table_ids(screen)]
        assert names == sorted(names) and not screen.sort_reverse
        await pilot.press("S")
        await settle(pilot)
        names = [screen.runs[i].name.lower() for i in table_ids(screen)]
        assert names == sorted(names, reverse=True)
        await pilot.press("s")
        assert screen.sort_column == "framework"


@sync
async def test_space_marks_runs(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        run_id = screen.table.current_run_id
        assert run_id is not None
        await pilot.press("space")
        assert screen.marked == {run_id}
        assert str(screen.table.get_row(str(run_id))[0]) == "✓"
        await pilot.press("j", "space")
        assert len(screen.marked) == 2
        await pilot.press("space")
        assert screen.marked == {run_id}


@sync
async def test_tree_expands_lazily_and_previews_csv(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await open_file(pilot, screen, "version_0", "metrics.csv")
        text = screen.preview_pane.plain_text()
        assert "train_loss" in text and "val_loss" in text
        assert "rows" in text


@sync
async def test_preview_safetensors_and_dangerous_pickle(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await open_file(pilot, screen, "experiments", "untrusted/model.pkl")
        text = screen.preview_pane.plain_text()
        assert "DANGEROUS" in text
        label = screen.file_tree.cursor_node.label  # type: ignore[union-attr]
        assert str(label).startswith("! ")
        hf = next(r for r in screen.runs.values() if r.framework == "hf-trainer")
        db = open_db(demo.db_path, readonly=True)
        good = next(
            a
            for a in query.list_artifacts(db, run_id=hf.id)
            if a.name.endswith(".safetensors") and a.verdict == "safe"
        )
        db.conn.close()
        rel = good.path[len(hf.path) + 1 :].decode()
        await open_file(pilot, screen, hf.name, rel)
        text = screen.preview_pane.plain_text()
        assert "safetensors" in text and "SAFE" in text


@sync
async def test_hostile_names_render_as_text(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await open_file(pilot, screen, "experiments", "quick-test")
        labels = [str(node.label) for node in screen.file_tree.cursor_node.children]  # type: ignore[union-attr]
        joined = "\n".join(labels)
        for name in (
            "ckpt[/",
            "[link=x]y.txt",
            "lr[0.1].yaml",
            "exp[bold]x.json",
            "red\\e[31mred.log",
        ):
            assert name in joined
        assert "bad-\\xff.txt" in joined
        assert "\x1b" not in joined
        screen.file_tree._typed = ""
        assert screen.file_tree.jump_to("[link")
        await settle(pilot)
        text = screen.preview_pane.plain_text()
        assert "\x1b" not in text and "\\e]52" in text and "[bold]x" in text
        svg = app.export_screenshot()
        assert "\x1b" not in svg


@sync
async def test_help_palette_theme_zoom_quit(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert any(row[2] == "runs.sort" for row in app.screen.rows)
        await pilot.press("escape")
        assert current_screen(app) is screen
        dark = app.current_theme.dark
        await pilot.press("t")
        assert app.current_theme.dark is not dark
        await pilot.press("t")
        assert app.current_theme.dark is dark
        await pilot.press("z")
        assert screen.maximized is not None
        await pilot.press("z")
        assert screen.maximized is None
        target = next(r for r in screen.runs.values() if r.name == "version_1")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"run: version_1")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert current_screen(app) is screen
        assert screen.table.current_run_id == target.id
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


@sync
async def test_type_ahead_in_tree(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        run = next(r for r in screen.runs.values() if r.name == "experiments")
        screen.jump_to_run(run.id)
        await settle(pilot)
        await pilot.press("2", *"unt")
        node = screen.file_tree.cursor_node
        assert node is not None and node.data is not None
        assert node.data.key.endswith(b"untrusted")


@sync
async def test_find_in_tree_types_letters_that_are_keys(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        run = next(r for r in screen.runs.values() if r.name == "version_0")
        screen.jump_to_run(run.id)
        await settle(pilot)
        await pilot.press("2", "f", *"met")  # m alone would open the metrics view
        node = screen.file_tree.cursor_node
        assert node is not None and node.data is not None
        assert node.data.key.endswith(b"metrics.csv")
        assert app.screen is screen
        assert "met" in str(screen.file_tree.border_subtitle)
        await pilot.press("x", "y")
        assert "no match" in str(screen.file_tree.border_subtitle)
        await pilot.press("escape")
        assert screen.file_tree.border_subtitle is None
        assert app.screen is screen  # escape ended the find, nothing else


@sync
async def test_live_update_keeps_cursor(fresh_demo: Demo) -> None:
    app = make_app(fresh_demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("j", "j", "j")
        await settle(pilot)
        before = screen.table.current_run_id
        count = screen.table.row_count
        new_run = fresh_demo.root / "lightning_logs" / "version_9"
        shutil.copytree(fresh_demo.root / "lightning_logs" / "version_0", new_run)
        with WriterLock(fresh_demo.db_path):
            db = open_db(fresh_demo.db_path)
            Indexer(db, fresh_demo.root, clock=lambda: NOW).scan()
            db.conn.close()
        for _ in range(50):
            await pilot.pause(0.1)
            if screen.table.row_count > count:
                break
        await settle(pilot)
        assert screen.table.row_count == count + 1
        assert any(r.name == "version_9" for r in screen.runs.values())
        assert screen.table.current_run_id == before


@pytest.mark.parametrize("pane", ["1", "2", "3"])
@sync
async def test_zoom_fills_the_screen_and_restores(demo: Demo, pane: str) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press(pane)
        await settle(pilot)
        await pilot.press("z")
        await settle(pilot)
        zoomed = screen.maximized
        assert zoomed is not None
        assert zoomed.outer_size.width >= 76 and zoomed.outer_size.height >= 18
        # the runs pane zooms with its filter box; the others are their focused widget
        wanted = {"1": "runs-pane", "2": "tree", "3": "preview"}[pane]
        assert zoomed.id == wanted
        await pilot.press("z")
        await settle(pilot)
        assert screen.maximized is None
        await pilot.press("z")
        await pilot.press("escape")
        await settle(pilot)
        assert screen.maximized is None
        assert screen.file_tree.outer_size.width < 60


@sync
async def test_keys_typed_fast_after_a_pane_switch_go_to_the_new_pane(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        screen.table.move_cursor(row=0)
        await settle(pilot)
        tree = screen.file_tree
        tree.move_cursor(tree.root)
        await settle(pilot)
        # All posted before any is handled: a fast typist, or keys pasted over SSH.
        for key in ("j", "2", "j", "j", "3", "z"):
            app.post_message(events.Key(key, key))
        await settle(pilot)
        assert screen.table.cursor_row == 1
        assert tree.run_id == screen.table.current_run_id
        assert tree.cursor_line == min(2, tree.last_line) > 0
        assert screen.maximized is screen.preview_pane


@sync
async def test_a_huge_single_line_json_never_holds_up_the_next_key(tmp_path: Path) -> None:
    """An 8 MB one-line JSON (a tokenizer, a dumped config): laid out off the UI thread,
    shown re-indented, and the key after selecting it moves the cursor at once."""
    import json
    import time

    run = tmp_path / "tree" / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "a-big.json").write_text(json.dumps({"vocab": {f"tok{i}": i for i in range(450_000)}}))
    (run / "b-small.txt").write_text("small\n")
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, tmp_path / "tree").scan()
        db.conn.close()
    app = ArtlensApp(db_path, [tmp_path / "tree"], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree = screen.file_tree
        assert tree.jump_to("a-big")
        pane = screen.preview_pane
        deadline = time.monotonic() + 20
        while pane.shown_key is None or not pane.shown_key.endswith(b"a-big.json"):
            assert time.monotonic() < deadline, "the big JSON's preview never showed"
            await pilot.pause(0.01)
        text = pane.plain_text()
        assert '"tok1": 1,' in text and "re-indented" in text
        line = tree.cursor_line
        started = time.monotonic()
        app.post_message(events.Key("j", "j"))
        while tree.cursor_line == line and time.monotonic() - started < 5:
            await asyncio.sleep(0.005)
        took = time.monotonic() - started
        assert tree.cursor_line == line + 1
        assert took < 1.0, f"the key after the preview took {took:.2f} s"


@sync
async def test_a_folder_shown_is_not_replaced_by_the_preview_of_the_file_left(
    tmp_path: Path,
) -> None:
    """The cursor leaves a file for a folder before the file's preview is built: the
    folder's totals stay (the late preview used to replace them)."""
    import json

    run = "lightning_logs/version_0/"
    big = json.dumps({"vocab": {f"tok{i}": i for i in range(100_000)}}).encode()
    files = {run + "hparams.yaml": b"lr: 0.1\n", run + "a-big.json": big}
    files[run + "b-folder/x.txt"] = b"x\n"
    root, db_path = index_tree(tmp_path, files)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree, pane = screen.file_tree, screen.preview_pane
        assert tree.jump_to("a-big")
        assert tree.jump_to("b-folder")  # at once: the file's preview is not built yet
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert pane.shown_key is None
        text = pane.plain_text()
        assert "b-folder/" in text and "tok1" not in text


def index_tree(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, Path]:
    """A small tree of ``files`` (relative path -> content), indexed: (root, index path)."""
    root = tmp_path / "tree"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    return root, db_path


@sync
async def test_tree_sorts_numbers_naturally_and_g_G_go_to_the_ends(tmp_path: Path) -> None:
    run = "lightning_logs/version_0/"
    names = [f"epoch={n}-step={n * 10}.ckpt" for n in (10, 8, 9, 100)]
    files = {run + "hparams.yaml": b"lr: 0.1\n"}
    files.update({run + "zz/" + name: b"\0" * 8 for name in names})
    root, db_path = index_tree(tmp_path, files)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree = screen.file_tree
        folder = next(n for n in tree.root.children if n.data and n.data.is_dir)
        folder.expand()
        await settle(pilot)
        shown = [c.data.entry.name for c in folder.children if c.data and c.data.entry]
        assert shown == [f"epoch={n}-step={n * 10}.ckpt" for n in (8, 9, 10, 100)]
        await pilot.press("G")
        assert tree.cursor_line == tree.last_line > 3
        await pilot.press("g")
        assert tree.cursor_line == 0


@sync
async def test_runs_table_keeps_the_name_when_scrolled_sideways_and_headers_sort(
    demo: Demo,
) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        table = screen.table
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()
        assert table.scroll_x > 0
        name = next(r.name for r in screen.runs.values() if r.id == table.current_run_id)
        row_line = "".join(s.text for s in table.render_line(table.header_height))
        assert name in row_line
        header = table.region.offset
        await pilot.click("#runs", offset=(header.x + 6 - table.region.x, 0))
        await settle(pilot)
        assert screen.sort_column == "name"
        await pilot.click("#runs", offset=(header.x + 6 - table.region.x, 0))
        await settle(pilot)
        assert screen.sort_column == "name" and screen.sort_reverse


def test_markers_read_without_colour(demo: Demo) -> None:
    """NO_COLOR turns colours grey (Textual's Monochrome filter): the danger and checklist
    markers must keep their contrast (WCAG 4.5:1), where bold red on a panel had 1.2:1."""
    from rich.style import Style
    from textual.color import Color

    from tui.format import DANGER, WARNING
    from tui.widgets.runs_table import RowExtras, run_cells

    def grey(style_color: object) -> float:
        r, g, b = style_color.get_truecolor()  # type: ignore[attr-defined]
        mono = Color(r, g, b).monochrome
        return 0.2126 * mono.r / 255 + 0.7152 * mono.g / 255 + 0.0722 * mono.b / 255

    for marker in (DANGER, WARNING):
        style = Style.parse(marker)
        low, high = sorted((grey(style.color), grey(style.bgcolor)))
        assert (high + 0.05) / (low + 0.05) >= 4.5, marker
    run = all_runs(demo)[0]
    cells = run_cells(run, marked=False, now=NOW, extras=RowExtras((1, 3), False, False))
    assert cells["check"].plain.startswith("✗")
    assert any(str(span.style) == WARNING for span in cells["check"].spans)


@sync
async def test_help_scrolls_a_line_per_key_and_claims_no_remapping(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        body = help_screen.body
        assert body.max_scroll_y > 2
        await pilot.press("j")
        assert body.scroll_y == 1
        await pilot.press("j", "k", "j")
        assert body.scroll_y == 2
        await pilot.press("G")
        assert body.scroll_y == body.max_scroll_y
        await pilot.press("g")
        assert body.scroll_y == 0
        assert not body.show_horizontal_scrollbar and not help_screen.show_vertical_scrollbar
        text = help_screen.shown_text()
        assert "runs.filter" in text and "remap" not in text.lower()


@sync
async def test_a_terminal_too_small_gets_a_notice_not_vanishing_panes(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(36, 12)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        notice = screen.query_one("#too-small")
        assert notice.display and notice.region.height > 0
        assert "too small" in str(notice.render())
        assert not screen.query_one("#runs-pane").display
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert not notice.display and screen.query_one("#runs-pane").display


@sync
async def test_footer_fits_80_columns_in_every_pane(demo: Demo) -> None:
    from textual.widgets import Footer

    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        footer = screen.query_one(Footer)
        for pane in ("1", "2", "3"):
            await pilot.press(pane)
            await settle(pilot)
            keys = [w for w in footer.query("FooterKey") if w.display]
            assert keys, pane
            right = max(w.region.right for w in footer.query("FooterKey"))
            assert right <= 80 and footer.max_scroll_x == 0, (pane, right)
            described = [str(getattr(k, "description", "")) for k in keys]
            assert "Help" in described and "Diff" in described, described


def test_status_line_keeps_counts_marks_and_filter_at_80_columns() -> None:
    from rich.console import Console

    from store.index.views import IndexCounts
    from tui.widgets.status import StatusInfo, StatusLine

    line = StatusLine()
    line.info = StatusInfo(
        index="/home/someone/.cache/artlens/a-long-index-name-0123456789.db",
        watcher="following pid 123456 on a-long-hostname.example.org (watch: artlens watch)",
        watcher_ok=True,
        counts=IndexCounts(runs=1200, artifacts=250_000, bytes=3 << 40, last_event=0),
        shown=40,
        marked=2,
        filter="exp:resnet lr",
        sort="started ↓",
    )
    console = Console(width=80, color_system=None, record=True, file=io.StringIO())
    console.print(line.render_info())
    shown = console.export_text().splitlines()[0]
    assert "40/1200 runs" in shown and "2 marked" in shown and "filter: exp:resnet lr" in shown


@sync
async def test_palette_shows_keys_and_marked_files_are_not_drawn_live(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        helps = {title: text for title, _, text in with_keys(app, screen.palette_entries())}
        assert helps["view: zoom pane"].endswith("key z")
        assert helps["diff: marked runs or files"].endswith("key d")
        # The key beside each entry is read from the binding of the action it runs.
        keyed = {t: h.rsplit(" · key ", 1)[1] for t, h in helps.items() if " · key " in h}
        assert keyed["view: runs"] == "1" and keyed["view: help"] == "?"
        assert keyed["filter: runs…"] == "/" and keyed["files: mark / unmark"] == "space"
        assert keyed["view: toggle theme"] == "t" and len(keyed) >= 15, keyed
        bound = {b.key for b in ExplorerScreen.BINDINGS if isinstance(b, Binding)}
        assert {
            k.replace("?", "question_mark").replace("/", "slash") for k in keyed.values()
        } <= bound | {
            "t",
            "question_mark",
            "space",
        }
        await open_file(pilot, screen, "experiments", "quick-test/config.yaml")
        tree = screen.file_tree
        await pilot.press("space")
        node = tree.cursor_node
        assert node is not None
        drawn = tree.render_label(node, Style(), Style()).plain
        assert drawn.startswith("✓ ") and "●" not in drawn


@sync
async def test_find_searches_the_whole_folder_past_the_loaded_page(tmp_path: Path) -> None:
    import time

    run = "lightning_logs/version_0/"
    files = {run + "hparams.yaml": b"lr: 0.1\n"}
    files.update({run + f"many/file-{i:05d}.txt": b"x" for i in range(1200)})
    root, db_path = index_tree(tmp_path, files)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree = screen.file_tree
        folder = next(n for n in tree.root.children if n.data and n.data.is_dir)
        folder.expand()
        await settle(pilot)
        assert len(folder.children) < 1200  # one page, then "… N more"
        await pilot.press("f", *"file-01100")
        deadline = time.monotonic() + 20
        while True:
            node = tree.cursor_node
            entry = node.data.entry if node is not None and node.data is not None else None
            if entry is not None and entry.name == "file-01100.txt":
                break
            assert time.monotonic() < deadline, "the find never reached file-01100.txt"
            await pilot.pause(0.02)
        assert "no match" not in str(tree.border_subtitle)
        await pilot.press("escape", "f", *"nothing-like-this")
        deadline = time.monotonic() + 20
        while "no match" not in str(tree.border_subtitle):
            assert time.monotonic() < deadline, "a find with no match never said so"
            await pilot.pause(0.02)


@sync
async def test_a_filter_that_leaves_nothing_says_why(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        screen.set_filter("exp:nope")
        await settle(pilot)
        assert screen.table.row_count == 0
        said = str(screen.file_tree.root.label)
        assert "no experiment is named 'nope'" in said and "there are:" in said
        screen.set_filter("zzqqxx")
        await settle(pilot)
        assert "contains 'zzqqxx'" in str(screen.file_tree.root.label)


@sync
async def test_run_detail_shows_key_params_and_last_metrics(demo: Demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        run = next(r for r in screen.runs.values() if r.name == "version_0")
        assert run.params and run.metrics
        screen.jump_to_run(run.id)
        await settle(pilot)
        text = screen.preview_pane.plain_text(width=100)
        assert "params (" in text and "last metrics (" in text
        name = next(n for n, m in run.metrics.items() if m.get("last") is not None)
        assert f"{name}: " in text


@sync
async def test_the_gil_switch_interval_is_restored_when_the_app_ends(demo: Demo) -> None:
    import sys

    before = sys.getswitchinterval()
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert sys.getswitchinterval() < before
    assert sys.getswitchinterval() == before


@sync
async def test_a_filter_typed_in_one_burst_goes_to_the_filter(demo: Demo) -> None:
    """Over SSH "/hydra" arrives in one read: the letters after "/" are queued before the
    box has focus and must reach it ("r" would open retention, "d" a diff)."""
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        for key, char in [("slash", "/"), *((c, c) for c in "hydra")]:
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert app.screen is screen
        box = screen.query_one("#filter", Input)
        assert box.value == "hydra"
        await pilot.press("escape")
        await settle(pilot)
        assert not box.has_class("-shown") and box.region.height == 0  # hidden again


@sync
async def test_a_run_size_that_leaves_out_an_unreadable_folder_is_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs table's size ends in ``?`` for the run whose folder the scan could not
    read whole (its detail names the folder); the run read whole shows its size plain."""
    from tests.test_tui_disk_usage import unreadable_tree

    root, db_path = unreadable_tree(tmp_path, monkeypatch)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        table = screen.table
        size_at = [c.key for c in table.columns_shown].index("size")
        sizes = {
            screen.runs[run_id].name: str(table.get_row(str(run_id))[size_at])
            for run_id in table_ids(screen)
        }
        assert sizes["runD"].endswith("?") and not sizes["runE"].endswith("?"), sizes
        assert sizes["runD"][:-1] == sizes["runE"]  # the same files, less what went unread
