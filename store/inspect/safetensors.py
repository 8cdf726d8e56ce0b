"""Read a safetensors header without touching tensor data.

Validation follows the reference implementation (huggingface/safetensors): an 8-byte
little-endian header length, a JSON object header of at most 100,000,000 bytes, known
dtypes, byte ranges matching shape x itemsize, and ranges that tile the data section
exactly.  A data section shorter than declared is reported as truncation, which is what a
half-copied ``model.safetensors`` looks like.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from store.inspect._io import BoundedFile
from store.inspect.errors import InspectError

MAX_HEADER = 100_000_000
METADATA_KEY = "__metadata__"

DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's dtype, shape and byte range relative to the data section."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    data_offset: int = 8
    file_size: int = 0


def parameter_count(header: SafetensorsHeader) -> int:
    """Total number of elements over all tensors."""
    return sum(info.numel for info in header.tensors.values())


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InspectError(f"duplicate key in header: {key!r}")
        result[key] = value
    return result


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(name: str, raw: object) -> TensorInfo:
    if not isinstance(raw, dict):
        raise InspectError(f"tensor {name!r}: entry is not an object")
    dtype = raw.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise InspectError(f"tensor {name!r}: unknown dtype {dtype!r}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise InspectError(f"tensor {name!r}: shape is not a list of non-negative integers")
    offsets = raw.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise InspectError(f"tensor {name!r}: data_offsets is not [start, end]")
    start, end = offsets
    if end < start:
        raise InspectError(f"tensor {name!r}: data_offsets end {end} before start {start}")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8:
        raise InspectError(f"tensor {name!r}: {dtype} x {shape} is not a whole number of bytes")
    if bits // 8 != end - start:
        raise InspectError(
            f"tensor {name!r}: {dtype} {shape} needs {bits // 8} bytes, offsets give {end - start}"
        )
    return TensorInfo(dtype, tuple(shape), start, end)


def parse_header(prefix: bytes, file_size: int) -> SafetensorsHeader:
    """Validate a header from the first bytes of a file of ``file_size`` bytes.

    ``prefix`` must hold at least the 8-byte length and the whole JSON header.
    """
    if file_size < 8 or len(prefix) < 8:
        raise InspectError("shorter than the 8-byte header length", truncated=True)
    length = int.from_bytes(prefix[:8], "little")
    if length > MAX_HEADER:
        raise InspectError(f"header length {length} exceeds the {MAX_HEADER}-byte limit")
    if 8 + length > file_size:
        raise InspectError(
            f"header length {length} runs past end of file ({file_size} bytes)", truncated=True
        )
    if len(prefix) < 8 + length:
        raise InspectError("header not fully read", truncated=True)
    raw = prefix[8 : 8 + length]
    if not raw.startswith(b"{"):
        raise InspectError("header does not start with '{'")
    try:
        parsed = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise InspectError("header is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise InspectError(f"header is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InspectError("header is not a JSON object")
    metadata: dict[str, str] = {}
    raw_meta = parsed.pop(METADATA_KEY, None)
    if raw_meta is not None:
        if not isinstance(raw_meta, dict) or not all(isinstance(v, str) for v in raw_meta.values()):
            raise InspectError("__metadata__ is not an object of strings")
        metadata = dict(raw_meta)
    tensors = {name: _tensor(name, value) for name, value in parsed.items()}
    data_size = file_size - 8 - length
    cursor = 0
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].start, item[1].end)):
        if info.start != cursor:
            gap = "overlaps the previous tensor" if info.start < cursor else "leaves a gap"
            raise InspectError(f"tensor {name!r}: data_offsets start {info.start} {gap}")
        cursor = info.end
    if cursor > data_size:
        raise InspectError(
            f"data section is {data_size} bytes, tensors declare {cursor}", truncated=True
        )
    if cursor < data_size:
        raise InspectError(f"data section is {data_size} bytes, tensors cover only {cursor}")
    return SafetensorsHeader(tensors, metadata, 8 + length, file_size)


def read_header_from(handle: BoundedFile) -> SafetensorsHeader:
    """Read and validate the header through an already-open ``BoundedFile``."""
    head = handle.read_at(0, 8)
    if len(head) < 8:
        raise InspectError("shorter than the 8-byte header length", truncated=True)
    length = int.from_bytes(head, "little")
    if length > MAX_HEADER:
        raise InspectError(f"header length {length} exceeds the {MAX_HEADER}-byte limit")
    if 8 + length > handle.size:
        raise InspectError(
            f"header length {length} runs past end of file ({handle.size} bytes)", truncated=True
        )
    body = handle.read_at(8, length)
    return parse_header(head + body, handle.size)


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """The validated header of the safetensors file at ``path``; raises ``InspectError``."""
    with BoundedFile(path) as handle:
        return read_header_from(handle)
