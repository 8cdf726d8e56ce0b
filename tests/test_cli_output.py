"""How commands print what they found: JSON that parses to the value, warnings that stay few."""

from __future__ import annotations

import json

import pytest

from store.retention.plan import GROUPED_AFTER, grouped_warnings
from tui.cli.common import emit_json

HOSTILE = "[red]x[/red]\x1b[31m\nname\udce9"


@pytest.mark.parametrize("items", [150, 5000])
def test_an_object_with_long_lists_prints_as_the_same_json(
    items: int, capsys: pytest.CaptureFixture[str]
) -> None:
    value = {
        "id": "p1",
        "items": [
            {"path": f"run/{i}.ckpt", "keep": i % 2 == 0, "note": HOSTILE} for i in range(items)
        ],
        "runs": [],
        "empty": {},
        "nested": {"a": [1, 2, {"b": None}], "c": 1.5},
        "warnings": [HOSTILE] * 101,
    }
    emit_json(value)
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(json.dumps(value))
    assert "\x1b" not in out and '\n  "items": [\n    {' in out  # one item per line
    assert len(out.splitlines()) > items


def test_a_small_object_is_indented_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    value = {"a": [1, 2], "b": {"c": HOSTILE}}
    emit_json(value)
    out = capsys.readouterr().out
    assert json.loads(out) == value
    assert out.startswith('{\n  "a": [\n    1,')


def test_warnings_naming_many_runs_share_a_line() -> None:
    many = [f"exp/run{i}: no val_loss value for any checkpoint" for i in range(6000)]
    few = [f"a/{i}: a link leads out of the root" for i in range(GROUPED_AFTER)]
    plain = ["not indexed: /data", "still 5 bytes over budget"]
    lines = grouped_warnings([*many[:10], *few, *plain, *many[10:]])
    assert lines[0] == (
        "exp/run0, exp/run1, exp/run2 and 5997 more: no val_loss value for any checkpoint"
    )
    assert lines[1:] == [*few, *plain]


def test_every_warning_is_kept_when_none_repeat() -> None:
    warnings = ["x: one", "y: two", "no colon at all", "z: three: with a colon"]
    assert grouped_warnings(warnings) == warnings
