"""The retention view under ``App.run_test``: real Lightning output, a real index, real moves."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from rich.text import Text
from test_retention_support import snapshot
from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TabbedContent

from store.index.db import open_db
from store.retention import service
from store.retention.policy import from_flags
from store.retention.trash import TRASH_DIR
from store.userstate import UserState
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.help import HelpScreen
from tui.screens.retention import RetentionScreen
from tui.screens.retention_dialogs import ConfirmApply

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"
EPOCH2 = "lightning_logs/version_0/checkpoints/epoch2-val0.0854.ckpt"
POLICY = '[retention]\nkeep_last = 1\nkeep_best = 1\nmetric = "val_loss"\n'


@pytest.fixture
def lightning(lightning_index: tuple[Path, Path]) -> tuple[Path, Path]:
    return lightning_index


def retention(app: ArtlensApp) -> RetentionScreen:
    screen = app.screen
    assert isinstance(screen, RetentionScreen), screen
    return screen


def row_text(table: DataTable[object], key: str) -> str:
    return " ".join(str(cell) for cell in table.get_row(key))


def item_key(root: Path, rel: str) -> str:
    return f"item\0{root}\0{rel}"


def lose_table(db_path: Path, table: str) -> None:
    """Rename ``table`` away under a running app: its next read of it fails in SQLite."""
    import sqlite3

    broken = sqlite3.connect(db_path)
    try:
        broken.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")
        broken.commit()
    finally:
        broken.close()


async def open_plan(
    app: ArtlensApp, pilot: Pilot[None]
) -> tuple[RetentionScreen, DataTable[object]]:
    """From the explorer, ``r``: the retention view and its plan table, once planned."""
    await settle(pilot)
    await pilot.press("r")
    await settle(pilot)
    screen = retention(app)
    return screen, screen.query_one("#ret-plan", DataTable)


@sync
async def test_no_policy_keeps_everything_and_picker_plans(lightning: tuple[Path, Path]) -> None:
    root, db_path = lightning
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = retention(app)
        summary = str(screen.query_one("#ret-summary", Static).render())
        assert "no policy: keeping everything" in summary
        table = screen.query_one("#ret-plan", DataTable)
        assert "no retention rule applies" in row_text(table, item_key(root, EPOCH2))
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("1", "enter")  # keep last 1
        await settle(pilot)
        assert "kept by no rule" in row_text(table, item_key(root, EPOCH2))
        assert "remove" in row_text(table, item_key(root, EPOCH2))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RetentionScreen)


@sync
async def test_lightning_best_shows_as_the_trainers_best(lightning: tuple[Path, Path]) -> None:
    """Keep-last 1 keeps each run's best too: its ModelCheckpoint state names it, and the
    reason shows in the trainer's best colour, named by the legend."""
    root, db_path = lightning
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 1\n")
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen, table = await open_plan(app, pilot)
        best = item_key(root, "lightning_logs/version_0/checkpoints/epoch3-val0.0592.ckpt")
        assert "keep" in row_text(table, best)
        why = table.get_row(best)[3]
        assert isinstance(why, Text)
        assert why.plain == "trainer's best_model_path (ModelCheckpoint monitoring val_loss)"
        assert [(span.start, span.end, span.style) for span in why.spans] == [
            (0, len(why.plain), "cyan")
        ]
        legend = screen.query_one("#ret-legend", Static)
        assert "trainer's best" in str(legend.tooltip)
        assert "remove" in row_text(table, item_key(root, EPOCH2))


@sync
async def test_pin_flips_to_keep_apply_then_restore(lightning: tuple[Path, Path]) -> None:
    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)
    before = snapshot(root)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen, table = await open_plan(app, pilot)
        key = item_key(root, EPOCH2)
        assert "remove" in row_text(table, key) and "kept by no rule" in row_text(table, key)
        # a long name keeps its end (step and metric), not its folder
        assert str(table.get_row(key)[0]).strip() == "…nts/epoch2-val0.0854.ckpt"
        assert "best val_loss" in row_text(
            table, item_key(root, "lightning_logs/version_0/checkpoints/epoch3-val0.0592.ckpt")
        )

        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("p")
        await settle(pilot)
        assert "pinned" in row_text(table, key) and "keep" in row_text(table, key)
        with UserState() as state:
            assert state.pins(str(root)) == {EPOCH2}
        await pilot.press("p")  # unpin: it goes back to remove
        await settle(pilot)
        assert "kept by no rule" in row_text(table, key)

        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        text = str(app.screen.summary)
        assert "3 checkpoint(s), 13.8K" in text and str(root) in text
        await pilot.press("y")
        await settle(pilot, rounds=5)
        assert retention(app) is screen
        assert not (root / EPOCH2).exists()
        trash = screen.query_one("#ret-trash", DataTable)
        assert trash.has_focus and trash.row_count == 3
        assert any("epoch2-val0.0854.ckpt" in row_text(trash, k.value or "") for k in trash.rows)
        db = open_db(db_path, readonly=True)
        try:
            count = db.conn.execute(
                "SELECT count(*) FROM retention_actions WHERE action = 'trash'"
            ).fetchone()[0]
        finally:
            db.close()
        assert count == 3
        audit = str(screen.query_one("#ret-audit", Static).render())
        assert "apply plan" in audit and "3 item(s)" in audit

        trash.move_cursor(row=0)
        await pilot.press("u")
        await settle(pilot, rounds=5)
        assert trash.row_count == 2
        await pilot.press("U")
        await settle(pilot, rounds=5)
        assert screen.trash == {}
    after = {k: v for k, v in snapshot(root).items() if not k.startswith(TRASH_DIR)}
    assert after == before


@sync
async def test_row_keys_act_only_on_the_tab_that_shows_the_rows(
    lightning: tuple[Path, Path],
) -> None:
    """``u`` and ``U`` from the plan tab, or ``p`` from the trash tab, once acted on rows of
    the other tab that were not on screen: ``u`` restored the trash's first entry and ``U``
    the whole trash (``U`` is the explorer's disk usage key), ``p`` pinned the plan's row.
    Now ``u`` only shows the trash, and ``p`` and ``U`` are disabled in another tab."""
    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _ = await open_plan(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot, rounds=5)
        tabs = screen.query_one("#ret-tabs", TabbedContent)
        trash = screen.query_one("#ret-trash", DataTable)
        assert trash.row_count == 3 and not (root / EPOCH2).exists()

        await pilot.press("1")
        await settle(pilot)
        assert tabs.active == "plan-tab"
        await pilot.press("u")
        await settle(pilot, rounds=5)
        assert tabs.active == "trash-tab" and trash.has_focus
        assert trash.row_count == 3 and len(screen.trash) == 3

        await pilot.press("1")
        await settle(pilot)
        await pilot.press("U")
        await settle(pilot, rounds=5)
        assert len(screen.trash) == 3 and not (root / EPOCH2).exists()

        await pilot.press("3")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        with UserState() as state:
            assert state.pins(str(root)) == set()
        footer_keys = {b.key for _, b, enabled, _ in screen.active_bindings.values() if enabled}
        assert "p" not in footer_keys and "u" in footer_keys and "U" in footer_keys

        trash.move_cursor(row=0)
        await pilot.press("u")  # in the trash tab: restores the row under the cursor
        await settle(pilot, rounds=5)
        assert len(screen.trash) == 2


@sync
async def test_usage_tab_and_help(lightning: tuple[Path, Path]) -> None:
    root, db_path = lightning
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("2")
        await pilot.pause()
        usage = retention(app).query_one("#ret-usage", DataTable)
        assert usage.has_focus
        texts = [" ".join(str(c) for c in usage.get_row_at(i)) for i in range(usage.row_count)]
        assert str(root) in texts[0]
        assert any("duplicates by content hash" in t for t in texts)
        assert any("2 copies" in t for t in texts)
        assert not retention(app).query_one("#ret-usage-note", Static).display  # all read
        assert not any(str(usage.get_row_at(i)[0]).endswith("?") for i in range(usage.row_count))
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        body = help_screen.shown_text()
        assert "Apply" in body and "Pin" in body  # the retention view's own keys


@sync
async def test_the_plan_shows_before_the_disk_usage_is_measured(
    lightning: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An lstat per file takes seconds at a million files: the plan tab must not wait for
    it.  The real measure runs, held until the plan has shown."""
    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)
    gate = threading.Event()
    calls: list[str] = []
    measure = service.usage

    def held_usage(*args: object, **kwargs: object) -> object:
        calls.append("usage")
        assert gate.wait(60), "the test never opened the gate"
        return measure(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "usage", held_usage)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        screen = retention(app)
        summary = screen.query_one("#ret-summary", Static)
        usage = screen.query_one("#ret-usage", DataTable)
        deadline = time.monotonic() + 60
        while "remove" not in str(summary.render()) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert "remove 3" in str(summary.render()), summary.render()
        assert screen.plan is not None and EPOCH2 in {u.path for u in screen.plan.removals}
        assert "measuring" in " ".join(str(c) for c in usage.get_row_at(0))
        gate.set()
        await settle(pilot)
        texts = [" ".join(str(c) for c in usage.get_row_at(i)) for i in range(usage.row_count)]
        assert str(root) in texts[0] and not any("measuring" in t for t in texts)
        assert calls == ["usage"]  # once per plan that asked for it: ctrl+r asks again
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert calls == ["usage", "usage"]


@sync
async def test_a_plan_overtaken_by_a_newer_one_never_shows(
    lightning: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow plan under one policy finishing after a quick one under another: the view
    (and ``a``, which applies what it shows) keeps the newer plan."""
    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)
    first_done = threading.Event()
    gate = threading.Event()
    plans: list[str] = []
    make = service.make

    def held_make(*args: object, **kwargs: object) -> object:
        planned = make(*args, **kwargs)  # type: ignore[arg-type]
        plans.append(planned.plan.id)
        if len(plans) == 1:  # the first plan: held until the newer one has shown
            first_done.set()
            assert gate.wait(60), "the test never opened the gate"
        return planned

    monkeypatch.setattr(service, "make", held_make)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        screen = retention(app)
        deadline = time.monotonic() + 60
        while not first_done.is_set() and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert first_done.is_set()
        screen.adhoc = from_flags(keep_last=2)
        await pilot.press("ctrl+r")  # a newer plan, under another policy
        while len(plans) < 2 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        gate.set()
        await settle(pilot)
        assert len(plans) == 2 and screen.plan is not None
        assert screen.plan.id == plans[1], (screen.plan.id, plans)
        assert "keep_last=2" in str(screen.query_one("#ret-summary", Static).render())


@sync
async def test_another_process_trashing_reloads_the_trash_tab(
    lightning: tuple[Path, Path],
) -> None:
    """The change feed's trash roots reach the retention view: a CLI apply shows up."""
    root, db_path = lightning
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = retention(app)
        assert screen.trash == {}

        def trash_elsewhere() -> int:
            db = open_db(db_path, readonly=True)
            try:
                planned = service.make(db, adhoc=from_flags(keep_last=1))
            finally:
                db.close()
            done = service.apply(planned.plan, db_path, role="cli")
            assert done.index_updated
            return len(done.report.done)

        moved = await asyncio.to_thread(trash_elsewhere)
        assert moved > 0
        deadline = time.monotonic() + 30
        while len(screen.trash) != moved:
            assert time.monotonic() < deadline, "the trash tab did not reload"
            await pilot.pause(0.05)
        trash = screen.query_one("#ret-trash", DataTable)
        assert trash.row_count == moved


@sync
async def test_a_plan_larger_than_the_table_ends_in_a_row_counting_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan table holds ``MAX_PLAN_ROWS`` rows in the plan's order, then one saying
    how many checkpoints, in how many runs, it leaves out; the summary counts them all."""
    from store.scan import Indexer
    from tui.screens import retention as retention_module

    monkeypatch.setattr(retention_module, "MAX_PLAN_ROWS", 15)
    root = tmp_path / "root"
    for run in range(3):
        folder = root / "lightning_logs" / f"version_{run}"
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "hparams.yaml").write_text("lr: 0.1\n")
        (folder / "metrics.csv").write_text("epoch,step,val_loss\n0,1,0.5\n")
        for epoch in range(10):
            (folder / "checkpoints" / f"epoch={epoch}-step={epoch * 10}.ckpt").write_bytes(b"c")
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 2\n")
    db_path = tmp_path / "index.db"
    db = open_db(db_path)
    try:
        Indexer(db, root).scan()
    finally:
        db.close()
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen, table = await open_plan(app, pilot)
        deadline = time.monotonic() + 30
        while table.row_count != 16 and time.monotonic() < deadline:
            await settle(pilot)
        keys = [row.key.value for row in table.ordered_rows]
        assert len(keys) == 16, keys
        assert keys[0] == f"run\0{root}\0lightning_logs/version_0"
        assert keys[11] == f"run\0{root}\0lightning_logs/version_1"
        assert keys[12:15] == [
            item_key(root, f"lightning_logs/version_1/checkpoints/epoch={e}-step={e * 10}.ckpt")
            for e in range(3)
        ]
        assert keys[-1] == "more"
        assert "17 more checkpoint(s), in 2 run(s) not shown whole" in row_text(table, "more")
        summary = str(screen.query_one("#ret-summary", Static).render())
        assert "remove 24" in summary and "keep 6" in summary
        table.move_cursor(row=len(keys) - 1)
        await pilot.press("p")  # the last row is no checkpoint: nothing to pin, no error
        await settle(pilot)
        assert isinstance(app.screen, RetentionScreen)
        assert any("lists the checkpoints left out" in str(n.message) for n in app._notifications)


@sync
async def test_usage_totals_that_leave_out_an_unreadable_folder_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usage tab marks with ``?`` the root's, the experiment's and the run's totals
    that leave out the folder the scan could not read, and names it as ``artlens du``
    does; the run read whole stays plain."""
    from tests.test_tui_disk_usage import unreadable_tree

    root, db_path = unreadable_tree(tmp_path, monkeypatch)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = retention(app)
        usage = screen.query_one("#ret-usage", DataTable)
        sizes = {
            str(usage.get_row_at(i)[2]).strip(): str(usage.get_row_at(i)[0])
            for i in range(usage.row_count)
        }
        marked = {what for what, size in sizes.items() if size.endswith("?")}
        assert marked == {str(root), "experiment (no experiment)", "runD"}, sizes
        assert "runE" in sizes
        note = screen.query_one("#ret-usage-note", Static)
        assert note.display
        said = "1 folder could not be read: runD/out (permission denied)"
        assert said in str(note.render())


@sync
async def test_apply_waits_for_the_plan_of_the_policy_just_picked(
    lightning: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``a`` while the plan of a newly picked policy is still being made does not offer the
    older plan's removals (made under the policy just replaced): it says to wait, and once
    the new plan shows, ``a`` offers what that plan removes."""
    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)  # keep last 1 + best 1: removes 3
    started = threading.Event()
    gate = threading.Event()
    plans: list[int] = []
    make = service.make

    def held_make(*args: object, **kwargs: object) -> object:
        plans.append(len(plans))
        if len(plans) == 2:  # the plan of the picked policy: held until the test says
            started.set()
            assert gate.wait(60), "the test never opened the gate"
        return make(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "make", held_make)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen, _table = await open_plan(app, pilot)
        assert screen.plan is not None and len(screen.plan.removals) == 3
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("9", "enter")  # keep last 9: removes nothing
        deadline = time.monotonic() + 60
        while not started.is_set() and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert started.is_set()
        await pilot.press("a")
        await pilot.pause()
        offered = not isinstance(app.screen, RetentionScreen)
        gate.set()
        assert not offered, "a offered the removals of the plan of the replaced policy"
        assert any("planning" in str(n.message) for n in app._notifications)
        await settle(pilot)
        assert screen.plan is not None and not screen.plan.removals
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, RetentionScreen)  # nothing to remove: no dialog
        assert any("nothing to remove" in str(n.message) for n in app._notifications)


@sync
async def test_a_plan_that_fails_says_so_and_apply_offers_nothing(
    lightning: tuple[Path, Path],
) -> None:
    """A replan that fails (here the index lost its runs table under the app) left the
    older plan's rows under "planning…" for good, and ``a`` applied that older plan: the
    summary says the plan failed, and ``a`` offers nothing."""
    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen, _table = await open_plan(app, pilot)
        assert screen.plan is not None and len(screen.plan.removals) == 3
        lose_table(db_path, "runs")
        await pilot.press("ctrl+r")
        await settle(pilot)
        summary = str(screen.query_one("#ret-summary", Static).render())
        assert "could not plan:" in summary and "runs" in summary, summary
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, RetentionScreen)


@sync
async def test_the_plan_follows_checkpoints_written_after_it_showed(
    lightning: tuple[Path, Path],
) -> None:
    """A run that writes a checkpoint while the plan shows (another writer indexes it):
    the plan kept showing the checkpoints of when it was made, its best "keep" now a
    removal, the new one in no row, its totals not ``artlens retention plan``'s.  The
    view plans again on each change of the index, and ``a`` is not held up by it."""
    import shutil

    from store.lock import WriterLock
    from store.scan import Indexer

    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)  # keep last 1 + best 1 by val_loss
    checkpoints = root / "lightning_logs" / "version_0" / "checkpoints"
    written = "lightning_logs/version_0/checkpoints/epoch4-val0.0100.ckpt"
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen, table = await open_plan(app, pilot)
        assert screen.plan is not None
        assert item_key(root, written) not in table.rows

        def train_and_index() -> None:  # the trainer writes, another process indexes
            shutil.copyfile(checkpoints / "epoch3-val0.0592.ckpt", root / written)
            later = time.time() + 60
            os.utime(root / written, (later, later))
            with WriterLock(db_path):
                db = open_db(db_path)
                try:
                    Indexer(db, root).scan()
                finally:
                    db.conn.close()

        await asyncio.to_thread(train_and_index)
        deadline = time.monotonic() + 60
        while item_key(root, written) not in table.rows:
            assert time.monotonic() < deadline, "the plan never showed the new checkpoint"
            await pilot.pause(0.05)
        await settle(pilot)
        db = open_db(db_path, readonly=True)
        try:
            fresh = service.make(db).plan
        finally:
            db.close()
        assert screen.plan is not None
        now = sorted(u.path for u in screen.plan.removals)
        assert now == sorted(u.path for u in fresh.removals)
        # the new checkpoint shows, kept: the live run logged no val_loss for it yet
        assert "no val_loss logged for it yet" in row_text(table, item_key(root, written))
        for path in now:
            assert "remove" in row_text(table, item_key(root, path))
        summary = str(screen.query_one("#ret-summary", Static).render())
        assert f"remove {len(fresh.removals)} " in summary, summary
        await pilot.press("a")  # the replan does not hold up an apply
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        assert f"{len(fresh.removals)} checkpoint(s)" in str(app.screen.summary)
        await pilot.press("n")


@sync
async def test_an_apply_that_fails_outside_our_errors_leaves_apply_usable(
    lightning: tuple[Path, Path],
) -> None:
    """An apply that fails with an error of no kind we expect (here the index lost its
    artifacts table, a sqlite3 error): the screen stayed 'applying' for good, its progress
    bar up and ``a`` refused in silence. It is usable again, and the plan is read anew."""
    root, db_path = lightning
    (root / ".artlens.toml").write_text(POLICY)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen, _table = await open_plan(app, pilot)
        assert screen.plan is not None and len(screen.plan.removals) == 3
        lose_table(db_path, "artifacts")
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmApply)
        await pilot.press("y")
        deadline = time.monotonic() + 60
        while screen.applying and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert not screen.applying
        assert "-shown" not in screen.query_one("#ret-progress").classes
