"""How commands print what they found: JSON that parses to the value, warnings that stay few."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.jsontext import EncodedItems
from store.retention.plan import GROUPED_AFTER, grouped_warnings
from tui.cli import main
from tui.cli.common import emit_json

HOSTILE = "[red]x[/red]\x1b[31m\nname\udce9"
HOSTILE_PRINTED = "[red]x[/red]\x1b[31m\nname\\xe9"
"""What a parser gets back: the lone surrogate (an undecodable byte) as its printable text."""


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
    assert json.loads(out) == json.loads(json.dumps(value).replace("\\udce9", "\\\\xe9"))
    assert "\x1b" not in out and '\n  "items": [\n    {' in out  # one item per line
    assert len(out.splitlines()) > items


def test_an_object_written_in_parts_is_the_text_it_was_as_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The parts are escaped one by one as the whole text was, and the keys and lists
    joined as before: the bytes a script already parses do not change."""
    value = {
        "id": "\u00e9\x85\u2028\udce9",
        "items": EncodedItems(['{"a": "\u2028\u00e9"}', '{"n": NaN}']),
        "none": EncodedItems([]),
        "runs": [0] * 101,
        "x": [],
    }
    emit_json(value)
    runs = ",\n    ".join(["0"] * 101)
    assert capsys.readouterr().out == (
        '{\n  "id": "\u00e9\\u0085\\u2028\\\\xe9",\n'
        '  "items": [\n    {"a": "\\u2028\u00e9"},\n    {"n": "NaN"}\n  ],\n'
        f'  "none": [],\n  "runs": [\n    {runs}\n  ],\n  "x": []\n}}\n'
    )


def test_a_small_object_is_indented_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    value = {"a": [1, 2], "b": {"c": HOSTILE}}
    emit_json(value)
    out = capsys.readouterr().out
    assert json.loads(out) == {"a": [1, 2], "b": {"c": HOSTILE_PRINTED}}
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


def refuse_constant(token: str) -> object:
    """``parse_constant`` of a strict parser (jq's, RFC 8259's): NaN is no JSON."""
    raise AssertionError(f"not strict JSON: {token}")


def _non_finite_runs(tmp_path: Path) -> Path:
    """Two runs whose metrics went to inf, -inf and nan, indexed: the index."""
    root = tmp_path / "root"
    for run, rows in (("runB", "0,1.0,nan\n1,-inf,inf\n"), ("runC", "0,nan,0.1\n")):
        (root / run).mkdir(parents=True)
        (root / run / "metrics.csv").write_text("step,val_loss,acc\n" + rows)
        (root / run / "model.ckpt").write_bytes(run.encode())
    db = tmp_path / "index.db"
    result = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


@pytest.mark.usefixtures("isolated_cache")
def test_every_json_output_is_strict_with_non_finite_numbers_named(tmp_path: Path) -> None:
    """``Infinity`` is no JSON (jq refuses the whole output): a metric that went to inf is
    the string "Infinity", never null (which would say there is no value)."""
    db = _non_finite_runs(tmp_path)
    runner = CliRunner()
    printed = {}
    for args in (
        ["runs"],
        ["ls"],
        ["diff", "runB", "runC"],
        ["du"],
        ["retention", "plan", "--keep-last", "1"],
    ):
        result = runner.invoke(main, [*args, "--json", "--db", str(db)])
        assert result.exit_code in (0, 1), (args, result.output)
        printed[args[0]] = json.loads(result.stdout, parse_constant=refuse_constant)
    metrics = {r["name"]: r["metrics"] for r in printed["runs"]}
    assert metrics["runB"]["acc"]["last"] == "Infinity"
    assert metrics["runB"]["val_loss"]["last"] == "-Infinity"
    assert metrics["runC"]["val_loss"]["last"] == "NaN"
    assert "Infinity" in json.dumps(printed["diff"]) and "NaN" in json.dumps(printed["diff"])


def test_json_written_ahead_is_made_strict_and_strings_are_left_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Items encoded ahead (a retention plan's) may hold bare NaN; a name that reads "NaN"
    or holds the word Infinity is a string and stays as it is."""
    name = 'NaN Infinity -Infinity \\" NaN'
    items = [f'{{"metric": NaN, "low": -Infinity, "high": Infinity, "name": {json.dumps(name)}}}']
    emit_json({"items": EncodedItems(items), "n": math.nan, "Infinity": [-math.inf]})
    out = capsys.readouterr().out
    value = json.loads(out, parse_constant=refuse_constant)
    assert value == {
        "items": [{"metric": "NaN", "low": "-Infinity", "high": "Infinity", "name": name}],
        "n": "NaN",
        "Infinity": ["-Infinity"],
    }


@pytest.mark.usefixtures("isolated_cache")
def test_json_holds_no_lone_surrogate_even_from_an_older_index(tmp_path: Path) -> None:
    """A lone surrogate parses to no real character (jq turns it into U+FFFD): bytes that
    are not UTF-8 are shown as the printable \\xNN, in values and keys alike; a real
    character written as a surrogate pair stays that character."""
    import sqlite3

    root = tmp_path / "root"
    run = os.fsencode(root) + b"/run2_\xff"
    os.makedirs(run)
    with open(run + b"/metrics.csv", "w") as f:
        f.write("step,v\n0,1\n1,x\n")
    db = tmp_path / "index.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    result = runner.invoke(main, ["runs", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    (printed,) = json.loads(result.stdout)
    assert printed["warnings"] == ["run2_\\xff/metrics.csv: 1 non-numeric cell(s) skipped"]
    # what an index written before holds: the raw surrogates, stored as \u escapes
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE runs SET params = ?, meta = ?",
            (
                json.dumps({"k\udcffey": "v\ud800al", "smile": "\U0001f600"}),
                json.dumps({"warnings": ["run2_\udcff: old", "\\udcff is text"]}),
            ),
        )
    conn.close()
    for args in (["runs", "--json"], ["diff", "1", "1", "--json"]):
        result = runner.invoke(main, [*args, "--db", str(db)])
        assert result.exit_code in (0, 1), result.output
        text = result.stdout
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        parsed = json.dumps(json.loads(text), ensure_ascii=False)  # keys and values
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in parsed), args
    (printed,) = json.loads(runner.invoke(main, ["runs", "--json", "--db", str(db)]).stdout)
    assert printed["params"] == {"k\\xffey": "v\\ud800al", "smile": "\U0001f600"}
    assert printed["warnings"] == ["run2_\\xff: old", "\\udcff is text"]
