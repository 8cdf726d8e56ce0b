"""Text diff engine: checked against difflib as an oracle and by applying diffs."""

from __future__ import annotations

import difflib
import os
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.diff import DiffError, diff_files_text, diff_text, next_change, previous_change
from store.diff.text import TextDiff, diff_opcodes, intraline_spans, side_by_side

Lines = list[str]


def apply_opcodes(
    a: Sequence[str], b: Sequence[str], codes: list[tuple[str, int, int, int, int]]
) -> Lines:
    out: Lines = []
    cursor_a = cursor_b = 0
    for tag, i1, i2, j1, j2 in codes:
        assert (i1, j1) == (cursor_a, cursor_b), "opcodes must tile both inputs"
        if tag == "equal":
            assert list(a[i1:i2]) == list(b[j1:j2])
            out.extend(a[i1:i2])
        else:
            out.extend(b[j1:j2])
        cursor_a, cursor_b = i2, j2
    assert (cursor_a, cursor_b) == (len(a), len(b))
    return out


def apply_hunks(a: Lines, diff: TextDiff) -> Lines:
    """Patch ``a`` with the hunks the way ``patch`` would."""
    out: Lines = []
    cursor = 0
    for hunk in diff.hunks:
        start = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        out.extend(a[cursor:start])
        cursor = start
        for line in hunk.lines:
            if line.tag == "equal":
                assert a[cursor] == line.text
                out.append(line.text)
                cursor += 1
            elif line.tag == "delete":
                assert a[cursor] == line.text
                cursor += 1
            else:
                out.append(line.text)
    out.extend(a[cursor:])
    return out


def edit_cost(codes: Sequence[tuple[str, int, int, int, int]]) -> int:
    return sum((i2 - i1) + (j2 - j1) for tag, i1, i2, j1, j2 in codes if tag != "equal")


def test_single_change_matches_difflib_exactly() -> None:
    a = [f"line {i}" for i in range(20)]
    b = list(a)
    b[10] = "line ten"
    b.insert(15, "inserted")
    diff = diff_text(a, b)
    assert diff.unified() == list(difflib.unified_diff(a, b, "a", "b", lineterm=""))
    assert [h.header() for h in diff.hunks] == ["@@ -8,11 +8,12 @@"]
    assert (diff.added, diff.removed, diff.equal) == (2, 1, False)


def test_identical_inputs_are_equal() -> None:
    a = ["x", "y", "x"]
    diff = diff_text(a, list(a))
    assert diff.equal and diff.hunks == [] and diff.unified() == []


def test_empty_sides() -> None:
    diff = diff_text([], ["a", "b"])
    assert diff.unified() == list(difflib.unified_diff([], ["a", "b"], "a", "b", lineterm=""))
    diff = diff_text(["a", "b"], [])
    assert diff.unified() == list(difflib.unified_diff(["a", "b"], [], "a", "b", lineterm=""))


@st.composite
def distinct_edits(draw: st.DrawFn) -> tuple[Lines, Lines]:
    """A and B share only lines kept in order, so the minimal diff is unique."""
    size = draw(st.integers(0, 40))
    a = [f"a{i}" for i in range(size)]
    b: Lines = []
    fresh = 0
    for line in a:
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "replace", "insert"]))
        if action in ("replace", "insert"):
            b.append(f"new{fresh}")
            fresh += 1
        if action in ("keep", "insert"):
            b.append(line)
    if draw(st.booleans()):
        b.append(f"new{fresh}")
    return a, b


@settings(max_examples=200, deadline=None)
@given(distinct_edits(), st.integers(0, 4))
def test_unified_output_equals_difflib(pair: tuple[Lines, Lines], context: int) -> None:
    a, b = pair
    expected = list(difflib.unified_diff(a, b, "a", "b", n=context, lineterm=""))
    assert diff_text(a, b, context=context).unified() == expected


line_lists = st.lists(st.sampled_from(["a", "b", "c", "d", ""]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(line_lists, line_lists)
def test_exact_diff_applies_and_is_never_longer_than_difflib(a: Lines, b: Lines) -> None:
    codes = diff_opcodes(a, b)
    assert apply_opcodes(a, b, codes) == b
    oracle = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    assert edit_cost(codes) <= edit_cost(oracle)
    assert apply_hunks(a, diff_text(a, b, context=1)) == b


@settings(max_examples=300, deadline=None)
@given(line_lists, line_lists, st.integers(0, 3))
def test_resync_engine_applies(a: Lines, b: Lines, context: int) -> None:
    assert apply_opcodes(a, b, diff_opcodes(a, b, exact=False)) == b
    assert apply_hunks(a, diff_text(a, b, context=context)) == b


def test_resync_engine_on_large_edited_log_is_minimal() -> None:
    rng = random.Random(3)
    pool = [f"event {i} value={rng.random():.4f}" for i in range(50)]
    a = [rng.choice(pool) for _ in range(30_000)]
    b = list(a)
    for pos in sorted(rng.sample(range(len(b) - 1), 60), reverse=True):
        b[pos] = "changed " + b[pos]
    diff = diff_text(a, b, intraline=False)
    assert (diff.added, diff.removed) == (60, 60)
    assert not diff.approximate
    assert apply_hunks(a, diff) == b


def test_unrelated_inputs_fall_back_to_replace_blocks() -> None:
    a = [f"a{i}" for i in range(6000)] + ["tail"] * 10
    b = [f"b{i}" for i in range(6000)] + ["tail"] * 10
    diff = diff_text(a, b, intraline=False)
    assert apply_hunks(a, diff) == b
    assert (diff.added, diff.removed) == (6000, 6000)


def test_max_lines_caps_unalignable_regions() -> None:
    a = [f"a{i}" for i in range(20_000)]
    b = [f"b{i}" for i in range(20_000)]
    diff = diff_text(a, b, max_lines=1000, intraline=False)
    assert diff.truncated_at is not None and diff.approximate
    assert diff.added + diff.removed == 1000
    assert [line.text for line in diff.flat_lines()][:2] == ["a0", "a1"]


def test_max_lines_stops_and_says_where() -> None:
    a = [f"l{i}" for i in range(10_000)]
    b = [line + "x" if i % 100 == 0 else line for i, line in enumerate(a)]
    diff = diff_text(a, b, max_lines=10)
    assert diff.truncated_at is not None
    old_stop, _ = diff.truncated_at
    assert 500 <= old_stop <= 600  # 10 changed lines = 5 replaced lines, one per 100
    assert diff.removed < 100
    assert not diff.equal and any("stopped" in note for note in diff.notes)


def test_intraline_spans_mark_changed_characters() -> None:
    old, new = intraline_spans("loss=0.512 acc=0.9", "loss=0.498 acc=0.9")
    assert [("loss=0.512 acc=0.9"[s:e]) for s, e in old] != []
    assert all("acc" not in "loss=0.512 acc=0.9"[s:e] for s, e in old)
    changed_new = "".join("loss=0.498 acc=0.9"[s:e] for s, e in new)
    assert set(changed_new) <= set("498")
    diff = diff_text(["x=1 y=2"], ["x=1 y=3"])
    delete, insert = diff.hunks[0].lines
    assert delete.spans == ((6, 7),) and insert.spans == ((6, 7),)


def test_side_by_side_and_navigation() -> None:
    a = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"]
    b = ["a", "B", "c", "d", "e", "f", "g", "h", "i", "j", "k", "M1", "M2"]
    diff = diff_text(a, b, context=1)
    rows = [row for hunk in diff.hunks for row in side_by_side(hunk)]
    pairs = [(o.text if o else None, n.text if n else None) for o, n in rows]
    assert ("b", "B") in pairs and ("l", "M1") in pairs and ("m", "M2") in pairs
    starts = diff.change_starts()
    flat = diff.flat_lines()
    assert [flat[s].text for s in starts] == ["b", "l"]
    assert next_change(starts, -1) == starts[0]
    assert next_change(starts, starts[0]) == starts[1]
    assert next_change(starts, starts[1]) is None
    assert previous_change(starts, starts[1]) == starts[0]
    assert previous_change(starts, starts[0]) is None


def test_to_json_is_plain_data() -> None:
    import json

    payload = diff_text(["a"], ["b"]).to_json()
    assert json.loads(json.dumps(payload))["hunks"][0]["lines"][0]["tag"] == "delete"


def test_files_invalid_utf8_and_missing_newline(tmp_path: Path) -> None:
    old, new = tmp_path / "a.log", tmp_path / "b.log"
    old.write_bytes(b"ok\n\xff\xfe bad\nsame\n")
    new.write_bytes(b"ok\nfine\nsame")
    diff = diff_files_text(old, new)
    texts = [line.text for hunk in diff.hunks for line in hunk.lines]
    assert "\\xff\\xfe bad" in texts and "fine" in texts
    assert any("no newline" in note for note in diff.notes)
    new.write_bytes(b"ok\n\xff\xfe bad\nsame")
    only_newline = diff_files_text(old, new)
    assert not only_newline.equal and only_newline.hunks == []


def test_files_capped_read_is_reported(tmp_path: Path) -> None:
    old, new = tmp_path / "a.txt", tmp_path / "b.txt"
    old.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    new.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)) + b"extra\n")
    diff = diff_files_text(old, new, max_bytes=100)
    assert not diff.equal  # equal as far as read, but "extra" is past the cap
    assert any("100 bytes" in note for note in diff.notes)
    assert any("differ past the first 100 bytes" in note for note in diff.notes)
    assert diff.old_count == diff.new_count < 20


def test_files_refuse_non_regular(tmp_path: Path) -> None:
    regular = tmp_path / "a.txt"
    regular.write_text("x\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(regular)
    for bad in (fifo, link, tmp_path / "missing", tmp_path):
        with pytest.raises(DiffError):
            diff_files_text(regular, bad)


def test_large_file_diff(tmp_path: Path) -> None:
    """1,000 edited lines of 100,000 (its speed is ``tests/bench/bench_diff.py``'s to say)."""
    rng = random.Random(5)
    lines = [f"2026 INFO step={i} loss={rng.random():.5f}" for i in range(100_000)]
    edited = list(lines)
    for pos in sorted(rng.sample(range(len(lines)), 1000), reverse=True):
        edited[pos] = edited[pos].replace("loss", "LOSS")
    (tmp_path / "a").write_text("\n".join(lines) + "\n")
    (tmp_path / "b").write_text("\n".join(edited) + "\n")
    diff = diff_files_text(tmp_path / "a", tmp_path / "b")
    assert (diff.added, diff.removed) == (1000, 1000)
