"""The retention view's Trash tab while this app's own watcher writes the index, and
another process (the CLI in another terminal) trashes, restores and purges: that process
works through the filesystem only (the watcher holds the index), so its moves reach the
index as files that went or came, and the trash only in its manifest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from store.index.db import open_db
from store.lock import holder
from store.retention import service
from store.retention.policy import from_flags
from store.retention.trash import TRASH_DIR
from store.watch.watcher import TRASH_NAME
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.retention import RetentionScreen

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def test_the_watcher_knows_the_trash_folder_by_its_name() -> None:
    assert TRASH_NAME.decode() == TRASH_DIR


@sync
async def test_another_process_s_trash_restore_and_purge_show_in_the_trash_tab(
    lightning_index: tuple[Path, Path],
) -> None:
    """The tab kept listing what another process had restored or purged (``u`` on such
    a row: nothing there), and never listed what it trashed."""
    root, db_path = lightning_index
    app = ArtlensApp(db_path, [root], watch=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.watcher is not None, "the watcher")
        await until(pilot, lambda: holder(db_path) is not None, "the watcher's lock")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RetentionScreen), "the view")
        screen = app.screen
        assert isinstance(screen, RetentionScreen)
        await settle(pilot)
        assert screen.trash == {}
        trash = screen.query_one("#ret-trash", DataTable)

        def apply_elsewhere() -> int:
            db = open_db(db_path, readonly=True)
            try:
                planned = service.make(db, adhoc=from_flags(keep_last=1))
            finally:
                db.close()
            done = service.apply(planned.plan, db_path, role="cli")
            assert not done.index_updated  # the watcher writes the index: files only
            return len(done.report.done)

        moved = await asyncio.to_thread(apply_elsewhere)
        assert moved > 1
        await until(pilot, lambda: len(screen.trash) == moved, "the trashed items to show")
        first = next(iter(screen.trash.values()))

        def restore_one() -> int:
            done = service.restore_items(db_path, {str(root): [first.id]}, role="cli")
            assert not done.index_updated
            return len(done.report.done)

        assert await asyncio.to_thread(restore_one) == 1
        await until(pilot, lambda: first.id not in screen.trash, "the restored item to go")
        assert len(screen.trash) == moved - 1

        def purge_all() -> int:
            done = service.purge_items(db_path, [str(root)], 0.0, role="cli")
            assert not done.index_updated
            return len(done.report.done)

        assert await asyncio.to_thread(purge_all) == moved - 1
        await until(pilot, lambda: screen.trash == {}, "the purged items to go")
        await until(pilot, lambda: trash.row_count == 1, "the empty trash row")
