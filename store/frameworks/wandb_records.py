"""Read a W&B ``run-<id>.wandb`` record log without the wandb or protobuf packages.

Recent wandb versions (0.19+ with wandb-core) write, in offline mode, only this binary
log: no ``config.yaml`` nor ``wandb-summary.json``.  Its framing is LevelDB's log
format: a 7-byte header (``:W&B``, ``0xBEE1``, version), then 32 KiB blocks of
fragments ``crc32 (uint32) | length (uint16) | type (uint8) | data`` where type is
FULL, FIRST, MIDDLE or LAST and the CRC is zlib's CRC-32 of the type byte and data
(CRC-32C is accepted too).  Each reassembled record is a ``wandb_internal.Record``
protobuf; the field numbers below are those of wandb's ``wandb_internal.proto``.

The file is untrusted and often still being written: reads are capped, a bad CRC
drops that fragment (reported), a cut tail keeps what came before, and nothing raises
out of ``read_wandb_file``.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field

from store.frameworks.tfevents import (
    ProtoError,
    WireValue,
    as_double,
    as_int64,
    as_sint64,
    as_text,
    crc32c,
    iter_fields,
    read_capped,
    read_capped_at,
)
from store.root import Root
from store.safeparse import load_json

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_HISTORY = 100_000
MAX_WARNINGS = 50
MAX_JSON = 1024 * 1024

HEADER = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER_LEN = 7
BLOCK_LEN = 32768
FRAGMENT_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

# wandb_internal.Record
_REC_HISTORY, _REC_SUMMARY, _REC_CONFIG = 2, 3, 5
_REC_RUN, _REC_EXIT, _REC_FINAL, _REC_HEADER, _REC_FOOTER, _REC_PREEMPTING = 17, 18, 20, 21, 22, 23


@dataclass
class WandbRecords:
    """What a record log says about one run.

    ``config``: key -> value (decoded JSON); ``summary``: the latest summary, nested
    keys as nested dicts; ``history``: one dict per logged step (``_step`` included),
    thinned evenly once over ``MAX_HISTORY`` rows (the last row is always kept);
    ``meta``: run_id, name, project, entity, group, job_type, notes, tags, host,
    start_time (epoch seconds), exit_code (None while running or after a crash that
    wrote none), git_commit, git_remote, complete (an exit, final or footer record was
    seen), wandb_version, history_rows, records, warnings (same list as ``warnings``).
    """

    config: dict[str, object] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)
    history: list[dict[str, object]] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unread: set[str] = field(default_factory=set)
    """What the log may hold that was not read: "metrics" (history, summary), "params"
    (config); a record skipped or a file not read whole may hold either."""

    def lose(self, message: str, *parts: str) -> None:
        """``warn`` of something the log holds that was not read, noting what it may have
        held (``parts``; by default anything)."""
        self.unread.update(parts or ("metrics", "params"))
        self.warn(message)

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("further warnings suppressed")


# --- framing -------------------------------------------------------------------------------

_TYPE_SEEDS = {kind: zlib.crc32(bytes([kind])) for kind in (FULL, FIRST, MIDDLE, LAST)}


def _crc_ok(expected: int, kind: int, data: bytes) -> bool:
    seed = _TYPE_SEEDS.get(kind)
    if seed is not None and zlib.crc32(data, seed) == expected:
        return True
    return crc32c(bytes([kind]) + data) == expected


def iter_records(data: bytes, out: WandbRecords) -> list[bytes]:
    """Reassembled record payloads; damaged fragments are reported and skipped."""
    records: list[bytes] = []
    if len(data) < HEADER_LEN:
        (out.lose if data else out.warn)("file shorter than the W&B header")
        return records
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER_LEN])
    if ident != HEADER or magic != HEADER_MAGIC:
        out.lose("not a W&B record log (bad header)")
        return records
    out.meta["format_version"] = version
    pos = HEADER_LEN
    end = len(data)
    pending: list[bytes] | None = None
    while pos < end:
        block_left = BLOCK_LEN - pos % BLOCK_LEN
        if block_left < FRAGMENT_HEADER:
            pos += block_left  # block trailer padding
            continue
        if end - pos < FRAGMENT_HEADER:
            out.lose(f"truncated fragment header at byte {pos} (file still being written?)")
            break
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + FRAGMENT_HEADER])
        start = pos + FRAGMENT_HEADER
        if kind == 0 and length == 0:
            pos += block_left  # zero padding: the rest of this block is unused
            continue
        if FRAGMENT_HEADER + length > block_left or kind not in _TYPE_SEEDS:
            out.lose(f"corrupt fragment header at byte {pos}; skipped to the next block")
            pending = None
            pos += block_left
            continue
        if start + length > end:
            out.lose(f"truncated record at byte {pos} (file still being written?)")
            pending = None
            break
        payload = data[start : start + length]
        pos = start + length
        if not _crc_ok(checksum, kind, payload):
            out.lose(f"bad checksum in fragment at byte {start - FRAGMENT_HEADER}; skipped")
            pending = None
            continue
        if kind == FULL:
            if pending is not None:
                out.lose(f"unfinished record before byte {start - FRAGMENT_HEADER}; dropped")
            pending = None
            records.append(payload)
        elif kind == FIRST:
            pending = [payload]
        elif pending is None:
            out.lose(f"record continuation without a start at byte {start - FRAGMENT_HEADER}")
        elif kind == MIDDLE:
            pending.append(payload)
        else:
            pending.append(payload)
            records.append(b"".join(pending))
            pending = None
    if pending is not None:
        out.lose("the last record is incomplete (file still being written?)")
    return records


# --- record decoding -----------------------------------------------------------------------


def _json_value(text: str, out: WandbRecords) -> object:
    if len(text) > MAX_JSON:
        out.warn(f"JSON value of {len(text)} characters kept as text")
        return text
    try:
        value: object = load_json(text)
    except ValueError:
        return text
    return value


def _item(data: bytes, out: WandbRecords) -> tuple[list[str], object]:
    """Key path and value of a ConfigItem, SummaryItem or HistoryItem."""
    key = ""
    nested: list[str] = []
    value: object = None
    for number, _, raw in iter_fields(data):
        if number == 1:
            key = as_text(raw)
        elif number == 2:
            nested.append(as_text(raw))
        elif number == 3:
            value = None
        elif number == 4 and isinstance(raw, int):
            value = bool(raw)
        elif number == 5 and isinstance(raw, int):
            value = as_sint64(raw)
        elif number == 6:
            value = as_double(raw)
        elif number == 7:
            value = as_text(raw)
        elif number in (8, 16):
            value = _json_value(as_text(raw), out)
    return (nested if nested else [key]), value


def _set_path(target: dict[str, object], path: list[str], value: object) -> None:
    node = target
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _remove_path(target: dict[str, object], path: list[str]) -> None:
    node: object = target
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _apply_updates(data: bytes, target: dict[str, object], out: WandbRecords) -> None:
    """A ConfigRecord or SummaryRecord: update (1) and remove (2) items."""
    for number, _, raw in iter_fields(data):
        if number in (1, 2) and isinstance(raw, bytes):
            path, value = _item(raw, out)
            if number == 1:
                _set_path(target, path, value)
            else:
                _remove_path(target, path)


def _timestamp(data: WireValue) -> float | None:
    if not isinstance(data, bytes):
        return None
    seconds = nanos = 0
    for number, _, raw in iter_fields(data):
        if number == 1 and isinstance(raw, int):
            seconds = as_int64(raw)
        elif number == 2 and isinstance(raw, int):
            nanos = as_int64(raw)
    return seconds + nanos / 1e9


def _run(data: bytes, out: WandbRecords) -> None:
    strings = {1: "run_id", 2: "entity", 3: "project", 6: "group", 7: "job_type",
               8: "name", 9: "notes", 12: "sweep_id", 13: "host"}  # fmt: skip
    tags: list[str] = []
    for number, _, raw in iter_fields(data):
        if number in strings:
            text = as_text(raw)
            if text:
                out.meta[strings[number]] = text
        elif number == 4 and isinstance(raw, bytes):
            _apply_updates(raw, out.config, out)
        elif number == 5 and isinstance(raw, bytes):
            _apply_updates(raw, out.summary, out)
        elif number == 10:
            tags.append(as_text(raw))
        elif number == 14 and isinstance(raw, int):
            out.meta["starting_step"] = as_int64(raw)
        elif number == 17:
            start = _timestamp(raw)
            if start is not None:
                out.meta["start_time"] = start
        elif number == 18 and isinstance(raw, int):
            out.meta["resumed"] = bool(raw)
        elif number == 21 and isinstance(raw, bytes):
            for git_number, _, git in iter_fields(raw):
                if git_number in (1, 2) and as_text(git):
                    out.meta["git_remote" if git_number == 1 else "git_commit"] = as_text(git)
    if tags:
        out.meta["tags"] = tags


def _history(data: bytes, out: WandbRecords) -> dict[str, object]:
    row: dict[str, object] = {}
    step: int | None = None
    for number, _, raw in iter_fields(data):
        if number == 1 and isinstance(raw, bytes):
            path, value = _item(raw, out)
            _set_path(row, path, value)
        elif number == 2 and isinstance(raw, bytes):
            for step_number, _, num in iter_fields(raw):
                if step_number == 1 and isinstance(num, int):
                    step = as_int64(num)
    if "_step" not in row and step is not None:
        row["_step"] = step
    return row


def _exit(data: bytes, out: WandbRecords) -> None:
    out.meta["exit_code"] = 0
    for number, _, raw in iter_fields(data):
        if number == 1 and isinstance(raw, int):
            out.meta["exit_code"] = as_int64(raw)
        elif number == 2 and isinstance(raw, int):
            out.meta["runtime"] = as_int64(raw)


def _header(data: bytes, out: WandbRecords) -> None:
    for number, _, raw in iter_fields(data):
        if number == 1 and isinstance(raw, bytes):
            for sub_number, _, sub in iter_fields(raw):
                if sub_number == 1:
                    out.meta["wandb_version"] = as_text(sub)


class _History:
    """History rows, thinned by halving once past ``limit`` so memory stays bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = max(2, limit)
        self.rows: list[dict[str, object]] = []
        self.stride = 1
        self.seen = 0
        self.last: dict[str, object] | None = None

    def add(self, row: dict[str, object]) -> None:
        if self.seen % self.stride == 0:
            self.rows.append(row)
            if len(self.rows) > self.limit:
                self.rows = self.rows[::2]
                self.stride *= 2
        self.seen += 1
        self.last = row

    def result(self) -> list[dict[str, object]]:
        if self.last is not None and (not self.rows or self.rows[-1] is not self.last):
            self.rows.append(self.last)
        return self.rows


def _decode(records: list[bytes], out: WandbRecords, max_history: int) -> None:
    history = _History(max_history)
    closed = False
    for index, payload in enumerate(records):
        try:
            for number, _, raw in iter_fields(payload):
                if not isinstance(raw, bytes):
                    continue
                if number == _REC_HISTORY:
                    history.add(_history(raw, out))
                elif number == _REC_SUMMARY:
                    _apply_updates(raw, out.summary, out)
                elif number == _REC_CONFIG:
                    _apply_updates(raw, out.config, out)
                elif number == _REC_RUN:
                    _run(raw, out)
                elif number == _REC_EXIT:
                    _exit(raw, out)
                    closed = True
                elif number == _REC_HEADER:
                    _header(raw, out)
                elif number in (_REC_FINAL, _REC_FOOTER):
                    closed = True
                elif number == _REC_PREEMPTING:
                    out.meta["preempting"] = True
        except (ProtoError, struct.error) as exc:
            out.lose(f"record {index}: undecodable, skipped ({exc})")
    out.history = history.result()
    if history.stride > 1:
        out.lose(f"{history.seen} history rows thinned to {len(out.history)}", "metrics")
    out.meta["history_rows"] = history.seen
    out.meta["records"] = len(records)
    out.meta["complete"] = closed
    out.meta.setdefault("exit_code", None)


def read_wandb_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_history: int = MAX_HISTORY,
    root: Root | None = None,
) -> WandbRecords:
    """Decode a ``run-<id>.wandb`` file (``path`` in ``root`` when given, else local);
    never raises, problems land in ``warnings``."""
    out = WandbRecords()
    out.meta["warnings"] = out.warnings
    try:
        if root is None:
            data, size = read_capped(path, max_bytes)
        else:
            data, size = read_capped_at(root, os.fsdecode(path), max_bytes)
    except OSError as exc:
        reason = exc.strerror or str(exc).rpartition(": ")[2]
        out.lose(f"cannot read {os.path.basename(os.fsdecode(path))}: {reason}")
        out.meta.setdefault("exit_code", None)
        return out
    if size > len(data):
        out.lose(f"read the first {len(data)} of {size} bytes")
    _decode(iter_records(data, out), out, max_history)
    return out
