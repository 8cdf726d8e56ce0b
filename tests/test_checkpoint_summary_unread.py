"""A run diff's line for a changed checkpoint counts every change and says what it did
not compare.

The summary counted only the listed metadata changes (not those past the listing's bound)
and dropped the torch-zip diff's note that non-tensor values past 20,000 were not
compared: two checkpoints differing there read "0 of 1 tensors changed", as if only
bytes of no meaning had moved.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from store.diff.checkpoints import summarize, summarize_checkpoints
from store.diff.runs import ArtifactChange
from store.diff.structured import MAX_CHANGES
from store.diff.tensors import diff_safetensors
from store.diff.torch_zip import MAX_VALUES, diff_torch_zips
from tests.pickle_bytes import float_tensor as _weight
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str


def write_checkpoint(path: Path, last_id: int) -> None:
    """``{"ids": [0, 1, ..., MAX_VALUES - 1, last_id], "state_dict": {"w": <tensor>}}``."""
    ids = b"(" + b"".join(_int(i) for i in range(MAX_VALUES)) + _int(last_id) + b"l"
    body = _str("w") + _weight()
    pickled = b"\x80\x02}(" + _str("ids") + ids + _str("state_dict") + b"}(" + body + b"uu."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.ones(4, dtype=np.float32).tobytes())


def test_values_past_the_bound_are_said_in_the_checkpoint_line(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "a.ckpt", 1)
    write_checkpoint(tmp_path / "b.ckpt", 2)
    diff = diff_torch_zips(tmp_path / "a.ckpt", tmp_path / "b.ckpt")
    assert not diff.equal and diff.changed() == []
    summary = summarize(diff)
    assert "not compared" in summary.line() and "not compared" in summary.to_json()["line"]
    assert summary.unread is not None and "not compared" in summary.unread

    for side, last in (("a", 1), ("b", 2)):
        (tmp_path / side).mkdir()
        write_checkpoint(tmp_path / side / "last.ckpt", last)
    size = (tmp_path / "a" / "last.ckpt").stat().st_size
    change = ArtifactChange("last.ckpt", size, size, "x", "y")
    (found,) = summarize_checkpoints([change], bytes(tmp_path / "a"), bytes(tmp_path / "b"))
    assert found.tensors is not None and "not compared" in found.tensors.line()


def _safetensors(path: Path, metadata: dict[str, str]) -> None:
    payload = struct.pack("<f", 1.0)
    header = {
        "__metadata__": metadata,
        "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, len(payload)]},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)


def test_metadata_changes_past_those_listed_are_counted(tmp_path: Path) -> None:
    count = MAX_CHANGES + 5
    _safetensors(tmp_path / "a.safetensors", {f"k{i}": "a" for i in range(count)})
    _safetensors(tmp_path / "b.safetensors", {f"k{i}": "b" for i in range(count)})
    diff = diff_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert len(diff.metadata) + diff.metadata_more == count
    summary = summarize(diff)
    assert summary.values_changed == count
    assert f"{count} other value(s) changed" in summary.line()
