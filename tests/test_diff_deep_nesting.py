"""Config values nested past the walk's depth are compared by the walk's rules.

Past ``MAX_DEPTH`` levels the walk compared with Python's ``==``, for which ``1``,
``1.0`` and ``true`` (and keys ``1`` and ``true``) are equal: two configs differing only
there, 300 levels down, were "equal after parsing" (exit 0).  Deep values are now
compared by a loop with the walk's own rules, and a difference is listed with the
first values found to differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from store.diff import StructuredDiff, diff_files
from store.diff.structured import MAX_DEPTH, diff_structured
from tui.cli import main

DEEP = MAX_DEPTH + 100


def nested(leaf: str, depth: int = DEEP) -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize(
    ("fmt", "old", "new", "kind"),
    [
        ("json", nested("1"), nested("true"), "type_changed"),
        ("json", nested("1"), nested("1.0"), "type_changed"),
        ("yaml", "a: " + nested("1"), "a: " + nested("true"), "type_changed"),
        ("yaml", "a: " + nested("{1: x}"), "a: " + nested("{true: x}"), "changed"),
        ("json", nested('{"a": [1, 2]}'), nested('{"a": [1, 2.0]}'), "type_changed"),
    ],
    ids=["int-bool", "int-float", "yaml-int-bool", "yaml-key-1-true", "deep-in-a-mapping"],
)
def test_values_past_the_depth_differ_by_type(
    tmp_path: Path, fmt: str, old: str, new: str, kind: str
) -> None:
    path_a, path_b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    path_a.write_text(old + "\n")
    path_b.write_text(new + "\n")
    result = diff_files(path_a, path_b)
    assert result.kind == "structured" and isinstance(result.result, StructuredDiff)
    assert not result.equal
    (change,) = result.result.changes
    assert change.kind == kind
    assert any("nested more than" in note for note in result.result.notes)
    run = CliRunner().invoke(main, ["diff", str(path_a), str(path_b)])
    assert run.exit_code == 1, run.output[-500:]
    same = diff_files(path_a, path_a)
    assert same.equal and isinstance(same.result, StructuredDiff) and not same.result.changes


def test_the_values_shown_are_the_ones_that_differ() -> None:
    def deep(leaf: object) -> object:
        value = leaf
        for _ in range(DEEP):
            value = [value]
        return value

    (change,) = diff_structured(deep({"lr": 1, "n": [1, 2]}), deep({"lr": 1, "n": [1, True]}))
    assert (change.kind, change.old, change.new) == ("type_changed", 2, True)
    (grown,) = diff_structured(deep([1, 2]), deep([1, 2, 3]))
    assert (grown.old, grown.new) == ("<sequence of 2 items>", "<sequence of 3 items>")
    assert diff_structured(deep({"a": float("nan")}), deep({"a": float("nan")})) == []
