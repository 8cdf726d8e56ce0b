"""The app's own watcher wakes the explorer after each commit (no waiting for a poll)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.message import Message

from store.index.db import open_db
from store.lock import WriterLock
from store.scan import Indexer
from tui.app import ArtlensApp, IndexCommitted
from tui.screens.explorer import ExplorerScreen
from tui.widgets.status import StatusLine

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("ARTLENS_CACHE", str(tmp_path / "cache"))


def test_a_commit_of_the_apps_watcher_wakes_the_explorer(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = root / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        Indexer(db, root).scan()
        db.conn.close()
    woken: list[float] = []

    def hook(message: Message) -> None:
        if isinstance(message, IndexCommitted):
            woken.append(time.monotonic())

    async def scenario() -> None:
        app = ArtlensApp(db_path, [root], watch=True)
        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            deadline = time.monotonic() + 20
            while app.watcher is None or not screen.loaded:
                assert time.monotonic() < deadline, "the watcher never started"
                await pilot.pause(0.02)
            before = screen.last_event
            woken.clear()
            (run / "metrics.csv").write_text("epoch,step,loss\n0,1,0.5\n")
            while not woken or screen.last_event <= before:
                assert time.monotonic() < deadline + 20, "the new file never reached the screen"
                await pilot.pause(0.02)
            # the status line's totals are read after the change, in a worker of their own
            status = screen.query_one(StatusLine)
            while status.info.counts is None or status.info.counts.artifacts != 2:
                assert time.monotonic() < deadline + 40, f"totals stayed {status.info.counts}"
                await pilot.pause(0.02)

    asyncio.run(scenario())
