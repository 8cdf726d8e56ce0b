"""``sqlite_utils`` imported without numpy and pandas.

``sqlite_utils.db`` imports numpy and pandas, when installed, only to map their scalar types
to column types for ``insert``; artlens never inserts such values (every write is plain SQL
in ``store.index.write``).  On an ML machine both are installed, and importing them is most
of what a CLI command spends before it does anything (numpy about 0.1 s, pandas several
times that).  While ``sqlite_utils.db`` first runs, the two are made to look absent; they
import normally afterwards (tensor diffs use numpy).

Only when this is the one thread alive: another thread importing numpy at that moment would
get an ImportError, so with more threads the import is left as it is.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Loader

TARGET = "sqlite_utils.db"
HIDDEN = ("numpy", "pandas")


class _HidingLoader:
    """A loader wrapped (a plain class: ``importlib.abc`` costs 8 ms of every start)."""

    def __init__(self, real: Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        hidden = [] if threading.active_count() > 1 else [n for n in HIDDEN if n not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # "import numpy" raises ImportError
        try:
            self.real.exec_module(module)
        finally:
            for name in hidden:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]


class _Finder:
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _HidingLoader(spec.loader)  # type: ignore[assignment]
        return spec


_finder = _Finder()


def install() -> None:
    """Take effect on the first import of ``sqlite_utils.db`` (not yet imported)."""
    if TARGET not in sys.modules and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
