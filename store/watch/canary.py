"""The watcher's canary folder: where it writes a file now and then to check that the
observer still delivers events (see ``Watcher._check_canary``).

It lives in the system's temporary folder and its teardown removes it; a watcher killed
before its teardown (the OOM killer, SIGKILL, a lost machine) cannot.  So each folder is
named after its process, and a new one reclaims those of processes that are gone: a
server whose watchers get killed does not collect empty folders in /tmp for ever.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

from store import fsops

PREFIX = "artlens-canary-"
MAX_LISTED = 100_000
"""Entries of the temporary folder looked at, at most (a shared folder may hold many)."""
CANARY_FILES = frozenset({"beat"})
"""What a canary folder holds: one holding anything else is not reclaimed."""


def new_dir() -> str:
    """A new canary folder (mode 0700) named after this process, once stale ones are gone."""
    reclaim_stale()
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def reclaim_stale(folder: str | None = None) -> list[str]:
    """Remove the canary folders in ``folder`` (the temporary folder) left by processes of
    this user that are gone; return their names.  A folder is only reclaimed when it is a
    real folder (no link), this user's, named ``artlens-canary-<pid>-...`` for a pid no
    process has, and holds nothing but the canary's own file; any error leaves it alone."""
    where = folder if folder is not None else tempfile.gettempdir()
    try:
        dir_fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    removed = []
    try:
        with os.scandir(dir_fd) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_LISTED:
                    break
                pid = _pid_of(entry.name)
                if pid is None or pid == os.getpid() or _alive(pid):
                    continue
                with contextlib.suppress(OSError):
                    if _is_ours(dir_fd, entry.name):
                        fsops.remove_at(dir_fd, entry.name)
                        removed.append(entry.name)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return removed


def _pid_of(name: str) -> int | None:
    """The pid in a canary folder's name; None for any other name (older canaries, named
    without one, are left alone)."""
    if not name.startswith(PREFIX):
        return None
    pid, dash, _ = name[len(PREFIX) :].partition("-")
    if not dash or not pid.isdigit() or len(pid) > 10:
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):  # another user's, or not a pid
        return True
    return True


def _is_ours(dir_fd: int, name: str) -> bool:
    """A folder (not a link) of this user's holding only a canary's files."""
    st = os.lstat(name, dir_fd=dir_fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False
    with fsops.opened_dir(dir_fd, [name]) as inner:
        return set(os.listdir(inner)) <= CANARY_FILES
