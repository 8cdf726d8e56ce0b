"""The retention view applies a plan's removals under a bucket root as ``artlens
retention apply`` does (one store function, ``service.apply``), under ``App.run_test``
against a real S3 server on loopback: the objects go to the bucket's own trash, each
re-checked against the plan, and the index follows.  It used to skip every one of them
("apply it with `artlens retention apply`") and report the apply done."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from objstore_server import S3Server, fresh_bucket, s3_server
from textual.pilot import Pilot

from store.retention import service
from store.retention.bucket import TRASH
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.cli import main
from tui.screens.retention import RetentionScreen
from tui.screens.retention_dialogs import ConfirmApply

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fresh_bucket", "s3_server"]


def _cli(*args: str, code: int = 0) -> object:
    """The command's JSON; ``code`` 1 when it skips an item asked for (each named on
    stderr)."""
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


async def _until(pilot: Pilot[None], check: Callable[[], bool], what: str) -> None:
    """Wait on a condition with a generous deadline, never on a guess."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


@sync
async def test_the_retention_view_trashes_a_buckets_removals(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    bucket = fresh_bucket(versioned=False)
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _cli("index", url, "--db", db)
    plan = _cli("retention", "plan", url, "--keep-last", "1", "--db", db)
    assert isinstance(plan, dict)
    removed = sorted(i["path"] for i in plan["items"] if not i["keep"])
    assert len(removed) == 6
    before = s3_server.contents(bucket)

    app = ArtlensApp(Path(db), [], watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RetentionScreen)
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("1", "enter")  # an ad-hoc policy: keep the last 1
        await settle(pilot)
        await _until(
            pilot,
            lambda: screen.plan is not None and len(screen.plan.removals) == len(removed),
            "the plan of the bucket",
        )
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        await pilot.press("y")
        await _until(pilot, lambda: not screen.applying, "the apply")
        await settle(pilot, rounds=5)
        said = [str(n.message) for n in app._notifications]
        assert any(
            text.startswith("trashed 6") and "skipped 0" in text and f"{url}: batch " in text
            for text in said
        ), said
        # the index followed: planned again, nothing is left to remove
        await _until(
            pilot,
            lambda: screen.plan is not None and not screen.plan.removals,
            "a plan without the trashed objects",
        )

    left = s3_server.contents(bucket)
    assert not set(removed) & set(left)
    # .artlens-trash/<batch>/<key> holds each removed object's bytes
    trashed = {
        parts[2]: v
        for k, v in left.items()
        if len(parts := k.split("/", 2)) == 3 and parts[0] == TRASH
    }
    assert trashed == {k: before[k] for k in removed}
    assert {k: v for k, v in left.items() if not k.startswith(TRASH)} == {
        k: v for k, v in before.items() if k not in removed
    }


def test_a_plan_naming_a_bucket_the_index_does_not_hold_is_refused(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """A saved plan is a file anyone may edit: one naming a bucket that is no root of the
    index moves nothing there, as one naming a folder that is no root is refused."""
    indexed, other = fresh_bucket(versioned=False), fresh_bucket(versioned=False)
    db = str(tmp_path / "bucket.db")
    _cli("index", f"s3://{indexed}", "--db", db)
    plan = _cli("retention", "plan", f"s3://{indexed}", "--keep-last", "1", "--db", db)
    assert isinstance(plan, dict)
    path = Path(plan["saved_to"])
    assert path.is_file()
    text = path.read_text().replace(f"s3://{indexed}", f"s3://{other}")
    path.write_text(text)
    before = s3_server.contents(other)
    result = CliRunner().invoke(main, ["retention", "apply", str(path), "--yes", "--db", db])
    assert result.exit_code == 2, result.output
    assert "not a root of this index" in result.output
    assert s3_server.contents(other) == before


def test_a_bucket_object_pinned_after_the_plan_is_kept(
    s3_server: S3Server, fresh_bucket: Callable[..., str], tmp_path: Path
) -> None:
    """A pin made after the plan keeps what it names at apply, in a bucket as in a folder
    (the folder apply checks the user's pins again; the bucket apply did not)."""
    bucket = fresh_bucket(versioned=False)
    url = f"s3://{bucket}"
    db = str(tmp_path / "bucket.db")
    _cli("index", url, "--db", db)
    plan = _cli("retention", "plan", url, "--keep-last", "1", "--db", db)
    assert isinstance(plan, dict)
    removed = sorted(i["path"] for i in plan["items"] if not i["keep"])
    pinned = removed[0]
    service.pin(url, pinned)
    try:
        done = _cli("retention", "apply", plan["id"], "--yes", "--db", db, code=1)
    finally:
        service.unpin(url, pinned)
    assert isinstance(done, dict)
    assert sorted(i["path"] for i in done["done"]) == removed[1:]
    assert [(i["path"], i["reason"]) for i in done["skipped"]] == [
        (pinned, "pinned; retention never removes it")
    ]
    assert pinned in s3_server.contents(bucket)


@sync
async def test_the_trash_tab_lists_a_buckets_trash_and_restores_a_batch(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """The trash tab said "the trash is empty" for a bucket root whose trash held batches
    (an object a restore could not bring back among them): it lists each trashed object
    with its batch and why a restore left it, and restores its batch."""
    from textual.widgets import DataTable

    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"weights")
    s3_server.put(bucket, "runs/a/other.pt", b"other weights")
    url = f"s3://{bucket}/runs"
    db = str(tmp_path / "bucket.db")
    _cli("index", url, "--db", db)
    batch = _cli("bucket", "trash", url, "a/ckpt.pt", "a/other.pt", "--apply")
    assert isinstance(batch, dict)
    s3_server.put(bucket, "runs/a/ckpt.pt", b"written since")
    _cli("bucket", "restore", url, batch["batch"], code=1)  # other.pt back, ckpt.pt not

    def rows(screen: RetentionScreen) -> list[str]:
        table = screen.query_one("#ret-trash", DataTable)
        return [" | ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]

    app = ArtlensApp(Path(db), [], watch=False)
    async with app.run_test(size=(160, 36)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RetentionScreen)
        await pilot.press("3")
        await _until(pilot, lambda: bool(screen.trash), "the bucket's trash")
        shown = rows(screen)
        assert len(shown) == 1 and "a/ckpt.pt" in shown[0], shown
        assert f"bucket batch {batch['batch']}" in shown[0] and "still in the trash" in shown[0]
        # the key free again: `u` restores the row's batch
        s3_server.call("delete_object", Bucket=bucket, Key="runs/a/ckpt.pt")
        await pilot.press("u")
        await _until(pilot, lambda: not screen.applying, "the restore")
        await _until(pilot, lambda: not screen.trash, "the trash read again")
        assert "the trash is empty" in rows(screen)[0]
    assert s3_server.contents(bucket, "runs/a/") == {
        "runs/a/ckpt.pt": b"weights",
        "runs/a/other.pt": b"other weights",
    }
