"""The HDF5 library (h5py, so Keras) finds a file's superblock after a user block of any
content; a file it opens as HDF5 is never safe, whatever else its bytes read as."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from store.inspect import inspect_file, looks_like_model
from store.integrity import check_paths

_GOOD = b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s."


def _zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


# The HDF5 library (h5py, so Keras's load_model of an ``.h5``) finds a file's superblock at
# byte 0 or at any power of two from 512, after a user block of any content.  A Keras
# model with a Lambda layer behind a 1 KiB user block, or behind an ``.npy`` array, a zip
# or a GGUF header that reads as safe, must never be safe or "not a model".

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _hdf5_after(prefix: bytes, at: int) -> bytes:
    """``prefix`` padded to ``at`` bytes, then an HDF5 superblock's signature and body."""
    assert len(prefix) <= at
    return prefix + b"\x00" * (at - len(prefix)) + _HDF5_SIGNATURE + b"\x00\x08\x08\x00" * 32


def _npy_of_bytes(count: int) -> bytes:
    header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({count},), }}".encode()
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


@pytest.mark.parametrize("at", [1024, 2048, 1 << 16, 1 << 17])
def test_an_hdf5_file_behind_a_large_user_block_is_recognised(tmp_path: Path, at: int) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(_hdf5_after(b"", at))
    found = inspect_file(path)
    assert (found.format, found.verdict) == ("hdf5", "unknown"), found.reasons
    assert any(f"byte {at}" in r for r in found.reasons)
    checks = check_paths([str(tmp_path)])
    assert [(c.format, c.verdict) for c in checks] == [("hdf5", "unknown")]


def test_an_npy_array_that_is_also_an_hdf5_file_is_never_safe(tmp_path: Path) -> None:
    npy = _npy_of_bytes(0)
    data = _hdf5_after(npy, 512)
    data = _npy_of_bytes(len(data) - len(npy)) + data[len(npy) :]  # the array fills the file
    path = tmp_path / "model.h5"
    path.write_bytes(data)
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("also an HDF5 file" in r for r in found.reasons)
    # the very array without the signature stays what it is
    plain = tmp_path / "array.npy"
    plain.write_bytes(data.replace(_HDF5_SIGNATURE, b"\x00" * 8))
    assert inspect_file(plain).verdict == "safe"


def test_a_zip_that_is_also_an_hdf5_file_is_never_safe(tmp_path: Path) -> None:
    for filler in range(380, 520):  # the stored entry's data crosses byte 512
        blob = b"\x00" * filler + _HDF5_SIGNATURE + b"\x00" * 512
        data = _zip_of([("data/data.pkl", _GOOD), ("blob.bin", blob)])
        if data.find(_HDF5_SIGNATURE) == 512:
            break
    else:  # pragma: no cover - the layout of zipfile's stored entries
        pytest.fail("could not place the signature at byte 512")
    path = tmp_path / "model.h5"
    path.write_bytes(data)
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("also an HDF5 file" in r for r in found.reasons)


def test_a_file_without_a_model_name_behind_a_512_byte_user_block_is_looked_at() -> None:
    assert looks_like_model(_hdf5_after(b"", 512)[:1024])
    assert not looks_like_model(b"\x00" * 1024)
