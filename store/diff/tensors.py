"""Tensor diffs: which tensors were added, removed, retyped, reshaped, and how far values moved.

Both files are read together in bounded chunks (``pread`` into two reused buffers, so a
1 GiB tensor never sits in memory and the cost is the page-cache copy ``cat`` pays too).
Bytes are compared first; only a tensor whose bytes differ is decoded, with numpy, from
its first differing chunk on, plus its old values for the norm.  Memory maps were
measured (a little faster) and not used: a checkpoint truncated while mapped, as a
training job rewriting ``last.ckpt`` does, kills the reader with SIGBUS.

The engine compares any two maps of tensor name -> ``TensorRef`` (dtype, shape, where
the bytes are); ``diff_safetensors`` builds them from safetensors headers and
``store.diff.torch_zip`` from a torch zip's pickle, read statically.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from store.diff._io import CompareBudget, DiffError, FileRef, RegularFile, ref_basename
from store.diff.structured import Change, diff_structured_counted
from store.hashing import Skipped, data_segments

TensorStatus = Literal[
    "added", "removed", "dtype_changed", "shape_changed", "values_changed", "unchanged", "unknown"
]
COMPARE_CHUNK = 1 << 20
"""Bytes compared per read: small enough to stay in cache, large enough to cost no calls."""
VALUE_ELEMENTS = 1 << 18
"""Elements decoded per step of a changed tensor, into reused float64 buffers (2 MiB each)."""
VALUE_CHUNK = VALUE_ELEMENTS * 16
"""Bytes read per step: VALUE_ELEMENTS of the widest dtype."""
MAX_STRIDED_BYTES = 64 << 20
"""A non-contiguous tensor (or its storage span) larger than this is compared by its storage
bytes only: equal proves it unchanged, different makes it ``unknown``."""

ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U64": 8, "I32": 4, "U32": 4,
    "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1, "C64": 8, "C128": 16, "C32": 4,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1, "F8_E8M0": 1,
}  # fmt: skip
"""Bytes per element of every dtype whose elements can be counted."""
_DECODE = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "U64": "<u8", "I32": "<i4",
    "U32": "<u4", "I16": "<i2", "U16": "<u2", "I8": "i1", "U8": "u1", "BOOL": "u1",
    "C64": "<c8", "C128": "<c16",
}  # fmt: skip
"""numpy types of the dtypes whose values are decoded (BF16 is widened by hand)."""
_RAW = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8", 16: "<u8"}
# Sums of squares use einsum, not np.dot: dot goes to a multi-threaded BLAS whose threads
# spin, and on a busy 2-core server that made one 64 MiB tensor take 3 s instead of 0.08 s.


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's elements are in a file.

    ``offset`` is the byte offset of element 0 and ``nbytes`` the bytes of a C-contiguous
    tensor.  ``strides`` (in elements) is None for a contiguous tensor; otherwise ``span``
    is the byte range of the storage its elements lie in.
    """

    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    strides: tuple[int, ...] | None = None
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class TensorChange:
    name: str
    status: TensorStatus
    dtype_old: str | None
    dtype_new: str | None
    shape_old: tuple[int, ...] | None
    shape_new: tuple[int, ...] | None
    max_abs_diff: float | None = None
    rel_l2: float | None = None
    """||a - b|| / ||a|| (inf when ``a`` is all zeros and ``b`` is not)."""
    changed_elements: int | None = None
    note: str | None = None
    """How the values were compared when not element by element (float8, non-contiguous)."""


@dataclass
class TensorDiff:
    tensors: list[TensorChange]
    metadata: list[Change]
    equal: bool
    notes: list[str] = field(default_factory=list)
    format: str = "safetensors"
    """``safetensors`` or ``torch-zip``; ``metadata`` is the header's, or a checkpoint's
    non-tensor values (epoch, hyper-parameters) by dotted key."""
    metadata_more: int = 0
    """Metadata changes found past those listed in ``metadata``: counted, not listed."""

    @property
    def unknown(self) -> bool:
        """Not equal only by tensors that could not be compared: not known to differ."""
        statuses = {change.status for change in self.tensors}
        return not self.equal and not self.metadata and statuses <= {"unchanged", "unknown"}

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for change in self.tensors:
            result[change.status] = result.get(change.status, 0) + 1
        return result

    def changed(self) -> list[TensorChange]:
        return [change for change in self.tensors if change.status != "unchanged"]

    def largest(self) -> TensorChange | None:
        """The value change with the largest relative L2 (else max abs), if any."""
        moved = [c for c in self.tensors if c.status == "values_changed"]
        if not moved:
            return None

        def size(c: TensorChange) -> tuple[float, float]:
            return (_finite_key(c.rel_l2), _finite_key(c.max_abs_diff))

        return max(moved, key=size)

    def to_json(self) -> dict[str, Any]:
        """Plain data; a non-finite float is a string (``"inf"``, ``"nan"``): JSON has none."""
        data = asdict(self)
        for row, keys in [(t, ("max_abs_diff", "rel_l2")) for t in data["tensors"]] + [
            (m, ("old", "new")) for m in data["metadata"]
        ]:
            for key in keys:
                value = row.get(key)
                if isinstance(value, float) and not math.isfinite(value):
                    row[key] = str(value)
        return data


DEFAULT_MAX_FETCH = 1 << 30
"""Bytes of tensors a diff fetches from an object store (both sides) unless allowed more."""


def _size_text(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class FetchPlan:
    """What a tensor diff will read of each side that is not a local file, from the two
    headers (tensors present on both sides with one dtype and shape; the rest are never
    read): each such byte at least once, and a tensor whose values changed again from its
    first difference on, so ``most`` is twice ``total``."""

    bytes_a: int
    bytes_b: int

    @property
    def total(self) -> int:
        return self.bytes_a + self.bytes_b

    @property
    def most(self) -> int:
        return 2 * self.total

    def line(self) -> str:
        return (
            f"fetching {_size_text(self.total)} of tensors (A {_size_text(self.bytes_a)}, "
            f"B {_size_text(self.bytes_b)}; up to {_size_text(self.most)} where values changed)"
        )

    def to_json(self) -> dict[str, int]:
        return {"a": self.bytes_a, "b": self.bytes_b, "total": self.total, "most": self.most}


class FetchRefused(DiffError):
    """The tensors to compare are more bytes to fetch than the caller allowed."""


@dataclass
class FetchBudget:
    """How many bytes a tensor diff may fetch (``None``: any), and who hears the plan
    before the first tensor byte is read; ``plan`` keeps it for the caller."""

    max_bytes: int | None = DEFAULT_MAX_FETCH
    on_plan: Callable[[FetchPlan], None] | None = None
    plan: FetchPlan | None = None

    def check(
        self,
        old: RegularFile,
        new: RegularFile,
        refs_a: Mapping[str, TensorRef],
        refs_b: Mapping[str, TensorRef],
    ) -> None:
        """Say the plan, then ``FetchRefused`` if it is over the bound; local files (read
        by descriptor) are no fetch and cost nothing here."""
        if old.fd >= 0 and new.fd >= 0:
            return
        span_a = span_b = 0
        for name, ref_a in refs_a.items():
            ref_b = refs_b.get(name)
            if ref_b is None or (ref_a.dtype, ref_a.shape) != (ref_b.dtype, ref_b.shape):
                continue
            span_a += _read_span(ref_a)
            span_b += _read_span(ref_b)
        self.plan = plan = FetchPlan(span_a if old.fd < 0 else 0, span_b if new.fd < 0 else 0)
        if self.on_plan is not None:
            self.on_plan(plan)
        if self.max_bytes is not None and plan.total > self.max_bytes:
            raise FetchRefused(
                f"the tensor diff would fetch {_size_text(plan.total)}, over the "
                f"{_size_text(self.max_bytes)} allowed "
                "(`artlens diff --max-fetch SIZE` allows more)"
            )


def _read_span(ref: TensorRef) -> int:
    """Bytes compared of one tensor: its storage span where it is strided."""
    start, end, _ = _layout(ref)
    return max(end - start, ref.nbytes) if ref.strides is not None else ref.nbytes


def _finite_key(value: float | None) -> float:
    if value is None or math.isnan(value):
        return -1.0
    return value


@dataclass
class _Stats:
    max_abs: float = 0.0
    diff_sq: float = 0.0
    norm_sq: float = 0.0
    changed: int = 0
    decoded: bool = True
    nonfinite: bool = False
    cut: bool = False
    """Values differ, but the budget ran out before the rest were read."""


class _Holes:
    """Where a sparse local file holds data (``SEEK_DATA``/``SEEK_HOLE``); everywhere else
    it reads as zeros, so a range that is a hole in both files is equal, and adds nothing
    to a norm, without a read: two 1 TiB sparse checkpoints are compared by what is on disk."""

    def __init__(self, handle: RegularFile) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.dense = True
        if handle.fd < 0 or os.fstat(handle.fd).st_blocks * 512 >= handle.size:
            return
        segments = data_segments(handle.fd, handle.size)
        if isinstance(segments, Skipped):
            return
        self.dense = False
        self.starts = [start for start, _ in segments]
        self.ends = [end for _, end in segments]

    def empty(self, start: int, size: int) -> bool:
        """Whether ``[start, start + size)`` holds no data (reads as zeros)."""
        if self.dense:
            return False
        at = bisect.bisect_right(self.starts, start) - 1
        if at >= 0 and self.ends[at] > start:
            return False  # inside a data segment
        following = at + 1
        return following >= len(self.starts) or self.starts[following] >= start + size

    def next_data(self, pos: int) -> int:
        """The first offset at or after ``pos`` that holds data (a huge number if none)."""
        at = bisect.bisect_right(self.starts, pos) - 1
        if at >= 0 and self.ends[at] > pos:
            return pos
        return self.starts[at + 1] if at + 1 < len(self.starts) else 1 << 62


class _OutOfBudget(Exception):
    """The comparison's ``CompareBudget`` ran out: the tensors left are not compared."""


class _Reader:
    """Two files read side by side into two reused buffers, within one ``CompareBudget``."""

    def __init__(self, old: RegularFile, new: RegularFile) -> None:
        self.old, self.new = old, new
        self.budget = CompareBudget()
        self._buf_a = bytearray(VALUE_CHUNK)
        self._buf_b = bytearray(VALUE_CHUNK)
        self._cmp_a = bytearray(COMPARE_CHUNK)
        self._cmp_b = bytearray(COMPARE_CHUNK)
        self.scratch = _Scratch()
        self.holes_a, self.holes_b = _Holes(old), _Holes(new)

    def skip_holes(self, off_a: int, off_b: int, lo: int, nbytes: int, step: int) -> int:
        """The first chunk offset from ``lo`` on (``lo`` plus a multiple of ``step``) whose
        chunk holds data in either file, or ``nbytes``: the chunks skipped read as zeros
        in both (equal, and nothing to a norm)."""
        if self.holes_a.dense or self.holes_b.dense:
            return lo
        while lo < nbytes:
            size = min(step, nbytes - lo)
            if not (self.holes_a.empty(off_a + lo, size) and self.holes_b.empty(off_b + lo, size)):
                return lo
            ahead = min(
                self.holes_a.next_data(off_a + lo) - off_a,
                self.holes_b.next_data(off_b + lo) - off_b,
            )
            lo += max(step, (ahead - lo) // step * step)
        return nbytes

    def _fill(self, handle: RegularFile, buf: bytearray, offset: int, size: int) -> memoryview:
        view = memoryview(buf)[:size]
        if handle.fd < 0:  # a reader with no descriptor (an object store): copy its bytes
            data = handle.read_at(offset, size)
            view[: len(data)] = data
            done = len(data)
        else:
            done = 0
            try:
                while done < size:
                    got = os.preadv(handle.fd, [view[done:]], offset + done)
                    if got <= 0:
                        break
                    done += got
            except OSError as exc:
                raise DiffError(f"read failed: {exc.strerror or type(exc).__name__}") from None
            handle.check()
        if done != size:
            raise DiffError("a file shrank while it was being compared")
        return view

    def _spend(self, size: int) -> None:
        if not self.budget.spend(size):
            raise _OutOfBudget

    def pair(self, off_a: int, off_b: int, size: int) -> tuple[memoryview, memoryview]:
        self._spend(size)
        return (
            self._fill(self.old, self._buf_a, off_a, size),
            self._fill(self.new, self._buf_b, off_b, size),
        )

    def old_only(self, offset: int, size: int) -> memoryview:
        self._spend(size)
        return self._fill(self.old, self._buf_a, offset, size)

    def same(self, off_a: int, off_b: int, size: int) -> bool:
        """Whether ``size`` (at most COMPARE_CHUNK) bytes at the two offsets are equal."""
        self._spend(size)
        a = self._fill(self.old, self._cmp_a, off_a, size)
        b = self._fill(self.new, self._cmp_b, off_b, size)
        if size == COMPARE_CHUNK:
            return self._cmp_a == self._cmp_b  # memcmp; comparing memoryviews is slow
        return a.tobytes() == b.tobytes()


class _Scratch:
    """Reused buffers for decoding: fresh 16 MiB arrays per step cost page faults."""

    def __init__(self) -> None:
        self.a = np.empty(VALUE_ELEMENTS, np.float64)
        self.b = np.empty(VALUE_ELEMENTS, np.float64)
        self.wide = np.empty(VALUE_ELEMENTS, np.uint32)
        self.mask = np.empty(VALUE_ELEMENTS, np.bool_)


def _widen_into(raw: memoryview, dtype: str, out: np.ndarray[Any, Any], wide: Any) -> None:
    """Elements of a real-valued chunk as float64, written into ``out``."""
    if dtype == "BF16":
        np.left_shift(np.frombuffer(raw, "<u2"), 16, out=wide, dtype=np.uint32)
        np.copyto(out, wide.view(np.float32))
    else:
        np.copyto(out, np.frombuffer(raw, _DECODE[dtype]), casting="unsafe")


def _accumulate_complex(
    stats: _Stats, raw_a: memoryview, raw_b: memoryview | None, dtype: str
) -> None:
    a = np.frombuffer(raw_a, _DECODE[dtype]).astype(np.complex128)
    magnitude = np.abs(a)
    stats.norm_sq += float(np.einsum("i,i", magnitude, magnitude))
    if raw_b is None:
        return
    mask = (np.frombuffer(raw_a, "<u8") != np.frombuffer(raw_b, "<u8")).reshape(len(a), -1)
    changed = mask.any(axis=1)
    count = int(np.count_nonzero(changed))
    if count:
        b = np.frombuffer(raw_b, _DECODE[dtype]).astype(np.complex128)
        delta = np.abs(a[changed] - b[changed])
        _add_delta(stats, delta, count)


def _add_delta(stats: _Stats, delta: np.ndarray[Any, Any], count: int) -> None:
    """Add the absolute differences of the changed elements of one chunk."""
    stats.changed += count
    biggest = float(delta.max())
    if not math.isfinite(biggest) or not math.isfinite(float(delta.sum())):
        stats.nonfinite = True  # a value became NaN or inf: it moved without bound
        delta = delta[np.isfinite(delta)]
        biggest = float(delta.max()) if delta.size else 0.0
    stats.max_abs = max(stats.max_abs, biggest)
    stats.diff_sq += float(np.einsum("i,i", delta, delta))


def _accumulate(
    stats: _Stats, raw_a: memoryview, raw_b: memoryview | None, dtype: str, scratch: _Scratch
) -> None:
    """Add one chunk's norm (and, when ``raw_b`` is given, its differences) to ``stats``."""
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype in ("C64", "C128"):
            _accumulate_complex(stats, raw_a, raw_b, dtype)
            return
        itemsize = ITEMSIZE[dtype]
        count = len(raw_a) // itemsize
        a, b = scratch.a[:count], scratch.b[:count]
        _widen_into(raw_a, dtype, a, scratch.wide[:count])
        stats.norm_sq += float(np.einsum("i,i", a, a))
        if raw_b is None:
            return
        code = _RAW[itemsize]
        mask = scratch.mask[:count]
        np.not_equal(np.frombuffer(raw_a, code), np.frombuffer(raw_b, code), out=mask)
        changed = int(np.count_nonzero(mask))
        if not changed:
            return
        _widen_into(raw_b, dtype, b, scratch.wide[:count])
        np.subtract(a, b, out=b)
        np.abs(b, out=b)
        if changed < count:
            b[~mask] = 0.0  # NaN == NaN bitwise is no change
        _add_delta(stats, b if changed == count else b[mask], changed)


def _first_difference(reader: _Reader, off_a: int, off_b: int, nbytes: int) -> int | None:
    """Offset (a multiple of COMPARE_CHUNK) of the first differing chunk, or None."""
    lo = reader.skip_holes(off_a, off_b, 0, nbytes, COMPARE_CHUNK)
    while lo < nbytes:
        size = min(COMPARE_CHUNK, nbytes - lo)
        if not reader.same(off_a + lo, off_b + lo, size):
            return lo
        lo = reader.skip_holes(off_a, off_b, lo + size, nbytes, COMPARE_CHUNK)
    return None


def _count_raw(reader: _Reader, off_a: int, off_b: int, nbytes: int, itemsize: int) -> int:
    """Elements whose bytes differ, for dtypes numpy cannot decode (float8, complex32)."""
    changed = 0
    code = _RAW.get(itemsize, "u1")
    step = VALUE_CHUNK - VALUE_CHUNK % itemsize
    lo = reader.skip_holes(off_a, off_b, 0, nbytes, step)
    while lo < nbytes:
        size = min(step, nbytes - lo)
        a, b = reader.pair(off_a + lo, off_b + lo, size)
        changed += int(np.count_nonzero(np.frombuffer(a, code) != np.frombuffer(b, code)))
        lo = reader.skip_holes(off_a, off_b, lo + size, nbytes, step)
    return changed


def _compare_contiguous(
    reader: _Reader, off_a: int, off_b: int, nbytes: int, dtype: str
) -> _Stats | None:
    """None when the bytes are equal, else value statistics."""
    first = _first_difference(reader, off_a, off_b, nbytes)
    if first is None:
        return None
    itemsize = ITEMSIZE.get(dtype)
    if itemsize is None:
        return _Stats(decoded=False, changed=-1)
    try:
        if dtype not in _DECODE and dtype != "BF16":
            changed = _count_raw(reader, off_a, off_b, nbytes, itemsize)
            return _Stats(decoded=False, changed=changed)
        stats = _Stats()
        step = VALUE_ELEMENTS * itemsize
        lo = reader.skip_holes(off_a, off_b, 0, nbytes, step)  # zeros in both add nothing
        while lo < nbytes:
            size = min(step, nbytes - lo)
            if lo + size <= first:
                _accumulate(stats, reader.old_only(off_a + lo, size), None, dtype, reader.scratch)
            else:
                a, b = reader.pair(off_a + lo, off_b + lo, size)
                _accumulate(stats, a, b, dtype, reader.scratch)
            lo = reader.skip_holes(off_a, off_b, lo + size, nbytes, step)
    except _OutOfBudget:  # a difference was found: changed, however much is left unread
        return _Stats(decoded=False, changed=-1, cut=True)
    return stats


def _layout(ref: TensorRef) -> tuple[int, int, tuple[int, ...]]:
    """(span start, span end, element strides) of a tensor, contiguous or not."""
    if ref.strides is not None and ref.span is not None:
        return ref.span[0], ref.span[1], ref.strides
    strides: list[int] = []
    step = 1
    for size in reversed(ref.shape):
        strides.append(step)
        step *= max(size, 1)
    return ref.offset, ref.offset + ref.nbytes, tuple(reversed(strides))


def _fits_in_memory(ref: TensorRef) -> bool:
    start, end, _ = _layout(ref)
    return ITEMSIZE.get(ref.dtype, 99) <= 8 and max(end - start, ref.nbytes) <= MAX_STRIDED_BYTES


def _compare_strided(reader: _Reader, ref_a: TensorRef, ref_b: TensorRef) -> _Stats | None:
    """Tensors not both contiguous: each storage span read whole, viewed with its strides."""
    itemsize = ITEMSIZE[ref_a.dtype]
    code = _RAW[itemsize]
    elements = []
    for ref, handle in ((ref_a, reader.old), (ref_b, reader.new)):
        start, end, strides = _layout(ref)
        data = handle.read_at(start, end - start)
        if len(data) != end - start:
            raise DiffError("a file shrank while it was being compared")
        flat = np.frombuffer(data, code)[(ref.offset - start) // itemsize :]
        view = np.lib.stride_tricks.as_strided(
            flat, ref.shape, tuple(s * itemsize for s in strides), writeable=False
        )
        elements.append(np.ascontiguousarray(view).tobytes())
    bytes_a, bytes_b = elements
    if bytes_a == bytes_b:
        return None
    stats = _Stats()
    if ref_a.dtype in _DECODE or ref_a.dtype == "BF16":
        step = VALUE_ELEMENTS * itemsize
        for lo in range(0, len(bytes_a), step):
            chunk_a = memoryview(bytes_a)[lo : lo + step]
            chunk_b = memoryview(bytes_b)[lo : lo + step]
            _accumulate(stats, chunk_a, chunk_b, ref_a.dtype, reader.scratch)
    else:
        stats.decoded = False
        stats.changed = int(
            np.count_nonzero(np.frombuffer(bytes_a, code) != np.frombuffer(bytes_b, code))
        )
    return stats


def _change(name: str, ref_a: TensorRef, ref_b: TensorRef, stats: _Stats | None) -> TensorChange:
    base = (ref_a.dtype, ref_b.dtype, ref_a.shape, ref_b.shape)
    if stats is None:
        return TensorChange(name, "unchanged", *base)
    if stats.cut:
        note = "values differ; the rest not read (the comparison's bound ran out)"
        return TensorChange(name, "values_changed", *base, note=note)
    if not stats.decoded:
        counted = stats.changed if stats.changed >= 0 else None
        note = f"{ref_a.dtype} values not decoded; compared by bytes"
        return TensorChange(name, "values_changed", *base, changed_elements=counted, note=note)
    norm, diff = math.sqrt(stats.norm_sq), math.sqrt(stats.diff_sq)
    rel = diff / norm if norm else (math.inf if diff else 0.0)
    if math.isnan(rel) or math.isinf(norm) or stats.nonfinite:
        rel = math.inf
    if stats.nonfinite:
        stats.max_abs = math.inf
    return TensorChange(
        name,
        "values_changed",
        *base,
        max_abs_diff=stats.max_abs,
        rel_l2=rel,
        changed_elements=stats.changed,
    )


def _compare_pair(reader: _Reader, name: str, ref_a: TensorRef, ref_b: TensorRef) -> TensorChange:
    """Two tensors of one dtype and shape, by value (``_OutOfBudget`` if the reads run out)."""
    base = (ref_a.dtype, ref_b.dtype, ref_a.shape, ref_b.shape)
    if ref_a.strides is None and ref_b.strides is None and ref_a.nbytes == ref_b.nbytes:
        stats = _compare_contiguous(reader, ref_a.offset, ref_b.offset, ref_a.nbytes, ref_a.dtype)
    elif _fits_in_memory(ref_a) and _fits_in_memory(ref_b):
        stats = _compare_strided(reader, ref_a, ref_b)
    else:
        # Too big to gather through its strides: equal storage bytes prove it unchanged;
        # different ones may belong to another view of the same storage.
        start_a, end_a, strides_a = _layout(ref_a)
        start_b, end_b, strides_b = _layout(ref_b)
        same_layout = strides_a == strides_b and (
            (end_a - start_a, ref_a.offset - start_a) == (end_b - start_b, ref_b.offset - start_b)
        )
        same = same_layout and (
            _first_difference(reader, start_a, start_b, end_a - start_a) is None
        )
        if not same:
            note = (
                f"non-contiguous and over {MAX_STRIDED_BYTES >> 20} MiB: its storage "
                "differs; values not compared"
            )
            return TensorChange(name, "unknown", *base, note=note)
        stats = None
    return _change(name, ref_a, ref_b, stats)


def compare_tensors(
    old: RegularFile,
    new: RegularFile,
    refs_a: Mapping[str, TensorRef],
    refs_b: Mapping[str, TensorRef],
) -> list[TensorChange]:
    """Per-tensor changes between two maps of tensors held by ``old`` and ``new``."""
    reader = _Reader(old, new)
    changes: list[TensorChange] = []
    spent: str | None = None
    """Why the tensors left are not compared, once the reader's budget ran out."""
    for name in sorted(set(refs_a) | set(refs_b)):
        ref_a, ref_b = refs_a.get(name), refs_b.get(name)
        if ref_b is None:
            assert ref_a is not None
            changes.append(TensorChange(name, "removed", ref_a.dtype, None, ref_a.shape, None))
            continue
        if ref_a is None:
            changes.append(TensorChange(name, "added", None, ref_b.dtype, None, ref_b.shape))
            continue
        base = (ref_a.dtype, ref_b.dtype, ref_a.shape, ref_b.shape)
        if ref_a.dtype != ref_b.dtype:
            changes.append(TensorChange(name, "dtype_changed", *base))
            continue
        if ref_a.shape != ref_b.shape:
            changes.append(TensorChange(name, "shape_changed", *base))
            continue
        if spent is not None:
            changes.append(TensorChange(name, "unknown", *base, note=spent))
            continue
        try:
            changes.append(_compare_pair(reader, name, ref_a, ref_b))
        except _OutOfBudget:
            spent = f"values not compared: the comparison's bound ran out ({reader.budget.bound()})"
            changes.append(TensorChange(name, "unknown", *base, note=spent))
    old.check()  # holes were found at the start: a write into one since is a change
    new.check()
    return changes


def _header(handle: RegularFile, name: str) -> Any:
    """The validated header, read through the handle whose bytes are then compared (one
    pinned reader: a rewrite between reading the header and the data cannot mix them)."""
    from store.inspect.errors import InspectError
    from store.inspect.safetensors import MAX_HEADER, parse_header

    head = handle.read_at(0, 8)
    length = int.from_bytes(head, "little") if len(head) == 8 else 0
    fits = length <= MAX_HEADER and 8 + length <= handle.size
    try:  # parse_header says what is wrong with a length that does not fit
        return parse_header(head + (handle.read_at(8, length) if fits else b""), handle.size)
    except InspectError as exc:
        raise DiffError(f"{name}: {exc}") from None


def _safetensors_refs(head: Any) -> dict[str, TensorRef]:
    return {
        name: TensorRef(
            info.dtype, tuple(info.shape), head.data_offset + info.start, info.end - info.start
        )
        for name, info in head.tensors.items()
    }


def diff_safetensors(
    path_a: FileRef, path_b: FileRef, *, budget: FetchBudget | None = None
) -> TensorDiff:
    """Per-tensor diff of two safetensors files; raises ``DiffError`` if one is invalid,
    ``FetchRefused`` if ``budget`` does not allow the tensors' bytes."""
    with RegularFile(path_a) as old, RegularFile(path_b) as new:
        head_a, head_b = _header(old, ref_basename(path_a)), _header(new, ref_basename(path_b))
        refs_a, refs_b = _safetensors_refs(head_a), _safetensors_refs(head_b)
        if budget is not None:
            budget.check(old, new, refs_a, refs_b)
        changes = compare_tensors(old, new, refs_a, refs_b)
    metadata, more = diff_structured_counted(head_a.metadata, head_b.metadata)
    equal = not metadata and all(change.status == "unchanged" for change in changes)
    notes = _notes(changes)
    if more:
        notes.append(
            f"{more} more metadata change(s) not listed: only the first {len(metadata)} are"
        )
    return TensorDiff(changes, metadata, equal, notes, metadata_more=more)


def _notes(changes: list[TensorChange]) -> list[str]:
    unknown = sorted({c.dtype_old or "?" for c in changes if c.note and "decoded" in c.note})
    notes = [f"{dtype} values not decoded; compared by bytes" for dtype in unknown]
    unread = sum(1 for c in changes if c.status == "unknown" and c.note and "bound" in c.note)
    if unread:
        notes.append(f"{unread} tensor(s) not compared: the comparison's bound ran out")
    return notes


__all__ = [
    "DEFAULT_MAX_FETCH",
    "ITEMSIZE",
    "FetchBudget",
    "FetchPlan",
    "FetchRefused",
    "TensorChange",
    "TensorDiff",
    "TensorRef",
    "compare_tensors",
    "diff_safetensors",
]
