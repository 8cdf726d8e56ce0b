"""Read a plan's rows in a second process while this one makes units of them.

A plan over a million artifacts spent a third of its time in the sqlite3 module, turning
rows into Python objects on the one core the plan's own work needs.  A helper process reads
them on another core and sends them down a pipe as ``marshal`` chunks, which this process
loads in a quarter of the time.  The helper is a fresh interpreter (``-I -S``: the standard
library only), never a fork: SQLite must not be carried across ``fork()``.

Its rows are used only when they come from the plan's own snapshot of the index.  The
caller reads ``PRAGMA data_version`` on a probe connection before its own read transaction
starts (``Probe``), and again once the helper's has (``RowPump.same_snapshot``): equal
values mean no commit came between, so both read the same index.  Otherwise, or when the
helper fails in any way, the caller reads the rows itself: the helper can make a plan
faster, never its answer different.

This file runs as the helper too (``python -I -S rowpump.py``): it imports only the
standard library at the top.
"""

from __future__ import annotations

import marshal
import os
import select
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

CHUNK_ROWS = 20_000
"""Rows a chunk: big enough that the pipe's cost per chunk is nothing, small enough that
the caller starts before the helper is done."""
MAX_FRAME = 256 << 20
"""A frame bigger than this is no helper's: the pump fails (and the caller reads)."""
FRAME_TIMEOUT = 30.0
"""Seconds to wait for one frame before giving up on the helper."""
PUMP_AFTER = 300_000
"""Artifacts an index holds (its largest id) before a plan starts a helper: at 200,000
(138,000 rows to read) the helper's start and the pipe ate what it saved; at 1M it
saves a seventh of the plan."""

_HEAD = struct.Struct("=Q")


class PumpFailed(Exception):
    """The helper stopped before sending everything: read the rows in this process."""


class Probe:
    """A connection of its own that tells whether anyone committed since it was made."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = sqlite3.connect(_ro_uri(path), uri=True, check_same_thread=False)
        self.version = self._version()

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def unchanged(self) -> bool:
        """True when no connection committed to the index since this probe was made."""
        try:
            return self._version() == self.version
        except sqlite3.Error:
            return False

    def close(self) -> None:
        self._conn.close()


def probe_for(conn: sqlite3.Connection, *, after: int = PUMP_AFTER) -> Probe | None:
    """A probe for a plan's connection when a helper could pay: the index is a file with
    at least ``after`` artifacts on a machine with another core (``after=0`` asks for a
    helper anyway), and the connection is in no transaction yet (its snapshot must start
    after the probe).  None otherwise, or when anything fails."""
    if conn.in_transaction:
        return None  # its snapshot began already
    if after > 0 and (os.cpu_count() or 1) < 2:
        return None  # no other core to read on
    try:
        path = next(
            (row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), ""
        )
        if not path:
            return None  # in memory or temporary: no file for a helper to open
        if after > 0:
            (largest,) = conn.execute("SELECT coalesce(max(id), 0) FROM artifacts").fetchone()
            if largest < after:
                return None
        return Probe(path)
    except (sqlite3.Error, OSError):
        return None


class RowPump:
    """One helper reading ``rows_sql`` (then each of ``one_sql``'s single rows) with one
    ``param``, in one transaction of its own."""

    helped = False
    """Set by the caller once it used the helper's rows."""

    def __init__(self, probe: Probe, rows_sql: str, one_sql: Sequence[str], param: int) -> None:
        self._probe = probe
        if not sys.executable:
            raise OSError("no interpreter to start a helper with")
        self._ones: list[tuple[Any, ...]] | None = None
        self._count = len(one_sql)
        args = [sys.executable, "-I", "-S", os.path.abspath(__file__), probe.path, str(param)]
        args += [str(CHUNK_ROWS), rows_sql, *one_sql]
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            bufsize=0,  # read by fd, with select: nothing may wait in a buffer
        )
        _widen_pipe(self._proc.stdout)

    def same_snapshot(self) -> bool:
        """Wait for the helper's transaction to start; True when it reads what the caller
        does (nothing committed since the probe, which was made before the caller's
        transaction started).  False ends the helper."""
        try:
            if self._frame() != ("snapshot",) or not self._probe.unchanged():
                self.close()
                return False
        except PumpFailed:
            self.close()
            return False
        return True

    def chunks(self) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``rows_sql`` in the helper's order, a chunk at a time (flatten with
        ``itertools.chain.from_iterable``: no Python frame per row); ``PumpFailed`` when
        the helper stops before the end."""
        while True:
            frame = self._frame()
            if frame[0] == "rows" and len(frame) == 2 and isinstance(frame[1], list):
                yield frame[1]
            elif frame[0] == "ones" and len(frame) == 2 and isinstance(frame[1], list):
                if len(frame[1]) != self._count:
                    raise self._fail()
                self._ones = frame[1]
                return
            else:
                raise self._fail()

    def ones(self) -> list[tuple[Any, ...]]:
        """The single row of each of ``one_sql``, once ``chunks`` ran out."""
        if self._ones is None:
            raise self._fail()
        return self._ones

    def close(self) -> None:
        """End the helper (it may still be writing) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()

    def __enter__(self) -> RowPump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self) -> PumpFailed:
        self.close()
        return PumpFailed("the plan's row helper stopped")

    def _frame(self) -> tuple[Any, ...]:
        head = self._read(_HEAD.size)
        (size,) = _HEAD.unpack(head)
        if size > MAX_FRAME:
            raise self._fail()
        try:
            frame = marshal.loads(self._read(size))
        except (ValueError, EOFError, TypeError):
            raise self._fail() from None
        if not isinstance(frame, tuple) or not frame:
            raise self._fail()
        return frame

    def _read(self, size: int) -> bytearray:
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise PumpFailed("the plan's row helper is closed")
        fd = proc.stdout.fileno()
        data = bytearray(size)
        view = memoryview(data)
        done = 0
        while done < size:
            ready, _, _ = select.select([fd], [], [], FRAME_TIMEOUT)
            if not ready:
                raise self._fail()
            got = os.readv(fd, [view[done:]])
            if not got:
                raise self._fail()
            done += got
        return data


def _widen_pipe(pipe: Any) -> None:
    """A 1 MiB pipe where Linux allows it: a sixteenth of the reads and wake-ups."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, AttributeError):
        pass


def _ro_uri(path: str) -> str:
    return f"file:{quote(os.fsencode(path))}?mode=ro"


def _serve(argv: list[str]) -> None:
    """The helper: one transaction, ``snapshot`` once it has begun, the rows in chunks,
    then every single row; each frame a length and a
    ``marshal`` payload on stdout."""
    path, param_text, chunk_text, rows_sql, *one_sql = argv
    param, chunk = int(param_text), int(chunk_text)
    out = sys.stdout.buffer

    def send(frame: tuple[Any, ...]) -> None:
        data = marshal.dumps(frame)
        out.write(_HEAD.pack(len(data)))
        out.write(data)

    conn = sqlite3.connect(_ro_uri(path), uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM roots").fetchone()  # the snapshot starts here
    send(("snapshot",))
    out.flush()
    cursor = conn.execute(rows_sql, (param,))
    while True:
        rows = cursor.fetchmany(chunk)
        if not rows:
            break
        send(("rows", rows))
    send(("ones", [tuple(conn.execute(sql, (param,)).fetchone()) for sql in one_sql]))
    out.flush()


if __name__ == "__main__":
    try:
        _serve(sys.argv[1:])
    except BaseException:  # the caller reads the rows itself: nothing to report
        sys.exit(1)
