"""Hostile names, contents, metric names and params, rendered through every pane.

Property tests (Hypothesis, bounded and derandomized so CI is repeatable): whatever the
strings, rendering raises nothing, no control character from the data (ESC, BEL, C1, bidi
overrides) reaches the output segments, and markup in names is shown literally.  The
renderers are checked on many examples; the whole app (runs table, tree, preview and every
other screen reachable from the explorer) on a few, by reading what the compositor draws.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rich.console import Console, RenderableType

from store import paths
from store.index.db import open_db
from store.index.query import ArtifactRow, FolderEntry, RunRow
from store.lock import WriterLock
from store.preview import preview_file
from store.safetext import visible
from store.scan import Indexer
from tests.test_tui import settle
from tui.widgets.artifact_tree import entry_label
from tui.widgets.preview import (
    file_header,
    folder_sections,
    problem_sections,
    render_preview,
    symlink_sections,
)
from tui.widgets.runs_table import run_cells

NOW = 1_780_000_000.0
MODELS = Path(__file__).parent / "fixtures" / "models"
BAD = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What must never reach a terminal from data (newlines are checked per line instead)."""
PIECES = [
    "[/]", "[bold]", "[/bold]", "[red]x[/red]", "[link=file:///etc/passwd]", "[@click=quit]",
    "\x1b[2J", "\x1b]52;c;aGk=\x07", "\x1b]0;title\x07", "\x9b31m", "\x07", "\n", "\r", "\t",
    "\u202e", "\u2066", "\u2028", "\\", ":", "$name", "ü", "名", "a", "0.1", " ", "=", "-",
]  # fmt: skip
FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SLOW = settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking a whole-app failure takes minutes
    report_multiple_bugs=False,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

hostile = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), min_size=1, max_size=6).map(
    "".join
)


def _name_ok(name: bytes) -> bool:
    return 0 < len(name) <= 120 and b"/" not in name and b"\x00" not in name


hostile_name = (
    st.tuples(hostile, st.sampled_from([b"", b"\xff", b"\xc3(", b"\xed\xa0\x80"]))
    .map(lambda pair: pair[0].replace("/", "_").replace("\x00", "_").encode() + pair[1])
    .filter(lambda name: _name_ok(name) and name not in (b".", b".."))
)


def segments_text(renderable: RenderableType, width: int = 100) -> str:
    """What a terminal would be sent for ``renderable``, minus Rich's own control codes."""
    console = Console(width=width, file=io.StringIO(), color_system="truecolor")
    lines = console.render_lines(renderable, pad=False)
    return "\n".join("".join(s.text for s in line if not s.control) for line in lines)


def assert_clean(text: str) -> None:
    found = BAD.search(text)
    assert found is None, f"control character {found.group()!r} reached the output: {text!r}"


def artifact(name: str, *, verdict: str | None = None, reason: str | None = None) -> ArtifactRow:
    return ArtifactRow(
        1, 1, 1, name.encode("utf-8", "surrogateescape"), paths.display(name), "other",
        "symlink", name, 10, NOW - 60, "ab" * 16, "done", verdict, reason,
    )  # fmt: skip


# -- renderers, many examples --------------------------------------------------------------


@FAST
@given(name=hostile_name, text=hostile)
def test_tree_labels_and_headers(name: bytes, text: str) -> None:
    shown = paths.display(name)
    art = artifact(os.fsdecode(name), verdict="dangerous", reason=text)
    entry = FolderEntry(name, shown, False, 10, 1, NOW - 60, "checkpoint", art)
    folder = FolderEntry(name, shown, True, 10, 3, NOW - 60)
    for renderable in (
        entry_label(entry, NOW),
        entry_label(entry, NOW, problem=text),
        entry_label(folder, NOW),
        file_header(shown, art, 10, NOW),
        *folder_sections(folder, shown, NOW),
        *symlink_sections(art, shown, NOW),
        *problem_sections([text, text + text]),
    ):
        out = segments_text(renderable, width=400)
        assert_clean(out)
    label = segments_text(entry_label(entry, NOW), width=400)
    assert shown in label  # literal: "[bold]" stays "[bold]", never a style


@FAST
@given(name=hostile, experiment=hostile, metric=hostile, param=hostile)
def test_runs_table_cells(name: str, experiment: str, metric: str, param: str) -> None:
    run = RunRow(
        1, 1, b"/r", b"run", name, "generic", experiment, NOW - 100, NOW - 50, "live",
        params={param: param}, metrics={metric: {"last": 0.5}, f"val_{metric}_loss": {"last": 1}},
        meta={"integrity": [f"{name}: symlink to x points to nothing"]},
    )  # fmt: skip
    cells = run_cells(run, marked=True, now=NOW)
    for cell in cells.values():
        assert_clean(segments_text(cell, width=400))
    shown = segments_text(cells["name"], width=400)
    assert shown.startswith("!1 ")
    assert visible(name[:60]) in shown


@FAST
@given(
    content=hostile, key=hostile, suffix=st.sampled_from([".txt", ".json", ".yaml", ".csv", ".log"])
)
def test_previews_of_hostile_contents(
    tmp_path_factory: pytest.TempPathFactory, content: str, key: str, suffix: str
) -> None:
    folder = tmp_path_factory.mktemp("pv")
    bodies = {
        ".txt": content,
        ".log": content * 3,
        ".json": json.dumps({key: content, "n": [1, key]}, ensure_ascii=False),
        ".yaml": f"{json.dumps(key)}: {json.dumps(content)}\n{content}: 1\n",
        ".csv": _csv([["step", key, content], [1, 0.5, key], [2, content, 3]]),
    }
    path = folder / f"f{suffix}"
    path.write_text(bodies[suffix], encoding="utf-8", errors="surrogateescape")
    preview = preview_file(path)
    for dark in (True, False):
        sections = render_preview(preview, name=key, artifact=None, now=NOW, width=80, dark=dark)
        for section in sections:
            assert_clean(segments_text(section))


def _csv(rows: list[list[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, escapechar="\\").writerows(rows)
    return out.getvalue()


# -- the whole app, few examples -----------------------------------------------------------


def write_tree(root: Path, names: list[bytes], texts: list[str]) -> None:
    """Two Lightning runs with hostile params and metric names, and a hostile generic run."""
    for version, loss in ((0, 0.5), (1, 0.25)):
        run = root / "lightning_logs" / f"version_{version}"
        (run / "checkpoints").mkdir(parents=True)
        params = {t: t for t in texts} | {"lr": 0.1 * (version + 1)}
        (run / "hparams.yaml").write_text(json.dumps(params) + "\n")
        metrics: list[object] = ["step", *texts[:3], "train_loss"]
        rows: list[list[object]] = [metrics]
        rows += [[step, *[loss * step] * (len(metrics) - 1)] for step in (1, 2)]
        (run / "metrics.csv").write_text(_csv(rows))
        shutil.copy(MODELS / "plain.pkl", run / "checkpoints" / "epoch=1.ckpt")
        os.symlink(b"gone-" + names[0], os.fsencode(run / "checkpoints") + b"/last.ckpt")
    generic = os.fsencode(root) + b"/x[bold]" + names[0]
    os.mkdir(generic)
    suffixes = [".txt", ".json", ".yaml", ".csv", ".log"]
    for index, name in enumerate(names):
        body = texts[index % len(texts)]
        with open(generic + b"/" + name + suffixes[index % 5].encode(), "wb") as out:
            out.write(body.encode("utf-8", "surrogateescape"))
    with open(generic + b"/x[bold]y.txt", "wb") as out:
        out.write(b"[bold]not bold[/bold] \x1b[2J\x1b]52;c;aGk=\x07\n")
    for folder, dirs, files in os.walk(os.fsencode(root)):
        for item in dirs + files:
            os.utime(os.path.join(folder, item), (NOW - 7200, NOW - 7200), follow_symlinks=False)


def index(root: Path, db_path: Path) -> None:
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            indexer = Indexer(db, root, clock=lambda: NOW)
            indexer.scan()
            indexer.hash_pending()
        finally:
            db.conn.close()


def screen_lines(app: object) -> list[str]:
    """Every line the compositor would draw now, as the text of its segments."""
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return ["".join(seg.text for seg in strip if not seg.control) for strip in strips]


def check_screen(app: object, seen: list[str]) -> None:
    for line in screen_lines(app):
        assert_clean(line)
        seen.append(line)


SCREEN_ACTIONS = ("diff", "metrics", "versions", "note", "retention")
"""Explorer actions that open another screen, tried when the explorer has them."""


async def walk_app(root: Path, db_path: Path) -> list[str]:
    """Visit every run, every file's preview and every other screen; return what was drawn."""
    from tui.app import ArtlensApp
    from tui.screens.explorer import ExplorerScreen

    seen: list[str] = []
    app = ArtlensApp(db_path, [root], watch=False, clock=lambda: NOW)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, 2)
        explorer = app.screen
        assert isinstance(explorer, ExplorerScreen)
        check_screen(app, seen)
        for run_id in list(explorer.runs):
            explorer.jump_to_run(run_id)
            await settle(pilot, 2)
            check_screen(app, seen)
            await pilot.press("2")
            tree = explorer.file_tree
            for _ in range(200):  # the actions behind "l" and "j", without a keypress round trip
                node = tree.cursor_node
                info = node.data if node is not None else None
                if node is not None and info is not None and info.is_dir and not node.is_expanded:
                    tree.action_open_node()
                await settle(pilot, 2)
                check_screen(app, seen)
                before = tree.cursor_line
                tree.action_cursor_down()
                if tree.cursor_line == before:
                    break
            await pilot.press("1")
        await pilot.press("1", "g", "space", "j", "space")  # mark two runs (for diffs)
        await settle(pilot, 2)
        for action in SCREEN_ACTIONS:
            if not hasattr(explorer, f"action_{action}"):
                continue
            if action in ("versions", "note"):
                await pilot.press("2", "G")
            else:
                await pilot.press("1")
            await settle(pilot, 2)
            await explorer.run_action(action)
            await settle(pilot, 2)
            check_screen(app, seen)
            await pilot.press("tab", "j", "enter")
            await settle(pilot, 2)
            check_screen(app, seen)
            while app.screen is not explorer:
                app.pop_screen()
                await settle(pilot, 2)
        for keys in (["question_mark"], ["ctrl+p", *"run"]):
            await pilot.press(*keys)
            await settle(pilot, 2)
            check_screen(app, seen)
            while app.screen is not explorer:
                app.pop_screen()
                await settle(pilot, 2)
    return seen


@SLOW
@given(
    names=st.lists(hostile_name, min_size=3, max_size=6, unique_by=lambda n: n.lower()),
    texts=st.lists(hostile, min_size=3, max_size=6, unique=True),
)
def test_every_pane_of_the_app(
    tmp_path_factory: pytest.TempPathFactory, names: list[bytes], texts: list[str]
) -> None:
    base = tmp_path_factory.mktemp("app")
    root = base / "root"
    root.mkdir()
    write_tree(root, names, texts)
    index(root, base / "index.db")
    seen = asyncio.run(walk_app(root, base / "index.db"))
    drawn = "\n".join(seen)
    assert "x[bold]y.txt" in drawn  # markup in a name is shown literally
    assert "[bold]not bold[/bold]" in drawn  # and in a file's contents
    assert "(dangling)" in drawn  # last.ckpt points to nothing: the tree says so
    assert "points to nothing" in drawn  # and so does its preview
    # and the runs pane counts it (``?``: a hostile text can make hparams.yaml unreadable)
    assert re.search(r"!1 (\? )?version_0", drawn)
