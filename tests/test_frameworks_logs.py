"""A run's logs are read to whole lines: a cut inside a line must not become a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.frameworks import _io
from store.frameworks.model import Loaded


def test_a_log_cut_at_the_cap_keeps_whole_lines_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loss").write_bytes(b"1700000000 0.5 1\n1700000001 0.25 12\n")
    # the cap falls inside the second line, right after its step's first digit
    monkeypatch.setattr(_io, "LARGE", len(b"1700000000 0.5 1\n1700000001 0.25 1"))
    out = Loaded()
    data = _io.read_log(tmp_path, "loss", out)
    assert data == b"1700000000 0.5 1\n"
    assert out.warnings == [f"loss: larger than {_io.LARGE} bytes, only the start was read"]
    assert out.unread == {"metrics"}


def test_a_missing_log_is_said_unless_missing_is_expected(tmp_path: Path) -> None:
    out = Loaded()
    assert _io.read_log(tmp_path, "absent.jsonl", out, missing_ok=True) is None
    assert out.warnings == [] and out.unread == set()
    assert _io.read_log(tmp_path, "absent.jsonl", out) is None
    assert len(out.warnings) == 1 and out.warnings[0].startswith("absent.jsonl:")
    assert out.unread == {"metrics"}


def test_a_log_that_is_no_regular_file_is_never_opened(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "metrics.jsonl")  # opening a FIFO for reading would hang
    out = Loaded()
    assert _io.read_log(tmp_path, "metrics.jsonl", out, missing_ok=True) is None
    assert out.warnings == ["metrics.jsonl: not a regular file"] and out.unread == {"metrics"}


def test_json_lines_yield_objects_and_count_every_line_that_is_not_one() -> None:
    data = b'{"step": 1, "loss": 0.5}\n\n[1, 2]\n{"step": 2\n7\n{"step": 3, "loss": 0.25}\n'
    out = Loaded()
    rows = list(_io.json_objects(data, "scalars.json", out))
    assert rows == [{"step": 1, "loss": 0.5}, {"step": 3, "loss": 0.25}]
    # a list, a cut line, a number: the metrics are read in part
    assert out.warnings == ["scalars.json: 3 malformed line(s) skipped"]
    assert out.unread == {"metrics"}


def test_json_lines_with_invalid_utf8_still_read_their_numbers() -> None:
    out = Loaded()
    rows = list(_io.json_objects(b'{"tag": "\xff\xfe", "loss": 1.5}\n', "log", out))
    assert rows[0]["loss"] == 1.5 and out.warnings == [] and out.unread == set()
