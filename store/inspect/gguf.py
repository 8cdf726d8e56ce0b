"""Read a GGUF header (metadata keys and tensor shapes) from a bounded prefix."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from store.inspect.errors import InspectError

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_GGML_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    24: "I8",
    25: "I16",
    26: "I32",
    27: "I64",
    28: "F64",
    30: "BF16",
}
MAX_ITEMS = 50_000_000
TEMPLATE_KEY = "tokenizer.chat_template"
"""The default chat template; ``tokenizer.chat_template.<name>`` holds named ones (tool use,
RAG), which loaders such as llama-cpp-python offer and render alike."""
# ggml type -> (elements per block, bytes per block)
_BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
           8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
           13: (256, 176), 14: (256, 210), 15: (256, 292), 24: (1, 1), 25: (1, 2),
           26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2)}  # fmt: skip


class _Short(Exception):
    pass


@dataclass
class GgufHeader:
    version: int
    tensor_count: int
    kv_count: int
    metadata: dict[str, object] = field(default_factory=dict)
    tensors: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    complete: bool = True
    data_end: int | None = None
    templates: list[tuple[str, str | list[str]]] = field(default_factory=list)
    """Every chat template in the header, in file order, repeated keys included: (key, text,
    or the strings of an array)."""


def is_template_key(key: str) -> bool:
    """Whether a metadata key holds a chat template a loader may render."""
    return key == TEMPLATE_KEY or key.startswith(TEMPLATE_KEY + ".")


class _Cursor:
    def __init__(self, data: bytes, version: int) -> None:
        self.data, self.pos, self.version = data, 0, version

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise _Short
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> object:
        value: object = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def uint(self, fmt: str) -> int:
        return int(struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0])

    def count(self) -> int:
        return self.uint("<I" if self.version == 1 else "<Q")

    def string(self) -> str:
        return self.take(self.count()).decode("utf-8", "backslashreplace")

    def value(self, kind: int, *, strings: bool = False) -> object:
        """The value of type ``kind``; an array is told by its length only, but with
        ``strings`` an array of strings is kept (a chat template some writer split up)."""
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == 8:
            return self.string()
        if kind == 9:
            item_kind = self.uint("<I")
            length = self.count()
            if length > MAX_ITEMS:
                raise InspectError(f"GGUF array of {length} items is implausible")
            if item_kind in _SCALARS:
                self.take(length * struct.calcsize(_SCALARS[item_kind]))
            elif strings and item_kind == 8:
                return [self.string() for _ in range(length)]
            else:
                for _ in range(length):
                    self.value(item_kind)
            return f"<array of {length}>"
        raise InspectError(f"unknown GGUF value type {kind}")


def parse_gguf(prefix: bytes, file_size: int) -> GgufHeader:
    """Parse what ``prefix`` holds of a GGUF header; marks it incomplete when cut off."""
    if not prefix.startswith(MAGIC) or len(prefix) < 8:
        raise InspectError("not a GGUF file")
    version = int.from_bytes(prefix[4:8], "little")
    if version not in (1, 2, 3):
        raise InspectError(f"unsupported GGUF version {version}")
    cur = _Cursor(prefix, version)
    cur.pos = 8
    try:
        tensor_count, kv_count = cur.count(), cur.count()
    except _Short:
        raise InspectError("GGUF header cut short", truncated=True) from None
    header = GgufHeader(version, tensor_count, kv_count)
    ends: list[int | None] = []
    try:
        for _ in range(kv_count):
            key = cur.string()
            kind = cur.uint("<I")
            value = cur.value(kind, strings=is_template_key(key))
            if is_template_key(key) and isinstance(value, (str, list)):
                header.templates.append((key, value))
                if isinstance(value, list):
                    value = f"<array of {len(value)}>"
            header.metadata[key] = value
        for _ in range(tensor_count):
            name = cur.string()
            dims_count = cur.uint("<I")
            if dims_count > 8:
                raise InspectError(f"GGUF tensor {name!r} has {dims_count} dimensions")
            dims = tuple(cur.uint("<Q") for _ in range(dims_count))
            kind = cur.uint("<I")
            offset = cur.uint("<Q")
            header.tensors[name] = (_GGML_TYPES.get(kind, f"type{kind}"), dims)
            ends.append(_tensor_end(kind, dims, offset))
    except _Short:
        if len(prefix) >= file_size:
            raise InspectError("GGUF header cut short", truncated=True) from None
        header.complete = False
        return header
    alignment = header.metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = 32
    data_start = cur.pos + (-cur.pos % alignment)
    if ends and all(end is not None for end in ends):
        header.data_end = data_start + max(end for end in ends if end is not None)
        if header.data_end > file_size:
            raise InspectError(
                f"GGUF tensor data needs {header.data_end} bytes, file has {file_size}",
                truncated=True,
            )
    return header


def _tensor_end(kind: int, dims: tuple[int, ...], offset: int) -> int | None:
    block = _BLOCKS.get(kind)
    if block is None:
        return None
    elements, size = block
    return offset + -(-math.prod(dims) // elements) * size


def gguf_parameters(header: GgufHeader) -> int:
    return sum(math.prod(shape) for _, shape in header.tensors.values())
