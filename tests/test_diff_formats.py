"""Structured, table, safetensors, model, image, binary and dispatch diffs on real files."""

from __future__ import annotations

import json
import math
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from store.diff import (
    DiffError,
    diff_binary,
    diff_csv,
    diff_files,
    diff_images,
    diff_model_files,
    diff_safetensors,
    diff_structured,
    diff_structured_files,
)
from store.diff.table import TableDiff
from store.diff.tensors import TensorChange

# --- structured ---------------------------------------------------------------------


def test_reordered_yaml_is_equal(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("model:\n  layers: 4\n  dims: [1, 2]\nlr: 0.1\n")
    (tmp_path / "b.yaml").write_text("lr: 0.1   # comment\nmodel: {dims: [1,2], layers: 4}\n")
    result = diff_structured_files(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert result.equal and result.changes == []
    assert diff_files(tmp_path / "a.yaml", tmp_path / "b.yaml").equal


def test_structured_changes_by_path() -> None:
    old = {"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 1, "name": "x", "gone": 1}
    new = {"opt": {"lr": 0.2, "betas": [0.9, 0.999, 1]}, "seed": "1", "name": "x", "new": 2}
    got = {(c.path, c.kind, repr(c.old), repr(c.new)) for c in diff_structured(old, new)}
    assert got == {
        ("opt.lr", "changed", "0.1", "0.2"),
        ("opt.betas[1]", "changed", "0.99", "0.999"),
        ("opt.betas[2]", "added", "None", "1"),
        ("seed", "type_changed", "1", "'1'"),
        ("gone", "removed", "1", "None"),
        ("new", "added", "None", "2"),
    }
    dotted = diff_structured({"a.b": 1}, {"a.b": 2})
    assert dotted[0].path == '["a.b"]'
    assert diff_structured({"x": math.nan}, {"x": math.nan}) == []


def test_int_and_float_and_colliding_keys_are_not_the_same_value(tmp_path: Path) -> None:
    """``10`` and ``10.0``, or keys ``true`` and ``1``, are equal to Python, not to a config."""
    (tmp_path / "a.yaml").write_text("epochs: 10\ntrue: x\n")
    (tmp_path / "b.yaml").write_text("epochs: 10.0\n1: x\n")
    result = diff_structured_files(tmp_path / "a.yaml", tmp_path / "b.yaml")
    got = {(c.path, c.kind) for c in result.changes}
    assert got == {("epochs", "type_changed"), ("True", "removed"), ("1", "added")}
    assert not result.equal
    (tmp_path / "a.toml").write_text("a = 1\n")
    (tmp_path / "b.toml").write_text("a = 1.0\n")
    assert not diff_files(tmp_path / "a.toml", tmp_path / "b.toml").equal


def test_a_config_too_big_to_walk_whole_is_never_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk stops after MAX_VISITS values (2 million: an 8 MB JSON); a change after
    that point must not come back as 'equal'.  The bound is lowered here, not the file
    made that large."""
    from store.diff import structured
    from store.diff.configs import diff_config_files

    monkeypatch.setattr(structured, "MAX_VISITS", 100)
    for name, last in (("a.json", 1), ("b.json", 2)):
        (tmp_path / name).write_text(json.dumps({"rows": [0.5] * 300, "last": last}))
    result = diff_structured_files(tmp_path / "a.json", tmp_path / "b.json")
    assert not result.equal and any("stopped" in note for note in result.notes)
    assert not diff_files(tmp_path / "a.json", tmp_path / "b.json").equal
    with pytest.raises(DiffError, match="not compared whole"):
        diff_config_files(str(tmp_path / "a.json"), str(tmp_path / "b.json"), "json")


def test_yaml_python_tags_are_data_not_code(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("size: !!python/tuple [1, 2]\n")
    (tmp_path / "b.yaml").write_text("size: !!python/tuple [1, 3]\nf: !!python/name:os.system ''\n")
    result = diff_structured_files(tmp_path / "a.yaml", tmp_path / "b.yaml")
    paths = {change.path for change in result.changes}
    assert "size[1]" in paths and "f" in paths


def test_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": 1, "b": [1, 2]}')
    (tmp_path / "b.json").write_text('{\n  "b": [1, 2],\n  "a": 1\n}\n')
    assert diff_structured_files(tmp_path / "a.json", tmp_path / "b.json").equal
    (tmp_path / "a.toml").write_text("[train]\nlr = 0.1\nsteps = 10\n")
    (tmp_path / "b.toml").write_text("[train]\nsteps = 20\nlr = 0.1\n")
    changes = diff_structured_files(tmp_path / "a.toml", tmp_path / "b.toml").changes
    assert [(c.path, c.old, c.new) for c in changes] == [("train.steps", 10, 20)]
    (tmp_path / "c.yaml").write_text("b: [1, 2]\na: 1\n")
    mixed = diff_structured_files(tmp_path / "a.json", tmp_path / "c.yaml")
    assert mixed.equal and mixed.format == "json/yaml"


def test_a_repeated_key_is_ambiguous_where_it_decides_and_always_warned(tmp_path: Path) -> None:
    """``lr: 0.1`` then ``lr: 0.2`` loads as 0.2 in PyYAML and json, but other loaders
    refuse the file or keep the first: against ``lr: 0.2`` that is neither equal nor
    changed for sure.  Each repeat is a warning naming the file and the key's path."""
    files = {
        "a.yaml": "opt:\n  lr: 0.1\n  wd: 0\n  lr: 0.2\nlayers: [{k: 1, k: 1}]\nseed: 1\n",
        "b.yaml": "opt: {lr: 0.2, wd: 0}\nlayers: [{k: 1}]\nseed: 2\n",
        "a.json": '{"acc": 0.5, "acc": 0.9, "m": {"x": [1], "x": [2]}}',
        "b.json": '{"acc": 0.9, "m": {"x": [3]}}',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = diff_structured_files(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert [(c.path, c.kind, c.old, c.new) for c in result.changes] == [
        ("seed", "changed", 1, 2),
        ("opt.lr", "ambiguous", 0.2, 0.2),
    ]
    assert not result.equal and len(result.warnings) == 2
    assert result.warnings[0].startswith(f"{tmp_path / 'a.yaml'}: key opt.lr appears 2 times")
    assert "first 0.1, last 0.2" in result.warnings[0]
    # the same value twice decides nothing, but is still said: a strict loader refuses it
    assert "layers[0].k appears 2 times" in result.warnings[1]
    result = diff_structured_files(tmp_path / "a.json", tmp_path / "b.json")
    # changed whichever value counts: said as changed, with both values in the warning
    assert [(c.path, c.kind) for c in result.changes] == [
        ("m.x[0]", "changed"),
        ("acc", "ambiguous"),
    ]
    assert [w.split(": ", 1)[1] for w in result.warnings] == [
        "key acc appears 2 times in one mapping (first 0.5, last 0.9); "
        "loaders disagree on which value counts",
        "key m.x appears 2 times in one mapping (first [1], last [2]); "
        "loaders disagree on which value counts",
    ]
    (tmp_path / "c.json").write_text('{"acc": 0.9, "acc": 0.9}')
    same = diff_structured_files(tmp_path / "b.json", tmp_path / "c.json")
    assert [(c.path, c.kind) for c in same.changes] == [("m", "removed")]
    assert same.warnings and "c.json: key acc appears 2 times" in same.warnings[0]


def test_a_key_given_null_twice_is_read_and_decides_nothing(tmp_path: Path) -> None:
    """``x: null`` twice: both values were read (null), so the repeat is said with them and
    decides nothing; it was said as "values not read" and made ``x`` ambiguous."""
    (tmp_path / "a.yaml").write_text("x: null\nx: null\ny: 1\n")
    (tmp_path / "b.yaml").write_text("x: null\ny: 2\n")
    result = diff_structured_files(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert [(c.path, c.kind) for c in result.changes] == [("y", "changed")]
    assert len(result.warnings) == 1
    assert "key x appears 2 times in one mapping (first null, last null)" in result.warnings[0]


def test_what_is_not_a_repeated_key(tmp_path: Path) -> None:
    """A merge overridden (``<<: *base`` then ``lr``), a section of a Darknet ``.cfg``
    given twice and a TOML file (it refuses repeats) are no repeats."""
    from store.diff.configs import diff_config_files

    (tmp_path / "a.yaml").write_text("base: &b {lr: 0.1}\nrun:\n  <<: *b\n  lr: 0.2\n")
    (tmp_path / "b.yaml").write_text("base: {lr: 0.1}\nrun: {lr: 0.2}\n")
    merged = diff_structured_files(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert merged.equal and merged.warnings == []
    (tmp_path / "a.cfg").write_text("[conv]\nsize=3\n[conv]\nsize=3\n")
    (tmp_path / "b.cfg").write_text("[conv]\nsize=3\n[conv]\nsize=1\n")
    cfg = diff_config_files(str(tmp_path / "a.cfg"), str(tmp_path / "b.cfg"), "ini")
    assert cfg.warnings == [] and [c.kind for c in cfg.changes] == ["changed"]
    (tmp_path / "a.toml").write_text("lr = 0.1\nlr = 0.2\n")
    (tmp_path / "b.toml").write_text("lr = 0.2\n")
    with pytest.raises(DiffError, match="invalid toml"):
        diff_structured_files(tmp_path / "a.toml", tmp_path / "b.toml")


def test_repeated_keys_in_ini_and_argument_files(tmp_path: Path) -> None:
    """configparser refuses a key a section repeats and Darknet reads the first; argparse
    keeps a flag's last value, or both with ``append``: ambiguous where it decides."""
    from store.diff.configs import diff_config_files

    (tmp_path / "a.cfg").write_text("[train]\nlr = 0.1\nlr = 0.2\n")
    (tmp_path / "b.cfg").write_text("[train]\nlr = 0.2\n")
    cfg = diff_config_files(
        str(tmp_path / "a.cfg"), str(tmp_path / "b.cfg"), "ini", names=("run A", "run B")
    )
    assert [(c.path, c.kind) for c in cfg.changes] == [("train.lr", "ambiguous")]
    assert cfg.warnings[0].startswith("run A: key train.lr appears 2 times")
    (tmp_path / "a.args").write_text("--lr 0.1 --epochs 3 --lr=0.2\n")
    (tmp_path / "b.args").write_text("--lr 0.2 --epochs 3\n")
    args = diff_config_files(str(tmp_path / "a.args"), str(tmp_path / "b.args"), "args")
    assert [(c.path, c.kind) for c in args.changes] == [("lr", "ambiguous")]
    assert not args.equal and "key lr appears 2 times" in args.warnings[0]


def test_a_json_lines_metrics_file_is_compared_by_value_and_its_repeats_said(
    tmp_path: Path,
) -> None:
    """Detectron2's ``metrics.json`` is JSON lines: it was "invalid json: Extra data", and
    a key a line's object repeats (``total_loss`` 0.5, then 0.7) went unchecked.  Each
    line is now a value ``[n]``; the repeat is ambiguous against 0.7 and warned of, in a
    file diff and in a run's config diff alike; a line that is not JSON is still an
    error, never a shorter list."""
    from store.diff.configs import diff_config_files

    (tmp_path / "a.json").write_text(
        '{"iteration": 10, "total_loss": 0.9}\n\n'
        '{"iteration": 20, "total_loss": 0.5, "total_loss": 0.7}\n'
    )
    (tmp_path / "b.json").write_text(
        '{"iteration": 10, "total_loss": 0.9}\n{"iteration": 20, "total_loss": 0.7}\n'
    )
    (tmp_path / "c.json").write_text(
        '{"iteration": 10, "total_loss": 0.8}\r\n{"iteration": 20, "total_loss": 0.7}\r\n'
    )
    result = diff_structured_files(tmp_path / "a.json", tmp_path / "b.json")
    assert [(c.path, c.kind, c.old, c.new) for c in result.changes] == [
        ("[1].total_loss", "ambiguous", 0.7, 0.7)
    ]
    assert not result.equal and result.warnings == [
        f"{tmp_path / 'a.json'}: key [1].total_loss appears 2 times in one mapping "
        "(first 0.5, last 0.7); loaders disagree on which value counts"
    ]
    assert "both files read as JSON lines" in result.notes[0]
    plain = diff_structured_files(tmp_path / "b.json", tmp_path / "c.json")
    assert [(c.path, c.old, c.new) for c in plain.changes] == [("[0].total_loss", 0.9, 0.8)]
    assert plain.warnings == []
    cfg = diff_config_files(str(tmp_path / "a.json"), str(tmp_path / "b.json"), "json")
    assert [(c.path, c.kind) for c in cfg.changes] == [("[1].total_loss", "ambiguous")]
    assert not cfg.equal and "key [1].total_loss appears 2 times" in cfg.warnings[0]
    (tmp_path / "d.json").write_text('{"iteration": 10}\n{"iteration": 20, "tot\n')
    with pytest.raises(DiffError, match="invalid json: Extra data"):
        diff_structured_files(tmp_path / "b.json", tmp_path / "d.json")


def test_thousands_of_repeated_keys_are_each_settled(tmp_path: Path) -> None:
    """Thousands of repeats, each change under an ambiguous key replaced by it and the rest
    kept (their lookup is by the path's own cut points, not a pass over every key: an INI
    of 30,000 such blocks took over a minute to compare)."""
    from store.diff.configs import diff_config_files

    blocks = 3_000
    (tmp_path / "a.cfg").write_text(
        "".join(f"[s]\nk = {i}\nk = {i + 1}\nx = {i}\n" for i in range(blocks))
    )
    (tmp_path / "b.cfg").write_text(
        "".join(f"[s]\nk = {i + 1}\nx = {i + 1}\n" for i in range(blocks))
    )
    cfg = diff_config_files(str(tmp_path / "a.cfg"), str(tmp_path / "b.cfg"), "ini")
    kinds = sorted({(c.path.rpartition(".")[2], c.kind) for c in cfg.changes})
    assert kinds == [("k", "ambiguous"), ("x", "changed")]
    assert len(cfg.changes) == 2 * blocks and len(cfg.warnings) == blocks


def test_ini_and_argument_files_past_the_line_cap_are_not_compared_on_their_start(
    tmp_path: Path,
) -> None:
    """The parsers stopped at 100,000 lines (arguments) without a word: two 1 MB files
    that differ only past that line were equal."""
    from store.diff.configs import diff_config_files

    head = "[s]\n" + "".join(f"k{i} = 1\n" for i in range(100_000))
    (tmp_path / "a.cfg").write_text(head + "[late]\nlr = 0.1\n")
    (tmp_path / "b.cfg").write_text(head + "[late]\nlr = 0.2\n")
    with pytest.raises(DiffError, match="more than 100000 lines"):
        diff_config_files(str(tmp_path / "a.cfg"), str(tmp_path / "b.cfg"), "ini")
    (tmp_path / "a.args").write_text("--x 1\n" * 50_000 + "--lr 0.1\n")
    (tmp_path / "b.args").write_text("--x 1\n" * 50_000 + "--lr 0.2\n")
    with pytest.raises(DiffError, match="more than 100000 arguments"):
        diff_config_files(str(tmp_path / "a.args"), str(tmp_path / "b.args"), "args")


def test_an_ini_value_continued_on_indented_lines_is_one_value(tmp_path: Path) -> None:
    """configparser (setup.cfg, tox.ini) reads an indented line as more of the value above
    it; each was a key of its own, so moving ``torch`` from one list to the other was
    "same values, different layout" and the runs equal."""
    from store.diff.configs import diff_config_files, parse_ini

    (tmp_path / "a.cfg").write_text(
        "[options]\ninstall_requires =\n    numpy\n    torch\nextras_require =\n"
    )
    (tmp_path / "b.cfg").write_text(
        "[options]\ninstall_requires =\n    numpy\nextras_require =\n    torch\n"
    )
    cfg = diff_config_files(str(tmp_path / "a.cfg"), str(tmp_path / "b.cfg"), "ini")
    assert not cfg.equal
    assert [(c.path, c.kind, c.old, c.new) for c in cfg.changes] == [
        ("options.install_requires", "changed", "\nnumpy\ntorch", "\nnumpy"),
        ("options.extras_require", "changed", "", "\ntorch"),
    ]
    assert cfg.warnings == []  # two lists naming one package repeat no key
    text = "[s]\nx = 1\n  y = 2\n\n  # note\n  [z]\nflag\n  w = 3\n"
    assert parse_ini(text) == {"s": {"x": "1\ny = 2\n\n[z]", "flag": True, "w": 3}}


def test_broken_json_is_an_error_and_falls_back_to_text(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": 1, "b": [1, 2]}\n')
    (tmp_path / "b.json").write_text('{"a": 1, "b": [1, \n')
    with pytest.raises(DiffError, match="invalid json"):
        diff_structured_files(tmp_path / "a.json", tmp_path / "b.json")
    (tmp_path / "a.yaml").write_text("a: 1\n")
    (tmp_path / "b.yaml").write_text("a: [1\n")
    with pytest.raises(DiffError) as raised:
        diff_structured_files(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert str(raised.value).lower().count("invalid yaml") == 1, raised.value
    result = diff_files(tmp_path / "a.json", tmp_path / "b.json")
    assert result.kind == "text" and not result.equal
    assert any("structured diff failed" in note for note in result.notes)


# --- tables -------------------------------------------------------------------------


def test_csv_keyed_by_step_with_ragged_rows(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("step,loss,acc\n1,0.5,0.1\n2,0.4,0.2\n3,0.3\n")
    (tmp_path / "b.tsv").write_text(
        "step\tloss\tacc\tlr\n1\t0.5\t0.1\t1\n2\t0.35\t0.2\t1\n4\t0.2\t0.5\t1\n"
    )
    result = diff_csv(tmp_path / "a.csv", tmp_path / "b.tsv")
    assert result.key_column == "step"
    assert result.columns_added == ["lr"] and result.columns_removed == []
    assert result.rows_added == ["4"] and result.rows_removed == ["3"]
    assert [(c.row, c.column) for c in result.cells] == [("2", "loss")]
    assert result.cells[0].delta == pytest.approx(-0.05)
    last = {v.column: v for v in result.last_values}
    assert last["loss"].old == 0.3 and last["loss"].new == 0.2
    assert last["acc"].old == 0.2  # the ragged row has no acc, so the last numeric one counts
    assert any("do not have 3 columns" in w for w in result.warnings)
    assert not result.equal


def test_a_nan_or_inf_last_value_is_the_last_value(tmp_path: Path) -> None:
    """A's val_loss ends in NaN: the last values said 0.5 -> 0.4 (-20%), the finite value
    before the NaN, and two logs both ending in NaN said 0.5 -> 0.5.  A blank cell (not
    logged that step) is still skipped; no delta is made to or from NaN or inf."""
    (tmp_path / "a.csv").write_text("step,val_loss,acc,lr\n10,0.5,0.1,1\n20,nan,inf,\n")
    (tmp_path / "b.csv").write_text("step,val_loss,acc,lr\n10,0.5,0.1,1\n20,0.4,0.2,\n")
    result = diff_csv(tmp_path / "a.csv", tmp_path / "b.csv")
    last = {v.column: v for v in result.last_values}
    assert math.isnan(last["val_loss"].old or 0) and last["val_loss"].new == 0.4
    assert (last["val_loss"].delta, last["val_loss"].percent) == (None, None)
    assert last["acc"].old == math.inf and last["acc"].delta is None
    assert (last["lr"].old, last["lr"].new, last["lr"].delta) == (1, 1, 0)
    assert {(c.column, c.delta) for c in result.cells} == {("val_loss", None), ("acc", None)}
    both = diff_csv(tmp_path / "a.csv", tmp_path / "a.csv")
    assert both.equal and math.isnan(both.last_values[0].old or 0)


def test_csv_without_key_matches_by_index(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name;score\nx;1\nx;2\n")
    (tmp_path / "b.csv").write_text("name;score\nx;1\nx;5\n")
    result = diff_csv(tmp_path / "a.csv", tmp_path / "b.csv")
    assert result.key_column is None
    assert [(c.row, c.column, c.delta) for c in result.cells] == [("1", "score", 3.0)]
    (tmp_path / "c.csv").write_text("name;score\nx;1.0\nx;2\n")
    by_value = diff_csv(tmp_path / "a.csv", tmp_path / "c.csv")
    assert by_value.equal and by_value.cells == []  # 1 and 1.0 are the same number


def test_files_equal_up_to_the_read_cap_but_not_after_are_not_equal(tmp_path: Path) -> None:
    """A log or metrics table bigger than what is parsed, differing only past that point,
    is not 'equal'; byte-identical ones still are."""
    from store.diff import diff_files_text

    body = "".join(f"{i},0.{i % 1000:03d}\n" for i in range(2000))
    (tmp_path / "a.csv").write_text("step,loss\n" + body + "2000,0.5\n")
    (tmp_path / "b.csv").write_text("step,loss\n" + body + "2000,0.9\n")
    (tmp_path / "c.csv").write_text("step,loss\n" + body + "2000,0.5\n")
    table = diff_csv(tmp_path / "a.csv", tmp_path / "b.csv", max_bytes=4096)
    assert not table.equal and any("differ past the first 4096" in w for w in table.warnings)
    assert diff_csv(tmp_path / "a.csv", tmp_path / "c.csv", max_bytes=4096).equal
    text = diff_files_text(tmp_path / "a.csv", tmp_path / "b.csv", max_bytes=4096)
    assert not text.equal and any("differ past the first 4096" in n for n in text.notes)
    assert diff_files_text(tmp_path / "a.csv", tmp_path / "c.csv", max_bytes=4096).equal


def test_csv_cells_a_diff_could_skip_are_compared(tmp_path: Path) -> None:
    """Integers past float precision, a repeated column name, cells past the header and
    rows in another order: each differs, and none may come back 'equal'."""

    def diff(old: str, new: str) -> TableDiff:
        (tmp_path / "a.csv").write_text(old)
        (tmp_path / "b.csv").write_text(new)
        return diff_csv(tmp_path / "a.csv", tmp_path / "b.csv")

    seeds = diff("step,seed\n1,9007199254740993\n", "step,seed\n1,9007199254740992\n")
    assert not seeds.equal
    assert [(c.column, c.old, c.new, c.delta) for c in seeds.cells] == [
        ("seed", "9007199254740993", "9007199254740992", -1.0)
    ]
    repeated = diff("step,loss,loss\n1,0.5,0.7\n", "step,loss,loss\n1,0.5,0.9\n")
    assert not repeated.equal and [c.column for c in repeated.cells] == ["loss#2"]
    ragged = diff("step,loss\n1,0.5,x\n2,0.4\n", "step,loss\n1,0.5,y\n2,0.4\n")
    assert not ragged.equal and [(c.old, c.new) for c in ragged.cells] == [("x", "y")]
    reordered = diff("step,loss\n1,0.5\n2,0.4\n", "step,loss\n2,0.4\n1,0.5\n")
    assert not reordered.equal and any("different order" in w for w in reordered.warnings)
    assert diff("step,loss\n1,1\n", "step,loss\n1,1.0\n").equal  # the same number


# --- safetensors --------------------------------------------------------------------


def write_safetensors(
    path: Path,
    tensors: dict[str, tuple[str, list[int], bytes]],
    metadata: dict[str, str] | None = None,
) -> None:
    header: dict[str, object] = {}
    data = b""
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [len(data), len(data) + len(payload)],
        }
        data += payload
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def f32(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def by_name(changes: list[TensorChange]) -> dict[str, TensorChange]:
    return {change.name: change for change in changes}


def test_safetensors_diff(tmp_path: Path) -> None:
    write_safetensors(
        tmp_path / "a.safetensors",
        {
            "w": ("F32", [2, 2], f32(1, 2, 3, 4)),
            "same": ("F32", [2], f32(1, 1)),
            "half": ("F16", [2], struct.pack("<2e", 1, 2)),
            "brain": ("BF16", [2], bytes([0x80, 0x3F, 0x00, 0x40])),  # 1.0, 2.0
            "ids": ("I64", [2], struct.pack("<2q", 5, 7)),
            "gone": ("I32", [1], struct.pack("<i", 5)),
            "cast": ("F32", [1], f32(1)),
            "grow": ("F32", [1], f32(1)),
        },
        {"step": "1"},
    )
    write_safetensors(
        tmp_path / "b.safetensors",
        {
            "w": ("F32", [2, 2], f32(1, 2, 3, 8)),
            "same": ("F32", [2], f32(1, 1)),
            "half": ("F16", [2], struct.pack("<2e", 1, 2.5)),
            "brain": ("BF16", [2], bytes([0x80, 0x3F, 0x80, 0x40])),  # 1.0, 4.0
            "ids": ("I64", [2], struct.pack("<2q", 5, 4)),
            "fresh": ("I32", [1], struct.pack("<i", 5)),
            "cast": ("F16", [1], struct.pack("<e", 1)),
            "grow": ("F32", [2], f32(1, 2)),
        },
        {"step": "2"},
    )
    result = diff_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    changes = by_name(result.tensors)
    assert {name: c.status for name, c in changes.items()} == {
        "w": "values_changed", "same": "unchanged", "half": "values_changed",
        "brain": "values_changed", "ids": "values_changed", "gone": "removed",
        "fresh": "added", "cast": "dtype_changed", "grow": "shape_changed",
    }  # fmt: skip
    w = changes["w"]
    assert w.max_abs_diff == 4.0 and w.changed_elements == 1
    assert w.rel_l2 == pytest.approx(4 / math.sqrt(1 + 4 + 9 + 16))
    assert changes["half"].max_abs_diff == 0.5
    assert changes["brain"].max_abs_diff == 2.0
    assert changes["brain"].rel_l2 == pytest.approx(2 / math.sqrt(5))
    assert changes["ids"].max_abs_diff == 3.0
    assert [(m.path, m.old, m.new) for m in result.metadata] == [("step", "1", "2")]
    assert not result.equal
    assert diff_safetensors(tmp_path / "a.safetensors", tmp_path / "a.safetensors").equal
    assert diff_files(tmp_path / "a.safetensors", tmp_path / "b.safetensors").kind == "tensors"


def test_safetensors_large_tensor_change_past_the_first_chunks(tmp_path: Path) -> None:
    """The norm covers the unchanged leading chunks; the difference only the changed ones."""
    values = np.linspace(-1.0, 1.0, 3_000_000, dtype=np.float32)  # 12 MB: several chunks
    moved = values.copy()
    moved[2_900_000] += 0.5
    moved[2_900_001] = np.nan
    write_safetensors(tmp_path / "a.safetensors", {"w": ("F32", [3_000_000], values.tobytes())})
    write_safetensors(tmp_path / "b.safetensors", {"w": ("F32", [3_000_000], moved.tobytes())})
    (change,) = diff_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors").tensors
    assert change.status == "values_changed" and change.changed_elements == 2
    assert change.max_abs_diff == math.inf  # a value that became NaN
    write_safetensors(tmp_path / "c.safetensors", {"w": ("F32", [3_000_000], values.tobytes())})
    moved[2_900_001] = values[2_900_001]
    write_safetensors(tmp_path / "d.safetensors", {"w": ("F32", [3_000_000], moved.tobytes())})
    (change,) = diff_safetensors(tmp_path / "c.safetensors", tmp_path / "d.safetensors").tensors
    norm = float(np.linalg.norm(values.astype(np.float64)))
    assert change.changed_elements == 1
    assert change.max_abs_diff == pytest.approx(0.5, abs=1e-6)
    assert change.rel_l2 == pytest.approx(0.5 / norm, rel=1e-5)


def test_safetensors_float8_compared_by_bytes(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "a.safetensors", {"q": ("F8_E4M3", [4], bytes([1, 2, 3, 4]))})
    write_safetensors(tmp_path / "b.safetensors", {"q": ("F8_E4M3", [4], bytes([1, 9, 3, 8]))})
    result = diff_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    (change,) = result.tensors
    assert change.status == "values_changed" and change.changed_elements == 2
    assert change.max_abs_diff is None and change.note is not None
    assert "not decoded" in change.note and result.notes == [change.note]


def test_safetensors_truncated_is_an_error(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "a.safetensors", {"w": ("F32", [4], f32(1, 2, 3, 4))})
    data = (tmp_path / "a.safetensors").read_bytes()
    (tmp_path / "b.safetensors").write_bytes(data[:-3])
    with pytest.raises(DiffError):
        diff_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    fallback = diff_files(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert fallback.kind == "binary" and not fallback.equal and fallback.notes


# --- binary, images, models ---------------------------------------------------------


def test_binary_first_difference_across_chunks(tmp_path: Path) -> None:
    base = bytes(range(256)) * 8192  # 2 MiB, two read chunks
    changed = bytearray(base)
    changed[1_500_000] ^= 0xFF
    (tmp_path / "a.bin").write_bytes(base)
    (tmp_path / "b.bin").write_bytes(bytes(changed))
    (tmp_path / "c.bin").write_bytes(base + b"tail")
    result = diff_binary(tmp_path / "a.bin", tmp_path / "b.bin")
    assert result.first_difference == 1_500_000 and not result.equal
    assert result.hash_old != result.hash_new
    prefix = diff_binary(tmp_path / "a.bin", tmp_path / "c.bin")
    assert prefix.first_difference == len(base) and prefix.size_new == len(base) + 4
    same = diff_binary(tmp_path / "a.bin", tmp_path / "a.bin")
    assert same.equal and same.first_difference is None and same.hash_old == same.hash_new


def png(width: int, height: int, pixel: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + pixel * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_image_dimensions_without_pillow(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(3, 2, b"\x00\x00\x00"))
    (tmp_path / "b.png").write_bytes(png(4, 5, b"\xff\x00\x00"))
    result = diff_images(tmp_path / "a.png", tmp_path / "b.png")
    assert (result.old.width, result.old.height, result.old.mode) == (3, 2, "RGB")
    assert (result.new.width, result.new.height) == (4, 5)
    assert not result.equal
    assert diff_files(tmp_path / "a.png", tmp_path / "a.png").equal
    assert diff_files(tmp_path / "a.png", tmp_path / "b.png").kind == "image"


def test_model_diff_reports_new_dangerous_import(tmp_path: Path) -> None:
    (tmp_path / "a.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    # os.system via GLOBAL + REDUCE, written by hand: never loaded by anyone
    (tmp_path / "b.pkl").write_bytes(b"\x80\x04cos\nsystem\n\x8c\x02ls\x85R.")
    result = diff_model_files(tmp_path / "a.pkl", tmp_path / "b.pkl")
    assert result.verdict_old == "safe" and result.verdict_new == "dangerous"
    assert any("os" in name and "system" in name for name in result.imports_added)
    assert result.imports_removed == [] and not result.equal
    assert diff_files(tmp_path / "a.pkl", tmp_path / "a.pkl").equal


def test_diff_files_never_raises_on_bad_paths(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    result = diff_files(tmp_path / "a.txt", tmp_path / "missing.txt")
    assert result.error is not None and not result.equal
    (tmp_path / "b.txt").write_text("y\n")
    text = diff_files(tmp_path / "a.txt", tmp_path / "b.txt")
    assert text.kind == "text" and text.result is not None and not text.equal
    (tmp_path / "blob").write_bytes(b"\x00\x01\x02")
    (tmp_path / "blob2").write_bytes(b"\x00\x01\x03")
    assert diff_files(tmp_path / "blob", tmp_path / "blob2").kind == "binary"


def test_csv_with_oversized_field_reads_it_and_the_rows_after_it(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n3,0.3\n")
    (tmp_path / "b.csv").write_text('epoch,loss\n1,0.5\n2,"' + "x" * 200_000 + '"\n3,0.3\n')
    result = diff_csv(tmp_path / "a.csv", tmp_path / "b.csv")
    assert result.rows_new == 3 and result.rows_removed == [] and result.warnings == []
    assert [(c.row, c.column, c.new) for c in result.cells] == [("2", "loss", "x" * 200_000)]


def test_lightning_hparams_with_python_tags_diff_structurally(tmp_path: Path) -> None:
    """hparams.yaml carries !!python/tuple: it must parse safely, not fall back to text."""
    from store.diff import diff_files

    a = tmp_path / "a" / "hparams.yaml"
    b = tmp_path / "b" / "hparams.yaml"
    a.parent.mkdir()
    b.parent.mkdir()
    a.write_text("lr: 0.1\nbetas: !!python/tuple\n- 0.9\n- 0.99\n")
    b.write_text("betas: !!python/tuple\n- 0.9\n- 0.999\nlr: 0.1\n")
    result = diff_files(a, b)
    assert result.kind == "structured" and not result.equal
    changes = [(c.path, c.old, c.new) for c in result.result.changes]  # type: ignore[union-attr]
    assert changes == [("betas[1]", 0.99, 0.999)]


def test_a_repeated_key_under_an_alias_or_merge_is_ambiguous_where_it_is_used(
    tmp_path: Path,
) -> None:
    """``model: *d`` (or ``<<: *d``) where ``d`` repeats ``lr``: a loader keeping the first
    value reads ``model.lr`` as 0.1, so against ``model: {lr: 0.2}`` it is ambiguous, not
    equal (the repeat was said only where the anchor sits, and there both files agree)."""
    (tmp_path / "b.yaml").write_text("_d:\n  lr: 0.1\n  lr: 0.2\nmodel:\n  lr: 0.2\n")
    for name, use in (("alias.yaml", "model: *d\n"), ("merge.yaml", "model:\n  <<: *d\n")):
        (tmp_path / name).write_text("_d: &d\n  lr: 0.1\n  lr: 0.2\n" + use)
        result = diff_structured_files(tmp_path / name, tmp_path / "b.yaml")
        assert not result.equal, name
        assert [(c.path, c.kind) for c in result.changes] == [("model.lr", "ambiguous")]
        assert any("key model.lr appears 2 times" in w for w in result.warnings)
    # a key the merging mapping sets itself is no repeat there
    (tmp_path / "own.yaml").write_text(
        "_d: &d\n  lr: 0.1\n  lr: 0.2\nmodel:\n  <<: *d\n  lr: 0.2\n"
    )
    result = diff_structured_files(tmp_path / "own.yaml", tmp_path / "b.yaml")
    assert result.equal and not any("model.lr" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("name", "text", "other"),
    [
        ("a.json", '{"a": {"lr": 1, "lr": 2}, "a": {"lr": 2}}', '{"a": {"lr": 2}}'),
        ("a.yaml", "a:\n  lr: 1\n  lr: 2\na:\n  lr: 2\n", "a:\n  lr: 2\n"),
        ("b.yaml", "a:\n  x:\n    - {lr: 1, lr: 2}\na:\n  x: [{lr: 2}]\n", "a:\n  x: [{lr: 2}]\n"),
    ],
)
def test_a_repeat_inside_a_replaced_value_leaves_the_first_value_unknown(
    tmp_path: Path, name: str, text: str, other: str
) -> None:
    """``a`` given twice, its first value repeating ``lr`` itself: a loader keeping first
    values reads ``a.lr`` as 1, so against ``a: {lr: 2}`` this is not equal.  The first
    value was built last-wins inside, as if it were ``{lr: 2}``."""
    (tmp_path / name).write_text(text)
    (tmp_path / f"other{Path(name).suffix}").write_text(other)
    result = diff_structured_files(tmp_path / name, tmp_path / f"other{Path(name).suffix}")
    assert not result.equal
    assert [(c.path, c.kind) for c in result.changes] == [("a", "ambiguous")]


def test_ini_sections_and_keys_that_collide_keep_every_value(tmp_path: Path) -> None:
    """A literal ``[s#2]`` beside a repeated ``[s]``, and a top-level key later named as a
    section, each overwrote a block without a word; keys spelled alike but for case are
    one key to configparser (the last kept): ambiguous against a file that orders them
    otherwise, not equal."""
    from store.diff.configs import diff_config_files, parse_ini

    parsed = parse_ini("x = 1\n[s]\na = 1\n[s#2]\nb = 2\n[s]\nc = 3\n[x]\nd = 4\n")
    assert parsed == {"x": 1, "s": {"a": 1}, "s#2": {"b": 2}, "s#3": {"c": 3}, "x#2": {"d": 4}}
    (tmp_path / "a.cfg").write_text("[train]\nLR = 1\nlr = 2\n")
    (tmp_path / "b.cfg").write_text("[train]\nlr = 2\nLR = 1\n")
    cfg = diff_config_files(str(tmp_path / "a.cfg"), str(tmp_path / "b.cfg"), "ini")
    assert not cfg.equal
    assert sorted((c.path, c.kind) for c in cfg.changes) == [
        ("train.LR", "ambiguous"),
        ("train.lr", "ambiguous"),
    ]
    assert any("key train.lr appears 2 times" in w for w in cfg.warnings), cfg.warnings


@pytest.mark.parametrize(
    ("new", "said"),
    [
        (b"step,loss\n1,0.5\n", ["delimiter ';' vs ','"]),
        (b"step;loss\r\n1;0.5\r\n", ["line ends LF vs CRLF"]),
        (b"\xef\xbb\xbfstep;loss\n1;0.5\n", ["UTF-8 byte order mark in the new file only"]),
        (
            b'step;loss\n1;"0.50"\n\n',
            ["cells written differently (quoting, number spelling, blank lines)"],
        ),
    ],
)
def test_tables_equal_after_parsing_say_what_their_bytes_differ_in(
    tmp_path: Path, new: bytes, said: list[str]
) -> None:
    """``step;loss`` against ``step,loss`` (or a BOM, CRLF, quoting) parsed to the same
    cells and the diff said nothing: files that differ were shown as the same."""
    (tmp_path / "a.csv").write_bytes(b"step;loss\n1;0.5\n")
    (tmp_path / "b.csv").write_bytes(new)
    result = diff_csv(tmp_path / "a.csv", tmp_path / "b.csv")
    assert result.equal and result.layout == said
    same = diff_csv(tmp_path / "a.csv", tmp_path / "a.csv")
    assert same.equal and same.layout == []
