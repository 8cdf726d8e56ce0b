"""Where a loader reads a file otherwise than the inspection did: torch's archive names,
zip directories, tar headers, joblib's dtypes and wrappers, compressed streams, Keras
archives.  Each malicious file only names ``os.system`` (nothing is ever loaded); each
benign twin must stay safe."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from store.inspect import inspect_file

_EVIL = b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00touch x\x85R."

_GOOD = b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s."


# torch names a checkpoint's archive folder after the file: ``torch.save(obj, "data.pt")``
# writes ``data/data.pkl`` and ``data/data/0``, and torch's reader finds ``data.pkl`` in the
# first entry's folder, whatever the case of its name.  That pickle is what loads, so it is
# read, never skipped as tensor bytes.


def _zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "entries",
    [
        [("data/data.pkl", _EVIL), ("data/byteorder", b"little"), ("data/version", b"3\n")],
        [("data/DATA.PKL", _EVIL), ("data/version", b"3\n"), ("data/x/data.pkl", _GOOD)],
    ],
    ids=["folder-named-data", "folder-named-data-upper-case-pickle"],
)
def test_a_checkpoint_whose_folder_is_named_data_is_read(
    tmp_path: Path, entries: list[tuple[str, bytes]]
) -> None:
    path = tmp_path / "data.pt"
    path.write_bytes(_zip_of(entries))
    found = inspect_file(path)
    assert found.verdict == "dangerous", found.reasons
    assert "os.system" in found.imports


def test_a_benign_checkpoint_named_data_stays_safe(tmp_path: Path) -> None:
    path = tmp_path / "data.pt"
    floats = b"\x00" * 8
    pickle = (
        b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02("
        b"(X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05"
        b"X\x03\x00\x00\x00cpuq\x06K\x02tq\x07QK\x00K\x02\x85q\x08K\x01\x85q\t\x89"
        b"ccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\rs."
    )
    path.write_bytes(
        _zip_of([("data/data.pkl", pickle), ("data/data/0", floats), ("data/version", b"3\n")])
    )
    found = inspect_file(path)
    assert found.verdict == "safe", found.reasons
    assert found.summary.get("tensors") == {"w": ["F32", [2]]}


# A zip with two central directories: its end record points at one (what torch's miniz
# reads), and another sits just before the record (what Python's zipfile reads, shifting
# every offset as if data were put in front).  Each reader sees a different data.pkl, so
# the archive is never safe, whatever the one artlens reads holds.


def _local(name: str, data: bytes) -> bytes:
    raw = name.encode()
    header = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data),
        len(data), len(raw), 0,
    )  # fmt: skip
    return header + raw + data


def _central(name: str, data: bytes, offset: int) -> bytes:
    raw = name.encode()
    header = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, zlib.crc32(data),
        len(data), len(data), len(raw), 0, 0, 0, 0, 0, offset,
    )  # fmt: skip
    return header + raw


def _two_directories(seen_by_miniz: bytes, seen_by_python: bytes) -> bytes:
    first = [("archive/data.pkl", seen_by_miniz), ("archive/version", b"3\n")]
    second = [("archive/data.pkl", seen_by_python), ("archive/version", b"3\n")]
    out = b""
    offsets: list[int] = []
    for index, (name, data) in enumerate(first + second):
        if index == len(first):
            out += bytes(256)  # room, so the shifted offsets stay positive
        offsets.append(len(out))
        out += _local(name, data)
    first_at = len(out)
    out += b"".join(_central(n, d, o) for (n, d), o in zip(first, offsets[:2], strict=True))
    shift = len(out) - first_at  # what Python adds to every offset it reads
    cd = b"".join(_central(n, d, o - shift) for (n, d), o in zip(second, offsets[2:], strict=True))
    out += cd
    return out + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), first_at, 0)


def test_a_zip_with_two_central_directories_is_never_safe(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "model.pt"
    path.write_bytes(_two_directories(_EVIL, _GOOD))
    with zipfile.ZipFile(path) as archive:  # what artlens reads is the benign one
        assert archive.read("archive/data.pkl") == _GOOD
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("central directory" in r for r in found.reasons)


def test_an_ordinary_zip64_archive_is_not_taken_for_a_moved_directory(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _GOOD)
        for index in range(65_536):  # more entries than a plain end record counts
            archive.writestr(f"archive/data/{index}", b"")
    assert b"PK\x06\x06" in path.read_bytes()[-200:]
    assert inspect_file(path).verdict == "safe"
