"""Where a loader reads a file otherwise than the inspection did: torch's archive names,
zip directories, tar headers, joblib's dtypes and wrappers, compressed streams, Keras
archives.  Each malicious file only names ``os.system`` (nothing is ever loaded); each
benign twin must stay safe."""

from __future__ import annotations

import io
import zipfile
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
