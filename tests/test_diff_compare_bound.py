"""Two dense huge files (2 x 20 GB) are compared within a bound of bytes and time: past
it, files equal so far are `not known equal` (``unknown``), never equal, and a difference
found before it is a difference.  Before, the byte diff, the text and table diffs' check
past their read cap and the tensor diffs read both files whole.  The bound is lowered here
through its module constant; the files are a few MiB."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.diff import BinaryDiff, _io, diff_files, diff_files_text, diff_safetensors
from tests.test_diff_formats import write_safetensors
from tui.cli import main

MIB = 1 << 20


@pytest.fixture
def one_mib_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_io, "COMPARE_MAX_BYTES", MIB)


def _pair(
    tmp_path: Path, data: bytes, changes: dict[int, bytes], suffix: str, tag: str = ""
) -> tuple[Path, Path]:
    a, b = tmp_path / f"a{tag}{suffix}", tmp_path / f"b{tag}{suffix}"
    a.write_bytes(data)
    changed = bytearray(data)
    for offset, new in changes.items():
        changed[offset : offset + len(new)] = new
    b.write_bytes(bytes(changed))
    return a, b


def _noise(size: int) -> bytes:
    return b"\x00\xff" + os.urandom(size - 2)


@pytest.mark.usefixtures("one_mib_bound")
def test_equal_bytes_past_the_bound_are_unknown_never_equal(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, _noise(3 * MIB), {}, ".dat")
    result = diff_files(a, b)
    assert result.kind == "binary"
    assert not result.equal and result.unknown
    assert isinstance(result.result, BinaryDiff) and result.result.hash_old is None
    assert any(f"compared the first {MIB} of {3 * MIB} bytes" in n for n in result.result.notes)


@pytest.mark.usefixtures("one_mib_bound")
def test_a_difference_before_the_bound_is_a_difference(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, _noise(3 * MIB), {10: b"\x01\x02"}, ".dat")
    result = diff_files(a, b)
    assert not result.equal and not result.unknown
    assert isinstance(result.result, BinaryDiff) and result.result.first_difference == 10
    past = diff_files(*_pair(tmp_path, _noise(3 * MIB), {2 * MIB: b"\x01"}, ".dat", "2"))
    assert not past.equal and past.unknown  # the difference lies past what was read


@pytest.mark.usefixtures("one_mib_bound")
def test_cli_says_not_known_equal_exits_one_and_writes_strict_json(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, _noise(3 * MIB), {}, ".dat")
    out = CliRunner().invoke(main, ["diff", str(a), str(b)])
    assert out.exit_code == 1, out.output
    assert "not known equal" in out.output
    shown = CliRunner().invoke(main, ["diff", str(a), str(b), "--json"])
    assert shown.exit_code == 1
    data = json.loads(shown.output)
    assert data["equal"] is False and data["unknown"] is True
    same = CliRunner().invoke(main, ["diff", str(a), str(a), "--json"])
    assert same.exit_code == 1 and json.loads(same.output)["unknown"] is True


@pytest.mark.usefixtures("one_mib_bound")
def test_text_equal_past_its_read_cap_and_the_bound_is_unknown(tmp_path: Path) -> None:
    text = b"".join(b"line %d\n" % i for i in range(400_000))  # ~4.6 MB
    a, b = _pair(tmp_path, text, {}, ".log")
    result = diff_files_text(a, b, max_bytes=64 * 1024)
    assert not result.equal and result.unknown
    assert any("not known equal" in note for note in result.notes)
    c, d = _pair(tmp_path, text, {100_000: b"X"}, ".log", "2")
    differs = diff_files_text(c, d, max_bytes=64 * 1024)
    assert not differs.equal and not differs.unknown  # found within the bound


@pytest.mark.usefixtures("one_mib_bound")
def test_tensors_past_the_bound_are_unknown(tmp_path: Path) -> None:
    payload = _noise(MIB - 4096)
    tensors = {name: ("U8", [len(payload)], payload) for name in ("a", "b", "c")}
    write_safetensors(tmp_path / "a.safetensors", tensors)
    write_safetensors(tmp_path / "b.safetensors", tensors)
    result = diff_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert [c.status for c in result.tensors] == ["unchanged", "unknown", "unknown"]
    assert not result.equal and result.unknown
    assert "2 tensor(s) not compared: the comparison's bound ran out" in result.notes
    whole = diff_files(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert whole.kind == "tensors" and whole.unknown and not whole.equal


def test_a_cancelled_diff_stops_between_chunks(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, _noise(16 * MIB), {}, ".dat")
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 3

    result = diff_files(a, b, cancelled=cancelled)
    assert result.error is not None and "cancelled" in result.error
    assert len(asked) == 4  # stopped after three of sixteen chunks
    assert diff_files(a, b).equal  # not cancelled, within the bound: read whole
