"""Python's ``zipfile`` finds an archive by its end record, wherever the archive starts;
Keras 3's ``load_model`` opens any ``.keras`` file ``zipfile.is_zipfile`` accepts.  A
benign pickle that carries a Keras archive in a byte string (its last bytes the archive's
comment) reads as a safe pickle from byte 0 and as a Keras model with a Lambda layer from
its end: it is never safe.  Nothing is loaded."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import pytest

from store.inspect import inspect_file

_TAIL = b"0}."
"""POP the byte string, push an empty dict, STOP: the pickle's end, the zip's comment."""


def _keras_archive(comment: bytes) -> bytes:
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}]}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.8.0"}))
        archive.writestr("config.json", json.dumps(config))
        archive.comment = comment
    return buffer.getvalue()


def _pickle_carrying_a_zip() -> bytes:
    archive = _keras_archive(_TAIL)[: -len(_TAIL)]
    return b"\x80\x02B" + struct.pack("<I", len(archive)) + archive + _TAIL


@pytest.mark.parametrize("name", ["model.keras", "model.zip"])
def test_a_pickle_carrying_a_zip_is_read_as_the_zip_too(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_pickle_carrying_a_zip())
    assert zipfile.is_zipfile(path)  # what Keras asks before it opens the archive
    with zipfile.ZipFile(path) as archive:
        assert "config.json" in archive.namelist()
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("also a zip archive" in r for r in found.reasons)


def test_the_same_pickle_without_an_archive_stays_safe(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(b"\x80\x02B" + struct.pack("<I", 4) + b"data" + _TAIL)
    assert inspect_file(path).verdict == "safe"
