"""Plain values (numbers, strings, nested dicts) saved inside a torch checkpoint, read
statically: the pickle is walked opcode by opcode (``store.inspect.pickle_scan``), never
loaded, so no class it names is imported and no code runs.

Training scripts keep what a run was (its config, epoch, best metric) next to the weights:
nanoGPT's ``ckpt.pt`` holds ``config``, ``iter_num`` and ``best_val_loss``; timm's
checkpoints ``args`` and ``epoch``; Ultralytics' ``train_args`` and ``train_metrics``.
Tensors, storages and objects without a plain state are left out, except one-element
tensors (a loss saved as ``tensor(0.61)``), whose few bytes are read from the archive.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from store.frameworks import _io
from store.frameworks._io import RootLike
from store.root import Reader as RootReader
from store.root import RootError

if TYPE_CHECKING:
    from store.inspect.pickle_scan import PickleScan

MAX_NODES = 50_000
MAX_DEPTH = 10
MAX_SCALARS = 1000
_UNPACK = {
    "F32": ("<f", 4), "F64": ("<d", 8), "F16": ("<e", 2), "BF16": ("<H", 2),
    "I64": ("<q", 8), "I32": ("<i", 4), "I16": ("<h", 2), "I8": ("<b", 1),
    "U8": ("<B", 1), "BOOL": ("<?", 1),
}  # fmt: skip
_SKIP = object()


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0
        self.scalars = 0
        self.lost: list[str] = []
        """What a budget or cap left out or cut short (once each), for the caller to say."""

    def lose(self, what: str) -> None:
        if what not in self.lost:
            self.lost.append(what)


@dataclass(frozen=True)
class _Scalar:
    """A one-element tensor: its storage entry, dtype and element offset."""

    key: str
    dtype: str
    offset: int


Reader = Callable[[_Scalar], "float | int | bool | None"]


def read_values(
    root: RootLike,
    rel: str,
    lost: list[str] | None = None,
    *,
    keys: frozenset[str] | None = None,
    zip_pickle_limit: int | None = None,
) -> dict[str, object]:
    """The plain values of the checkpoint's top-level object; ``ReadError`` when it cannot
    be read (not a regular file, not a torch zip or pickle, too large, corrupt).  Values
    left out or cut short by a cap (a pickle past ``MAX_PICKLE_BYTES``, too many or too
    deep values, a long string or list, a scalar whose bytes cannot be read) are said in
    ``lost`` when given, one line each: the caller must not pass what it got for all.

    ``keys``: only these top-level values are made (the whole pickle is still walked, but
    a state_dict's thousand tensors are not turned into values no one reads).
    ``zip_pickle_limit``: only a torch zip is read, and refused when its ``data.pkl`` is
    larger than this (a bare pickle would be read a scan's worth, its whole file)."""
    budget = _Budget()
    reader = _io.open_file(root, rel)
    try:
        head = reader.read_at(0, 4)
        if head.startswith(b"PK"):
            return _from_zip(reader, rel, budget, keys, zip_pickle_limit)
        if zip_pickle_limit is not None:
            raise _io.ReadError(f"{rel}: not a torch zip checkpoint")
        if head[:1] == b"\x80":
            # the scanner is imported once a file is there to scan
            from store.inspect.pickle_scan import scan_bytes
            from store.inspect.torch_zip import MAX_PICKLE_BYTES

            if reader.size > MAX_PICKLE_BYTES:
                budget.lose(f"a pickle over {MAX_PICKLE_BYTES} bytes, read in part")
            data = reader.read_at(0, min(reader.size, MAX_PICKLE_BYTES))
            scan = scan_bytes(data, limit=MAX_PICKLE_BYTES, max_pickles=1)
            value = _values(scan, rel, budget, keys)
            resolved = _resolved(value, None, budget)
            assert isinstance(resolved, dict)
            return resolved
        raise _io.ReadError(f"{rel}: not a torch checkpoint")
    except _io.ReadError:
        raise
    except RootError as exc:  # changed under the read: already one line naming the file
        raise _io.ReadError(str(exc)) from None
    except OSError as exc:
        raise _io.ReadError(f"{rel}: {exc.strerror or type(exc).__name__}") from None
    finally:
        reader.close()
        if lost is not None:
            lost.extend(budget.lost)


def _values(
    scan: PickleScan, rel: str, budget: _Budget, keys: frozenset[str] | None = None
) -> dict[str, object]:
    if not scan.objects:
        raise _io.ReadError(f"{rel}: {scan.error or 'no object in the pickle'}")
    top = scan.objects[0]
    if keys is not None:
        top = _only(top, keys)
    value = plain(top, 0, budget)
    if not isinstance(value, dict):
        raise _io.ReadError(f"{rel}: the checkpoint is not a mapping")
    return value


def _only(top: object, keys: frozenset[str]) -> object:
    """The top-level mapping with only ``keys`` (anything else is left as it is: ``plain``
    says what it is)."""
    from store.inspect.pickle_scan import Call

    items = top.items if isinstance(top, Call) and top.items else top
    if not isinstance(items, dict):
        return top
    return {key: value for key, value in items.items() if key in keys}


def _resolved(value: object, read: Reader | None, budget: _Budget) -> object:
    """``value`` with every ``_Scalar`` replaced by its number (dropped when unreadable,
    and said in ``budget.lost``)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _resolved(item, read, budget)
            if item is not _SKIP:
                out[key] = item
        return out
    if isinstance(value, list):
        items = [_resolved(v, read, budget) for v in value]
        return items if all(v is not _SKIP for v in items) else _SKIP
    if isinstance(value, _Scalar):
        number = read(value) if read is not None else None
        if number is None:
            budget.lose("a one-element tensor whose value could not be read")
            return _SKIP
        return number
    return value


def _from_zip(
    reader: RootReader,
    rel: str,
    budget: _Budget,
    keys: frozenset[str] | None = None,
    pickle_limit: int | None = None,
) -> dict[str, object]:
    from store.inspect.torch_zip import MAX_PICKLE_BYTES, TorchZipError, read_torch_zip_at

    try:
        archive = read_torch_zip_at(reader, pickle_limit=pickle_limit or MAX_PICKLE_BYTES)
    except TorchZipError as exc:
        raise _io.ReadError(f"{rel}: {exc}") from None
    value = _values(archive.scan, rel, budget, keys)

    def read(scalar: _Scalar) -> float | int | bool | None:
        fmt, size = _UNPACK.get(scalar.dtype, ("", 0))
        end = (scalar.offset + 1) * size
        if not size or end > 1 << 20 or archive.big_endian:
            return None
        raw = archive.read_storage(scalar.key, end)
        if raw is None:
            return None
        raw = raw[-size:]
        if scalar.dtype == "BF16":
            number: float | int | bool = struct.unpack("<f", b"\0\0" + raw)[0]
        else:
            number = struct.unpack(fmt, raw)[0]
        return number

    resolved = _resolved(value, read, budget)
    assert isinstance(resolved, dict)
    return resolved


def plain(value: object, depth: int, budget: _Budget) -> object:
    """``value`` as JSON-like data; ``_SKIP`` for tensors and opaque objects."""
    from store.inspect.pickle_scan import Call, Global, _tensor_of

    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        budget.lose(f"more than {MAX_NODES} values, the rest left out")
        return _SKIP
    if depth > MAX_DEPTH:
        budget.lose(f"values nested deeper than {MAX_DEPTH} left out")
        return _SKIP
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if len(value) > 1000:
            budget.lose("strings longer than 1000 characters cut short")
        return value[:1000]
    if isinstance(value, dict):
        out: dict[str, object] = {}
        if len(value) > 5000:
            budget.lose("mappings of more than 5000 keys, the rest left out")
        for key, item in list(value.items())[:5000]:
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                continue
            converted = plain(item, depth + 1, budget)
            if converted is not _SKIP:
                out[str(key)] = converted
        return out
    if isinstance(value, (list, tuple)):
        if len(value) > 1000:  # a list cut short is another value: left out
            budget.lose("lists of more than 1000 items left out")
            return _SKIP
        items = [plain(v, depth + 1, budget) for v in list(value)]
        kept = [v for v in items if v is not _SKIP]
        return kept if len(kept) == len(items) else _SKIP
    if isinstance(value, Call):
        tensor = _tensor_of(value)
        if tensor is not None:
            return _scalar(value, tensor, budget)
        if value.items:
            return plain(value.items, depth, budget)
        if isinstance(value.state, dict):
            return plain(value.state, depth, budget)
        args = value.args if isinstance(value.args, tuple) else ()
        if isinstance(value.func, Global) and value.func.dotted == "collections.OrderedDict":
            return {} if not args else _SKIP
        if isinstance(value.func, Global) and len(args) == 1 and value.state is None:
            # an enum member or a one-value object (``IntervalStrategy('steps')``): its value
            only = args[0]
            if only is None or isinstance(only, (str, int, float, bool)):
                return only
    return _SKIP


def _scalar(value: object, tensor: tuple[str, tuple[int, ...]], budget: _Budget) -> object:
    """A ``_Scalar`` for a one-element tensor, else ``_SKIP``."""
    from store.inspect.pickle_scan import PARAMETER_REBUILDS, Call, Global, Persistent

    dtype, shape = tensor
    if any(d != 1 for d in shape):
        return _SKIP
    if budget.scalars >= MAX_SCALARS:
        budget.lose(f"more than {MAX_SCALARS} one-element tensors, the rest left out")
        return _SKIP
    while isinstance(value, Call) and isinstance(value.func, Global):
        args = value.args if isinstance(value.args, tuple) else ()
        if value.func.dotted in PARAMETER_REBUILDS and args:
            value = args[0]
            continue
        storage, offset = (args[0], args[1]) if len(args) >= 2 else (None, None)
        pid = storage.pid if isinstance(storage, Persistent) else None
        if isinstance(pid, tuple) and len(pid) > 2 and isinstance(offset, int) and offset >= 0:
            budget.scalars += 1
            return _Scalar(str(pid[2]), dtype, offset)
        break
    return _SKIP
