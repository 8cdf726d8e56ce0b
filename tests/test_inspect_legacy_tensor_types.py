"""The legacy tensor types (``torch.FloatTensor``, ``torch.cuda.HalfTensor``) are what
torch's oldest (tar) format names as each tensor's type, and what old pickles keep as
values (a default tensor type).  torch's own ``weights_only`` loader allows the dense
ones (``torch._tensor_classes``): a file naming them was "unknown" however plain."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from store.inspect import inspect_file
from store.inspect.policy import classify
from tests.test_inspect_loader_gaps import _GOOD, _tar


def _legacy_tar(tensor_type: bytes) -> bytes:
    """A tar as torch's ``legacy_load`` reads it: one float storage of 3 elements, one
    tensor on it whose pickle names ``tensor_type``, and the object pickle."""
    storage = b"\x80\x02(K\x00X\x03\x00\x00\x00cpuctorch\nFloatStorage\nt."
    storages = b"\x80\x02K\x01." + storage + struct.pack("<q", 3) + struct.pack("<3f", 1, 2, 3)
    tensor = b"\x80\x02(K\x01K\x00c" + tensor_type + b"\nt."
    raw = struct.pack("<i", 1) + bytes(4) + struct.pack("<qqq", 3, 1, 0)
    tensors = b"\x80\x02K\x01." + tensor + raw
    return bytes(
        _tar([("storages", storages + b"\x80\x02]."), ("tensors", tensors), ("pickle", _GOOD)])
    )


@pytest.mark.parametrize("tensor_type", [b"torch\nFloatTensor", b"torch.cuda\nHalfTensor"])
def test_a_legacy_tar_naming_its_tensor_types_is_safe(tmp_path: Path, tensor_type: bytes) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_legacy_tar(tensor_type))
    found = inspect_file(path)
    assert (found.format, found.verdict) == ("torch-legacy", "safe"), found.reasons


def test_a_pickle_keeping_a_tensor_type_or_calling_one_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "args.pkl"
    # {"tensor_type": torch.cuda.FloatTensor, "t": torch.LongTensor((2,))}
    path.write_bytes(
        b"\x80\x02}(X\x0b\x00\x00\x00tensor_typectorch.cuda\nFloatTensor\n"
        b"X\x01\x00\x00\x00tctorch\nLongTensor\nK\x02\x85\x85Ru."
    )
    found = inspect_file(path)
    assert found.verdict == "safe", found.reasons


def test_the_sparse_and_made_up_tensor_types_stay_unknown(tmp_path: Path) -> None:
    assert classify("torch.sparse", "FloatTensor") == "unknown"
    assert classify("torch.cuda.sparse", "FloatTensor") == "unknown"
    assert classify("torch", "ComplexFloatTensor") == "unknown"  # no such class
    path = tmp_path / "model.pt"
    path.write_bytes(_legacy_tar(b"torch.sparse\nFloatTensor"))
    assert inspect_file(path).verdict == "unknown"
