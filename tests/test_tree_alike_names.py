"""Long sibling names that differ only in their middle read apart in the tree: the cut keeps
the part that tells them apart, at 80x24 and 60x20."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from tests.test_tree_long_names import tree_lines
from tests.test_tui import explorer, index_tree, settle, sync
from tui.app import ArtlensApp
from tui.format import cut_name, cut_name_apart

RUN = "lightning_logs/version_0/"
SWEEP = [
    f"checkpoint-sweep-lr[{lr}]-wd0.01-seed1-final-ema.safetensors"
    for lr in ("0.001", "0.003", "0.010")
]
"""Three checkpoints of a sweep: their names differ only in the learning rate (and carry
brackets, which are text)."""
SHARDS = [f"model-{i:05d}-of-00004-{'x' * 30}.safetensors" for i in (1, 2, 3, 4)]
FOLDERS = [f"run-{'y' * 30}-{tag}-{'z' * 30}" for tag in ("a1", "b2")]


def test_a_cut_that_would_read_as_a_sibling_keeps_the_difference() -> None:
    for names in (SWEEP, SHARDS, FOLDERS):
        for width in (8, 12, 20, 30, 40):
            shown = [cut_name_apart(name, width, names) for name in names]
            assert len(set(shown)) == len(names), (width, shown)
            assert all(cell_len(text) <= width for text in shown), (width, shown)
    assert cut_name_apart(SWEEP[0], 30, SWEEP).endswith(".safetensors")
    assert "…001…" in cut_name_apart(SWEEP[0], 40, SWEEP)  # the number, not one digit
    assert cut_name_apart(SWEEP[0], 30, ["other.txt"]) == cut_name(SWEEP[0], 30)
    assert cut_name_apart("short.txt", 9, ["short.txt2"]) == "short.txt"


@settings(max_examples=300, deadline=None)
@given(
    stem=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40),
    left=st.text(min_size=1, max_size=3),
    right=st.text(min_size=1, max_size=3),
    end=st.text(max_size=30),
    width=st.integers(min_value=3, max_value=60),
)
def test_two_alike_names_never_read_the_same(
    stem: str, left: str, right: str, end: str, width: int
) -> None:
    """Two names alike but for what follows ``stem`` (the first character differs there)
    are shown apart at any width of 3 cells or more."""
    if left[0] == right[0]:
        return  # a shorter run of the same character: no cut can tell "0000" from "00000"
    one, two = stem + left + end, stem + right + end
    shown_one, shown_two = cut_name_apart(one, width, [two]), cut_name_apart(two, width, [one])
    assert cell_len(shown_one) <= width and cell_len(shown_two) <= width
    assert shown_one != shown_two, (one, two, width, shown_one)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
@sync
async def test_sibling_names_alike_but_in_their_middle_read_apart_in_the_tree(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    files = {RUN + "hparams.yaml": b"lr: 0.1\n"}
    files.update({RUN + name: b"\0" * 64 for name in SWEEP})
    files.update({RUN + folder + "/a.txt": b"a\n" for folder in FOLDERS})
    root, db_path = index_tree(tmp_path, files)
    app = ArtlensApp(db_path, [root], watch=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = explorer(app)
        await pilot.press("2")
        await settle(pilot)
        tree = screen.file_tree
        seen: dict[str, None] = {}
        for _ in range(tree.last_line + 1):  # every line, the pane showing a few at a time
            seen.update(dict.fromkeys(line.rstrip() for line in tree_lines(tree)))
            await pilot.press("j")
        lines = list(seen)
        room = tree.scrollable_content_region.width
        for group, says in ((SWEEP, ".safetensors"), (FOLDERS, "/ ")):
            shown = [
                line.split("  ")[0].removeprefix("├ ").removeprefix("└ ")  # the name
                for line in lines
                if says in line
            ]
            assert len(shown) == len(group), lines
            assert all("…" in text for text in shown), shown  # they were cut
            assert len(set(shown)) == len(group), shown
        assert all(cell_len(line) <= room for line in lines), lines
        assert sum(".safetensors" in line for line in lines) == len(SWEEP), lines


def test_a_folder_of_many_look_alikes_tells_each_from_its_neighbours() -> None:
    # 20,000 checkpoints sharing a head and a tail: the siblings looked at are bounded
    # (``ALIKE_SCAN`` from each end of the run sharing the head), and each cut still
    # differs from the names next to it
    names = sorted(f"ckpt-step-{i:06d}-{'x' * 40}.pt" for i in range(20_000))
    for at in (0, 1, 4_999, 10_000, 19_998, 19_999):
        shown = cut_name_apart(names[at], 24, names)
        assert cell_len(shown) <= 24, shown
        for near in (at - 1, at + 1):
            if 0 <= near < len(names):
                assert shown != cut_name_apart(names[near], 24, names), (at, near, shown)
