"""Hashing through the file layer: a Root's file hashes as the same path does."""

from __future__ import annotations

import os
from pathlib import Path

from store.hashing import hash_at, hash_file
from store.root.local import LocalRoot


def test_hash_at_a_root_matches_hash_file_and_never_leaves_the_root(tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    (top / "w.bin").write_bytes(os.urandom(3 << 20))
    with open(top / "sparse.bin", "wb") as fh:
        fh.write(b"head")
        fh.truncate(64 << 20)
    (tmp_path / "secret.bin").write_bytes(b"secret")
    (top / "away.bin").symlink_to(tmp_path / "secret.bin")
    root = LocalRoot(top)
    for name in ("w.bin", "sparse.bin"):
        by_root, by_path = hash_at(root, name), hash_file(str(top / name))
        assert by_root.digest is not None and by_root.digest == by_path.digest
        assert by_root.head == by_path.head
        assert by_root.version == by_path.version == root.stat(name).identity
    away = hash_at(root, "away.bin")
    assert away.digest is None and away.error is not None and "out of the root" in away.error
    assert hash_at(root, "w.bin", max_bytes=10).skipped
