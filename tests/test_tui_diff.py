"""The diff screens under ``App.run_test``: run diff, file diff, marked files, versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.test_rundiff import Pair, make_pair
from tests.test_tui import settle, sync
from tui.app import ArtlensApp
from tui.screens.explorer import ExplorerScreen
from tui.screens.file_diff import FileDiffScreen
from tui.screens.help import HelpScreen
from tui.screens.run_diff import RunDiffScreen
from tui.screens.versions import VersionsScreen

LOG_A = "".join(f"line {i}\n" for i in range(400))
LOG_B = LOG_A.replace("line 10\n", "line ten\n").replace("line 300\n", "line [bold]300\x1b[2J\n")


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    result = make_pair(tmp_path, hash_files=False)
    (result.a / "train.log").write_text(LOG_A)
    (result.b / "train.log").write_text(LOG_B)
    from tests.test_rundiff import age, index

    age(result.root)
    index(result.root, result.db_path)
    return result


def make_app(pair: Pair) -> ArtlensApp:
    return ArtlensApp(pair.db_path, [pair.root], watch=False)


def screen_of(app: ArtlensApp) -> object:
    return app.screen


async def mark_both_runs(pilot: Pilot[None]) -> ExplorerScreen:
    await settle(pilot)
    explorer = pilot.app.screen
    assert isinstance(explorer, ExplorerScreen)
    await pilot.press("space", "j", "space")
    assert len(explorer.marked) == 2
    return explorer


@sync
async def test_run_diff_shows_changed_param_and_opens_file_diff(pair: Pair) -> None:
    app = make_app(pair)
    async with app.run_test(size=(100, 30)) as pilot:
        await mark_both_runs(pilot)
        await pilot.press("d")
        await settle(pilot)
        screen = screen_of(app)
        assert isinstance(screen, RunDiffScreen)
        table = screen.table
        keys = [str(k.value) for k in table.rows]
        assert "param:lr" in keys
        assert [k for k in keys if k.startswith("param:")] == ["param:lr"]
        lr = table.get_row("param:lr")
        assert (str(lr[2]), str(lr[3])) in {("0.001", "0.002"), ("0.002", "0.001")}
        changed_files = sorted(k for k in keys if k.startswith("file:"))
        assert changed_files == [
            "file:checkpoints/last.safetensors",
            "file:hparams.yaml",
            "file:metrics.csv",
            "file:train.log",
        ]
        # The cursor starts in params; enter on a changed file opens its diff.
        table.move_cursor(row=table.get_row_index("file:train.log"))
        await pilot.press("enter")
        await settle(pilot)
        diff = screen_of(app)
        assert isinstance(diff, FileDiffScreen)
        assert diff.diff is not None and diff.diff.kind == "text" and not diff.diff.equal
        view = diff.view
        assert len(view.data.starts) == 2
        first = view.position
        assert first == view.data.starts[0]
        await pilot.press("n")
        assert view.position == view.data.starts[1] != first
        await pilot.press("N")
        assert view.position == first
        text = "\n".join(view.plain_rows())
        assert "+line [bold]300\\e[2J" in text  # markup and escapes shown, never applied
        assert not view.side
        await pilot.press("s")
        assert view.side and view.data.rows[1].kind == "pair"
        assert any(" | " in row for row in view.plain_rows())
        await pilot.press("s")
        assert not view.side
        await pilot.press("escape")
        assert isinstance(screen_of(app), RunDiffScreen)
        await pilot.press("escape")
        assert isinstance(screen_of(app), ExplorerScreen)


@sync
async def test_checkpoint_diff_is_per_tensor(pair: Pair) -> None:
    app = make_app(pair)
    async with app.run_test(size=(100, 30)) as pilot:
        await mark_both_runs(pilot)
        await pilot.press("d")
        await settle(pilot)
        screen = screen_of(app)
        assert isinstance(screen, RunDiffScreen)
        row = screen.table.get_row("file:checkpoints/last.safetensors")
        assert str(row[4]).startswith("1 of 2 tensors changed; largest layer.weight")
        screen.open_row("file:checkpoints/last.safetensors")
        await settle(pilot)
        diff = screen_of(app)
        assert isinstance(diff, FileDiffScreen) and diff.diff is not None
        assert diff.diff.kind == "tensors"
        rows = diff.view.plain_rows()
        assert rows[0].startswith("safetensors: 1 unchanged, 1 values_changed")
        assert any("values_changed" in r and "layer.weight" in r for r in rows)
        assert not any("layer.bias" in r for r in rows)
        await pilot.press("s")  # only text diffs have two columns
        assert not diff.view.side


@sync
async def test_two_marked_files_and_versions(pair: Pair) -> None:
    app = make_app(pair)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        explorer = screen_of(app)
        assert isinstance(explorer, ExplorerScreen)
        await pilot.press("2")
        tree = explorer.file_tree
        tree._typed = ""
        assert tree.jump_to("hparams")
        await pilot.press("space")
        tree._typed = ""
        assert tree.jump_to("config")
        await pilot.press("space")
        assert len(tree.marked_files) == 2
        await pilot.press("d")
        await settle(pilot)
        diff = screen_of(app)
        assert isinstance(diff, FileDiffScreen) and diff.diff is not None
        assert diff.diff.kind == "structured" and not diff.diff.equal
        # side by side is for text diffs: not offered in the footer here
        offered = {b.key for _, b, enabled, _ in diff.active_bindings.values() if enabled}
        assert "s" not in offered and "n" in offered
        await pilot.press("escape")
        await settle(pilot)
        tree._typed = ""
        assert tree.jump_to("metrics")
        await pilot.press("v")
        await settle(pilot)
        versions = screen_of(app)
        assert isinstance(versions, VersionsScreen)
        assert sorted(v.run_name for v in versions.versions) == ["version_0", "version_1"]
        await pilot.press("d")  # nothing marked: a notice, no screen
        assert screen_of(app) is versions
        await pilot.press("space", "j", "space", "d")
        await settle(pilot)
        table_diff = screen_of(app)
        assert isinstance(table_diff, FileDiffScreen) and table_diff.diff is not None
        assert table_diff.diff.kind == "table"
        assert any("val_loss" in row for row in table_diff.view.plain_rows())
        await pilot.press("escape", "escape")
        assert isinstance(screen_of(app), ExplorerScreen)


@sync
async def test_diff_without_marks_explains(pair: Pair) -> None:
    app = make_app(pair)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(screen_of(app), ExplorerScreen)
        assert any("mark two runs" in str(n.message) for n in app._notifications)
        await pilot.press("question_mark")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        titles = [title for title, _ in help_screen.sections]
        described = {what for _, rows in help_screen.sections for _, what, _ in rows}
        assert "Side by side" in described and "Versions (v on a file)" in titles


@sync
async def test_side_by_side_pans_to_the_end_of_long_lines(pair: Pair) -> None:
    head = "x" * 300
    (pair.root / "long_a.txt").write_text(f"same\n{head} TAIL-A\nsame\n")
    (pair.root / "long_b.txt").write_text(f"same\n{head} TAIL-B\nsame\n")
    app = make_app(pair)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = FileDiffScreen(bytes(pair.root / "long_a.txt"), bytes(pair.root / "long_b.txt"))
        await app.push_screen(screen)
        await settle(pilot)
        if not screen.view.side:
            await pilot.press("s")
            await settle(pilot)
        view = screen.view
        assert view.side

        def shown() -> str:
            return "\n".join(
                "".join(segment.text for segment in view.render_line(y))
                for y in range(view.size.height)
            )

        assert "TAIL-B" not in shown() and "…" in shown()
        for _ in range(40):
            await pilot.press("l")
        await settle(pilot)
        assert "TAIL-A" in shown() and "TAIL-B" in shown()
        await pilot.press("h")
        assert view.scroll_x > 0


@sync
async def test_run_diff_fits_80_columns_and_names_keep_their_end(tmp_path: Path) -> None:
    from tests.test_rundiff import age, index

    pair = make_pair(tmp_path, hash_files=False)
    long = "checkpoints/a-rather-long-folder-of-checkpoints/epoch=18-step=950.ckpt"
    for run, data in ((pair.a, b"a" * 64), (pair.b, b"b" * 80)):
        (run / long).parent.mkdir(parents=True, exist_ok=True)
        (run / long).write_bytes(data)
    age(pair.root)
    index(pair.root, pair.db_path)
    app = make_app(pair)
    async with app.run_test(size=(80, 24)) as pilot:
        await mark_both_runs(pilot)
        await pilot.press("d")
        await settle(pilot)
        screen = screen_of(app)
        assert isinstance(screen, RunDiffScreen)
        table = screen.table
        assert table.virtual_size.width <= table.scrollable_content_region.width
        row = table.get_row(f"file:{long}")
        name = str(row[1])
        assert name.endswith("=18-step=950.ckpt") and name.startswith("…")
        both = str(row[2])
        assert both.startswith("A ") and "\nB " in both
        lr = str(table.get_row("param:lr")[2])
        assert "0.001" in lr and "0.002" in lr
        # the better run on a line of its own: wrapped in the narrow column, "A better"
        # was cut to "A"
        change = str(table.get_row("metric:val_loss")[3]).splitlines()
        assert len(change) == 2 and change[1] in ("A better", "B better"), change
