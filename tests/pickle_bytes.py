"""Pickle opcodes built by hand, for tests that must never unpickle what they build: a
string, an int, and a torch float32 [4] tensor as ``torch.save`` writes it."""

from __future__ import annotations

import struct

ORDERED_DICT = b"ccollections\nOrderedDict\n)R"
"""``collections.OrderedDict()``, built."""


def text(value: str) -> bytes:
    """BINUNICODE of ``value``."""
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def integer(value: int) -> bytes:
    """BININT of ``value``."""
    return b"J" + struct.pack("<i", value)


def float_tensor() -> bytes:
    """``torch._utils._rebuild_tensor_v2`` of a float32 [4] tensor in storage ``0``."""
    pid = b"(" + text("storage") + b"ctorch\nFloatStorage\n" + text("0") + text("cpu")
    pid += integer(4) + b"tQ"
    args = b"(" + pid + integer(0) + b"(" + integer(4) + b"t(" + integer(1) + b"t\x89"
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + ORDERED_DICT + b"tR"
