"""Read scalar series from TensorBoard event files without TensorFlow or protobuf.

An event file is a TFRecord stream: ``uint64 length``, ``uint32 masked crc32c(length)``,
``data``, ``uint32 masked crc32c(data)``, each ``data`` an ``Event`` protobuf.  Scalars
arrive two ways: the old ``Summary.Value.simple_value`` (float32) and the newer
tensor path (``Summary.Value.tensor``, a 0-d ``TensorProto``, with the ``scalars``
plugin named in metadata, often only on the tag's first event).

Event files are untrusted and may still be being written: reads are capped, a bad
CRC skips the record (reported), a truncated tail stops cleanly, and nothing raises
out of the public functions.  The small protobuf wire reader here is shared with
``wandb_records``.

A run restarted from a checkpoint logs again from an earlier step, into the same file or a
new one beside it; what the dead session logged from that step on is orphaned, and
TensorBoard drops it ("purging orphaned data", its ``EventAccumulator``): at a
``SessionLog.START`` at step S, every point read before at a step >= S; at a tag going
back to step s, that tag's points read before at steps >= s.  TensorBoard takes the second
rule only for files without ``file_version`` ``brain.Event:2``; writers of that version
(torch, TF2, Keras) write a START only when told (torch's ``purge_step``), so a resumed run
would keep its orphans, its best and its point count of two sessions.  Here both rules
hold for every file, with one check of the second: a step going back is a restart only
when the points it would drop were all logged before it (wall time).  Points logged after
it are another writer's, alive at the same time (or clocks disagree): that tag's order
cannot be told, nothing of it is dropped, and its metrics are marked read in part.
"""

from __future__ import annotations

import functools
import heapq
import os
import struct
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from store.root import Root, RootError, join
from store.root.local import LocalRoot
from store.safefile import open_regular
from store.safetext import decode

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_FILES = 256
MAX_WARNINGS = 50
MAX_HPARAMS = 10_000
_MAX_RECORD = 256 * 1024 * 1024

Series = dict[str, list[tuple[int, float, float]]]
Entry = tuple[str | None, int, float, float]
"""One scalar logged, ``(tag, step, wall_time, value)``, or a ``SessionLog.START`` at
``step`` (tag None), in file order."""


class Scalars(dict[str, list[tuple[int, float, float]]]):
    """Scalar series by tag, each ``[(step, wall_time, value), ...]``, plus what went wrong.

    A dict (so callers can use it as the plain mapping) carrying a ``warnings`` list.
    """

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.hparams: dict[str, int | float | str | bool | None] = {}
        """``SummaryWriter.add_hparams`` values (the hparams plugin's session start info)."""
        self.unread: set[str] = set()
        """What the files may hold that was not read: "metrics" (scalars), "params"
        (hparams); a record skipped or a file not read whole may hold either."""
        self.damaged: set[str] = set()
        """The part of ``unread`` lost to damage (a record skipped or cut, a file that
        cannot be read), not to the byte budget: what was read of a file was not whole."""

    @property
    def series(self) -> Series:
        return self

    def lose(self, message: str, *parts: str, budget: bool = False) -> None:
        """``warn`` of something the files hold that was not read, and note what it may
        have held (``parts``; a record not read may be any: scalars or hparams); ``budget``
        when only the reader's byte budget left it out (else it counts as ``damaged``)."""
        lost = parts or ("metrics", "params")
        self.unread.update(lost)
        if not budget:
            self.damaged.update(lost)
        self.warn(message)

    def doubt(self, message: str) -> None:
        """``warn`` of scalars read whole whose order cannot be told: the metrics are
        marked read in part (a last or best among them may not be the run's), not damaged."""
        self.unread.add("metrics")
        self.warn(message)

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("further warnings suppressed")


class ProtoError(ValueError):
    """Malformed protobuf wire data."""


# --- checksums -----------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses; pure Python, so callers cap the input."""
    table = _CRC32C_TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- bounded file reading ------------------------------------------------------------------


def read_capped(path: str | os.PathLike[str], max_bytes: int) -> tuple[bytes, int]:
    """Up to ``max_bytes`` of a regular file and its full size; OSError otherwise (see
    ``store.safefile``: FIFOs, devices and symlinks are never opened)."""
    fd, opened = open_regular(path)
    try:
        chunks = []
        remaining = max(0, max_bytes)
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), opened.st_size
    finally:
        os.close(fd)


# --- protobuf wire format ------------------------------------------------------------------

WireValue = int | bytes


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoError("varint too long")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, WireValue]]:
    """``(field_number, wire_type, value)`` per field: varints as int, the rest as bytes."""
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == 0:
            value, pos = read_varint(data, pos)
            yield number, wire, value
            continue
        if wire == 1:
            size = 8
        elif wire == 5:
            size = 4
        elif wire == 2:
            size, pos = read_varint(data, pos)
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        if pos + size > end:
            raise ProtoError("truncated field")
        yield number, wire, data[pos : pos + size]
        pos += size


def as_int64(value: int) -> int:
    """A varint read as a signed int64 (negative numbers take ten bytes)."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def as_sint64(value: int) -> int:
    """A zigzag-encoded varint (``sint64``)."""
    return (value >> 1) ^ -(value & 1)


def as_double(value: WireValue) -> float | None:
    if isinstance(value, bytes) and len(value) == 8:
        return float(struct.unpack("<d", value)[0])
    return None


def as_float(value: WireValue) -> float | None:
    if isinstance(value, bytes) and len(value) == 4:
        return float(struct.unpack("<f", value)[0])
    return None


def as_text(value: WireValue) -> str:
    return decode(value) if isinstance(value, bytes) else str(value)


# --- TFRecord framing ----------------------------------------------------------------------


def iter_records(
    data: bytes, result: Scalars, *, label: str, verify: bool, cut: bool = False
) -> Iterator[bytes]:
    """Payloads of the TFRecords in ``data``; a bad CRC skips one record, a cut tail stops
    (``cut``: ``data`` is the start of a longer file, so a cut tail is the budget's)."""
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 12:
            result.lose(f"{label}: truncated record header at byte {pos}", budget=cut)
            return
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if verify and masked_crc32c(header) != length_crc:
            # Without a trustworthy length the rest of the stream cannot be framed.
            result.lose(f"{label}: bad length checksum at byte {pos}; stopped")
            return
        if length > _MAX_RECORD:
            result.lose(f"{label}: record of {length} bytes at byte {pos}; stopped")
            return
        start = pos + 12
        stop = start + length
        if stop + 4 > end:
            result.lose(f"{label}: truncated record at byte {pos}", budget=cut)
            return
        payload = data[start:stop]
        (data_crc,) = struct.unpack("<I", data[stop : stop + 4])
        pos = stop + 4
        if verify and masked_crc32c(payload) != data_crc:
            result.lose(f"{label}: bad data checksum in record at byte {start - 12}; skipped")
            continue
        yield payload


# --- Event / Summary decoding --------------------------------------------------------------

_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_BOOL, _DT_HALF = 1, 2, 3, 9, 10, 19
_CONTENT_FORMATS = {
    _DT_FLOAT: "<f",
    _DT_DOUBLE: "<d",
    _DT_INT32: "<i",
    _DT_INT64: "<q",
    _DT_BOOL: "<?",
    _DT_HALF: "<e",
}


def _packed(value: WireValue, fmt: str) -> list[float]:
    """Values of a repeated fixed-width field, packed (bytes) or one unpacked element."""
    if not isinstance(value, bytes):
        return []
    size = struct.calcsize(fmt)
    usable = len(value) - len(value) % size
    return [float(x[0]) for x in struct.iter_unpack(fmt, value[:usable])]


def _packed_varints(value: WireValue) -> list[int]:
    if isinstance(value, int):
        return [value]
    out = []
    pos = 0
    while pos < len(value):
        number, pos = read_varint(value, pos)
        out.append(number)
    return out


def tensor_scalar(data: bytes) -> float | None:
    """The value of a one-element numeric ``TensorProto``; None for anything else."""
    dtype = 0
    dims = 0
    content = b""
    values: list[float] = []
    for number, _, value in iter_fields(data):
        if number == 1 and isinstance(value, int):
            dtype = value
        elif number == 2 and isinstance(value, bytes):
            for dim_number, _, dim in iter_fields(value):
                if dim_number == 2 and isinstance(dim, bytes):
                    size = next((v for n, _, v in iter_fields(dim) if n == 1), 1)
                    dims += 0 if size == 1 else 1
        elif number == 4 and isinstance(value, bytes):
            content = value
        elif number == 5:
            values += _packed(value, "<f")
        elif number == 6:
            values += _packed(value, "<d")
        elif number in (7, 10, 11):  # int_val, int64_val, bool_val
            values += [float(as_int64(v)) for v in _packed_varints(value)]
        elif number == 13:  # half_val: half bit patterns in int32s
            halves = _packed_varints(value)
            values += [float(struct.unpack("<e", struct.pack("<H", h & 0xFFFF))[0]) for h in halves]
    if dtype not in _CONTENT_FORMATS or dims:
        return None
    if content:
        values = _packed(content, _CONTENT_FORMATS[dtype])
    return values[0] if len(values) == 1 else None


def _plugin_data(metadata: bytes) -> tuple[str, bytes]:
    """``SummaryMetadata.plugin_data``: the plugin's name and its opaque content."""
    name, content = "", b""
    for number, _, value in iter_fields(metadata):
        if number == 1 and isinstance(value, bytes):
            for sub_number, _, sub in iter_fields(value):
                if sub_number == 1:
                    name = as_text(sub)
                elif sub_number == 2 and isinstance(sub, bytes):
                    content = sub
    return name, content


_HPARAMS_PLUGIN = "hparams"
_SESSION_START_TAG = "_hparams_/session_start_info"


def _hparams_of(content: bytes, result: Scalars) -> None:
    """``HParamsPluginData.session_start_info.hparams`` (a ``map<string, Value>``) into
    ``result.hparams``: numbers, strings, booleans and nulls; other kinds are skipped."""
    skipped = 0
    for number, _, value in iter_fields(content):
        if number != 3 or not isinstance(value, bytes):  # session_start_info
            continue
        for field, _, entry in iter_fields(value):
            if field != 1 or not isinstance(entry, bytes):  # the hparams map
                continue
            if len(result.hparams) >= MAX_HPARAMS:
                result.lose(f"more than {MAX_HPARAMS} hparams; the rest skipped", "params")
                return
            key: str | None = None
            parsed: tuple[bool, int | float | str | bool | None] = (False, None)
            for entry_field, _, item in iter_fields(entry):
                if entry_field == 1:
                    key = as_text(item)
                elif entry_field == 2 and isinstance(item, bytes):
                    parsed = _proto_value(item)
            if key is None or not parsed[0]:
                skipped += 1
                continue
            result.hparams[key] = parsed[1]
    if skipped:
        result.lose(f"{skipped} hparam(s) of an unsupported kind skipped", "params")


def _proto_value(data: bytes) -> tuple[bool, int | float | str | bool | None]:
    """A ``google.protobuf.Value`` as (understood, value); the last kind given wins, as
    protobuf's oneof reads it."""
    found: tuple[bool, int | float | str | bool | None] = (False, None)
    for number, _, value in iter_fields(data):
        if number == 1:
            found = (True, None)
        elif number == 2:  # a double: whole numbers were ints when logged, as far as known
            number_value = as_double(value)
            if number_value is not None and number_value.is_integer() and abs(number_value) < 2**53:
                found = (True, int(number_value))
            else:
                found = (number_value is not None, number_value)
        elif number == 3 and isinstance(value, bytes):
            found = (True, as_text(value))
        elif number == 4 and isinstance(value, int):
            found = (True, bool(value))
        elif number in (5, 6):  # struct_value, list_value: never written by add_hparams
            found = (False, None)
    return found


def _summary_values(
    summary: bytes, plugins: dict[str, str], result: Scalars
) -> Iterator[tuple[str, float]]:
    for number, _, value in iter_fields(summary):
        if number != 1 or not isinstance(value, bytes):
            continue
        tag = ""
        simple: float | None = None
        tensor: bytes | None = None
        plugin: str | None = None
        for sub_number, _, sub in iter_fields(value):
            if sub_number == 1:
                tag = as_text(sub)
            elif sub_number == 2:
                simple = as_float(sub)
            elif sub_number == 8 and isinstance(sub, bytes):
                tensor = sub
            elif sub_number == 9 and isinstance(sub, bytes):
                plugin, content = _plugin_data(sub)
                if plugin == _HPARAMS_PLUGIN and tag == _SESSION_START_TAG:
                    _hparams_of(content, result)
        if plugin is not None:
            plugins.setdefault(tag, plugin)
        if simple is not None:
            yield tag, simple
        elif tensor is not None and plugins.get(tag, "scalars") in ("scalars", ""):
            scalar = tensor_scalar(tensor)
            if scalar is not None:
                yield tag, scalar


_SESSION_START = 1
"""``SessionLog.SessionStatus.START``: a (re)started session."""


def _is_start(session_log: bytes) -> bool:
    return any(n == 1 and v == _SESSION_START for n, _, v in iter_fields(session_log))


def _decode_events(
    data: bytes,
    result: Scalars,
    plugins: dict[str, str],
    log: list[Entry],
    *,
    label: str,
    verify: bool,
    cut: bool = False,
) -> None:
    """The scalars and session starts of ``data``'s events, appended to ``log``."""
    for payload in iter_records(data, result, label=label, verify=verify, cut=cut):
        wall_time = 0.0
        step = 0
        summary: bytes | None = None
        start = False
        try:
            for number, _, value in iter_fields(payload):
                if number == 1:
                    wall_time = as_double(value) or 0.0
                elif number == 2 and isinstance(value, int):
                    step = as_int64(value)
                elif number == 5 and isinstance(value, bytes):
                    summary = value
                elif number == 7 and isinstance(value, bytes):  # session_log
                    start = _is_start(value)
            if start:
                log.append((None, step, wall_time, 0.0))
            if summary is not None:
                for tag, scalar in _summary_values(summary, plugins, result):
                    log.append((tag, step, wall_time, scalar))
        except (ProtoError, struct.error) as exc:
            result.lose(f"{label}: undecodable event skipped ({exc})")


def _step(point: tuple[int, float, float]) -> int:
    return point[0]


class _Replay:
    """Event files' logs played into a ``Scalars`` in order, orphaned points dropped (see
    the module's notes).  A tag's points stay in step order while its order is known (a
    point is appended at or above its top, or after all at or above it are dropped), so a
    drop is a cut at a bisection, and a START finds its tags on a heap of their tops: a
    log read once, whatever its steps."""

    def __init__(self, result: Scalars) -> None:
        self.result = result
        self.tops: dict[str, int] = {}
        """The highest step kept of each tag whose order is known."""
        self.heap: list[tuple[int, str]] = []
        """``(-top, tag)``; an entry whose top is no longer the tag's is skipped."""
        self.tangled: dict[str, str] = {}
        """Tags logged back in step by a writer alive beside another, and the file."""
        self.dropped: dict[str, list[int]] = {}
        """Per file: lowest step it restarted from, points dropped, by a START or not."""

    def play(self, label: str, log: list[Entry]) -> None:
        for tag, step, wall, value in log:
            if tag is None:
                self._start(label, step)
            else:
                self._point(label, tag, step, wall, value)

    def _point(self, label: str, tag: str, step: int, wall: float, value: float) -> None:
        points = self.result.setdefault(tag, [])
        top = self.tops.get(tag)
        if tag in self.tangled or top is None or step >= top:
            points.append((step, wall, value))
            if tag not in self.tangled and top != step:
                self._raise(tag, step)
            return
        cut = bisect_left(points, step, key=_step)
        if any(point[1] > wall for point in points[cut:]):
            # logged after this point: another writer's, not a dead session's
            self.tangled[tag] = label
            del self.tops[tag]
            points.append((step, wall, value))
            return
        self._drop(label, step, len(points) - cut, start=False)
        del points[cut:]
        points.append((step, wall, value))
        self._raise(tag, step)

    def _raise(self, tag: str, top: int) -> None:
        self.tops[tag] = top
        heapq.heappush(self.heap, (-top, tag))
        if len(self.heap) > 2 * len(self.tops) + 64:  # mostly stale: one entry per tag
            self.heap = [(-high, name) for name, high in self.tops.items()]
            heapq.heapify(self.heap)

    def _start(self, label: str, step: int) -> None:
        """A ``SessionLog.START`` at ``step``: every point read before at ``step`` or later
        is orphaned (TensorBoard's purge by a restart; tags of unknown order are kept)."""
        while self.heap and -self.heap[0][0] >= step:
            negative, tag = heapq.heappop(self.heap)
            if self.tops.get(tag) != -negative:
                continue
            points = self.result[tag]
            cut = bisect_left(points, step, key=_step)
            self._drop(label, step, len(points) - cut, start=True)
            del points[cut:]
            if points:
                self._raise(tag, points[-1][0])
            else:
                del self.tops[tag]

    def _drop(self, label: str, step: int, count: int, *, start: bool) -> None:
        if not count:
            return
        drop = self.dropped.setdefault(label, [step, 0, 0])
        drop[0] = min(drop[0], step)
        drop[1] += count
        drop[2] |= start

    def finish(self) -> None:
        result = self.result
        for label, (step, count, start) in self.dropped.items():
            how = "at a SessionLog START" if start else "its steps going back"
            result.warn(
                f"{label}: a session restarted from step {step} ({how}): {count} point(s)"
                " an earlier session logged at that step or later dropped as orphaned"
            )
        if self.tangled:
            tag, label = next(iter(self.tangled.items()))
            more = f" and {len(self.tangled) - 1} more" if len(self.tangled) > 1 else ""
            result.doubt(
                f"{tag}{more}: logged back in step by {label} while an earlier event file"
                " still logged it (two writers at once, or clocks apart): which points are"
                " current cannot be told; all kept, in step order"
            )
            for tag in self.tangled:
                result[tag].sort(key=lambda point: (point[0], point[1]))
        for tag in [tag for tag, points in result.items() if not points]:
            del result[tag]


# --- public API ----------------------------------------------------------------------------


def read_scalars(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, verify: bool = True
) -> Scalars:
    """Scalar series of one event file, in file order; never raises.

    Reads at most ``max_bytes`` (a warning says when the file is longer).  ``verify``
    checks every CRC; it costs about a second per 10 MB in pure Python.
    """
    result = Scalars()
    label = os.path.basename(os.fsdecode(path))
    log: list[Entry] = []
    _read_into(lambda: read_capped(path, max_bytes), label, result, {}, log, verify=verify)
    replay = _Replay(result)
    replay.play(label, log)
    replay.finish()
    return result


def read_capped_at(root: Root, rel: str, max_bytes: int) -> tuple[bytes, int]:
    """Up to ``max_bytes`` of a root's event file and its size, read as it is now (a live
    run appends to it: not pinned)."""
    data, more = root.read_capped(rel, max_bytes)
    return data, max(root.stat(rel).size, len(data) + 1) if more else len(data)


def _read_into(
    read: Callable[[], tuple[bytes, int]],
    label: str,
    result: Scalars,
    plugins: dict[str, str],
    log: list[Entry],
    *,
    verify: bool,
) -> None:
    try:
        data, size = read()
    except OSError as exc:
        result.lose(f"{label}: cannot read ({exc.strerror or str(exc).rpartition(': ')[2]})")
        return
    cut = size > len(data)
    if cut:
        result.lose(f"{label}: read the first {len(data)} of {size} bytes", budget=True)
    _decode_events(data, result, plugins, log, label=label, verify=verify, cut=cut)


def is_event_file(name: str) -> bool:
    return "tfevents" in name and not name.endswith((".tmp", ".lock"))


def read_scalars_dir(
    folder: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = MAX_FILES,
    verify: bool = True,
    root: Root | None = None,
    sessions: Sequence[str] | None = None,
) -> Scalars:
    """All event files directly in ``folder`` (not below), merged; never raises.

    Files are read in name order (their names start with the creation time) and
    ``max_bytes`` is the budget for the whole folder.  Their logs are then played in
    the order they were written (the first wall time each holds, then the name): a
    resumed session's file after the dead one's, whose orphaned points it drops (see the
    module's notes).  With ``root``, ``folder`` is a path in that file-layer root (a link
    out of it is refused there); without, a local folder.

    ``sessions`` names sub-folders of ``folder`` that each hold sessions of one run (the
    Hugging Face Trainer's ``runs/<date>_<host>/``, a new one at every start): their
    files are read instead, each sub-folder on a budget of its own, and played together
    as one folder's (a file labelled ``<sub-folder>/<name>``).
    """
    result = Scalars()
    if root is None:
        root, folder = LocalRoot(folder), ""
    folder = os.fsdecode(folder)
    plugins: dict[str, str] = {}
    logs: list[tuple[float, str, list[Entry]]] = []
    for sub in [None] if sessions is None else sessions:
        where = folder if sub is None else join(folder, sub)
        label = (lambda name: name) if sub is None else functools.partial(join, sub)
        for name, log in _read_folder(
            root, where, label, result, plugins, max_bytes, max_files, verify
        ):
            walls = [entry[2] for entry in log if entry[2] > 0]
            logs.append((min(walls, default=0.0), name, log))
    logs.sort(key=lambda item: (item[0], item[1]), reverse=True)
    replay = _Replay(result)
    while logs:  # each log let go once played: its points live on in ``result``
        _, name, log = logs.pop()
        replay.play(name, log)
    replay.finish()
    return result


def _read_folder(
    root: Root,
    folder: str,
    label: Callable[[str], str],
    result: Scalars,
    plugins: dict[str, str],
    max_bytes: int,
    max_files: int,
    verify: bool,
) -> Iterator[tuple[str, list[Entry]]]:
    """``(label, log)`` of each event file directly in ``folder``, read in name order on a
    budget of ``max_bytes``; what is not read is said in ``result``."""
    try:
        entries = root.list_dir(folder, limit=1_000_000)
    except RootError as exc:  # its message names the folder already
        result.lose(f"cannot list {exc}")
        return
    sizes = {e.name: e.size for e in entries if is_event_file(e.name) and e.kind == "file"}
    odd = sorted(e.name for e in entries if is_event_file(e.name) and e.kind not in ("file", "dir"))
    if odd:  # a FIFO, device or link where an event file was written: its records unread
        more = f" and {len(odd) - 1} more" if len(odd) > 1 else ""
        result.lose(f"{label(odd[0])}{more}: not a regular file, not read")
    names = sorted(sizes)
    if len(names) > max_files:
        result.lose(f"{len(names)} event files; read the first {max_files}")
        names = names[:max_files]
    budget = max_bytes
    for name in names:
        if budget <= 0:
            result.lose(f"byte budget spent; skipped {label(name)} and later files", budget=True)
            break
        read = functools.partial(read_capped_at, root, join(folder, name), budget)
        log: list[Entry] = []
        _read_into(read, label(name), result, plugins, log, verify=verify)
        budget -= sizes[name]
        yield label(name), log
