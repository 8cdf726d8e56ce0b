"""Read a plan's rows from both ends: this process from the first ids, a helper from the last.

A plan over a million artifacts spent a third of its time in the sqlite3 module, turning
rows into Python objects on the one core the plan's own work needs.  The row pass is cut
into blocks of ids.  This process reads them in order, first to last; a helper process
reads them on another core from the last backwards and sends each down a pipe as
``marshal`` bytes, which load in a quarter of the time.  When this process reaches a block
the helper sent, it takes it instead of reading it, and stops the helper (every later
block is sent): where they meet depends on how fast each goes, so a helper on a busy core
costs little (this process reads more itself), and the rows come in the order one pass
would give them whoever read each block.  A pump of the "plan" shape hands on each block
worked out where it was read (``plan_block``), so that the helper's core does that work
for its blocks too.

The helper is a fresh interpreter (``-I -S``: the standard library only), never a fork:
SQLite must not be carried across ``fork()``.  Its blocks are used only when they come
from the plan's own snapshot of the index: the caller reads ``PRAGMA data_version`` on a
probe connection before its own read transaction starts (``Probe``), and again once the
helper's has begun; equal values mean no commit came between, so both read the same index.
Otherwise, or when the helper fails in any way, this process reads every block itself.

This file runs as the helper too (``python -I -S rowpump.py``): it imports only the
standard library at the top.
"""

from __future__ import annotations

import gc
import itertools
import marshal
import os
import select
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from operator import is_, is_not, itemgetter
from typing import Any
from urllib.parse import quote

BLOCK_IDS = 16_384
"""Ids a block: small enough that the two readers meet close to the middle, big enough
that a query per block costs nothing."""
MAX_FRAME = 256 << 20
"""A frame bigger than this is no helper's: the helper is dropped (this process reads)."""
FRAME_TIMEOUT = 30.0
"""Seconds of a silent helper before it is dropped."""
WAIT_FOR_HELPER = 0.0
"""Seconds a plan waits, before its first block, for the helper to send every block: 0,
never (tests wait, to be sure which blocks the helper's rows make)."""
PUMP_AFTER = 300_000
"""Artifacts an index holds (its largest id) before a plan starts a helper: at 200,000
(138,000 rows to read) the helper's start and the pipe ate what it saved."""

ENDS_SQL = (
    "SELECT coalesce((SELECT min(id) FROM artifacts), 0), "
    "coalesce((SELECT max(id) FROM artifacts), 0)"
)
"""The table's first and last ids, each looked up on its own: asked for both in one
aggregate, SQLite reads a whole index (0.1 s at a million artifacts)."""

_HEAD = struct.Struct("=Qq")
"""A frame's size and what it is: a block's index, or one of the two below."""
_SNAPSHOT, _ONES = -1, -2


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


def blocks(low: int, high: int, width: int) -> list[tuple[int, int]]:
    """Ids ``low`` to ``high`` as consecutive blocks of ``width``; the first starts and the
    last ends at SQLite's limits, so that the blocks hold every id, whatever the table's
    ends were when ``low`` and ``high`` were read."""
    edges = list(range(low, high + 1, max(1, width))) or [low]
    spans = [(start, start + width - 1) for start in edges]
    spans[0] = (_MIN_ID, spans[0][1])
    spans[-1] = (spans[-1][0], _MAX_ID)
    return spans


PlanBlock = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]
"""A block of a plan's row pass, digested by ``plan_block``: file stretches, folder rows,
folder stretches."""


def plan_block(rows: list[tuple[Any, ...]]) -> PlanBlock:
    """The rows of a plan's pass (``candidates._ROWS``: run_id, path, size, mtime_ns,
    inode, ftype, hash, parent) as the plan takes them, worked out where they were read:
    in the helper, on its own core, for the blocks it sends.

    - each stretch of one run's consecutive rows outside checkpoint folders (no parent),
      as columns: ``(run_id, paths, names, sizes, mtimes, inodes, ftypes, hashes)``, the
      paths decoded (``surrogateescape``) and their last components;
    - the rows that may be inside a checkpoint folder, unchanged;
    - each stretch of those rows of one (run, folder): ``(run_id, parent, bytes, newest
      mtime, whether one is no link)``.

    Stretches are consecutive rows, so a plan reading the blocks in order sees what one
    pass would, cut at the blocks' edges.
    """
    parents = list(map(_PARENT, rows))
    loose = parents.count(None)
    if loose == len(rows):
        file_rows, folder_rows = rows, []
    elif not loose:
        file_rows, folder_rows = [], rows
    else:
        file_rows = list(itertools.compress(rows, map(is_, parents, _repeat(None))))
        folder_rows = list(itertools.compress(rows, map(is_not, parents, _repeat(None))))
    files: list[tuple[Any, ...]] = []
    for run_id, stretch in itertools.groupby(file_rows, _RUN):
        _, blobs, sizes, mtimes, inodes, ftypes, hashes, _ = zip(*stretch, strict=True)
        paths = list(map(bytes.decode, blobs, _repeat("utf-8"), _repeat("surrogateescape")))
        names = [path[path.rfind("/") + 1 :] for path in paths]
        files.append((run_id, paths, names, sizes, mtimes, inodes, ftypes, hashes))
    folders: list[tuple[Any, ...]] = []
    for (run_id, parent), stretch in itertools.groupby(folder_rows, _RUN_PARENT):
        _, _, sizes, mtimes, _, ftypes, _, _ = zip(*stretch, strict=True)
        holds = ftypes.count("symlink") < len(ftypes)
        folders.append((run_id, parent, sum(sizes), max(mtimes), holds))
    return files, folder_rows, folders


def _plan_block_like(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(p, list) for p in data)


_PARENT = itemgetter(7)
_RUN = itemgetter(0)
_RUN_PARENT = itemgetter(0, 7)
_repeat = itertools.repeat


def _as_read(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return rows


SHAPES: dict[str, tuple[Callable[[list[tuple[Any, ...]]], Any], Callable[[Any], bool]]] = {
    "rows": (_as_read, lambda data: isinstance(data, list)),
    "plan": (plan_block, _plan_block_like),
}
"""What a block is handed on as: its rows, or a plan's digest of them; and what a
helper's block of that shape must look like to be taken."""


_MIN_ID, _MAX_ID = -(1 << 63), (1 << 63) - 1


class RowPump:
    """The rows of ``rows_sql`` (which takes ``param`` and a block's first and last id)
    block by block, first to last, each read here or taken from a helper reading from the
    last; and the single row of each of ``one_sql`` (which take ``param``), from the helper
    when it sent them."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        probe: Probe,
        rows_sql: str,
        one_sql: list[str],
        param: int,
        shape: str = "rows",
    ) -> None:
        self._conn = conn
        self._shape, self._shaped_like = SHAPES[shape]
        self._probe = probe
        self._rows_sql = rows_sql
        self._one_sql = one_sql
        self._param = param
        low, high = conn.execute(ENDS_SQL).fetchone()
        self._spans = blocks(low, high, BLOCK_IDS)
        self._sent: dict[int, bytearray] = {}
        self._ones: bytearray | None = None
        self._verified = False
        self._ended = False
        self._lock = threading.Condition()
        self.taken = 0
        """Blocks taken from the helper rather than read here."""
        if not sys.executable:
            raise OSError("no interpreter to start a helper with")
        args = [probe.path, str(param), str(low), str(high), str(BLOCK_IDS), shape]
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), *args, rows_sql, *one_sql],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            bufsize=0,  # read by fd, with select: nothing may wait in a buffer
        )
        _widen_pipe(self._proc.stdout)
        self._reader = threading.Thread(
            target=self._drain, args=(self._proc,), name="plan row helper", daemon=True
        )
        try:
            self._reader.start()
        except RuntimeError:  # no thread to be had: no helper either
            self._proc.kill()
            self._proc.wait()
            raise

    def row_blocks(self) -> Iterator[Any]:
        """Each block, first to last, in the pump's shape: its rows (flatten with
        ``itertools.chain``: no Python frame per row) or a ``plan_block``.

        Once this process reaches a block the helper sent, the helper has sent every
        later one (it reads from the last): it is stopped then, not left reading blocks
        read here already."""
        if WAIT_FOR_HELPER:
            self.wait_sent(WAIT_FOR_HELPER)
        met = False
        for index, (first, last) in enumerate(self._spans):
            with self._lock:
                data = self._sent.pop(index, None) if self._verified else None
            if data is not None:
                if not met:
                    met = True
                    self._stop_helper()
                try:
                    block = marshal.loads(data)
                except (EOFError, TypeError):
                    block = None
                if not self._shaped_like(block):
                    # a frame whole but holding no such block: nothing it sent is trusted,
                    # the caller reads again (``make_plan`` does, every block itself)
                    raise ValueError("the plan's row helper sent no such block")
                self.taken += 1
                yield block
                continue
            rows = self._conn.execute(self._rows_sql, (self._param, first, last))
            yield rows if self._shape is _as_read else self._shape(rows.fetchall())
        self.close()

    def _stop_helper(self) -> None:
        """Stop the helper's reading; what it sent stays to be taken."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def ones(self) -> list[tuple[Any, ...]]:
        """The single row of each of ``one_sql``: the helper's, or read here."""
        with self._lock:
            data = self._ones if self._verified else None
        if data is not None:
            try:
                found = marshal.loads(data)
            except (ValueError, EOFError, TypeError):
                found = None
            if (
                isinstance(found, list)
                and len(found) == len(self._one_sql)
                and all(isinstance(row, tuple) for row in found)
            ):
                return found
        return [tuple(self._conn.execute(sql, (self._param,)).fetchone()) for sql in self._one_sql]

    def wait_sent(self, timeout: float, blocks: int | None = None) -> int:
        """Wait until the helper sent ``blocks`` blocks (every one by default), ended or
        was refused, or ``timeout`` seconds passed; return how many it sent."""
        wanted = len(self._spans) if blocks is None else blocks
        with self._lock:
            self._lock.wait_for(lambda: self._ended or len(self._sent) >= wanted, timeout)
            return len(self._sent) if self._verified else 0

    def close(self) -> None:
        """End the helper (it may still be reading) and its reader thread."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._reader.join(FRAME_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
        with self._lock:
            self._sent.clear()

    def __enter__(self) -> RowPump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        """The reader thread: take the helper's frames off the pipe as they come, so that
        it never waits for this process to be ready for them.  Anything unexpected ends
        the taking (what was taken stays good: each frame is whole)."""
        try:
            self._take_frames(proc.stdout.fileno() if proc.stdout is not None else -1)
        except (OSError, EOFError, ValueError):
            pass
        finally:
            with self._lock:
                self._ended = True
                self._lock.notify_all()

    def _take_frames(self, fd: int) -> None:
        while True:
            size, what = _HEAD.unpack(_read_exactly(fd, _HEAD.size))
            if size > MAX_FRAME:
                return
            data = _read_exactly(fd, size)
            with self._lock:
                if what == _SNAPSHOT:
                    self._verified = self._probe.unchanged()
                    if not self._verified:
                        return
                elif not self._verified:
                    return  # no frame before the snapshot's
                elif what == _ONES:
                    self._ones = data
                elif 0 <= what < len(self._spans):
                    self._sent[what] = data
                else:
                    return
                self._lock.notify_all()


def _read_exactly(fd: int, size: int) -> bytearray:
    data = bytearray(size)
    view = memoryview(data)
    done = 0
    while done < size:
        ready, _, _ = select.select([fd], [], [], FRAME_TIMEOUT)
        if not ready:
            raise EOFError("the helper went silent")
        got = os.readv(fd, [view[done:]])
        if not got:
            raise EOFError("the helper ended")
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
    """The helper: one transaction; ``snapshot`` once it has begun, then the single rows,
    then the blocks from the last to the first (until it is stopped), each frame a head
    (size, what) and a ``marshal`` payload on stdout."""
    path, param_text, low, high, width, shape_name, rows_sql, *one_sql = argv
    param = int(param_text)
    shape = SHAPES[shape_name][0]
    spans = blocks(int(low), int(high), int(width))
    gc.disable()  # rows make no cycles: a collection per 700 of them would find nothing
    out = sys.stdout.buffer

    def send(what: int, payload: Any) -> None:
        data = marshal.dumps(payload)
        out.write(_HEAD.pack(len(data), what))
        out.write(data)
        out.flush()

    conn = sqlite3.connect(_ro_uri(path), uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM roots").fetchone()  # the snapshot starts here
    send(_SNAPSHOT, None)
    send(_ONES, [tuple(conn.execute(sql, (param,)).fetchone()) for sql in one_sql])
    for index in range(len(spans) - 1, -1, -1):
        first, last = spans[index]
        send(index, shape(conn.execute(rows_sql, (param, first, last)).fetchall()))


if __name__ == "__main__":
    try:
        _serve(sys.argv[1:])
    except BaseException:  # this process reads the rows itself: nothing to report
        sys.exit(1)
