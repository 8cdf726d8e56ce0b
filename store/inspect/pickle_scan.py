"""Walk pickle opcodes without executing them and judge what loading would import.

A pickle is a program: GLOBAL/STACK_GLOBAL/INST import any callable and REDUCE/NEWOBJ/
OBJ/BUILD call it.  This walker decodes opcodes with ``pickle_ops.read_ops`` (which accepts
what CPython's ``_pickle`` accepts, unlike ``pickletools.genops``) and keeps a symbolic stack
and memo, so STACK_GLOBAL names built from memoized strings resolve, nested
pickles (bytes a REDUCE would hand to pickle's loads) are scanned too, and joblib's raw
array bytes that sit between pickle opcodes are skipped rather than misread.  Nothing is
ever unpickled.
"""

from __future__ import annotations

import io
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from store.inspect.interpolation import Interpolations
from store.inspect.pickle_ops import (
    BIG_ARGUMENT,
    Opaque,
    PickleInvalid,
    PickleTooLong,
    PickleTruncated,
    read_ops,
)
from store.inspect.policy import (
    BARE_POSITIONS,
    CALLS_ARGUMENT,
    NESTED_LOADERS,
    NEW_ONLY,
    NUMPY_BIT_CTOR,
    NUMPY_RANDOM_CTORS,
    classify,
    compat_name,
    worst,
)

SCAN_LIMIT = 64 * 1024 * 1024
OP_LIMIT = 2_000_000
"""Opcodes read per file before the verdict becomes ``unknown``."""
MEMO_LIMIT = 500_000
"""Memo entries per pickle before the verdict becomes ``unknown``."""
TIME_LIMIT = 2.0
"""Seconds spent walking one file's pickles before the verdict becomes ``unknown``."""
SKIP_LIMIT = 1 << 40
MAX_DEPTH = 4
MAX_TENSORS = 100_000


class _Mark:
    __slots__ = ()


class _Unknown:
    __slots__ = ()


MARK = _Mark()
UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Global:
    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """The symbolic result of calling ``func`` with ``args`` (never actually called)."""

    func: object
    args: object
    state: object = None
    items: dict[Any, object] = field(default_factory=dict)
    appended: list[object] = field(default_factory=list)
    """What APPEND/APPENDS add to it (a list subclass's items), in order."""
    added: list[object] = field(default_factory=list)
    """What ADDITEMS adds to it (a set subclass's items), in the pickle's order."""
    vetted: str | None = None
    """For a call of a ``CALLS_ARGUMENT`` global: the verdict for what it calls."""


@dataclass(eq=False)
class Persistent:
    pid: object


class _Capped(Exception):
    """A budget (bytes, opcodes, memo entries, time) stopped the reading."""

    def __init__(self, why: str = "") -> None:
        super().__init__(why)
        self.why = why


class _Source:
    """A read-only stream that stops after ``limit`` opcode bytes and can skip raw data."""

    def __init__(
        self, stream: IO[bytes], limit: int, base: int = 0, skip_limit: int = SKIP_LIMIT
    ) -> None:
        self._skip_limit = skip_limit
        self._stream = stream
        self._limit = limit
        self._pos = base
        self.consumed = 0
        self.skipped = 0
        self._seekable = stream.seekable()
        self._pending = b""

    def _take(self, data: bytes) -> bytes:
        self._pos += len(data)
        self.consumed += len(data)
        if self.consumed > self._limit:
            raise _Capped(f"scan stopped after {self._limit} bytes")
        return data

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, fetched in chunks so a hostile length allocates nothing."""
        if 0 <= size <= 4096 and not self._pending:  # the common case: one opcode's bytes
            data = self._stream.read(size)
            self._pos += len(data)
            self.consumed += len(data)
            if self.consumed > self._limit:
                raise _Capped(f"scan stopped after {self._limit} bytes")
            return data
        remaining = self._limit - self.consumed + 1
        size = remaining if size < 0 else min(size, remaining)
        head, self._pending = self._pending[:size], self._pending[size:]
        chunks = [head]
        want = size - len(head)
        while want > 0:
            chunk = self._stream.read(min(want, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            want -= len(chunk)
        return self._take(b"".join(chunks))

    def readline(self, size: int = -1) -> bytes:
        """One line, of at most ``size`` bytes (1 MiB when not given) and never past the
        byte budget: a caller asking for ``MAX_LINE + 1`` tells a line too long to keep from
        one the stream cuts short."""
        cap = min(self._limit - self.consumed + 1, size if size >= 0 else 1 << 20)
        if self._pending:
            head, self._pending = self._pending, b""
            if b"\n" in head:
                line, _, rest = head.partition(b"\n")
                self._pending = rest
                return self._take(line + b"\n")
            return self._take(head + self._stream.readline(max(cap - len(head), 0)))
        return self._take(self._stream.readline(cap))

    def tell(self) -> int:
        return self._pos

    def at_eof(self) -> bool:
        if not self._pending:
            self._pending = self._stream.read(1)
        return not self._pending

    def skip(self, count: int) -> bool:
        """Skip ``count`` raw bytes; False when the stream ends first."""
        if self._pending:
            self._pending = b""
            self._pos += 1
            count -= 1
        self.skipped += count
        if self.skipped > self._skip_limit:
            raise _Capped(f"skipped more than {self._skip_limit} bytes of raw data")
        if self._seekable:
            here = self._stream.tell()
            end = self._stream.seek(0, io.SEEK_END)
            self._stream.seek(min(here + count, end))
            self._pos += min(count, end - here)
            return here + count <= end
        while count > 0:
            chunk = self._stream.read(min(count, 1 << 20))
            if not chunk:
                return False
            self._pos += len(chunk)
            count -= len(chunk)
        return True


@dataclass
class PickleScan:
    """What a pickle stream imports and calls, and how far the walk got."""

    imports: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    protocol: int | None = None
    pickles: int = 0
    opcodes: int = 0
    error: str | None = None
    truncated: bool = False
    capped: bool = False
    nested: int = 0
    tensors: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    arrays: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    top_keys: list[str] = field(default_factory=list)
    storages: int = 0
    storage_keys: set[str] = field(default_factory=set)
    storage_sizes: dict[str, tuple[str, int]] = field(default_factory=dict)
    end_offset: int = 0
    objects: list[object] = field(default_factory=list)
    bytes_scanned: int = 0
    bytes_skipped: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    cut_at: int = 0
    """Where the last opcode read started: the one cut short, when ``truncated``."""
    interpolations: Interpolations = field(default_factory=Interpolations)
    """The OmegaConf interpolations the pickle's strings hold (see ``interpolation``)."""

    @property
    def dangerous(self) -> list[str]:
        return [name for name, verdict in self.imports.items() if verdict == "dangerous"]

    @property
    def unknown(self) -> list[str]:
        return [name for name, verdict in self.imports.items() if verdict == "unknown"]

    @property
    def verdict(self) -> str:
        if self.dangerous or any(r.startswith("dangerous:") for r in self.reasons):
            return "dangerous"
        if self.error is not None:
            return "corrupt"
        if self.unknown or self.capped or any(r.startswith("unknown:") for r in self.reasons):
            return "unknown"
        return "safe"

    def note_import(self, dotted: str, verdict: str) -> None:
        if dotted not in self.imports:
            self.imports[dotted] = verdict
            if verdict != "safe":
                self.reasons.append(f"{verdict}: imports {dotted}")

    def note(self, reason: str) -> None:
        """Add ``reason`` once; a repeat only counts (see ``counted_reasons``)."""
        if reason not in self.counts:
            self.reasons.append(reason)
        self.counts[reason] += 1

    def counted_reasons(self) -> list[str]:
        """``reasons`` with "(N times)" after those that happened more than once."""
        return [
            f"{r} ({self.counts[r]} times)" if self.counts.get(r, 0) > 1 else r
            for r in self.reasons
        ]


def _itemsize(dtype: object) -> tuple[str, int | None]:
    """(dtype string, bytes per element) of a symbolic ``numpy.dtype(...)`` call."""
    if not isinstance(dtype, Call) or not isinstance(dtype.args, tuple) or not dtype.args:
        return "?", None
    code = dtype.args[0]
    if not isinstance(code, str):
        return "?", None
    state = dtype.state
    kind, digits = code[:1], code[1:]
    if isinstance(state, tuple) and state:
        # numpy's dtype.__setstate__ takes ``hasobject`` from the state's flags (version 3+)
        # or from any non-zero flags (older versions), whatever the type code says, and
        # joblib unpickles the data of a dtype that has objects
        version = state[0]
        flags = state[7] if len(state) > 7 else 0
        if not isinstance(version, int) or not isinstance(flags, int):
            return code, None
        if flags & 1 or (version < 3 and flags):
            return code, 0
        if version < 3 and len(state) > 4 and (state[2] is not None or state[4] is not None):
            return code, None  # flags computed from fields this reader does not follow
    if isinstance(state, tuple) and len(state) > 5 and kind in ("V", "S", "U", "a"):
        # numpy takes the state's element size only for flexible types; for others a
        # different size here would skip a different number of bytes than joblib does.
        elsize = state[5]
        if isinstance(elsize, int) and elsize > 0:
            return code, elsize
    if kind == "O":
        return code, 0
    # ASCII digits only, and few: "²".isdigit() is true yet int() refuses it, and int()
    # refuses more than 4300 digits; numpy reads neither as a size.
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        return code, None
    return code, int(digits) * (4 if kind == "U" else 1)


_TORCH_DTYPES = {
    "Float": "F32", "Double": "F64", "Half": "F16", "BFloat16": "BF16", "Long": "I64",
    "Int": "I32", "Short": "I16", "Char": "I8", "Byte": "U8", "Bool": "BOOL",
    "ComplexFloat": "C64", "ComplexDouble": "C128",
}  # fmt: skip


def _storage_dtype(value: object) -> str:
    """Safetensors-style dtype name of a torch storage persistent id."""
    if isinstance(value, Persistent) and isinstance(value.pid, tuple) and len(value.pid) > 1:
        kind = value.pid[1]
        if isinstance(kind, Global):
            short = kind.name.removesuffix("Storage") or kind.name
            return _TORCH_DTYPES.get(short, short)
        if isinstance(kind, str):
            return kind
    return "?"


_REBUILD = {
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
}


PARAMETER_REBUILDS = frozenset(
    {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
)
"""How ``torch.save`` writes a Parameter: its tensor is the first argument (``_with_state``
for a Parameter subclass or one with attributes set)."""


def _tensor_of(value: object) -> tuple[str, tuple[int, ...]] | None:
    if not isinstance(value, Call) or not isinstance(value.func, Global):
        return None
    args = value.args if isinstance(value.args, tuple) else ()
    name = value.func.dotted
    if name in PARAMETER_REBUILDS and args:
        return _tensor_of(args[0])
    if name in _REBUILD and len(args) >= 3:
        size = args[2]
        if isinstance(size, tuple) and all(isinstance(d, int) for d in size):
            return _storage_dtype(args[0]), tuple(size)
    return None


def _entries(value: object) -> list[tuple[object, object]]:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, Call):
        return list(value.items.items())
    return []


class _Walker:
    def __init__(self, result: PickleScan, depth: int) -> None:
        self.result = result
        self.depth = depth
        self.protocol = 0

    def run(self, source: _Source, max_pickles: int | None) -> None:
        """Walk the concatenated pickles in ``source``; a loader such as torch's legacy format
        or joblib reads past the first STOP, so every one of them counts."""
        result = self.result
        while max_pickles is None or result.pickles < max_pickles:
            if source.at_eof():
                if result.pickles == 0:
                    result.error = "empty pickle stream"
                    result.truncated = True
                return
            try:
                obj = self.one(source)
            except _Capped as exc:
                result.capped = True
                result.note(f"unknown: {exc.why}")
                return
            except PickleTooLong as exc:
                result.capped = True
                result.note(f"unknown: {exc}")
                return
            except (_Truncated, PickleTruncated, PickleInvalid) as exc:
                # The real unpickler fails here too: before any STOP nothing loads (corrupt);
                # after one, only a reader of several pickles sees it (unknown).
                if result.pickles == 0:
                    result.error = " ".join(str(exc).split())[:200]
                    result.truncated = not isinstance(exc, PickleInvalid)
                else:
                    result.note(f"unknown: data after pickle {result.pickles} does not parse")
                return
            except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as exc:
                # Our symbolic model disagrees with the stream: a loader might still run it.
                message = " ".join(str(exc).split())[:200] or type(exc).__name__
                result.capped = True
                result.note(f"unknown: cannot follow the pickle ({message})")
                return
            result.pickles += 1
            result.end_offset = source.tell()
            if len(result.objects) < 8:
                result.objects.append(obj)

    def one(self, source: _Source) -> object:
        """Walk one pickle up to STOP and return its symbolic result.  Each pickle starts
        afresh, as each ``load()`` does: an empty stack and memo, and protocol 0 until its
        own PROTO (so the Python 2 names of a pickle without one resolve as Python 3 maps
        them, whatever the pickle before it declared)."""
        stack: list[object] = []
        memo: dict[int, object] = {}
        self.protocol = 0
        result = self.result
        result.cut_at = source.tell()
        for name, arg, pos in read_ops(source):
            result.opcodes += 1
            if result.opcodes > OP_LIMIT:
                raise _Capped(f"scan stopped after {OP_LIMIT} opcodes")
            if not result.opcodes & 0xFFFF and time.monotonic() - result.started > TIME_LIMIT:
                raise _Capped(f"scan stopped after {TIME_LIMIT:g} s")
            if name == "STOP":
                if len(stack) != 1:
                    result.note("unknown: not exactly one item on the stack at STOP")
                return stack.pop() if stack else UNKNOWN
            wrapper = self.step(name, arg, pos, stack, memo)
            if wrapper is not None:
                self.skip_array(source, wrapper)
            result.cut_at = source.tell()  # where the next opcode starts
        raise _Truncated("pickle ended without STOP")  # pragma: no cover - read_ops raises

    def skip_array(self, source: _Source, wrapper: Call) -> None:
        """Skip the raw bytes joblib writes after a NumpyArrayWrapper's BUILD."""
        state = wrapper.state if isinstance(wrapper.state, dict) else {}
        code, size = _itemsize(state.get("dtype"))
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
            raise ValueError("joblib array wrapper without a readable shape")
        self.result.arrays.append((code, tuple(shape)))
        if size == 0:  # object array: a nested pickle follows, and joblib loads it
            self.result.nested += 1
            self.result.note("object array: nested pickle scanned")
            inner = _Walker(self.result, self.depth + 1)
            inner.one(source)
            return
        if size is None:
            raise ValueError(f"joblib array with unreadable dtype {code[:20]!r}")
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = source.read(1)
            if not pad:
                raise _Truncated("joblib array padding missing")
            source.skip(pad[0]) if pad[0] else None
        if not source.skip(math.prod(shape) * size):
            raise _Truncated(f"joblib array data cut short ({code} {tuple(shape)})")

    def step(
        self, name: str, arg: Any, pos: int | None, stack: list[object], memo: dict[int, object]
    ) -> Call | None:
        """Apply one opcode symbolically; returns a joblib wrapper whose data follows."""
        result = self.result

        def pop() -> object:
            # The real unpickler keeps marks on a separate stack: only POP may pop one.
            if not stack or (stack[-1] is MARK and name != "POP"):
                raise PickleInvalid(f"unpickling stack underflow at {name} (offset {pos})")
            return stack.pop()

        def target(allowed: tuple[type, ...]) -> object:
            """The object an APPEND/SETITEM/ADDITEMS/BUILD acts on, checked like load() does."""
            if not stack or stack[-1] is MARK:
                raise ValueError(f"{name} with nothing to act on (offset {pos})")
            found = stack[-1]
            if isinstance(found, (*_SCALARS, *allowed)) and not isinstance(found, allowed):
                raise ValueError(f"{name} on a {type(found).__name__} (offset {pos})")
            return found

        def pop_mark() -> list[object]:
            for index in range(len(stack) - 1, -1, -1):
                if stack[index] is MARK:
                    items = stack[index + 1 :]
                    del stack[index:]
                    return items
            raise PickleInvalid(f"could not find MARK for {name} (offset {pos})")

        if name in _PUSH_ARG:
            if isinstance(arg, str) and "${" in arg:
                for reason in result.interpolations.reasons(arg):
                    result.note(reason)
            elif isinstance(arg, (bytes, bytearray)) and b"${" in arg:
                # str() of bytes shows them (its repr, or a decoding by an ASCII codec)
                for reason in result.interpolations.reasons(arg.decode("latin-1")):
                    result.note(reason)
            elif isinstance(arg, Opaque) and name in _TEXT_OPS:
                # read past unkept: an interpolation padded into a long text hides in it
                result.note(
                    f"unknown: a text of {arg.size:,} bytes, over the {BIG_ARGUMENT:,} read, not"
                    " examined for OmegaConf interpolations"
                )
            stack.append(arg)
        elif name in _PUSH_CONST:
            stack.append(_PUSH_CONST[name])
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_SET":
            stack.append(set())
        elif name == "MARK":
            stack.append(MARK)
        elif name in ("LIST", "TUPLE", "FROZENSET"):
            items = pop_mark()
            stack.append(tuple(items) if name != "LIST" else items)
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = [pop() for _ in range(count)][::-1]
            stack.append(tuple(items))
        elif name == "DICT":
            items = pop_mark()
            stack.append(_pairs_to_dict(items))
        elif name in ("APPEND", "APPENDS"):
            values = [pop()] if name == "APPEND" else pop_mark()
            into = target((list,))
            if isinstance(into, list):
                into.extend(values)
            elif isinstance(into, Call):  # a list subclass: load() calls its extend/append
                into.appended.extend(values)
        elif name in ("SETITEM", "SETITEMS"):
            if name == "SETITEM":
                value = pop()
                items = [pop(), value]
            else:
                items = pop_mark()
            into = target((dict, list))
            mapping = into.items if isinstance(into, Call) else into
            if isinstance(mapping, dict):
                mapping.update(_pairs_to_dict(items))
        elif name == "ADDITEMS":
            values = pop_mark()
            into = target((set,))
            if isinstance(into, Call):  # a set subclass: load() calls its add
                into.added.extend(values)
            if isinstance(into, set):  # kept, as load() keeps them: a diff compares them
                for value in values:
                    try:
                        into.add(value)
                    except TypeError:  # load() fails here too
                        raise ValueError(f"ADDITEMS of an unhashable item (offset {pos})") from None
        elif name == "POP":
            pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            if not stack or stack[-1] is MARK:
                raise ValueError(f"DUP with nothing to copy (offset {pos})")
            stack.append(stack[-1])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if int(arg) < 0:
                raise PickleInvalid(f"negative PUT argument (offset {pos})")
            if int(arg) in memo:
                result.note("unknown: a memo key is redefined; no pickler writes this")
            if not stack or stack[-1] is MARK:
                raise ValueError(f"{name} with nothing to store (offset {pos})")
            memo[int(arg)] = stack[-1]
            if len(memo) > MEMO_LIMIT:
                raise _Capped(f"scan stopped after {MEMO_LIMIT} memo entries")
        elif name == "MEMOIZE":
            if not stack or stack[-1] is MARK:
                raise ValueError(f"MEMOIZE with nothing to store (offset {pos})")
            memo[len(memo)] = stack[-1]
            if len(memo) > MEMO_LIMIT:
                raise _Capped(f"scan stopped after {MEMO_LIMIT} memo entries")
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in memo:
                raise PickleInvalid(f"memo value not found at index {arg} (offset {pos})")
            stack.append(memo[int(arg)])
        elif name in ("GLOBAL", "INST"):
            module, attr = arg
            glob = self.import_(module, attr)
            if name == "INST":
                args = tuple(pop_mark())
                stack.append(self.call(glob, args, name))
            else:
                stack.append(glob)
        elif name == "STACK_GLOBAL":
            top, below = pop(), pop()
            if isinstance(below, str) and isinstance(top, str):
                stack.append(self.import_(below, top))
            else:
                result.note(
                    "dangerous: STACK_GLOBAL names a computed value, "
                    "so what it imports cannot be known without running the pickle"
                )
                stack.append(UNKNOWN)
        elif name == "OBJ":
            items = pop_mark()
            if not items:
                raise ValueError(f"OBJ without a class (offset {pos})")
            stack.append(self.call(items[0], tuple(items[1:]), name))
        elif name == "REDUCE":
            reduce_args = pop()
            func = pop()
            stack.append(self.call(func, reduce_args, name))
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            kwargs = pop() if name == "NEWOBJ_EX" else None
            new_args = pop()
            cls = pop()
            stack.append(self.call(cls, new_args, name, kwargs))
        elif name == "BUILD":
            state = pop()
            result.calls["BUILD"] += 1
            built = target(())
            if isinstance(built, Global):
                result.note(
                    f"dangerous: BUILD sets attributes on the imported {built.dotted} itself"
                )
            if isinstance(built, Call):
                built.state = state
                if isinstance(built.func, Global) and built.func.dotted == "functools.partial":
                    if isinstance(state, tuple) and state:
                        self.vet("functools.partial", state[0])
                    else:
                        result.note("unknown: functools.partial with an unreadable state")
                if _is_joblib_wrapper(built):
                    return built
        elif name == "PERSID":
            result.storages += 1
            stack.append(Persistent(arg))
        elif name == "BINPERSID":
            pid = pop()
            result.storages += 1
            if isinstance(pid, tuple) and len(pid) > 2 and pid[0] == "storage":
                result.storage_keys.add(str(pid[2]))
                if len(pid) > 4 and isinstance(pid[4], int):
                    dtype = _storage_dtype(Persistent(pid))
                    result.storage_sizes[str(pid[2])] = (dtype, pid[4])
            stack.append(Persistent(pid))
        elif name in ("EXT1", "EXT2", "EXT4"):
            result.note("unknown: imports through the extension registry (EXT opcodes)")
            stack.append(UNKNOWN)
        elif name == "PROTO":
            if result.protocol is None:
                result.protocol = int(arg)
            self.protocol = int(arg)
        elif name == "NEXT_BUFFER":
            stack.append(UNKNOWN)
        elif name in ("FRAME", "READONLY_BUFFER"):
            pass
        else:  # pragma: no cover - read_ops only yields known opcodes
            raise ValueError(f"unhandled opcode {name}")
        return None

    def import_(self, module: str, attr: str) -> Global:
        """Record what loading imports; protocols 0-2 name Python 2 modules, which Python 3
        maps (``__builtin__`` is ``builtins``), so the global is kept as it resolves."""
        if not module or not all(part.isidentifier() for part in module.split(".")):
            # __import__ cannot find such a module: the loader stops here.
            raise PickleInvalid(f"no module named {module[:60]!r}")
        self.result.note_import(f"{module}.{attr}", classify(module, attr))
        if self.protocol < 3:
            module, attr = compat_name(module, attr)
        return Global(module, attr)

    def vet(self, wrapper: str, value: object, *, bare: bool = False) -> str:
        """The verdict for ``wrapper`` calling ``value`` (``bare``: only ``value.__new__``):
        only a safe global, or a vetted partial of one, is safe; a computed value could be
        anything."""
        result = self.result
        if isinstance(value, Global):
            inner = result.imports.get(value.dotted, classify(value.module, value.name))
            wraps = value.dotted in CALLS_ARGUMENT
            constructs = value.dotted in NEW_ONLY and not bare
            if (wraps or constructs) and inner == "safe":
                inner = "unknown"  # a wrapper of a wrapper, or a constructor we only allow bare
            shown = value.dotted
        elif _is_partial(value):
            assert isinstance(value, Call) and value.vetted is not None
            inner, shown = value.vetted, "a vetted partial"
        else:
            inner, shown = "dangerous", f"a computed {type(value).__name__}"
        if isinstance(value, (str, int, float, bytes, type(None))):
            inner = "unknown"  # the loader fails to call it
        if inner != "safe" or wrapper.startswith("functools."):
            result.note_import(f"{wrapper}({shown})", inner)
        if inner == "dangerous" and not isinstance(value, Global):
            result.note(f"dangerous: {wrapper} calls {shown}, not an imported global")
        if isinstance(value, Global) and value.dotted in BUILDS_STRINGS:
            result.note(_built_string(f"{wrapper} calls {value.dotted}"))
        return inner

    def vet_string(self, dotted: str, args: object, kwargs: object) -> None:
        """A call of ``dotted`` (``BUILDS_STRINGS``), which makes a string at load time:
        readable when its arguments are values the pickle spells out (their strings and
        bytes are examined as they are pushed) and any codec maps ASCII to itself, so an
        OmegaConf interpolation in what it makes is in them too; else unknown."""
        if not isinstance(args, tuple) or not all(_spelled_out(a, 0) for a in args):
            why = f"{dotted} of values computed when loading"
        elif kwargs is not None and kwargs != {}:
            why = f"{dotted} with keyword arguments"
        elif len(args) > 1 and not _plain_codec(args[1]):
            shown = repr(args[1])[:40] if isinstance(args[1], str) else "a computed codec"
            why = f"{dotted} with codec {shown}"
        else:
            return
        self.result.note(_built_string(why))

    def _vet_numpy_random(self, dotted: str, args: object) -> str:
        """A numpy generator constructor (``NUMPY_RANDOM_CTORS``): what it ends up calling
        must be a safe global; a name is looked up in numpy's own table."""
        if not isinstance(args, tuple):
            self.result.note(f"unknown: {dotted} gets arguments that cannot be read")
            return "unknown"
        first = args[0] if args else None
        if dotted != NUMPY_BIT_CTOR:
            ctor = args[1] if len(args) > 1 else None
            if ctor is not None and not (
                isinstance(ctor, Global) and ctor.dotted == NUMPY_BIT_CTOR
            ):
                return self.vet(dotted, ctor)  # called with the first argument
        if isinstance(first, Global):
            return self.vet(dotted, first)  # a class: called, so constructed in full
        # a name is looked up, a BitGenerator is kept; any other value was vetted as made
        return "safe"

    def call(self, func: object, args: object, opcode: str, kwargs: object = None) -> object:
        result = self.result
        result.calls[opcode] += 1
        vetted: str | None = None
        if isinstance(func, Global) and func.dotted in BUILDS_STRINGS:
            self.vet_string(func.dotted, args, kwargs)
        if not isinstance(func, Global):
            if _is_partial(func) and isinstance(func, Call) and func.vetted == "safe":
                pass  # calling a partial of a safe global is calling that global
            elif func is UNKNOWN:
                result.note("dangerous: calls a value whose import could not be resolved")
            else:
                result.note(f"dangerous: {opcode} calls a computed {type(func).__name__}")
        elif func.dotted in NEW_ONLY and opcode in ("REDUCE", "INST", "OBJ"):
            result.note(f"unknown: calls {func.dotted}(...), which runs its constructor")
        elif func.dotted in NUMPY_RANDOM_CTORS:
            vetted = self._vet_numpy_random(func.dotted, args)
        elif func.dotted in CALLS_ARGUMENT:
            if isinstance(args, tuple):
                positions = CALLS_ARGUMENT[func.dotted]
                verdicts = [
                    self.vet(func.dotted, args[i], bare=(func.dotted, i) in BARE_POSITIONS)
                    for i in positions
                    if i < len(args)
                ]
                vetted = worst("safe", *verdicts)
            else:
                vetted = "unknown"
                result.note(f"unknown: {func.dotted} gets arguments that cannot be read")
        if isinstance(func, Global) and func.dotted == "_codecs.encode":
            # How protocols 0-2 spell bytes; evaluated so nested pickles can be scanned.
            encoded = _codecs_encode(args)
            if encoded is not None:
                return encoded
        if (
            isinstance(func, Global)
            and func.dotted in NESTED_LOADERS
            and isinstance(args, tuple)
            and args
            and isinstance(args[0], (bytes, bytearray))
        ):
            result.nested += 1
            result.note(f"dangerous: nested pickle passed to {func.dotted}")
            if self.depth < MAX_DEPTH:
                inner = _Walker(result, self.depth + 1)
                inner.run(_Source(io.BytesIO(bytes(args[0])), SCAN_LIMIT), None)
        made = Call(func, args)
        if vetted is not None:
            made.vetted = vetted
        return made


_TEXT_OPS = frozenset({"BINUNICODE", "BINUNICODE8"})
"""Text opcodes whose argument may be too long to keep (``pickle_ops.Opaque``)."""
BUILDS_STRINGS = frozenset({"builtins.str", "_codecs.encode"})
"""Allowed callables that make a string (or bytes a string is then made of) at load time,
by decoding or transcoding: ``str(b"+ACQAew-eval:1}", "utf-7")`` is ``"${eval:1}"``."""
_PLAIN_CODECS = frozenset(
    {"utf-8", "utf8", "u8", "latin-1", "latin1", "iso-8859-1", "iso8859-1", "l1", "ascii",
     "us-ascii", "646"}
)  # fmt: skip
"""Codecs that map ASCII (``${``, names, ``:``) to itself and make it from nothing else."""


def _plain_codec(codec: object) -> bool:
    return isinstance(codec, str) and codec.lower().replace("_", "-") in _PLAIN_CODECS


def _spelled_out(value: object, depth: int) -> bool:
    """Whether ``value`` is plain data the pickle spells out (no call's result in it)."""
    if isinstance(value, (str, bytes, bytearray, int, float, complex, type(None))):
        return True
    if depth >= 4:
        return False
    if isinstance(value, (tuple, list, set, frozenset)) and len(value) <= 1000:
        return all(_spelled_out(item, depth + 1) for item in value)
    if isinstance(value, dict) and len(value) <= 1000:
        return all(
            _spelled_out(k, depth + 1) and _spelled_out(v, depth + 1) for k, v in value.items()
        )
    return False


def _built_string(why: str) -> str:
    return (
        f"unknown: builds a string when loaded ({why}): an OmegaConf interpolation in it "
        "cannot be read off the file"
    )


def _is_partial(value: object) -> bool:
    """A ``functools.partial(...)`` call the walker has vetted."""
    return (
        isinstance(value, Call)
        and value.vetted is not None
        and isinstance(value.func, Global)
        and value.func.dotted == "functools.partial"
    )


class _Truncated(Exception):
    pass


_PUSH_ARG = frozenset(
    [
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "UNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "FLOAT",
        "BINFLOAT",
    ]
)
_SCALARS = (int, float, str, bytes, bytearray, type(None), tuple, list, dict, set, _Mark)
_PUSH_CONST: dict[str, object] = {
    "NONE": None,
    "NEWTRUE": True,
    "NEWFALSE": False,
    "EMPTY_TUPLE": (),
}


def _codecs_encode(args: object) -> bytes | None:
    if not (isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], str)):
        return None
    if args[1] not in ("latin1", "latin-1", "iso-8859-1", "ascii", "utf-8", "utf8"):
        return None
    try:
        return args[0].encode(args[1])
    except UnicodeEncodeError:
        return None


def _pairs_to_dict(items: list[object]) -> dict[Any, object]:
    """The pairs whose key is a plain scalar (what names and tensors use): hashing a
    hostile key (a tuple of a million items, reused from the memo) costs unbounded time."""
    mapping: dict[Any, object] = {}
    for index in range(0, len(items) - 1, 2):
        key = items[index]
        if isinstance(key, (str, bytes)):
            plain = len(key) <= 4096
        elif isinstance(key, int):
            plain = key.bit_length() <= 64
        else:
            plain = isinstance(key, (float, type(None)))
        if plain:
            mapping[key] = items[index + 1]
    return mapping


def _is_joblib_wrapper(value: Call) -> bool:
    func = value.func
    if isinstance(func, Global) and func.dotted == "copyreg._reconstructor":
        args = value.args
        func = args[0] if isinstance(args, tuple) and args else None
    return isinstance(func, Global) and func.dotted == "joblib.numpy_pickle.NumpyArrayWrapper"


def _collect(result: PickleScan, value: object, prefix: str, depth: int) -> None:
    if len(result.tensors) >= MAX_TENSORS or depth > 6:
        return
    tensor = _tensor_of(value)
    if tensor is not None:
        result.tensors[prefix or "<tensor>"] = tensor
        return
    for key, item in _entries(value):
        if isinstance(key, (str, int)):
            _collect(result, item, f"{prefix}.{key}" if prefix else str(key), depth + 1)


def scan_stream(
    stream: IO[bytes],
    *,
    limit: int = SCAN_LIMIT,
    max_pickles: int | None = None,
    base: int = 0,
    main_index: int = 0,
    skip_limit: int = SKIP_LIMIT,
    started: float | None = None,
) -> PickleScan:
    """Scan the pickle(s) in ``stream`` from its current position; never raises for bad data.

    ``limit`` bounds the opcode bytes read, ``skip_limit`` the raw bytes skipped (array data,
    long byte strings): cheap on a file, a decompression inside an archive.  ``started``
    (a ``time.monotonic()`` value) shares one ``TIME_LIMIT`` among several streams of a file.

    ``main_index`` picks which of several concatenated pickles holds the payload whose
    top-level keys are reported (the 4th in a legacy torch file).
    """
    result = PickleScan()
    if started is not None:
        result.started = started
    source = _Source(stream, limit, base, skip_limit)
    try:
        _Walker(result, 0).run(source, max_pickles)
    except RecursionError:
        result.capped = True  # the unpickler itself does not recurse: it may well load
        result.note("unknown: the pickle nests too deeply to follow")
    result.bytes_scanned = source.consumed
    result.bytes_skipped = source.skipped
    main = result.objects[main_index : main_index + 1] if main_index < len(result.objects) else []
    for obj in main or result.objects[:1]:
        result.top_keys = [str(k) for k, _ in _entries(obj) if isinstance(k, (str, int))][:50]
    for obj in result.objects:
        _collect(result, obj, "", 0)
    return result


def scan_bytes(
    data: bytes, *, limit: int = SCAN_LIMIT, max_pickles: int | None = None
) -> PickleScan:
    """Scan pickle(s) held in memory."""
    return scan_stream(io.BytesIO(data), limit=limit, max_pickles=max_pickles)
