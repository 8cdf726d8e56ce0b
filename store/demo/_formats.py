"""Byte-exact writers for the binary formats the demo tree needs, without their libraries.

The demo must not depend on torch, safetensors, tensorboard or pyarrow, yet its files must be
valid enough for artlens' readers (and the real tools) to open.  Everything here only writes.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from store.frameworks.tfevents import masked_crc32c

# --- TensorBoard event files ------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str = "", summary: bytes = b"") -> bytes:
    """An ``Event`` protobuf: wall_time (1), step (2), file_version (3), summary (5)."""
    out = b"\x09" + struct.pack("<d", wall_time)
    if step:
        out += b"\x10" + _varint(step)
    if file_version:
        out += _length_delimited(3, file_version.encode())
    if summary:
        out += _length_delimited(5, summary)
    return out


def _scalar_summary(scalars: Mapping[str, float]) -> bytes:
    """A ``Summary`` of ``simple_value`` entries, the form torch's SummaryWriter writes."""
    out = b""
    for tag, value in scalars.items():
        entry = _length_delimited(1, tag.encode()) + b"\x15" + struct.pack("<f", value)
        out += _length_delimited(1, entry)
    return out


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord frame: length, masked CRC of the length, payload, masked CRC of payload."""
    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + payload
        + struct.pack("<I", masked_crc32c(payload))
    )


def event_file(start: float, rows: Iterable[tuple[float, int, Mapping[str, float]]]) -> bytes:
    """A whole ``events.out.tfevents`` file: the version record, then one event per row."""
    out = [tfrecord(_event(start, 0, file_version="brain.Event:2"))]
    for wall_time, step, scalars in rows:
        out.append(tfrecord(_event(wall_time, step, summary=_scalar_summary(scalars))))
    return b"".join(out)


# --- Tensors, safetensors ---------------------------------------------------------------


@dataclass(frozen=True)
class Tensor:
    """A float32 tensor held as its raw little-endian bytes."""

    shape: tuple[int, ...]
    data: bytes

    @classmethod
    def of(cls, shape: Sequence[int], values: Sequence[float]) -> Tensor:
        return cls(tuple(shape), struct.pack(f"<{len(values)}f", *values))

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


def safetensors(tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> bytes:
    """A ``.safetensors`` file: u64 header length, JSON header padded to 8 bytes, data."""
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    offset = 0
    for name, tensor in tensors.items():
        end = offset + len(tensor.data)
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, end]}
        offset = end
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    body = b"".join(tensor.data for tensor in tensors.values())
    return struct.pack("<Q", len(header_bytes)) + header_bytes + body


# --- Pickle assembled from opcodes --------------------------------------------------------


@dataclass(frozen=True)
class Global:
    """A reference to ``module.name``, written as a GLOBAL opcode (never imported here)."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """``func(*args)`` as pickle's REDUCE: what ``__reduce__`` would have produced."""

    func: Global
    args: tuple[object, ...]


@dataclass(frozen=True)
class NewObject:
    """``cls.__new__(cls)`` then ``__setstate__(state)``: how dataclass instances pickle."""

    cls: Global
    state: Mapping[str, object]


@dataclass(frozen=True)
class OrderedDictOf:
    """An ``collections.OrderedDict``, the container torch state dicts use."""

    items: Mapping[str, object]


@dataclass(frozen=True)
class TensorRef:
    """A tensor stored in ``archive/data/<key>`` of a torch zip, referenced by persistent id."""

    key: str
    tensor: Tensor


def _pickle_str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _pickle_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _pickle_global(ref: Global) -> bytes:
    return b"c" + ref.module.encode() + b"\n" + ref.name.encode() + b"\n"


def _pickle_items(pairs: Iterable[tuple[object, object]]) -> bytes:
    body = b"".join(_pickle_value(k) + _pickle_value(v) for k, v in pairs)
    return b"(" + body + b"u" if body else b""


def _pickle_value(value: object) -> bytes:
    if value is None:
        return b"N"
    if value is True:
        return b"\x88"
    if value is False:
        return b"\x89"
    if isinstance(value, int):
        return _pickle_int(value)
    if isinstance(value, float):
        return b"G" + struct.pack(">d", value)
    if isinstance(value, str):
        return _pickle_str(value)
    if isinstance(value, Global):
        return _pickle_global(value)
    if isinstance(value, tuple):
        return b"(" + b"".join(_pickle_value(v) for v in value) + b"t"
    if isinstance(value, list):
        body = b"".join(_pickle_value(v) for v in value)
        return b"]" + (b"(" + body + b"e" if body else b"")
    if isinstance(value, dict):
        return b"}" + _pickle_items(value.items())
    if isinstance(value, OrderedDictOf):
        head = _pickle_global(Global("collections", "OrderedDict")) + b")R"
        return head + _pickle_items(value.items.items())
    if isinstance(value, Call):
        return _pickle_global(value.func) + _pickle_value(value.args) + b"R"
    if isinstance(value, NewObject):
        state = b"}" + _pickle_items(value.state.items())
        return _pickle_global(value.cls) + b")\x81" + state + b"b"
    if isinstance(value, TensorRef):
        return _pickle_tensor(value)
    raise TypeError(f"cannot assemble a pickle of {type(value).__name__}")


def _pickle_tensor(ref: TensorRef) -> bytes:
    """The opcodes ``torch.save`` emits for a contiguous float32 tensor."""
    shape = ref.tensor.shape
    stride = []
    running = 1
    for dim in reversed(shape):
        stride.append(running)
        running *= dim
    storage_id = ("storage", Global("torch", "FloatStorage"), ref.key, "cpu", ref.tensor.numel)
    return (
        _pickle_global(Global("torch._utils", "_rebuild_tensor_v2"))
        + b"("
        + _pickle_value(storage_id)
        + b"Q"  # BINPERSID: the storage lives outside the pickle, in archive/data/<key>
        + _pickle_int(0)
        + _pickle_value(tuple(shape))
        + _pickle_value(tuple(reversed(stride)))
        + b"\x89"
        + _pickle_value(OrderedDictOf({}))
        + b"tR"
    )


def pickle_bytes(value: object) -> bytes:
    """A protocol-2 pickle of ``value`` assembled from opcodes, so no class need be importable."""
    return b"\x80\x02" + _pickle_value(value) + b"."


def tensor_refs(value: object) -> list[TensorRef]:
    """Every tensor referenced inside ``value``, in pickling order."""
    found: list[TensorRef] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, TensorRef):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed([v for pair in item.items() for v in pair]))
        elif isinstance(item, OrderedDictOf):
            stack.extend(reversed(list(item.items.values())))
        elif isinstance(item, NewObject):
            stack.extend(reversed(list(item.state.values())))
        elif isinstance(item, Call):
            stack.extend(reversed(item.args))
    return found


def _aligned_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Store ``data`` so it starts on a 64-byte boundary, as torch's zip writer pads it."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    assert archive.fp is not None
    offset = archive.fp.tell() + 30 + len(name.encode()) + 4
    pad = -offset % 64
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    archive.writestr(info, data)


def torch_zip(value: object, *, serialization_id: str) -> bytes:
    """A file in ``torch.save``'s zip format: ``archive/data.pkl`` plus one entry per storage."""
    refs = tensor_refs(value)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        _aligned_entry(archive, "archive/data.pkl", pickle_bytes(value))
        _aligned_entry(archive, "archive/byteorder", b"little")
        for ref in refs:
            _aligned_entry(archive, f"archive/data/{ref.key}", ref.tensor.data)
        _aligned_entry(archive, "archive/version", b"3\n")
        _aligned_entry(archive, "archive/.data/serialization_id", serialization_id.encode())
    return buffer.getvalue()


def dangerous_pickle(command: str) -> bytes:
    """A pickle that would run ``command`` through ``posix.system`` if anyone loaded it."""
    return (
        b"\x80\x02"
        + _pickle_global(Global("posix", "system"))
        + _pickle_str(command)
        + b"\x85R."  # TUPLE1, REDUCE, STOP
    )


# --- Small images and stubs ---------------------------------------------------------------


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png(width: int, height: int, pixel: Sequence[Sequence[tuple[int, int, int]]]) -> bytes:
    """An 8-bit RGB PNG from rows of ``(r, g, b)`` pixels."""
    raw = b"".join(b"\x00" + bytes(c for rgb in row for c in rgb) for row in pixel)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


def parquet_stub(payload: bytes) -> bytes:
    """Bytes framed like Parquet (``PAR1`` at both ends) without a real footer."""
    return b"PAR1" + payload + struct.pack("<I", 0) + b"PAR1"


WANDB_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
"""The 7-byte header W&B's transaction log (``run-<id>.wandb``) starts with."""
