"""The hasher always ends: a file growing under it, a 1 TiB sparse file, a size cap; and
``du`` shows what sparse files really take on disk."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import xxhash
from click.testing import CliRunner

from store.hashing import hash_file
from tui.cli import main

TIB = 1 << 40
GIB = 1 << 30

_GROW = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
size = os.fstat(fd).st_size
print("growing", flush=True)
while True:
    size += 1 << 30
    os.ftruncate(fd, size)
    time.sleep(0.01)
"""


@contextmanager
def growing(path: Path) -> Iterator[None]:
    """A process that grows ``path`` by 1 GiB every 10 ms (sparse: no disk used)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _GROW, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "growing\n"
        deadline = time.monotonic() + 30
        while path.stat().st_size < 2 * GIB and time.monotonic() < deadline:
            time.sleep(0.01)
        yield
    finally:
        proc.kill()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def _sparse(path: Path, size: int, *, data: dict[int, bytes] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.truncate(size)
        for offset, chunk in (data or {}).items():
            out.seek(offset)
            out.write(chunk)
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


def _state(db: Path) -> dict[str, tuple[str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT path, hash_state, verdict_reason FROM artifacts").fetchall()
    finally:
        conn.close()
    return {bytes(p).decode(): (s, r) for p, s, r in rows}


def test_a_growing_file_is_hashed_only_up_to_where_it_was(tmp_path: Path) -> None:
    """Without an expected identity the old hasher read to EOF forever."""
    path = tmp_path / "growing.ckpt"
    path.write_bytes(b"")
    with growing(path):
        started = time.monotonic()
        result = hash_file(str(path))
        took = time.monotonic() - started
    assert result.error == "changed" and result.digest is None
    assert took < 20, took


def test_index_of_a_root_with_a_growing_file_finishes(tmp_path: Path, isolated_cache: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "small.txt").write_bytes(b"at rest")
    path = root / "run" / "model.ckpt"
    path.write_bytes(b"")
    db = tmp_path / "i.db"
    with growing(path):
        started = time.monotonic()
        result = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
        took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    print(f"index with a file growing 1 GiB / 10 ms: {took:.2f}s")
    assert took < 20, took
    assert _state(db)["run/model.ckpt"][0] == "pending"  # hashed again once it rests


def test_a_1_tib_sparse_file_indexes_fast_and_is_marked_skipped(
    tmp_path: Path, isolated_cache: Path
) -> None:
    root = tmp_path / "root"
    _sparse(root / "run" / "model.ckpt", TIB, data={GIB: b"some real bytes"})
    db = tmp_path / "i.db"
    started = time.monotonic()
    result = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    print(f"index of a 1 TiB sparse file: {took:.2f}s")
    assert took < 20, took
    state, reason = _state(db)["run/model.ckpt"]
    assert state == "skipped" and reason is not None and reason.startswith("sparse: ")
    du = CliRunner().invoke(main, ["du", str(root), "--db", str(db), "--json"])
    (usage,) = json.loads(du.stdout)["roots"]
    assert usage["size_bytes"] == TIB and usage["disk_bytes"] < 1 << 20
    text = CliRunner().invoke(main, ["du", str(root), "--db", str(db)]).stdout
    assert "on disk" in text


def test_holes_hash_as_the_zeros_they_read_as(tmp_path: Path) -> None:
    chunks = {0: b"head", 3 * (1 << 20) + 5: b"middle", 9 * (1 << 20): b"tail"}
    sparse = _sparse(tmp_path / "sparse.bin", 10 * (1 << 20), data=chunks)
    dense = tmp_path / "dense.bin"
    dense.write_bytes(sparse.read_bytes())
    assert os.stat(sparse).st_blocks < os.stat(dense).st_blocks  # really sparse here
    expected = xxhash.xxh3_128(dense.read_bytes()).hexdigest()
    assert hash_file(str(sparse)).digest == expected == hash_file(str(dense)).digest


def test_a_size_cap_marks_big_files_skipped(tmp_path: Path, isolated_cache: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    big = root / "run" / "big.bin"
    big.write_bytes(b"\x00not a pickle" * 20_000)
    (root / "run" / "small.bin").write_bytes(b"small")
    past = time.time() - 3600
    for name in ("big.bin", "small.bin"):
        os.utime(root / "run" / name, (past, past))
    db = tmp_path / "i.db"
    result = CliRunner().invoke(
        main, ["index", str(root), "--db", str(db), "--hash-max-size", "100K"]
    )
    assert result.exit_code == 0, result.output
    states = _state(db)
    assert states["run/small.bin"][0] == "done"
    state, reason = states["run/big.bin"]
    assert state == "skipped" and reason is not None
    assert reason.startswith("larger than the hash size cap (102400 bytes)")
    bad = CliRunner().invoke(main, ["index", str(root), "--db", str(db), "--hash-max-size", "x"])
    assert bad.exit_code == 2 and "hash size cap" in bad.stderr


def test_a_skipped_file_keeps_its_reason_beside_what_the_scan_found(
    tmp_path: Path, isolated_cache: Path
) -> None:
    """Bytes that look like a pickle gave a scan reason that hid why the hash was skipped
    (random bytes did so now and then in CI)."""
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    looks_like_a_pickle = b"\x80\x04" + bytes(200_000)
    (root / "run" / "big.bin").write_bytes(looks_like_a_pickle)
    past = time.time() - 3600
    os.utime(root / "run" / "big.bin", (past, past))
    db = tmp_path / "i.db"
    args = ["index", str(root), "--db", str(db), "--hash-max-size", "100K"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    state, reason = _state(db)["run/big.bin"]
    assert state == "skipped" and reason is not None
    cap, _, scan = reason.partition("; ")
    assert cap == "larger than the hash size cap (102400 bytes)"
    assert scan.startswith("corrupt: "), reason  # what the scan says, kept


def test_the_cap_comes_from_the_user_config(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config" / "artlens" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[index]\nhash_max_size = "1K"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "big.bin").write_bytes(b"x" * 5000)
    past = time.time() - 3600
    os.utime(root / "run" / "big.bin", (past, past))
    db = tmp_path / "i.db"
    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    assert _state(db)["run/big.bin"][0] == "skipped"
