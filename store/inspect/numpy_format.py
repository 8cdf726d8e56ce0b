"""Parse ``.npy`` headers without numpy, so an object array's pickle is never loaded."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

from store.inspect.errors import InspectError

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20

_SIMPLE = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)(\[\w+\])?$")


@dataclass(frozen=True)
class NpyHeader:
    version: tuple[int, int]
    descr: str
    fortran_order: bool
    shape: tuple[int, ...]
    itemsize: int | None
    has_object: bool
    data_offset: int

    @property
    def data_size(self) -> int | None:
        return None if self.itemsize is None else math.prod(self.shape) * self.itemsize


def _descr_size(descr: object) -> tuple[int | None, bool]:
    """(bytes per element, contains Python objects) of a numpy ``descr``."""
    if isinstance(descr, str):
        match = _SIMPLE.match(descr)
        if not match:
            return None, False
        kind, digits = match.group(1), match.group(2)
        if kind == "O":
            return 8, True
        if kind == "b" and not digits:
            return 1, False
        if not digits:
            return None, False
        return int(digits) * (4 if kind == "U" else 1), False
    if isinstance(descr, list):
        total, has_object = 0, False
        for field in descr:
            if not isinstance(field, tuple) or len(field) < 2:
                return None, False
            size, obj = _descr_size(field[1])
            if size is None:
                return None, obj or has_object
            if len(field) > 2:
                sub = field[2]
                if isinstance(sub, int):
                    sub = (sub,)
                if not isinstance(sub, tuple) or not all(isinstance(d, int) for d in sub):
                    return None, False
                size *= math.prod(sub)
            total += size
            has_object = has_object or obj
        return total, has_object
    return None, False


def parse_npy_header(prefix: bytes) -> NpyHeader:
    """Parse the header at the start of ``prefix``; raises ``InspectError``."""
    if not prefix.startswith(MAGIC):
        raise InspectError("not an .npy file (magic missing)")
    if len(prefix) < 10:
        raise InspectError("npy header cut short", truncated=True)
    major, minor = prefix[6], prefix[7]
    if major == 1:
        length, start = int.from_bytes(prefix[8:10], "little"), 10
    elif major in (2, 3):
        if len(prefix) < 12:
            raise InspectError("npy header cut short", truncated=True)
        length, start = int.from_bytes(prefix[8:12], "little"), 12
    else:
        raise InspectError(f"unsupported npy version {major}.{minor}")
    if length > MAX_HEADER:
        raise InspectError(f"npy header of {length} bytes is implausibly long")
    raw = prefix[start : start + length]
    if len(raw) < length:
        raise InspectError("npy header cut short", truncated=True)
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        fields = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeError):
        raise InspectError("npy header is not a Python literal") from None
    if not isinstance(fields, dict) or not {"descr", "fortran_order", "shape"} <= fields.keys():
        raise InspectError("npy header lacks descr/fortran_order/shape")
    shape = fields["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InspectError("npy shape is not a tuple of non-negative integers")
    itemsize, has_object = _descr_size(fields["descr"])
    return NpyHeader(
        (major, minor),
        str(fields["descr"]),
        bool(fields["fortran_order"]),
        tuple(shape),
        None if has_object else itemsize,
        has_object,
        start + length,
    )
