"""A test-only ``Root`` that keeps its files in a dict: proof that readers need nothing local.

Everything a reader may rely on is the contract in ``store.root.base``: root-relative paths
checked by ``check_rel``, sorted listings, ``NotFound`` / ``NotAFile`` / ``TooManyEntries``,
and readers pinned to the identity a file had when opened (``ChangedError`` after a
``put``).  Folders exist because a file lies below them, as in an object store.  There is
no path on this machine to fall back on, so a reader that still needs one fails here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from store.root import (
    ChangedError,
    Entry,
    NotAFile,
    NotFound,
    RootError,
    TooManyEntries,
    check_rel,
    join,
)


class MemReader:
    """A reader on one in-memory file, pinned to its generation at open."""

    def __init__(self, root: MemRoot, rel: str) -> None:
        self._root = root
        self._rel = rel
        self._identity = root.identity_of(rel)
        self._size = len(root.files[rel])
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return self._identity

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0:
            raise ValueError("offset and n must not be negative")
        if self._closed:
            raise RootError(f"{self._rel}: reader is closed")
        if self._rel not in self._root.files or self._root.identity_of(self._rel) != self._identity:
            raise ChangedError(f"{self._rel}: changed while being read")
        self._root.reads += 1
        return self._root.files[self._rel][offset : offset + max(0, min(n, self._size - offset))]

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> MemReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemRoot:
    """A ``Root`` over ``files`` (rel -> bytes); ``put`` changes a file as a writer would."""

    def __init__(
        self,
        files: Mapping[str, bytes],
        url: str = "mem://bucket/prefix",
        mtimes: Mapping[str, int] | None = None,
    ) -> None:
        self.files: dict[str, bytes] = {}
        self._generation: dict[str, int] = {}
        self.mtimes: dict[str, int] = {}
        self._dirs: set[str] = {""}
        self._url = url
        self.reads = 0
        """How many ranged reads were served: a test can tell that a reader read here."""
        for rel, data in files.items():
            self.put(rel, data, (mtimes or {}).get(rel))

    @classmethod
    def copy_of(cls, folder: Path, url: str = "mem://bucket/prefix") -> MemRoot:
        """The regular files below a local folder, held in memory (links and FIFOs left out)."""
        files: dict[str, bytes] = {}
        mtimes: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for name in filenames:
                path = Path(dirpath, name)
                if path.is_file() and not path.is_symlink():
                    rel = path.relative_to(folder).as_posix()
                    files[rel] = path.read_bytes()
                    mtimes[rel] = path.stat().st_mtime_ns  # last-modified, as a bucket keeps
        return cls(files, url, mtimes)

    def put(self, rel: str, data: bytes, mtime_ns: int | None = None) -> None:
        """Write (or replace) a file: readers opened before it see ``ChangedError``."""
        parts = check_rel(rel)
        if not parts or rel in self._dirs:
            raise NotAFile(f"{rel or '.'}: is a folder")
        self.files[rel] = data
        self.mtimes[rel] = time.time_ns() if mtime_ns is None else mtime_ns
        self._generation[rel] = self._generation.get(rel, 0) + 1
        for i in range(1, len(parts)):
            self._dirs.add("/".join(parts[:i]))

    def identity_of(self, rel: str) -> str:
        return f"gen{self._generation[rel]}:{len(self.files[rel])}"

    @property
    def url(self) -> str:
        return self._url

    @property
    def scheme(self) -> str:
        return "mem"

    def _entry(self, rel: str) -> Entry:
        name = rel.rpartition("/")[2]
        if rel in self.files:
            size = len(self.files[rel])
            return Entry(name, "file", size, self.mtimes[rel], self.identity_of(rel), None)
        if rel in self._dirs:
            return Entry(name, "dir", 0, 0, "", None)
        raise NotFound(f"{rel}: no such file or folder")

    def stat(self, rel: str) -> Entry:
        check_rel(rel)
        return self._entry(rel)

    def list_dir(self, rel: str = "", *, limit: int = 1_000_000) -> list[Entry]:
        check_rel(rel)
        if rel in self.files:
            raise NotAFile(f"{rel}: not a folder")
        if rel not in self._dirs:
            raise NotFound(f"{rel or '.'}: no such folder")
        prefix = rel + "/" if rel else ""
        names = {
            p[len(prefix) :].partition("/")[0]
            for p in (*self.files, *self._dirs)
            if p and p.startswith(prefix)
        }
        if len(names) > limit:
            raise TooManyEntries(f"{rel or '.'}: more than {limit} entries")
        return [self._entry(join(rel, name)) for name in sorted(names)]

    def open(self, rel: str) -> MemReader:
        check_rel(rel)
        if rel not in self.files:
            if rel in self._dirs:
                raise NotAFile(f"{rel or '.'}: not a regular file")
            raise NotFound(f"{rel}: no such file")
        return MemReader(self, rel)

    def read_capped(self, rel: str, cap: int) -> tuple[bytes, bool]:
        with self.open(rel) as reader:
            data = reader.read_at(0, cap + 1)
        return (data[:cap], True) if len(data) > cap else (data, False)

    def walk(self, rel: str = "", *, limit: int = 10_000_000) -> Iterator[tuple[str, list[Entry]]]:
        stack = [rel]
        seen = 0
        while stack:
            folder = stack.pop()
            entries = self.list_dir(folder, limit=limit - seen)
            seen += len(entries)
            yield folder, entries
            stack.extend(join(folder, e.name) for e in reversed(entries) if e.kind == "dir")
