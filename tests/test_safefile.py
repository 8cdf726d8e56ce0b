"""The one safe way store opens an artifact."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from store.safefile import NotRegularFileError, open_regular


def test_a_regular_file_opens(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    fd, st = open_regular(tmp_path / "a.txt")
    try:
        assert st.st_size == 5 and os.read(fd, 10) == b"hello"
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink", "dangling"])
def test_anything_else_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target.txt"
    target.write_text("x")
    path = tmp_path / "thing"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    elif kind == "folder":
        path.mkdir()
    elif kind == "symlink":
        path.symlink_to(target)
    else:
        path.symlink_to(tmp_path / "missing")
    with pytest.raises(NotRegularFileError) as caught:
        open_regular(path)
    expected = {"fifo": stat.S_ISFIFO, "folder": stat.S_ISDIR}.get(kind, stat.S_ISLNK)
    assert expected(caught.value.mode)


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "nope")
