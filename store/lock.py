"""One writer per index, enforced with an advisory lock file.

``flock`` is released by the kernel when the holder dies (even by SIGKILL), so a crash
never leaves a stale lock.  The holder writes who it is into the lock file, so a second
writer can say exactly which process holds the index.  Writers coexist: a watcher that
starts while a one-shot writer (``index``, ``retention apply``, ``trash ...``) holds the
lock waits for it (``acquire(wait=True)``), and ``artlens index`` asks a running watcher
to rescan instead (``store.watch.rescan``).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from store.errors import ArtlensError
from store.safeparse import load_json

_T = TypeVar("_T")

WAIT_POLL_SECONDS = 0.2
LONG_LIVED_ROLES = frozenset({"watch"})
"""Holders worth no wait: they run until stopped."""


class WriterBusyError(ArtlensError, RuntimeError):
    """Another process is the index's writer."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class WriterLock:
    """Exclusive, non-blocking writer lock on an index database."""

    def __init__(self, db_path: Path | str, role: str = "writer") -> None:
        self.db_path = Path(db_path)
        self.role = role
        self._fd: int | None = None

    def acquire(
        self,
        *,
        wait: bool = False,
        on_wait: Callable[[str], None] | None = None,
        give_up: Callable[[], bool] | None = None,
    ) -> None:
        """Take the lock, or raise ``WriterBusyError`` naming the holder.

        With ``wait``, a one-shot holder (anything but a watcher) is waited for:
        ``on_wait`` hears who once, ``give_up`` is asked every 0.2 s.
        """
        path = lock_path(self.db_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(fd)
                role = _read_info(fd).get("role")
                if not wait or role in LONG_LIVED_ROLES or (give_up is not None and give_up()):
                    os.close(fd)
                    raise WriterBusyError(
                        f"the index {self.db_path} is already being written by {holder}"
                    ) from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for {holder} to finish writing the index")
                    told = True
                time.sleep(WAIT_POLL_SECONDS)
            except BaseException:
                os.close(fd)
                raise
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "role": self.role,
            "cmd": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_info(fd: int) -> dict[str, Any]:
    try:
        info = load_json(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _read_holder(fd: int) -> str:
    info = _read_info(fd)
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(info.get("since", 0))))
    return (
        f"pid {info.get('pid')} on {info.get('host')} ({info.get('role')}: "
        f"{info.get('cmd')}) since {since}"
    )


def holder(db_path: Path | str) -> str | None:
    """Who holds the writer lock, or None when nobody does."""
    return _peek(db_path, _read_holder)


def holder_info(db_path: Path | str) -> dict[str, Any] | None:
    """What the holder of the writer lock wrote about itself (pid, role, ...), or None
    when nobody holds it."""
    try:
        return _peek(db_path, _read_info)
    except OSError:
        return None


def _peek(db_path: Path | str, read: Callable[[int], _T]) -> _T | None:
    """``read`` of the lock file while another process holds the lock; None when nobody
    does (no lock file, or a shared lock is granted at once)."""
    try:
        fd = os.open(lock_path(Path(db_path)), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
