"""Diff engines read through the file layer: a Root's reader diffs as a path does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from store.diff._io import DiffError, RegularFile
from store.root.local import LocalRoot


def test_a_root_reader_reads_and_a_change_under_it_is_a_diff_error(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"0123456789")
    with RegularFile(LocalRoot(tmp_path).open("a.bin"), "a.bin") as handle:
        assert (handle.size, handle.name) == (10, "a.bin")
        assert handle.fd >= 0
        assert list(handle.chunks(2, 9, 3)) == [b"234", b"567", b"8"]
        os.truncate(tmp_path / "a.bin", 4)
        with pytest.raises(DiffError, match="changed while it was being compared"):
            handle.read_at(0, 4)
        with pytest.raises(DiffError):
            handle.check()
    with pytest.raises(DiffError, match="not a regular file"):
        RegularFile(tmp_path)
