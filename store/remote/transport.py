"""Running ``artlens ...`` on a host and reading its answer within bounds.

The host's command is started in its own session without a shell; its stdout is read in
bounded lines (or bounded bytes), its stderr kept only as a last line for the error
message, and the whole exchange has a deadline after which the command is killed.  Every
read waits at most until that deadline: a process the command left behind that still
holds the pipe open (a background child, one in a session of its own) cannot hold the
reader past it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from types import TracebackType

from store.errors import ArtlensError
from store.safetext import visible

MAX_LINE = 8 << 20
"""Bytes of one feed line; a run with large params and metrics stays far below."""
STDERR_KEEP = 4096


class RemoteError(ArtlensError):
    """The host could not be reached or sent something we refuse; one line."""


class Session:
    """One command on a host; use as a context manager (it is killed on exit)."""

    def __init__(self, argv: list[str], *, timeout: float) -> None:
        self.argv = argv
        self.deadline = time.monotonic() + timeout
        self.bytes_read = 0
        self._stderr = b""
        self._timed_out = False
        self._closing = threading.Event()
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise RemoteError(f"cannot run {visible(argv[0])}: {exc.strerror or exc}") from None
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _drain_stderr(self) -> None:
        """Keeps stderr's last bytes; by ``os.read`` once readable, looking at
        ``_closing`` in between: a blocking read would hold the pipe's lock, and its
        ``close``, for as long as a child left behind keeps stderr open."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while not self._closing.is_set():
            if not poller.poll(100):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self._stderr = (self._stderr + chunk)[-STDERR_KEEP:]

    def _expire(self) -> None:
        self._timed_out = True
        self.kill()

    def kill(self) -> None:
        """SIGKILL the command's process group, its leader gone or not: a child it left
        running (and holding the pipe) is in it.  The group keeps the leader's id while
        any member lives, so the id names no other process's group then."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _chunk(self, fd: int, size: int) -> bytes:
        """One ``os.read`` of stdout once it is readable; RemoteError('timed out') when
        the deadline passes first (the command is killed)."""
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0 or self._timed_out:
                self._timed_out = True
                self.kill()
                raise RemoteError("timed out")
            if poller.poll(min(left, 1.0) * 1000):
                return os.read(fd, size)

    def lines(self, *, max_line: int = MAX_LINE, max_bytes: int | None = None) -> Iterator[bytes]:
        """stdout line by line (without the newline); a line over ``max_line``, or a
        stream over ``max_bytes``, is refused as it arrives.

        Split here from 1 MiB reads: ``readline(limit)`` would allocate ``limit`` per call.
        """
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        rest = b""
        while True:
            chunk = self._chunk(fd, 1 << 20)
            if not chunk:
                if rest:
                    raise RemoteError(self.failure("the stream ended in the middle of a line"))
                return
            self.bytes_read += len(chunk)
            if max_bytes is not None and self.bytes_read > max_bytes:
                raise RemoteError(f"the host sent more than {max_bytes} bytes")
            parts = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
            rest = parts.pop()
            if len(rest) > max_line:
                raise RemoteError(f"the host sent a line over {max_line} bytes")
            for part in parts:
                if len(part) > max_line:
                    raise RemoteError(f"the host sent a line over {max_line} bytes")
                yield part

    def read(self, limit: int) -> bytes:
        """At most ``limit`` bytes of stdout (more is refused)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        data = bytearray()
        while len(data) <= limit:
            chunk = self._chunk(fd, min(limit + 1 - len(data), 1 << 20))
            if not chunk:
                break
            data += chunk
            self.bytes_read += len(chunk)
        if len(data) > limit:
            raise RemoteError(
                f"the host sent more than the {limit} bytes asked for" + shell_noise(bytes(data))
            )
        return bytes(data)

    def finish(self, ok: tuple[int, ...] = (0,)) -> int:
        """Wait for the command and return its exit status; one not in ``ok`` becomes a
        RemoteError with its last words."""
        try:
            code = self.proc.wait(timeout=max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._timed_out = True
            self.kill()
            code = self.proc.wait()
        if code not in ok:
            raise RemoteError(self.failure(_exit_status(code)))
        return code

    def ended_early(self) -> str:
        """Why the stream stopped short: the command's exit status and last words."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return self.failure("the stream ended before its trailer")
        if code != 0:
            return self.failure(_exit_status(code))
        return self.failure("the stream ended before its trailer")

    def failure(self, what: str) -> str:
        """``what``, with the timeout or the host's last stderr line, as one line."""
        if self._timed_out:
            return "timed out"
        self._err_thread.join(timeout=1)
        words = self._stderr.decode("utf-8", "replace").strip().splitlines()
        last = visible(" ".join(words[-1].split()))[:300] if words else ""
        return f"{what}: {last}" if last else what

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self.kill()
        self.proc.wait()
        self._err_thread.join(timeout=2)
        self._closing.set()
        self._err_thread.join()  # at most one poll interval: then stderr may be closed
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if self._timed_out and exc_type is not None and not isinstance(exc, RemoteError):
            raise RemoteError("timed out") from None


NOT_FOUND = 127
"""What a shell exits with when it finds no such command."""


def _exit_status(code: int) -> str:
    """The exit status, with what to do when the host's shell found no ``artlens``: ssh
    runs commands in a non-interactive shell, whose PATH often lacks a venv or ~/.local/bin
    where artlens was installed."""
    if code != NOT_FOUND:
        return f"exit status {code}"
    return (
        f"exit status {code} (no artlens on the PATH there? give its path: "
        "`artlens remote add NAME --command 'ssh HOST /path/to/artlens'`)"
    )


def shell_noise(raw: bytes) -> str:
    """Why an answer may not be what artlens wrote, for an error: a host whose shell prints
    a greeting (``echo`` in ~/.bashrc) puts it before what artlens sends, over ssh as
    rsync and scp know ("is your shell clean?")."""
    start = visible(raw[:60].decode("utf-8", "replace").split("\n", 1)[0].strip())
    seen = f" (it starts {start!r})" if start else ""
    return (
        f"{seen}; does the host's shell print something when it starts? ~/.bashrc must be "
        "quiet for ssh commands"
    )
