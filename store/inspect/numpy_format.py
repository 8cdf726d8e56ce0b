"""Parse ``.npy`` headers without numpy, so an object array's pickle is never loaded."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

from store.inspect.errors import InspectError, OverBudgetError

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
    understood: bool = True
    """False when the dtype's spelling is not one this reader can size (treat as suspect)."""

    @property
    def data_size(self) -> int | None:
        return None if self.itemsize is None else math.prod(self.shape) * self.itemsize


_OBJECT_WORDS = re.compile(r"(^|[^a-z])(o|object|object_)\d*($|[^a-z])", re.IGNORECASE)


def _may_hold_objects(text: str) -> bool:
    """Whether a dtype string could mean Python objects in any spelling numpy accepts
    (``'O'``, ``'|O8'``, ``'object'``, ``'i4,O'``, ...)."""
    return bool(_OBJECT_WORDS.search(text.replace(" ", "")))


def _descr_size(descr: object, depth: int = 0) -> tuple[int | None, bool]:
    """(bytes per element, may contain Python objects) of a numpy ``descr``; the size is
    None when the spelling is not one this reader understands."""
    if depth > 16:
        return None, True
    if isinstance(descr, str):
        match = _SIMPLE.match(descr)
        if not match:
            return None, _may_hold_objects(descr)
        kind, digits = match.group(1), match.group(2)
        if kind == "O":
            return 8, True
        if kind == "b" and not digits:
            return 1, False
        if not digits:
            return None, False
        return int(digits) * (4 if kind == "U" else 1), False
    if isinstance(descr, tuple) and len(descr) == 2:  # a sub-array: (base, shape)
        size, obj = _descr_size(descr[0], depth + 1)
        shape = descr[1] if isinstance(descr[1], tuple) else (descr[1],)
        if size is None or not all(isinstance(d, int) and d >= 0 for d in shape):
            return None, obj
        return size * math.prod(shape), obj
    if isinstance(descr, list):
        total: int | None = 0
        has_object = False
        for field in descr:
            if not isinstance(field, tuple) or len(field) < 2:
                return None, True
            size, obj = _descr_size(
                field[1] if len(field) == 2 else (field[1], field[2]), depth + 1
            )
            has_object = has_object or obj
            total = None if size is None or total is None else total + size
        return total, has_object
    return None, True


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
        # numpy.load refuses it unless allow_pickle=True, which lifts the limit
        raise OverBudgetError(f"npy header of {length} bytes is over the {MAX_HEADER} read here")
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
        itemsize is not None or has_object,
    )
