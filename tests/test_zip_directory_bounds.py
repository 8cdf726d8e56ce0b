"""A zip's central directory is bounded before ``zipfile`` reads it: a sparse file that
claims a directory of hundreds of megabytes, or a directory of more entries than any
checkpoint holds, is refused unread by the scan and by every reader, fast."""

from __future__ import annotations

import io
import pickle
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from store.diff._io import DiffError
from store.diff.torch_zip import read_torch_zip
from store.frameworks import _io, _torchmeta, comet, keras, lightning
from store.frameworks.model import Loaded, RunSpec
from store.inspect import inspect_file
from store.safezip import MAX_DIRECTORY_BYTES, MAX_ENTRIES

SPARSE_SIZE = 4 * MAX_DIRECTORY_BYTES


def _tiny_torch_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"epoch": 3}, protocol=2))
    return buffer.getvalue()


def _split(data: bytes) -> tuple[bytes, bytes, int]:
    """(entries, central directory, directory offset) of a zip without a comment."""
    end = data.rindex(b"PK\x05\x06")
    offset = struct.unpack_from("<I", data, end + 16)[0]
    return data[:offset], data[offset:end], offset


def _end(count: int, size: int, offset: int) -> bytes:
    return struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, size, offset, 0)


def _zip64_end(count: int, size: int, offset: int) -> bytes:
    record = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, offset + size, 1)
    return record + locator + _end(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)


def sparse_directory(path: Path) -> Path:
    """A real torch zip's entries, then a hole, then an end record that claims everything
    before it is the central directory (hundreds of MB to read; no disk used)."""
    entries, _, _ = _split(_tiny_torch_zip())
    with path.open("wb") as out:
        out.write(entries)
        out.truncate(SPARSE_SIZE - 22)
        out.seek(SPARSE_SIZE - 22)
        out.write(_end(1, SPARSE_SIZE - 22, 0))
    return path


def claimed_entries(path: Path) -> Path:
    """A valid tiny torch zip whose ZIP64 end record claims 2**40 entries."""
    entries, directory, offset = _split(_tiny_torch_zip())
    path.write_bytes(entries + directory + _zip64_end(1 << 40, len(directory), offset))
    return path


def many_entries(path: Path) -> Path:
    """A torch zip with more central entries than the cap (all on one local header, names
    unique), its end record claiming only the count modulo 65,536."""
    entries, directory, offset = _split(_tiny_torch_zip())
    count = MAX_ENTRIES + 50_000
    header = directory[:46]
    rows = [directory]
    for index in range(count - 1):
        name = f"archive/data/{index:07d}".encode()
        rows.append(header[:28] + struct.pack("<H", len(name)) + header[30:] + name)
    full = b"".join(rows)
    path.write_bytes(entries + full + _end(count & 0xFFFF, len(full), offset))
    return path


HOSTILE = [
    pytest.param(sparse_directory, "byte limit", id="sparse-huge-directory"),
    pytest.param(claimed_entries, "claims 1099511627776 entries", id="zip64-claims-2^40"),
    pytest.param(many_entries, f"more than {MAX_ENTRIES} entries", id="too-many-entries"),
]


@pytest.mark.parametrize(("build", "said"), HOSTILE)
def test_scan_refuses_an_oversized_directory_fast_and_unread(
    tmp_path: Path, build: Callable[[Path], Path], said: str
) -> None:
    path = build(tmp_path / "model.pt")
    started = time.monotonic()
    result = inspect_file(path)
    assert time.monotonic() - started < 1.5
    assert result.verdict == "unknown", result
    assert any(said in reason for reason in result.reasons), result.reasons
    assert result.bytes_read < MAX_DIRECTORY_BYTES // 4  # the directory itself went unread


@pytest.mark.parametrize(("build", "said"), HOSTILE)
def test_every_reader_refuses_an_oversized_directory(
    tmp_path: Path, build: Callable[[Path], Path], said: str
) -> None:
    path = build(tmp_path / "last.ckpt")
    started = time.monotonic()
    with pytest.raises(_io.ReadError, match="limit"):
        _torchmeta.read_values(tmp_path, "last.ckpt")
    assert lightning.saved_bests(tmp_path, "last.ckpt", 1 << 20) == []
    with pytest.raises(DiffError):
        read_torch_zip(path)
    keras_out = Loaded()
    path.rename(tmp_path / "model.keras")
    keras._read_archive_config(tmp_path, "model.keras", keras_out)
    assert time.monotonic() - started < 3
    assert any("ZipTooLargeError" in w for w in keras_out.warnings), keras_out.warnings


def test_comet_archive_with_an_oversized_directory_is_said_unread(tmp_path: Path) -> None:
    claimed_entries(tmp_path / "experiment.zip")
    spec = RunSpec("experiment.zip", "comet", "x", None, run_key="x")
    out = comet.load(tmp_path, spec)
    assert any("entry limit" in w for w in out.warnings), out.warnings


def test_ordinary_and_torch_shaped_zips_still_read(tmp_path: Path) -> None:
    from store.demo._formats import Tensor, TensorRef, torch_zip

    weights = {"w": TensorRef("0", Tensor.of((2,), (1.0, 2.0)))}
    (tmp_path / "model.pt").write_bytes(torch_zip(weights, serialization_id="1"))
    result = inspect_file(tmp_path / "model.pt")
    assert result.format == "torch-zip" and result.verdict == "safe", result
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        for index in range(300):
            archive.writestr(f"data/{index}.txt", b"x")
    assert inspect_file(tmp_path / "plain.zip").summary["entries"] == 300
    (tmp_path / "ckpt.pt").write_bytes(_tiny_torch_zip())
    assert _torchmeta.read_values(tmp_path, "ckpt.pt") == {"epoch": 3}
