"""Configs whose bytes are not UTF-8 are never compared as text with those bytes replaced.

Configs were decoded with ``errors="replace"``, so every invalid byte became U+FFFD: a
Latin-1 ``name: café`` against ``name: cafè`` read as one value, and ``artlens diff``
said "equal after parsing" (exit 0), a run diff "same values, different layout".  The
loaders (``json``, PyYAML, ``tomllib``) refuse such bytes; the diff now does too and
falls back to the byte-exact text diff, or says the config could not be compared.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from store.diff import DiffError, StructuredDiff, TextDiff, diff_files
from store.diff.configs import diff_config_files
from tests.test_rundiff import age, diff_by_name, index, make_pair
from tui.cli import main

CASES = {
    "json": (b'{"name": "caf\xe9", "lr": 0.1}\n', b'{"name": "caf\xe8", "lr": 0.1}\n'),
    "yaml": (b"name: caf\xe9\nlr: 0.1\n", b"name: caf\xe8\nlr: 0.1\n"),
    "toml": (b'name = "caf\xe9"\nlr = 0.1\n', b'name = "caf\xe8"\nlr = 0.1\n'),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_configs_differing_in_bytes_that_are_not_utf8_differ(tmp_path: Path, fmt: str) -> None:
    old, new = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    old.write_bytes(CASES[fmt][0])
    new.write_bytes(CASES[fmt][1])
    result = diff_files(old, new)
    assert not result.equal
    assert result.kind == "text" and isinstance(result.result, TextDiff)
    assert any("not UTF-8" in note for note in result.notes), result.notes
    run = CliRunner().invoke(main, ["diff", str(old), str(new)])
    assert run.exit_code == 1, run.output
    assert "equal" not in run.output


def test_valid_utf8_configs_are_still_compared_by_value(tmp_path: Path) -> None:
    old, new = tmp_path / "a.yaml", tmp_path / "b.yaml"
    old.write_bytes("\ufeffname: café\nlr: 0.1\n".encode())
    new.write_bytes("lr: 0.1\nname: café\n".encode())
    result = diff_files(old, new)
    assert result.kind == "structured" and result.equal
    assert isinstance(result.result, StructuredDiff)


@pytest.mark.parametrize(
    ("name", "fmt", "old", "new"),
    [
        ("yolo.cfg", "ini", b"[net]\nname = caf\xe9\n", b"[net]\nname = caf\xe8\n"),
        ("train.args", "args", b"--name caf\xe9\n", b"--name caf\xe8\n"),
        ("hparams.yaml", "yaml", b"name: caf\xe9\n", b"name: caf\xe8\n"),
    ],
    ids=["ini", "args", "yaml"],
)
def test_run_configs_not_utf8_are_not_same_values(
    tmp_path: Path, name: str, fmt: str, old: bytes, new: bytes
) -> None:
    (tmp_path / "a").write_bytes(old)
    (tmp_path / "b").write_bytes(new)
    with pytest.raises(DiffError, match="not UTF-8"):
        diff_config_files(str(tmp_path / "a"), str(tmp_path / "b"), fmt)


def test_a_run_diff_never_calls_such_a_config_unchanged(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    (pair.a / "yolo.cfg").write_bytes(b"[net]\nname = caf\xe9\nbatch = 64\n")
    (pair.b / "yolo.cfg").write_bytes(b"[net]\nname = caf\xe8\nbatch = 64\n")
    age(pair.root)
    index(pair.root, pair.db_path)
    result, warnings = diff_by_name(pair.db_path, "version_0", "version_1")
    assert "yolo.cfg" not in result.artifacts.unchanged
    assert not any(w.startswith("yolo.cfg: same values") for w in warnings), warnings
    assert not result.equal
    configs = {c.path: c for c in result.configs}
    assert configs["yolo.cfg"].error is not None and "not UTF-8" in configs["yolo.cfg"].error
