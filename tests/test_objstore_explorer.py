"""The explorer on a bucket's index: a file previews through ranged reads of its object
(head and tail, never the whole object), on a real S3 server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from objstore_server import S3Server, fresh_bucket, s3_server
from textual.pilot import Pilot

from store.index.db import open_db
from store.lock import WriterLock
from store.objscan import ObjectIndexer
from store.root.objstore import ObjectRoot
from store.root.shared import shared_root
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen

pytestmark = pytest.mark.objstore
__all__ = ["fresh_bucket", "s3_server"]

BIG_LOG = "lightning/lightning_logs/version_0/train.log"


def big_log() -> bytes:
    """About 8 MiB of log lines, first and last told apart."""
    middle = b"".join(b"step %07d loss 0.5\n" % i for i in range(400_000))
    return b"FIRST LINE of the log\n" + middle + b"LAST LINE of the log\n"


def index_bucket(url: str, db_path: Path) -> None:
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            indexer = ObjectIndexer(db, ObjectRoot(url))
            indexer.scan(defer_summaries=True)
            indexer.fill_summaries()
        finally:
            db.close()


async def until(pilot: Pilot[None], check: Callable[[], bool], what: str) -> None:
    """Wait on a condition with a generous deadline (a loaded machine), never on a guess."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def open_file(pilot: Pilot[None], screen: ExplorerScreen, run: str, rel: str) -> None:
    found = next(r for r in screen.runs.values() if r.name == run)
    screen.jump_to_run(found.id)
    await pilot.press("2")
    for part in rel.split("/"):

        def found_part(name: str = part.lower()) -> bool:
            screen.file_tree._typed = ""
            return screen.file_tree.jump_to(name)

        await until(pilot, found_part, part)
        await pilot.press("l")


def test_a_bucket_file_previews_by_range_reads(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    bucket = fresh_bucket(versioned=False)
    body = big_log()
    s3_server.put(bucket, BIG_LOG, body)
    url = f"s3://{bucket}"
    db_path = tmp_path / "bucket.db"
    index_bucket(url, db_path)
    stats = shared_root(url).stats  # type: ignore[attr-defined]

    async def run() -> tuple[str, str, int, int]:
        app = ArtlensApp(db_path, [], watch=False)
        async with app.run_test(size=(140, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            await until(pilot, lambda: bool(screen.runs), "the bucket's runs")
            before = stats.bytes
            await open_file(pilot, screen, "version_0", "train.log")
            await until(
                pilot, lambda: "LAST LINE" in screen.preview_pane.plain_text(), "the log's tail"
            )
            log_bytes = stats.bytes - before
            tail = screen.preview_pane.plain_text()
            await open_file(pilot, screen, "version_0", "hparams.yaml")
            await until(
                pilot, lambda: "train.log" not in screen.preview_pane.plain_text(), "the yaml"
            )
            await until(
                pilot, lambda: screen.preview_pane.plain_text().strip() != "", "the yaml text"
            )
            return tail, screen.preview_pane.plain_text(), log_bytes, stats.requests

    tail, yaml_text, log_bytes, requests = asyncio.run(run())
    assert "LAST LINE of the log" in tail
    # a log previews from its end: the first block and the last 256 KiB of 8 MiB
    assert 0 < log_bytes <= 1 << 20 < len(body), (log_bytes, len(body))
    assert requests > 0
    fixture = Path(__file__).parent / "fixtures/frameworks/lightning"
    hparams = (fixture / "lightning_logs/version_0/hparams.yaml").read_text()
    first_key = hparams.split(":")[0].strip()
    assert first_key in yaml_text, yaml_text[:300]


def test_a_run_put_in_the_bucket_shows_up_while_the_explorer_polls(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    bucket = fresh_bucket(versioned=False)
    url = f"s3://{bucket}"
    db_path = tmp_path / "bucket.db"
    index_bucket(url, db_path)
    fixture = Path(__file__).parent / "fixtures/frameworks/lightning/lightning_logs/version_0"

    async def run() -> tuple[set[str], str]:
        app = ArtlensApp(db_path, [], watch=True)
        app.bucket_schedule = {"live_every": 0.2, "reconcile_every": 0.4}
        async with app.run_test(size=(160, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            await until(pilot, lambda: "/month" in app.watch_state[0], "the polling status")
            before = {r.name for r in screen.runs.values()}
            assert "version_7" not in before
            for name in ("hparams.yaml", "metrics.csv"):
                key = f"lightning/lightning_logs/version_7/{name}"
                s3_server.put(bucket, key, (fixture / name).read_bytes())
            await until(
                pilot,
                lambda: "version_7" in {r.name for r in screen.runs.values()},
                "the new run",
            )
            return {r.name for r in screen.runs.values()}, app.watch_state[0]

    names, status = asyncio.run(run())
    assert "version_7" in names
    assert status.startswith("polling 1 bucket (live every 0.2s, all every 0.4s): ")
    assert "requests" in status and "~$" in status


def test_an_index_of_a_folder_and_a_bucket_watches_both(
    s3_server: S3Server, tmp_path: Path
) -> None:
    import shutil

    from store.scan import Indexer

    fixture = Path(__file__).parent / "fixtures/frameworks/lightning/lightning_logs/version_0"
    bucket = s3_server.new_bucket(versioned=False)
    for name in ("hparams.yaml", "metrics.csv"):
        s3_server.put(bucket, f"logs/version_1/{name}", (fixture / name).read_bytes())
    url = f"s3://{bucket}"
    folder = tmp_path / "folder"
    shutil.copytree(fixture, folder / "logs" / "version_2")
    db_path = tmp_path / "mixed.db"
    index_bucket(url, db_path)
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            Indexer(db, folder).scan()
        finally:
            db.close()

    async def run() -> tuple[set[str], str]:
        app = ArtlensApp(db_path, [], watch=True)
        app.bucket_schedule = {"live_every": 0.2, "reconcile_every": 0.4}
        async with app.run_test(size=(160, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, ExplorerScreen)
            await until(pilot, lambda: "/month" in app.watch_state[0], "the polling status")
            assert app.watcher is not None  # the folder's watcher runs beside the poller
            names = {r.name for r in screen.runs.values()}
            assert {"version_1", "version_2"} <= names and "version_7" not in names
            for name in ("hparams.yaml", "metrics.csv"):
                s3_server.put(bucket, f"logs/version_7/{name}", (fixture / name).read_bytes())
            shutil.copytree(fixture, folder / "logs" / "version_8")
            await until(
                pilot,
                lambda: {"version_7", "version_8"} <= {r.name for r in screen.runs.values()},
                "the new object's run and the new folder's run",
            )
            return {r.name for r in screen.runs.values()}, app.watch_state[0]

    names, status = asyncio.run(run())
    assert {"version_1", "version_2", "version_7", "version_8"} <= names
    assert status.startswith("watching · polling 1 bucket (live every 0.2s, all every 0.4s): ")
