"""The disk usage view under ``App.run_test``: real Lightning output with a sparse file, a
real index, drill-down and back, and a trash that goes through a plan and its confirm."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from store.index.db import open_db
from store.lock import WriterLock
from store.retention import drill
from store.retention.drill import Level, measure_folder
from store.retention.trash import TRASH_DIR
from store.scan import Indexer
from store.userstate import UserState
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.keys import help_rows
from tui.screens.disk_usage import DiskUsageScreen
from tui.screens.explorer import ExplorerScreen
from tui.screens.retention_dialogs import ConfirmApply

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
RUN = "lightning_logs/version_0"
CKPT = f"{RUN}/checkpoints/epoch2-val0.0854.ckpt"
SPARSE = 5 << 30


@pytest.fixture
def indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    root = tmp_path / "lightning"
    shutil.copytree(FIXTURES / "lightning", root)
    with open(root / RUN / "sparse.img", "wb") as out:
        out.truncate(SPARSE)  # 5 GiB that take (almost) nothing on disk
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    return root, db_path


def unreadable_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Two runs, ``runD`` whose ``out`` folder the scan could not list (as a user without
    read permission on it) and ``runE`` read whole, indexed: (root, index path)."""
    from tests.test_scan import deny_listing, run_tree

    for name in ("ARTLENS_STATE", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    root = tmp_path / "root"
    run = run_tree(root)
    shutil.copytree(run, root / "runE", ignore=shutil.ignore_patterns("out"))
    db_path = tmp_path / "index.db"
    with WriterLock(db_path), monkeypatch.context() as denied:
        deny_listing(denied, run / "out")
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    return root, db_path


def usage(app: ArtlensApp) -> DiskUsageScreen:
    screen = app.screen
    assert isinstance(screen, DiskUsageScreen), screen
    return screen


async def open_usage(app: ArtlensApp, pilot: Pilot[None]) -> DiskUsageScreen:
    """From the explorer, ``U``: the disk usage view, once listed and measured."""
    await settle(pilot)
    await pilot.press("U")
    await settle(pilot, rounds=5)
    return usage(app)


def rows(screen: DiskUsageScreen) -> dict[str, list[str]]:
    """Each row's cells by the name shown (its first word)."""
    table = screen.query_one("#du-table", DataTable)
    found: dict[str, list[str]] = {}
    for index in range(table.row_count):
        cells = [str(cell) for cell in table.get_row_at(index)]
        found[cells[-1].split()[0] if cells[-1].split() else ""] = cells
    return found


def unread_note(screen: DiskUsageScreen) -> str:
    """The note under the totals, '' when it is hidden."""
    note = screen.query_one("#du-unread", Static)
    return str(note.render()) if note.display else ""


def cursor_name(screen: DiskUsageScreen) -> str:
    table = screen.query_one("#du-table", DataTable)
    return str(table.get_row_at(table.cursor_row)[-1]).split()[0]


async def move_to(pilot: object, screen: DiskUsageScreen, name: str) -> None:
    table = screen.query_one("#du-table", DataTable)
    for index in range(table.row_count):
        if str(table.get_row_at(index)[-1]).split()[0] == name:
            table.move_cursor(row=index)
            return
    raise AssertionError(f"{name} not listed: {list(rows(screen))}")


async def into_checkpoints(pilot: Pilot[None], screen: DiskUsageScreen) -> None:
    """Down from the roots to the run's checkpoints folder, level by level."""
    for name in ("lightning_logs", f"{RUN}/", "checkpoints/"):
        await move_to(pilot, screen, name)
        await pilot.press("enter")
        await settle(pilot, rounds=5)


@sync
async def test_drill_down_sizes_sparse_and_back(indexed: tuple[Path, Path]) -> None:
    root, db_path = indexed
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "usage.open" in {row[2] for row in help_rows(app, app.screen)}  # listed in help
        screen = await open_usage(app, pilot)
        # one root: the view starts inside it, at its experiments
        assert screen.level.kind == "root"
        assert "lightning_logs" in rows(screen)
        await move_to(pilot, screen, "lightning_logs")
        await pilot.press("enter")
        await settle(pilot, rounds=5)
        assert screen.level.kind == "experiment"
        listed = list(rows(screen))
        assert listed[0] == f"{RUN}/", listed  # largest first: the run with 5 GiB in it
        await pilot.press("enter")
        await settle(pilot, rounds=5)
        assert screen.level.kind == "folder" and screen.level.folder == RUN
        sparse = rows(screen)["sparse.img"]
        assert sparse[0].strip() == "5.0G"
        on_disk = sparse[1].strip()
        assert on_disk.endswith(("B", "K")), on_disk  # a sparse file takes next to nothing
        where = str(screen.query_one("#du-where", Static).render())
        assert "5.0G apparent" in where and "on disk" in where
        assert unread_note(screen) == ""  # the scan read everything: no note, no mark
        assert not any(cells[0].endswith("?") for cells in rows(screen).values())
        await move_to(pilot, screen, "hparams.yaml")
        await pilot.press("a")  # by on-disk size: the sparse file goes down, the cursor stays
        assert screen.by_disk and cursor_name(screen) == "hparams.yaml"
        assert list(rows(screen)).index("sparse.img") > list(rows(screen)).index("checkpoints/")
        await pilot.press("a")
        await move_to(pilot, screen, "checkpoints/")
        await pilot.press("l")
        await settle(pilot, rounds=5)
        assert screen.level.folder == f"{RUN}/checkpoints"
        assert {"epoch2-val0.0854.ckpt", "last.ckpt"} <= set(rows(screen))
        await pilot.press("h")  # back up: the cursor is on the folder it came from
        await settle(pilot, rounds=5)
        assert screen.level.folder == RUN
        assert cursor_name(screen) == "checkpoints/"
        await pilot.press("escape", "escape")
        await settle(pilot)
        assert usage(app).level.kind == "root"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ExplorerScreen)


def test_a_folder_with_too_many_files_is_not_measured(
    indexed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap, on disk is unknown (None), never a partial sum."""
    root, db_path = indexed
    db = open_db(db_path, readonly=True)
    try:
        level = Level("folder", str(root), folder=RUN)
        measured = measure_folder(db, level)
        assert measured is not None and measured["sparse.img"] < SPARSE // 1000
        monkeypatch.setattr(drill, "MAX_FOLDER_DISK_FILES", 3)
        assert measure_folder(db, level) is None
    finally:
        db.conn.close()


@sync
async def test_trash_goes_through_confirm_and_pins_refuse(indexed: tuple[Path, Path]) -> None:
    root, db_path = indexed
    with UserState() as state:
        state.pin(str(root), f"{RUN}/checkpoints/last.ckpt", glob=False)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_usage(app, pilot)
        await into_checkpoints(pilot, screen)
        assert screen.level.folder == f"{RUN}/checkpoints"

        await move_to(pilot, screen, "epoch2-val0.0854.ckpt")
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmApply)
        assert "epoch2-val0.0854.ckpt" in str(app.screen.summary)
        await pilot.press("n")  # cancel: nothing moves
        await settle(pilot)
        assert (root / CKPT).exists()

        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot, rounds=6)
        assert not (root / CKPT).exists()
        trashed = list((root / TRASH_DIR).rglob("epoch2-val0.0854.ckpt"))
        assert len(trashed) == 1
        assert "epoch2-val0.0854.ckpt" not in rows(screen)

        # a pinned file, and the folder holding it, are refused before any confirm
        await move_to(pilot, screen, "last.ckpt")
        await pilot.press("d")
        await settle(pilot)
        assert usage(app) is screen
        assert (root / RUN / "checkpoints" / "last.ckpt").exists()
        await pilot.press("h")
        await settle(pilot, rounds=5)
        await move_to(pilot, screen, "checkpoints/")
        await pilot.press("d")
        await settle(pilot)
        assert usage(app) is screen
        assert (root / RUN / "checkpoints").is_dir()


@sync
async def test_a_trash_while_a_watcher_writes_is_checked_against_the_index(
    indexed: tuple[Path, Path],
) -> None:
    """With the lock held elsewhere (a watcher) the pane once applied its plan unchecked:
    a file the index no longer holds as planned was moved all the same."""
    root, db_path = indexed
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_usage(app, pilot)
        await into_checkpoints(pilot, screen)
        await move_to(pilot, screen, "epoch2-val0.0854.ckpt")
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmApply)
        with WriterLock(db_path, role="watcher (test)"):
            writer = open_db(db_path)
            try:  # the watcher records a change the plan has not seen
                with writer.conn:
                    writer.conn.execute(
                        "UPDATE artifacts SET mtime_ns = mtime_ns + 1 WHERE path = ?",
                        (CKPT.encode(),),
                    )
            finally:
                writer.conn.close()
            await pilot.press("y")
            for _ in range(40):
                await settle(pilot)
                if not screen.busy:
                    break
        assert not screen.busy
        assert (root / CKPT).exists()
        assert not list((root / TRASH_DIR).rglob("epoch2-val0.0854.ckpt"))


@sync
async def test_a_listing_overtaken_by_a_newer_one_never_shows(
    indexed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an experiment whose listing is slow, then straight back up: the root's listing
    stays on screen when the experiment's arrives late."""
    import threading

    import tui.screens.disk_usage as screen_module

    root, db_path = indexed
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_usage(app, pilot)
        assert screen.level.kind == "root"
        held, gate = threading.Event(), threading.Event()
        list_level = drill.list_level

        def slow_for_experiments(db: object, level: Level) -> object:
            if level.kind == "experiment":
                held.set()
                assert gate.wait(60), "the test never opened the gate"
            return list_level(db, level)  # type: ignore[arg-type]

        monkeypatch.setattr(screen_module, "list_level", slow_for_experiments)
        await move_to(pilot, screen, "lightning_logs")
        await pilot.press("enter")
        for _ in range(1200):
            if held.is_set():
                break
            await pilot.pause(0.05)
        assert held.is_set()
        await pilot.press("h")  # back up before the experiment was listed
        for _ in range(1200):
            await pilot.pause(0.05)
            if "lightning_logs" in rows(screen) and screen.level.kind == "root":
                break
        gate.set()
        await settle(pilot, rounds=5)
        assert screen.level.kind == "root", screen.level
        assert "lightning_logs" in rows(screen)


@sync
async def test_totals_that_leave_out_an_unreadable_folder_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each level's totals that hold the folder the scan could not read end in ``?``, and
    a note under them names it as ``artlens du`` does; totals that do not, stay plain."""
    root, db_path = unreadable_tree(tmp_path, monkeypatch)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_usage(app, pilot)
        assert screen.level.kind == "root"
        said = "1 folder could not be read: runD/out (permission denied)"
        assert said in unread_note(screen)
        assert "? apparent" in str(screen.query_one("#du-where", Static).render())
        assert rows(screen)["(no"][0].endswith("?")
        await pilot.press("enter")
        await settle(pilot, rounds=5)
        assert screen.level.kind == "experiment"
        assert rows(screen)["runD/"][0].endswith("?")
        assert not rows(screen)["runE/"][0].endswith("?")
        assert said in unread_note(screen)
        await move_to(pilot, screen, "runE/")
        await pilot.press("enter")
        await settle(pilot, rounds=5)
        assert screen.level.folder == "runE" and unread_note(screen) == ""
        assert "? apparent" not in str(screen.query_one("#du-where", Static).render())
        await pilot.press("h")
        await settle(pilot, rounds=5)
        await move_to(pilot, screen, "runD/")
        await pilot.press("enter")
        await settle(pilot, rounds=5)
        assert screen.level.folder == "runD"
        assert "1 folder could not be read: out (permission denied)" in unread_note(screen)
        assert not any(cells[0].endswith("?") for cells in rows(screen).values())


@sync
async def test_help_lists_a_text_box_s_editing_keys_only_while_typing(
    indexed: tuple[Path, Path],
) -> None:
    """The explorer's filter box is always there: help listed its cursor, cut and paste
    keys among the explorer's own."""
    root, db_path = indexed
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        described = {row[1] for row in help_rows(app, app.screen)}
        assert "Paste text from the clipboard" not in described, described
        assert "Move cursor left a word" not in described
        await pilot.press("slash")
        await settle(pilot)
        assert isinstance(app.focused, Input)
        described = {row[1] for row in help_rows(app, app.screen)}
        assert "Paste text from the clipboard" in described
