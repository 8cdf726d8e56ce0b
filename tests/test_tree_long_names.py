"""Long file names in the tree at 80x24: cut with an ellipsis (the extension kept), never
scrolled sideways out of sight; the preview names the file whole."""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len

from tests.test_tui import explorer, index_tree, settle, sync
from tui.app import ArtlensApp
from tui.format import cut_name
from tui.widgets.artifact_tree import ArtifactTree
from tui.widgets.preview import PreviewLines

RUN = "lightning_logs/version_0/"
LONG = "model-[bold]" + "x" * 70 + "-00001-of-00004.safetensors"
"""Markup in it: a name is text, never parsed."""
LONG_DIR = "shards-lr[0.1]-" + "y" * 60
WIDE = "重みファイル" * 8 + ".bin"
"""Characters two cells wide."""


def tree_lines(tree: ArtifactTree) -> list[str]:
    return ["".join(s.text for s in tree.render_line(y)) for y in range(tree.size.height)]


def test_cut_name_keeps_the_extension_and_the_width() -> None:
    for name in (LONG, WIDE, "a" * 40, ".hidden" + "z" * 40, "x.tar.gz"):
        for width in (1, 2, 5, 12, 20, 33):
            cut = cut_name(name, width)
            assert cell_len(cut) <= width, (name, width, cut)
            if cell_len(name) > width >= 2:
                assert "…" in cut
    assert cut_name(LONG, 30).endswith(".safetensors")
    assert cut_name(LONG, 30).startswith("model-[")
    assert cut_name(WIDE, 20).endswith(".bin")
    assert cut_name("short.txt", 9) == "short.txt"
    assert cut_name(LONG_DIR, 20) == "shards-lr[…yyyyyyyyy"  # "1]-yyy…" is no extension


@sync
async def test_long_names_are_cut_in_the_tree_and_whole_in_the_preview(tmp_path: Path) -> None:
    files = {
        RUN + "hparams.yaml": b"lr: 0.1\n",
        RUN + LONG: b"not really weights\n",
        RUN + WIDE: b"\0" * 16,
        RUN + LONG_DIR + "/a.txt": b"a\n",
    }
    root, db_path = index_tree(tmp_path, files)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree = screen.file_tree
        room = tree.scrollable_content_region.width
        # nothing to scroll sideways: every line fits the pane
        assert tree.virtual_size.width <= room, (tree.virtual_size, room)
        assert tree.max_scroll_x == 0
        lines = tree_lines(tree)
        assert all(cell_len(line.rstrip()) <= room for line in lines), lines
        long_line = next(line for line in lines if "model-[bol" in line)
        assert "…" in long_line and ".safetensors" in long_line, long_line
        wide_line = next(line for line in lines if "重み" in line)
        assert "…" in wide_line and ".bin" in wide_line, wide_line
        dir_line = next(line for line in lines if "shards-lr[" in line)
        assert "…" in dir_line and "/" in dir_line, dir_line
        # the node keeps its whole label (find, marks and look-alikes read the name)
        node = next(c for c in tree.root.children if c.data and c.data.shown_name == LONG)
        assert str(node.label).startswith(LONG)
        # the preview names the file whole
        tree.move_cursor(node)
        await settle(pilot)
        preview = "".join(
            "".join(s.text for s in strip)
            for lines_widget in screen.preview_pane.query(PreviewLines)
            for strip in lines_widget.strips
        )
        assert LONG in preview.replace(" ", "")
        # a marked file keeps fitting (its mark takes two cells of the room)
        await pilot.press("space")
        await settle(pilot)
        assert tree.virtual_size.width <= room
        marked_line = next(line for line in tree_lines(tree) if "safetensors" in line)
        assert "✓" in marked_line and ".safetensors" in marked_line, marked_line
