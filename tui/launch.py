"""The ``artlens`` console script: keep compiled bytecode, then run the CLI.

Container images for ML often set ``PYTHONDONTWRITEBYTECODE`` to keep ``.pyc`` files out of
the image.  An editable install (README's) then has no compiled modules at all, and every
command would compile a hundred of them again from source: 0.15 to 0.2 s before it does
anything.  Here, where bytecode is not written, artlens's own modules (``store``, ``tui``)
keep theirs under a folder of artlens's, never beside the sources; other packages are left
alone (pip compiled theirs when it installed them).  ``ARTLENS_NO_PYCACHE=1`` leaves Python
as it was.  The folder must be the user's own and writable by nobody else: a planted
``.pyc`` there would run as artlens.
"""

from __future__ import annotations

import importlib.machinery
import os
import stat
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

OWN_PACKAGES = ("store", "tui")


def main() -> None:
    keep_bytecode()
    from tui.cli import main as cli
    from tui.cli.common import ends_at_once

    try:
        cli(prog_name="artlens")
    except SystemExit as exc:
        code = exc.code
        if (code is None or isinstance(code, int)) and ends_at_once():
            _end_now(code or 0)
        raise


def _end_now(code: int) -> None:
    """End the process without Python's teardown, once a command said it may: only with
    no other thread alive (it could be writing) and once the output is flushed (a flush
    that fails, a closed pipe, leaves it to Python to report)."""
    import threading

    if threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def bytecode_folders() -> list[str]:
    """Where compiled modules may go, best first: beside the environment artlens is
    installed in (a venv is the user's own; it outlives cache folders a script may make
    afresh for each run), else ``pycache`` in artlens's cache folder."""
    base = os.environ.get("ARTLENS_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(xdg):
            xdg = os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "artlens")
    return [
        os.path.join(sys.prefix, "share", "artlens", "pycache"),
        os.path.join(base, "pycache"),
    ]


def keep_bytecode() -> bool:
    """Keep artlens's bytecode under the first usable of ``bytecode_folders()`` where Python
    was told not to write it beside the sources; True if it now will."""
    if not sys.dont_write_bytecode or sys.pycache_prefix is not None:
        return False
    if os.environ.get("ARTLENS_NO_PYCACHE", "") not in ("", "0"):
        return False
    for folder in bytecode_folders():
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            chain = [folder, os.path.dirname(folder)]
            if not all(_private(os.lstat(path)) for path in chain):
                continue
        except OSError:
            continue
        sys.meta_path.insert(0, _OwnBytecode(folder))
        return True
    return False


class _CachedLoader(importlib.machinery.SourceFileLoader):
    """A source loader that reads and writes its bytecode under ``folder``."""

    def __init__(self, fullname: str, path: str, folder: str) -> None:
        super().__init__(fullname, path)
        self.folder = folder

    def get_code(self, fullname: str) -> Any:
        saved = sys.pycache_prefix, sys.dont_write_bytecode
        sys.pycache_prefix, sys.dont_write_bytecode = self.folder, False
        try:
            return super().get_code(fullname)
        finally:  # the module's own imports run later (exec), with Python's own settings
            # (another thread importing in this window writes its bytecode here too: the
            # folder is private, so that costs a file, never a wrong module)
            sys.pycache_prefix, sys.dont_write_bytecode = saved


class _OwnBytecode:
    """Finds artlens's modules as the other finders do, with ``_CachedLoader``.  A meta
    path finder needs only ``find_spec``: subclassing ``importlib.abc.MetaPathFinder``
    would import ``importlib.resources`` and ``tempfile`` first (8 ms of every start)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in OWN_PACKAGES:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if type(spec.loader) is importlib.machinery.SourceFileLoader and spec.origin:
            spec.loader = _CachedLoader(fullname, spec.origin, self.folder)
        return spec  # type: ignore[no-any-return]


def _private(st: os.stat_result) -> bool:
    """A real folder of this user that no one else may write into."""
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.getuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
