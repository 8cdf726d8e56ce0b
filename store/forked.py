"""Run a pure-Python job in a forked child while this process does something else.

A cold index spends most of its time in Python holding the GIL, on a machine with at least
two cores: a thread would only take turns with it.  A forked child shares nothing but what
it was given at the fork (and, forked ``waits=True``, one ``request`` sent later), runs
``job`` and sends back the bytes it returns through a pipe, after any ``tell`` it made.

The child never touches what the parent holds open (SQLite connections, locks): it runs
``job``, writes, and leaves with ``os._exit`` (no atexit, no finalisers, no stdio flush).
Fork is used only where it is safe: Linux, and a process with one thread (another thread
might hold a lock the child would inherit locked).  Any failure of the child, however it
ends, makes ``result`` return None: the caller then does the work itself, so a child can
make the work faster, never its answer different.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable

_COUNTER = struct.Struct("=q")


def can_fork() -> bool:
    """True where forking a helper is safe: Linux, a single-threaded process, not disabled
    with ``ARTLENS_NO_FORK=1``."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and threading.active_count() == 1
        and os.environ.get("ARTLENS_NO_FORK", "") in ("", "0")
        and (os.cpu_count() or 1) > 1
    )


def spare_cores() -> int:
    """Cores this process may run on (its affinity, as a container or ``taskset`` sets
    it) besides the one it runs on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(0, usable - 1)


_request_fd: int | None = None
"""In a child forked ``waits=True``: where its request comes from (see ``request``)."""


def request() -> bytes:
    """In a child forked ``waits=True``: block until the parent ``send``s, and return what it
    sent.  A parent that ends first ends the wait (the job then fails, as it should)."""
    if _request_fd is None:
        raise RuntimeError("not a helper that waits for a request")
    head = _read_exactly(_request_fd, _COUNTER.size)
    (size,) = _COUNTER.unpack(head)
    return _read_exactly(_request_fd, size)


_answer_fd: int | None = None
"""In a child: where its answers go (see ``tell``)."""


def tell(data: bytes) -> None:
    """In a child: send ``data`` to the parent ahead of the job's result; the parent takes
    it with ``message`` (one call each, in order)."""
    if _answer_fd is None:
        raise RuntimeError("not a helper")
    _write_all(_answer_fd, _COUNTER.pack(len(data)) + data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the pipe ended within a message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class Helper:
    """One forked child running ``job(counter)``; ``counter(n)`` publishes progress the
    parent reads with ``progress()`` (a shared page, no syscall).

    With ``waits``, the job starts with ``request()``, which blocks until the parent calls
    ``send``: the child can be forked early, while the parent is small, and given its work
    later.  Forked once the parent holds a whole walk, every page of it the parent then
    touches is copied (copy on write): a tenth of a second at 200k files."""

    def __init__(
        self, job: Callable[[Callable[[int], None]], bytes], *, waits: bool = False
    ) -> None:
        self._shared = mmap.mmap(-1, _COUNTER.size)
        read_fd, write_fd = os.pipe()
        ask_read, ask_write = os.pipe() if waits else (-1, -1)
        try:
            pid = os.fork()
        except OSError:
            for fd in (read_fd, write_fd, ask_read, ask_write):
                if fd >= 0:
                    os.close(fd)
            self._shared.close()
            raise
        if pid == 0:  # the child: never returns
            global _request_fd
            os.close(read_fd)
            if waits:
                os.close(ask_write)
                _request_fd = ask_read
            _child(job, write_fd, self._shared)
        os.close(write_fd)
        if waits:
            os.close(ask_read)
        self.pid = pid
        self._read_fd = read_fd
        self._ask_fd = ask_write
        self._done = False

    def send(self, data: bytes) -> bool:
        """Give a ``waits`` child its request; False if it can no longer take it (it ended,
        or was sent one already): its ``result`` is then None."""
        if self._done or self._ask_fd < 0:
            return False
        fd, self._ask_fd = self._ask_fd, -1
        try:
            _write_all(fd, _COUNTER.pack(len(data)) + data)
        except OSError:  # the child is gone (EPIPE): result() tells the caller
            return False
        finally:
            os.close(fd)
        return True

    def progress(self) -> int:
        """What the child last published with its ``counter``."""
        if self._done:
            return 0
        return int(_COUNTER.unpack_from(self._shared, 0)[0])

    def ready(self) -> bool:
        """True when ``message`` or ``result`` would not block: the child told something,
        or ended (or this helper is finished)."""
        if self._done:
            return True
        poller = select.poll()
        poller.register(self._read_fd, select.POLLIN)
        return bool(poller.poll(0))

    def message(self) -> bytes | None:
        """The next thing the child ``tell``s, blocking until it does; None if the child
        ended first (or failed): the helper is then finished, its ``result`` None."""
        if self._done:
            return None
        if self._ask_fd >= 0:  # never sent its request: it would wait for ever
            self.abandon()
            return None
        try:
            (size,) = _COUNTER.unpack(_read_exactly(self._read_fd, _COUNTER.size))
            return _read_exactly(self._read_fd, size)
        except (OSError, EOFError):
            self.abandon()
            return None

    def result(self) -> bytes | None:
        """The child's bytes once it ended well, else None (it failed, was killed, or sent
        a truncated answer).  Blocks until the child ends."""
        if self._done:
            return None
        if self._ask_fd >= 0:  # never sent its request: it would wait for ever
            self.abandon()
            return None
        chunks = []
        try:
            while True:
                chunk = os.read(self._read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError:
            chunks = []
        finally:
            status = self._reap()
        data = b"".join(chunks)
        if status != 0 or len(data) < 8:
            return None
        (size,) = _COUNTER.unpack_from(data, 0)
        if size != len(data) - 8:
            return None
        return data[8:]

    def abandon(self) -> None:
        """Stop the child and reap it (the caller no longer wants its answer)."""
        if self._done:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> int:
        self._done = True
        os.close(self._read_fd)
        if self._ask_fd >= 0:
            os.close(self._ask_fd)
            self._ask_fd = -1
        self._shared.close()
        while True:
            try:
                _pid, status = os.waitpid(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                return -1
            return os.waitstatus_to_exitcode(status)


def _child(job: Callable[[Callable[[int], None]], bytes], write_fd: int, shared: mmap.mmap) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a Ctrl-C ends the child at once

        def counter(n: int) -> None:
            _COUNTER.pack_into(shared, 0, n)

        global _answer_fd
        _answer_fd = write_fd
        data = job(counter)
        _write_all(write_fd, _COUNTER.pack(len(data)) + data)
        code = 0
    except BaseException:  # the parent redoes the work: nothing to report
        code = 1
    finally:
        os._exit(code)
