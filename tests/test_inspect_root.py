"""The inspector reads through the file layer: a Root's file inspects as the same path does."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from store.inspect import inspect_at, inspect_file
from store.inspect._io import BoundedFile
from store.root import ChangedError
from store.root.local import LocalRoot


def _safetensors(path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)


def test_inspect_at_a_root_matches_inspect_file(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    _safetensors(tmp_path / "m" / "model.safetensors")
    os.mkfifo(tmp_path / "m" / "pipe.pt")
    root = LocalRoot(tmp_path)
    by_root = inspect_at(root, "m/model.safetensors")
    by_path = inspect_file(tmp_path / "m" / "model.safetensors")
    assert by_root.verdict == by_path.verdict == "safe"
    assert by_root.bytes_read == by_path.bytes_read > 0
    refused = inspect_at(root, "m/pipe.pt")
    assert refused.verdict == "n/a" and "not a regular file" in refused.reasons[0]


def test_a_file_changed_during_inspection_reads_no_mix(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    _safetensors(path)
    handle = BoundedFile(LocalRoot(tmp_path).open("model.safetensors"), "model.safetensors")
    with handle:
        assert handle.read_at(0, 8) == path.read_bytes()[:8]
        os.truncate(path, 4)
        with pytest.raises(ChangedError):
            handle.read_at(0, 8)
