"""Torch zip checkpoints (``torch.save``, Lightning ``.ckpt``) mapped tensor by tensor, statically.

``<archive>/data.pkl`` is walked opcode by opcode with the scanner's symbolic walker
(``store.inspect.pickle_scan``): nothing is unpickled.  Each ``_rebuild_tensor_v2`` call
gives a tensor's storage (its persistent id names the storage class, or a dtype, and the
key of ``<archive>/data/<key>``), offset, shape and stride; its dotted name is the path of
dict keys and list indexes above it (``state_dict.net.0.weight``,
``optimizer_states.0.state.0.exp_avg``).  Storages must be STORED entries, as torch
writes them, so a tensor is a byte range of the file and ``store.diff.tensors`` compares
it like a safetensors tensor.  A checkpoint the scanner calls dangerous is refused, and
so is anything this reader cannot map exactly: a wrong answer is worse than none.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field

import xxhash

from store.diff._io import DiffError, FileRef, RegularFile, ref_basename
from store.diff.binary import diff_binary
from store.diff.structured import Change
from store.diff.tensors import ITEMSIZE, FetchBudget, TensorDiff, TensorRef, compare_tensors
from store.inspect import inspect_at, inspect_file
from store.inspect.pickle_scan import PARAMETER_REBUILDS, Call, Global, Persistent
from store.inspect.torch_zip import TorchZipError, read_torch_zip_at
from store.inspect.torch_zip import read_torch_zip as read_archive

MAX_NODES = 2_000_000
"""Objects of the pickle's symbolic tree visited; a hostile DAG stops here."""
MAX_DEPTH = 64
MAX_VALUES = 20_000
"""Non-tensor values (epoch, hyper-parameters) kept for the metadata diff."""
MAX_TEXT = 500
"""Characters of a string value kept whole; a longer one keeps its head, length and hash."""
_TORCH_ZIP_MAGIC = b"PK\x03\x04"

_STORAGE_DTYPES = {
    "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16",
    "BFloat16Storage": "BF16", "LongStorage": "I64", "IntStorage": "I32",
    "ShortStorage": "I16", "CharStorage": "I8", "ByteStorage": "U8", "BoolStorage": "BOOL",
    "ComplexFloatStorage": "C64", "ComplexDoubleStorage": "C128",
    "Float8_e4m3fnStorage": "F8_E4M3", "Float8_e5m2Storage": "F8_E5M2",
    "Float8_e4m3fnuzStorage": "F8_E4M3FNUZ", "Float8_e5m2fnuzStorage": "F8_E5M2FNUZ",
    "UInt16Storage": "U16", "UInt32Storage": "U32", "UInt64Storage": "U64",
}  # fmt: skip
_TORCH_DTYPES = {
    "float32": "F32", "float": "F32", "float64": "F64", "double": "F64", "float16": "F16",
    "half": "F16", "bfloat16": "BF16", "int64": "I64", "long": "I64", "int32": "I32",
    "int": "I32", "int16": "I16", "short": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
    "complex64": "C64", "cfloat": "C64", "complex128": "C128", "cdouble": "C128",
    "complex32": "C32", "chalf": "C32", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
    "float8_e4m3fnuz": "F8_E4M3FNUZ", "float8_e5m2fnuz": "F8_E5M2FNUZ",
    "float8_e8m0fnu": "F8_E8M0", "uint16": "U16", "uint32": "U32", "uint64": "U64",
}  # fmt: skip
_REBUILD = {"torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2"}
_REBUILD_V3 = "torch._utils._rebuild_tensor_v3"
_STORAGE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class TorchCheckpoint:
    """The tensors of one torch zip, where their bytes are, and its plain values."""

    tensors: dict[str, TensorRef] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    verdict: str = "unknown"
    values_cut: bool = False
    """More than ``MAX_VALUES`` values: the rest were not kept (not compared)."""


def looks_like_torch_zip(head: bytes) -> bool:
    """True when a file's first zip entry is a torch archive's ``data.pkl``."""
    if not head.startswith(_TORCH_ZIP_MAGIC) or len(head) < 30:
        return False
    name_len = struct.unpack_from("<H", head, 26)[0]
    name = head[30 : 30 + name_len]
    return len(name) == name_len and (name == b"data.pkl" or name.endswith(b"/data.pkl"))


class _Unmappable(Exception):
    pass


def _empty_dict(value: object) -> bool:
    """An empty dict or ``OrderedDict()``, as ``torch.save`` writes a tensor's hooks."""
    if isinstance(value, dict):
        return not value
    return (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and value.func.dotted in ("collections.OrderedDict", "builtins.dict")
        and value.args in ((), None)
        and not value.items
        and value.state is None
    )


def _under(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else part


def _dtype_of(storage_type: object, v3_dtype: object) -> str:
    if isinstance(storage_type, Global) and storage_type.module == "torch":
        if storage_type.name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[storage_type.name]
        if storage_type.name in _TORCH_DTYPES:
            return _TORCH_DTYPES[storage_type.name]
        if storage_type.name == "UntypedStorage" and isinstance(v3_dtype, Global):
            return _dtype_of(v3_dtype, None)
        raise _Unmappable(f"storage type torch.{storage_type.name} is not mapped")
    raise _Unmappable("a storage names no torch storage type")


def _ints(value: object) -> tuple[int, ...] | None:
    if isinstance(value, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        return tuple(value)
    if (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and value.func.dotted == "torch.Size"
        and isinstance(value.args, tuple)
        and value.args
    ):
        return _ints(value.args[0])
    return None


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _is_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = _contiguous_strides(shape)
    return all(s == e for d, s, e in zip(shape, stride, expected, strict=True) if d != 1)


class _Mapper:
    """Turns the symbolic tree of ``data.pkl`` into named tensors and plain values."""

    def __init__(self, storages: dict[str, tuple[int, int]]) -> None:
        self.storages = storages
        """Storage key -> (absolute byte offset, byte length) in the file."""
        self.result = TorchCheckpoint()
        self.nodes = 0
        self._seen: dict[int, str] = {}
        self._named: dict[str, int] = {}
        """A name two values took -> the last number given to a later one."""

    def walk(self, value: object, prefix: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Unmappable(f"more than {MAX_NODES} objects in data.pkl")
        if depth > MAX_DEPTH:
            raise _Unmappable(f"data.pkl nests deeper than {MAX_DEPTH} levels at {prefix!r}")
        if isinstance(value, Call) and isinstance(value.func, Global):
            dotted = value.func.dotted
            args = value.args if isinstance(value.args, tuple) else ()
            if dotted in PARAMETER_REBUILDS and args:
                self.walk(args[0], prefix, depth + 1)
                self.parameter(prefix or "<tensor>", dotted, args, depth)
                return
            if dotted in _REBUILD or dotted == _REBUILD_V3:
                self.tensor(prefix or "<tensor>", dotted, args)
                self.tensor_extras(prefix or "<tensor>", dotted, args, depth)
                return
            if "_rebuild" in dotted and dotted.startswith("torch."):
                raise _Unmappable(f"tensor {prefix!r} is rebuilt by {dotted}, which is not mapped")
        if isinstance(value, (dict, list, tuple, Call)):
            if id(value) in self._seen:
                self.value(prefix, f"<same object as {self._seen[id(value)] or '<root>'}>")
                return
            self._seen[id(value)] = prefix
        if isinstance(value, (dict, list, tuple, set, frozenset)) and not value:
            self.value(prefix, f"<empty {type(value).__name__}>")  # not the same as absent
        elif isinstance(value, dict):
            self.items(list(value.items()), prefix, depth)
        elif isinstance(value, (list, tuple)):
            self.items(list(enumerate(value)), prefix, depth)
        elif isinstance(value, (set, frozenset)):
            self.items(list(enumerate(sorted(value, key=repr))), prefix, depth)
        elif isinstance(value, Call):
            self.call(value, prefix, depth)
        elif isinstance(value, Persistent):
            raise _Unmappable(f"a storage outside a tensor at {prefix!r}")
        elif value is None or isinstance(value, (bool, int, float)):
            self.value(prefix, value)
        elif isinstance(value, str):
            if len(value) > MAX_TEXT:  # two long strings that differ past the head still differ
                digest = xxhash.xxh3_64_hexdigest(value.encode("utf-8", "surrogatepass"))
                value = f"{value[:MAX_TEXT]}… ({len(value)} characters, xxh3 {digest})"
            self.value(prefix, value)
        elif isinstance(value, (bytes, bytearray)):
            self.value(prefix, f"<{len(value)} bytes, xxh3 {xxhash.xxh3_64_hexdigest(value)}>")
        elif isinstance(value, Global):
            self.value(prefix, f"<{value.dotted}>")
        else:
            self.value(prefix, "<unknown>")

    def call(self, value: Call, prefix: str, depth: int) -> None:
        """An object the pickle builds: every part that decides what loading it gives is
        compared (what is called, its arguments, its items and the state BUILD sets), so
        two objects differing in any of them never compare equal.  A dict or OrderedDict
        is its items alone, and an empty one is a value (not the same as absent)."""
        func = value.func.dotted if isinstance(value.func, Global) else "?"
        args = value.args if isinstance(value.args, tuple) else (value.args,)
        state = value.state
        plain = func in ("collections.OrderedDict", "builtins.dict")
        built = value.appended or value.added
        if plain and not value.items and not args and state is None and not built:
            self.value(prefix, "<empty dict>")
            return
        if not plain:
            self.value(prefix, f"<{func}>")
        if args:
            self.walk(args, _under(prefix, "<args>"), depth + 1)
        if value.appended:  # a list subclass's items, as APPENDS gives them
            self.walk(tuple(value.appended), _under(prefix, "<items>"), depth + 1)
        if value.added:  # a set subclass's items: in no order, as a set's
            members = sorted(value.added, key=repr)
            self.walk(tuple(members), _under(prefix, "<members>"), depth + 1)
        if value.items:
            self.items(list(value.items.items()), prefix, depth)
            if state is not None:  # the attributes of a dict subclass (a state_dict's _metadata)
                self.walk(state, _under(prefix, "<state>"), depth + 1)
        elif isinstance(state, dict):
            self.items(list(state.items()), prefix, depth)
        elif state is not None:  # a tuple or list state: a numpy array's bytes, __slots__
            self.walk(state, _under(prefix, "<state>"), depth + 1)

    def parameter(self, name: str, dotted: str, args: tuple[object, ...], depth: int) -> None:
        """What loading a Parameter sets beyond its tensor: that it is a Parameter and its
        ``requires_grad`` (kept even when True, so that a Parameter never reads as the
        plain tensor it wraps), any backward hooks and a subclass's state."""
        grad = args[1] if len(args) > 1 else "<missing>"
        self.walk(grad, f"{name}.<Parameter requires_grad>", depth + 1)
        if len(args) > 2 and not _empty_dict(args[2]):
            self.walk(args[2], f"{name}.<Parameter backward_hooks>", depth + 1)
        if dotted.endswith("_with_state") and len(args) > 3 and args[3] is not None:
            self.walk(args[3], f"{name}.<Parameter state>", depth + 1)

    def tensor_extras(self, name: str, dotted: str, args: tuple[object, ...], depth: int) -> None:
        """A plain tensor's device, ``requires_grad``, backward hooks and metadata, where
        they are not the defaults ``torch.save`` writes on the CPU (``cpu``, False, an
        empty dict, none): a tensor saved with ``requires_grad=True``, or from a GPU, loads
        as another tensor than one saved without."""
        pid = args[0].pid if args and isinstance(args[0], Persistent) else None
        location = pid[3] if isinstance(pid, tuple) and len(pid) > 3 else "cpu"
        if location != "cpu":
            self.walk(location, f"{name}.<device>", depth + 1)
        if dotted == "torch._utils._rebuild_tensor":
            return  # (storage, offset, size, stride) alone
        grad = args[4] if len(args) > 4 else False
        if grad is not False:
            self.walk(grad, f"{name}.<requires_grad>", depth + 1)
        if len(args) > 5 and not _empty_dict(args[5]):
            self.walk(args[5], f"{name}.<backward_hooks>", depth + 1)
        at = 7 if dotted == _REBUILD_V3 else 6
        if len(args) > at and args[at] is not None and not _empty_dict(args[at]):
            self.walk(args[at], f"{name}.<metadata>", depth + 1)

    def items(self, pairs: list[tuple[object, object]], prefix: str, depth: int) -> None:
        for key, item in pairs:
            if isinstance(key, (str, int, float)) and not isinstance(key, bool):
                name = f"{prefix}.{key}" if prefix else str(key)
            else:
                name = f"{prefix}.<{type(key).__name__}>" if prefix else f"<{type(key).__name__}>"
            self.walk(item, name, depth + 1)

    def value(self, name: str, value: object) -> None:
        if len(self.result.values) >= MAX_VALUES:
            self.result.values_cut = True
            return
        name = name or "<root>"
        if name in self.result.values:
            # two values one name (key "a.b" beside a -> b, key 0 beside "0"): each is
            # kept, the later ones as "name (#2)"..., never dropped unseen
            number = self._named.get(name, 1)
            while f"{name} (#{number})" in self.result.values or number == 1:
                number += 1
            self._named[name] = number
            name = f"{name} (#{number})"
        self.result.values[name] = value

    def tensor(self, name: str, dotted: str, args: tuple[object, ...]) -> None:
        if name in self.result.tensors:
            raise _Unmappable(f"two tensors are named {name!r}")
        if len(args) < 4 or not isinstance(args[0], Persistent):
            raise _Unmappable(f"tensor {name!r}: {dotted} arguments are not a storage and a layout")
        pid = args[0].pid
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise _Unmappable(f"tensor {name!r}: unexpected storage id")
        dtype = _dtype_of(pid[1], args[6] if dotted == _REBUILD_V3 and len(args) > 6 else None)
        key = pid[2]
        if not isinstance(key, str) or key not in self.storages:
            raise _Unmappable(f"tensor {name!r}: storage data/{key} is missing")
        offset, shape, stride = args[1], _ints(args[2]), _ints(args[3])
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise _Unmappable(f"tensor {name!r}: storage offset is not a count")
        if shape is None or stride is None or len(shape) != len(stride):
            raise _Unmappable(f"tensor {name!r}: shape and stride do not match")
        itemsize = ITEMSIZE[dtype]
        start, length = self.storages[key]
        numel = math.prod(shape)
        last = offset + sum((d - 1) * s for d, s in zip(shape, stride, strict=True)) if numel else 0
        if numel and (last + 1) * itemsize > length:
            raise _Unmappable(
                f"tensor {name!r}: {dtype} {list(shape)} at offset {offset} runs past its "
                f"storage ({length} bytes)"
            )
        first = start + offset * itemsize
        if not numel or _is_contiguous(shape, stride):
            self.result.tensors[name] = TensorRef(dtype, shape, first, numel * itemsize)
        else:
            span = (first, start + (last + 1) * itemsize)
            self.result.tensors[name] = TensorRef(
                dtype, shape, first, numel * itemsize, stride, span
            )


def _read_checkpoint(path: FileRef, handle: RegularFile) -> TorchCheckpoint:
    shown = ref_basename(path)
    inspection = inspect_at(*path) if isinstance(path, tuple) else inspect_file(path)
    if inspection.verdict == "dangerous":
        found = [r for r in inspection.reasons if "dangerous" in r] or list(inspection.reasons)
        reason = found[0] if found else "it would import code"
        raise DiffError(f"{shown}: refused: the scan calls it dangerous ({reason})")
    if inspection.format != "torch-zip":
        raise DiffError(f"{shown}: not a torch zip checkpoint ({inspection.format})")
    try:
        return _map(handle, inspection.verdict)
    except _Unmappable as exc:
        raise DiffError(f"{shown}: cannot be mapped: {exc}") from None
    except OSError as exc:
        raise DiffError(f"{shown}: {exc.strerror or type(exc).__name__}") from None
    except Exception as exc:  # zipfile and zlib raise many types on hostile archives
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DiffError(f"{shown}: cannot be mapped: {message}") from None


def _map(handle: RegularFile, verdict: str) -> TorchCheckpoint:
    try:
        # a local file is read by its descriptor; any other root's through its reader
        archive = read_archive(handle.fd) if handle.fd >= 0 else read_torch_zip_at(handle.reader)
        if archive.big_endian:
            raise _Unmappable("storages are big-endian")
        storages = {
            key: archive.storage_span(key)
            for key in archive.storage_keys()
            if _STORAGE_KEY.match(key)
        }
    except TorchZipError as exc:
        raise _Unmappable(str(exc)) from None
    scan = archive.scan
    if scan.verdict == "dangerous":
        raise _Unmappable("data.pkl imports code")  # the scanner said so on its own reading
    if scan.error is not None or not scan.objects:
        raise _Unmappable(f"data.pkl does not parse: {scan.error or 'empty'}")
    mapper = _Mapper(storages)
    mapper.walk(scan.objects[0], "", 0)
    mapper.result.verdict = verdict
    return mapper.result


def read_torch_zip(path: FileRef) -> TorchCheckpoint:
    """Every tensor of a torch zip with where its bytes are; ``DiffError`` when refused."""
    with RegularFile(path) as handle:
        return _read_checkpoint(path, handle)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _diff_values(old: dict[str, object], new: dict[str, object]) -> list[Change]:
    """Changes between two flat maps of dotted names to plain values."""
    changes: list[Change] = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            changes.append(Change(key, "removed", old[key], None))
        elif key not in old:
            changes.append(Change(key, "added", None, new[key]))
        elif type(old[key]) is not type(new[key]):
            changes.append(Change(key, "type_changed", old[key], new[key]))
        elif not _same(old[key], new[key]):
            changes.append(Change(key, "changed", old[key], new[key]))
    return changes


def diff_torch_zips(
    path_a: FileRef, path_b: FileRef, *, budget: FetchBudget | None = None
) -> TensorDiff:
    """Per-tensor diff of two torch zip checkpoints, plus their non-tensor values
    (``FetchRefused`` if ``budget`` does not allow the tensors' bytes)."""
    with RegularFile(path_a) as old, RegularFile(path_b) as new:
        ck_a = _read_checkpoint(path_a, old)
        ck_b = _read_checkpoint(path_b, new)
        if budget is not None:
            budget.check(old, new, ck_a.tensors, ck_b.tensors)
        changes = compare_tensors(old, new, ck_a.tensors, ck_b.tensors)
    metadata = _diff_values(ck_a.values, ck_b.values)
    notes = sorted({c.note for c in changes if c.note})
    equal = not metadata and all(change.status == "unchanged" for change in changes)
    if ck_a.values_cut or ck_b.values_cut:
        notes.append(f"more than {MAX_VALUES} non-tensor values: the rest not compared")
        equal = equal and diff_binary(path_a, path_b).equal  # unknown is not equal
    return TensorDiff(changes, metadata, equal, notes, format="torch-zip")


__all__ = [
    "TorchCheckpoint",
    "diff_torch_zips",
    "looks_like_torch_zip",
    "read_torch_zip",
]
