"""The HDF5 library (h5py, so Keras) finds a file's superblock after a user block of any
content; a file it opens as HDF5 is never safe, whatever else its bytes read as."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.inspect import inspect_file, looks_like_model
from store.integrity import check_paths
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")

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


# h5py finds the superblock at every power of two below the end of the file, whatever
# the file is called (``tf.keras.models.load_model`` opens any name ``h5py.is_hdf5``
# accepts).  Past 64 KiB only files named ``.h5``/``.hdf5``/``.keras`` were searched, so a
# Keras model inside a harmless pickle (a bytes value spanning the superblock and all the
# HDF5 data, the pickle's STOP after them) read "safe".


def _pickle_around_hdf5(at: int) -> bytes:
    """A complete pickle of one bytes value that holds an HDF5 superblock at byte ``at``
    of the file: what the pickle loads is harmless, what h5py opens is the HDF5 file."""
    head = b"\x80\x02B"
    inner = _hdf5_after(b"", at - len(head) - 4)
    return head + struct.pack("<I", len(inner)) + inner + b"."


@pytest.mark.parametrize("name", ["model.pt", "model.bin", "weights"])
@pytest.mark.parametrize("at", [1 << 17, 1 << 20])
def test_a_user_block_of_any_size_under_any_name_is_never_safe(
    tmp_path: Path, name: str, at: int
) -> None:
    path = tmp_path / name
    path.write_bytes(_pickle_around_hdf5(at))
    assert path.read_bytes().find(_HDF5_SIGNATURE) == at
    runner = CliRunner()
    for target in (tmp_path, path):  # found by the walk (name or content), and named
        result = runner.invoke(main, ["scan", "--json", str(target)])
        [entry] = json.loads(result.stdout)["files"]
        assert (entry["format"], entry["verdict"]) == ("hdf5", "unknown"), entry
        assert any(f"superblock at byte {at}" in r for r in entry["reasons"]), entry
        strict = runner.invoke(main, ["scan", "--fail-on", "unknown", str(target)])
        assert strict.exit_code == 1


def test_the_same_pickle_without_the_signature_stays_safe(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_pickle_around_hdf5(1 << 17).replace(_HDF5_SIGNATURE, b"\x00" * 8))
    result = CliRunner().invoke(main, ["scan", "--json", str(path)])
    [entry] = json.loads(result.stdout)["files"]
    assert entry["verdict"] == "safe", entry


@pytest.mark.parametrize("at", [1024, 2048, 1 << 16, 1 << 17])
def test_a_walk_and_the_index_find_an_hdf5_file_by_content_past_the_head(
    tmp_path: Path, at: int
) -> None:
    """A name no model has and a user block of text: only byte 512 was looked at by
    content, so ``artlens scan <folder>`` left the file out and the index gave it no
    verdict (a strict gate passed over a Keras model)."""
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    path = root / "run" / "export.dat"
    path.write_bytes(_hdf5_after(b"user block: exported by tool X\n", at))
    (root / "run" / "notes.txt").write_text("just some notes\n" * 500)
    past = time.time() - 60  # settled: the indexer hashes now instead of waiting
    for settled in (path, root / "run" / "notes.txt"):
        os.utime(settled, (past, past))
    runner = CliRunner()
    scanned = runner.invoke(main, ["scan", "--json", str(root)])
    files = {Path(f["path"]).name: f for f in json.loads(scanned.stdout)["files"]}
    assert set(files) == {"export.dat"}
    assert (files["export.dat"]["format"], files["export.dat"]["verdict"]) == ("hdf5", "unknown")
    assert runner.invoke(main, ["scan", "--fail-on", "unknown", str(root)]).exit_code == 1
    db = tmp_path / "i.db"
    indexed = runner.invoke(main, ["index", str(root), "--db", str(db)])
    assert indexed.exit_code == 0, indexed.output
    listed = runner.invoke(main, ["ls", "--json", "--db", str(db)])
    by_name = {Path(a["relpath"]).name: a for a in json.loads(listed.output)}
    assert by_name["export.dat"]["verdict"] == "unknown"
    assert by_name["notes.txt"]["verdict"] is None  # plain text is not inspected
