"""The index as a stream of JSON lines, for another machine's mirror (``artlens feed``).

A client pulls with the last event id it applied.  The stream is one read transaction (a
consistent snapshot of the index), written line by line so the server never holds the
index in memory:

``header`` (protocol, host, index id, newest event id, mode), every ``root``, every
``run``, then either a ``sync`` block per root (mode ``snapshot``: first pull, or a client
whose cursor this index cannot serve) or, per change ``event`` after the cursor, a ``sync``
block of the rows at and below the path it touched (mode ``changes``), then ``recheck``
rows (files the client still holds unhashed), and a ``trailer`` with the last event id.

A ``sync`` block lists the current ``dir`` and ``artifact`` rows at and below one path and
ends with ``sync_end``: the client drops what it holds there and was not listed.  Paths are
raw bytes: a path that is not UTF-8 is sent as ``path_b64`` as well.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from store import paths
from store.index.events import REMOVALS, kind_of
from store.index.query import path_bytes
from store.jsonstrict import finite
from store.safeparse import load_json

if TYPE_CHECKING:
    import sqlite_utils

PROTOCOL = 1
SNAPSHOT_EVENTS = 200_000
"""A client this many events behind gets a snapshot: cheaper than replaying them."""
MAX_EVENTS = 100_000
"""Events sent in one stream; a client further behind pulls again from the trailer's id."""
PAGE = 2000
"""Rows read from SQLite per query while streaming."""

_ART_COLUMNS = (
    "id, root_id, run_id, path, parent, name, kind, ftype, link_target, size, mtime_ns,"
    " inode, dev, hash, hash_state, verdict, verdict_reason, first_seen, last_seen"
)
_RUN_COLUMNS = (
    "id, root_id, path, name, framework, experiment, started, last_write, status, params,"
    " metrics, meta, size_bytes, n_artifacts, updated_at"
)


def put_path(obj: dict[str, Any], name: str, value: bytes | None) -> None:
    """``obj[name]`` as text; bytes that are not UTF-8 also as ``name_b64``."""
    if value is None:
        obj[name] = None
        return
    try:
        obj[name] = value.decode("utf-8")
    except UnicodeDecodeError:
        obj[name] = paths.display(value)
        obj[name + "_b64"] = base64.b64encode(value).decode("ascii")


def _loads(text: str | None) -> Any:
    try:
        return load_json(text or "{}")
    except ValueError:
        return {}


def index_id(db: sqlite_utils.Database) -> str:
    """Names this index: a rebuilt index (new roots rows) gets a new id, and the client
    starts its mirror afresh instead of applying event ids of another index."""
    h = hashlib.sha256()
    for rid, path, added in db.conn.execute("SELECT id, path, added_at FROM roots ORDER BY id"):
        h.update(f"{rid}:{added!r}:".encode() + path_bytes(path, "roots.path") + b"\0")
    return h.hexdigest()[:24]


def _count(text: str) -> bool:
    """ASCII digits, few enough for int(): "²".isdigit() is true and int() refuses it."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def parse_ranges(text: str, *, max_ranges: int = 1000) -> list[tuple[int, int]]:
    """``"3-9,12-12"`` as [(3, 9), (12, 12)]; raises ValueError on anything else."""
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not sep or not _count(lo) or not _count(hi):
            raise ValueError(f"bad id range {part[:40]!r}")
        if int(lo) > int(hi):
            raise ValueError(f"bad id range {part[:40]!r}")
        out.append((int(lo), int(hi)))
        if len(out) > max_ranges:
            raise ValueError(f"more than {max_ranges} id ranges")
    return out


class Feed:
    """One stream of the index after event ``after``; iterate for the lines' objects."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        after: int,
        *,
        recheck: list[tuple[int, int]] | None = None,
        host: str | None = None,
    ) -> None:
        self.db = db
        self.after = after
        self.recheck = recheck or []
        self.host = host or socket.gethostname()

    def lines(self) -> Iterator[dict[str, Any]]:
        c = self.db.conn
        if c.in_transaction:
            c.rollback()
        c.execute("BEGIN")  # one snapshot for the whole stream
        try:
            yield from self._lines()
        finally:
            c.rollback()

    def _lines(self) -> Iterator[dict[str, Any]]:
        c = self.db.conn
        newest, oldest, count = c.execute(
            "SELECT coalesce(max(id), 0), coalesce(min(id), 0), count(*) FROM events"
        ).fetchone()
        behind = c.execute("SELECT count(*) FROM events WHERE id > ?", [self.after]).fetchone()[0]
        snapshot = (
            self.after <= 0
            or self.after > newest
            or (count and self.after < oldest - 1)
            or behind > SNAPSHOT_EVENTS
        )
        yield {
            "t": "header",
            "protocol": PROTOCOL,
            "host": self.host,
            "index_id": index_id(self.db),
            "newest": int(newest),
            "after": self.after,
            "mode": "snapshot" if snapshot else "changes",
        }
        root_ids = []
        for rid, path, added_at, last_full_scan in c.execute(
            "SELECT id, path, added_at, last_full_scan FROM roots ORDER BY id"
        ).fetchall():
            root_ids.append(int(rid))
            line: dict[str, Any] = {"t": "root", "id": rid}
            put_path(line, "path", path_bytes(path, "roots.path"))
            line.update(added_at=added_at, last_full_scan=last_full_scan)
            yield line
        root_set = set(root_ids)
        yield from self._runs()
        last = int(newest)
        if snapshot:
            for rid in root_ids:
                yield from self._sync(rid, b"")
        else:
            last = self.after
            done: set[tuple[int, bytes]] = set()
            dirs_done: set[tuple[int, bytes]] = set()
            sent = 0
            while sent < MAX_EVENTS:
                rows = c.execute(
                    "SELECT id, ts, kind, root_id, run_id, path FROM events WHERE id > ?"
                    " ORDER BY id LIMIT ?",
                    [last, min(PAGE, MAX_EVENTS - sent)],
                ).fetchall()
                if not rows:
                    break
                for eid, ts, kind, root_id, run_id, path in rows:
                    last, sent = int(eid), sent + 1
                    key = path_bytes(path, "events.path") if path is not None else None
                    event: dict[str, Any] = {
                        "t": "event",
                        "id": eid,
                        "ts": ts,
                        "kind": kind,
                        "root_id": root_id,
                        "run_id": run_id,
                    }
                    put_path(event, "path", key)
                    yield event
                    if root_id not in root_set or key is None:
                        continue  # an event of a root removed since: nothing to send
                    if not _covered(done, root_id, key):
                        done.add((root_id, key))
                        yield from self._sync(int(root_id), key)
                    if kind_of(kind) in REMOVALS:
                        # folders emptied and removed write no event of their own
                        folder = self._nearest_folder(int(root_id), paths.parent_key(key))
                        if not _covered(done, root_id, folder, dirs_done):
                            dirs_done.add((root_id, folder))
                            yield from self._sync(int(root_id), folder, dirs_only=True)
        yield from self._recheck()
        yield {"t": "trailer", "last_event": last, "newest": int(newest)}

    def _runs(self) -> Iterator[dict[str, Any]]:
        last = -1
        while True:
            rows = self.db.conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id > ?"
                " AND root_id IN (SELECT id FROM roots) ORDER BY id LIMIT ?",
                [last, PAGE],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                last = int(row[0])
                line: dict[str, Any] = {"t": "run", "id": row[0], "root_id": row[1]}
                put_path(line, "path", path_bytes(row[2], "runs.path"))
                line.update(
                    name=row[3],
                    framework=row[4],
                    experiment=row[5],
                    started=row[6],
                    last_write=row[7],
                    status=row[8],
                    params=_loads(row[9]),
                    metrics=_loads(row[10]),
                    meta=_loads(row[11]),
                    size_bytes=row[12],
                    n_artifacts=row[13],
                    updated_at=row[14],
                )
                yield line

    def _nearest_folder(self, root_id: int, key: bytes) -> bytes:
        """``key`` or its nearest ancestor the index still lists as a folder."""
        while (
            key
            and not self.db.conn.execute(
                "SELECT 1 FROM dirs WHERE root_id = ? AND path = ?", [root_id, key]
            ).fetchone()
        ):
            key = paths.parent_key(key)
        return key

    def _sync(
        self, root_id: int, key: bytes, *, dirs_only: bool = False
    ) -> Iterator[dict[str, Any]]:
        head: dict[str, Any] = {"t": "sync", "root_id": root_id}
        put_path(head, "path", key)
        if dirs_only:
            head["dirs_only"] = True
        yield head
        lo, hi = paths.prefix_range(key)
        # the row at ``key`` itself, then the range below it, in the unique index's order
        # (an OR of both would make SQLite sort every page)
        exact = ([("root_id = ? AND path = ?", [root_id, key])] if key else []) + [
            ("root_id = ? AND path >= ? AND path < ?", [root_id, lo, hi])
        ]
        for where, args in exact:
            yield from self._paged(
                "SELECT path, parent, mtime_ns FROM dirs", where, args, _dir_line, "path", 0
            )
        for where, args in [] if dirs_only else exact:
            yield from self._paged(
                f"SELECT {_ART_COLUMNS} FROM artifacts", where, args, _art_line, "path", 3
            )
        yield {"t": "sync_end"}

    def _paged(
        self,
        select: str,
        where: str,
        args: list[Any],
        to_line: Callable[[tuple[Any, ...]], dict[str, Any]],
        order: str,
        order_at: int,
    ) -> Iterator[dict[str, Any]]:
        """Rows in pages keyed on ``order``, so no query result is held whole."""
        last: Any = None
        while True:
            extra, more = ("", []) if last is None else (f" AND {order} > ?", [last])
            rows = self.db.conn.execute(
                f"{select} WHERE {where}{extra} ORDER BY {order} LIMIT ?", [*args, *more, PAGE]
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield to_line(row)
            last = rows[-1][order_at]

    def _recheck(self) -> Iterator[dict[str, Any]]:
        """Files the client holds as unhashed: hashing writes no event, so they are asked
        for by id and sent again once settled."""
        for lo, hi in self.recheck:
            yield from self._paged(
                f"SELECT {_ART_COLUMNS} FROM artifacts",
                "id >= ? AND id <= ? AND hash_state != 'pending'"
                " AND root_id IN (SELECT id FROM roots)",
                [lo, hi],
                _art_line,
                "id",
                0,
            )


def _covered(
    done: set[tuple[int, bytes]], root_id: int, key: bytes, *more: set[tuple[int, bytes]]
) -> bool:
    """Whether a sync of ``key`` or of a folder above it was sent already."""
    for sent in (done, *more):
        if (root_id, key) in sent or any((root_id, a) in sent for a in _ancestors(key)):
            return True
    return False


def _ancestors(key: bytes) -> Iterator[bytes]:
    yield b""
    cut = key.find(b"/")
    while cut >= 0:
        yield key[:cut]
        cut = key.find(b"/", cut + 1)


def _dir_line(row: tuple[Any, ...]) -> dict[str, Any]:
    line: dict[str, Any] = {"t": "dir"}
    put_path(line, "path", path_bytes(row[0], "dirs.path"))
    line["mtime_ns"] = row[2]
    return line


def _art_line(row: tuple[Any, ...]) -> dict[str, Any]:
    line: dict[str, Any] = {"t": "artifact", "id": row[0], "root_id": row[1], "run_id": row[2]}
    put_path(line, "path", path_bytes(row[3], "artifacts.path"))
    line.update(
        kind=row[6],
        ftype=row[7],
        link_target=row[8],
        size=row[9],
        mtime_ns=row[10],
        inode=row[11],
        dev=row[12],
        hash=row[13],
        hash_state=row[14],
        verdict=row[15],
        verdict_reason=row[16],
        first_seen=row[17],
        last_seen=row[18],
    )
    return line


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def encode(obj: dict[str, Any]) -> bytes:
    """One feed line: compact JSON, ASCII only (no byte in it can be a newline), strict: a
    non-finite float is the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``
    (``store.jsonstrict``).  Lone surrogates stay escaped: the client is artlens, and a
    run's ``extra_paths`` must come back byte for byte."""
    try:
        text = _ENCODER.encode(obj)
    except ValueError:
        text = _ENCODER.encode(finite(obj))
    return text.encode() + b"\n"


MAX_RANGE = 64 << 20
"""Bytes one ``artlens cat --range`` call returns at most."""


def open_inside(root: bytes, rel: bytes) -> tuple[int, int]:
    """A descriptor on the regular file ``rel`` below ``root`` and its size.

    Every folder on the way is opened with ``O_NOFOLLOW`` relative to the one before, so no
    symlink (final or intermediate) leads out of the root; ``..`` is refused outright.
    """
    import os
    import stat

    parts = rel.split(b"/")
    if not rel or any(p in (b"", b".", b"..") for p in parts) or b"\0" in rel:
        raise ValueError("not a plain relative path")
    dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, dir_flags)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, dir_flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        file_fd = os.open(parts[-1], flags, dir_fd=fd)
    finally:
        os.close(fd)
    st = os.fstat(file_fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(file_fd)
        raise ValueError("not a regular file")
    return file_fd, st.st_size


def locate(db: sqlite_utils.Database, path: bytes) -> tuple[bytes, bytes]:
    """(root, relative key) of an absolute ``path`` inside an indexed root, deepest root
    first; raises ValueError when no root holds it."""
    best: tuple[bytes, bytes] | None = None
    for (root,) in db.conn.execute("SELECT path FROM roots"):
        root = path_bytes(root, "roots.path")
        if path.startswith(root.rstrip(b"/") + b"/"):
            rel = path[len(root.rstrip(b"/")) + 1 :]
            if best is None or len(root) > len(best[0]):
                best = (root, rel)
    if best is None:
        raise ValueError("not inside an indexed root")
    return best
