"""Sparse files (``os.truncate`` to 1 TiB, a few bytes written) diffed by what is on disk:
a hole in both files reads as zeros in both, so it is equal there without a read.  Before,
``artlens diff`` of two 1 TiB sparse files read 2 TiB of zeros (and the diff pane's worker
with it) and a tensor diff of two sparse safetensors did the same.  Bytes read are
measured by the kernel's count for this process (``/proc/self/io`` rchar), not by time."""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import xxhash
from click.testing import CliRunner

from store.diff import TensorDiff, diff_binary, diff_files, diff_safetensors
from tests.pickle_bytes import ORDERED_DICT
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str
from tests.test_tui import sync
from tui.app import ArtlensApp
from tui.cli import main
from tui.screens.file_diff import FileDiffScreen

TIB = 1 << 40
BOUND = 64 << 20
"""Bytes a diff of two sparse files with a few pages of data may read (the data, heads)."""


def _rchar() -> int:
    with open("/proc/self/io") as stats:
        for line in stats:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@contextlib.contextmanager
def _reads() -> Iterator[list[int]]:
    """The bytes this process read inside the block, in ``[0]`` after it."""
    got = [0]
    before = _rchar()
    yield got
    got[0] = _rchar() - before


def _sparse(path: Path, size: int, writes: dict[int, bytes], head: bytes = b"") -> Path:
    with open(path, "wb") as handle:
        handle.write(head)
        os.truncate(handle.fileno(), size)
        for offset, data in writes.items():
            os.pwrite(handle.fileno(), data, offset)
    if os.stat(path).st_blocks * 512 >= size:
        pytest.skip("this filesystem keeps no holes")
    return path


@pytest.mark.parametrize("size", [4 << 30, TIB])
def test_two_sparse_files_are_compared_by_their_data(tmp_path: Path, size: int) -> None:
    """4 GiB: the unfixed diff ends, having read 8 GiB; 1 TiB: it does not end."""
    at = size - (300 << 20)
    a = _sparse(tmp_path / "a.bin", size, {at: b"same" * 1024, 5: b"x"})
    b = _sparse(tmp_path / "b.bin", size, {at: b"same" * 1024, 5: b"x"})
    c = _sparse(tmp_path / "c.bin", size, {at: b"same" * 1023 + b"diff", 5: b"x"})
    with _reads() as read:
        same = diff_binary(a, b)
        other = diff_binary(a, c)
    assert read[0] < BOUND
    assert same.equal and same.first_difference is None
    assert same.hash_old is None and any("holes in both" in n for n in same.notes)
    assert not other.equal and other.first_difference == at + 4092


def test_the_hashes_of_a_small_sparse_file_count_its_holes_as_zeros(tmp_path: Path) -> None:
    size = 8 << 20
    a = _sparse(tmp_path / "a.bin", size, {3 << 20: b"data"})
    b = tmp_path / "b.bin"
    b.write_bytes(a.read_bytes())  # the same bytes, dense
    result = diff_binary(a, b)
    assert result.equal and result.hash_old == result.hash_new
    assert result.hash_old == xxhash.xxh3_128_hexdigest(a.read_bytes())


def test_cli_diff_of_1tib_sparse_model_files_ends_and_says_so(tmp_path: Path) -> None:
    a = _sparse(tmp_path / "a.pt", TIB, {})
    b = _sparse(tmp_path / "b.pt", TIB, {TIB - 4: b"\x01"})
    with _reads() as read:
        out = CliRunner().invoke(main, ["diff", str(a), str(b)])
        same = CliRunner().invoke(main, ["diff", str(a), str(a)])
    assert read[0] < BOUND
    assert out.exit_code == 1, out.output
    assert same.exit_code == 0 and "holes in both" in same.output


def _safetensors(path: Path, size: int, writes: dict[int, bytes]) -> Path:
    header = json.dumps({"t": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    raw = header.encode() + b" " * (-len(header) % 8)
    start = 8 + len(raw)
    moved = {start + offset: data for offset, data in writes.items()}
    return _sparse(path, start + size, moved, struct.pack("<Q", len(raw)) + raw)


def test_a_tensor_diff_of_sparse_checkpoints_reads_their_data_only(tmp_path: Path) -> None:
    a = _safetensors(tmp_path / "a.safetensors", TIB, {300 << 30: b"\x01\x02"})
    b = _safetensors(tmp_path / "b.safetensors", TIB, {300 << 30: b"\x01\x03"})
    with _reads() as read:
        same = diff_safetensors(a, a)
        moved = diff_safetensors(a, b)
        whole = diff_files(a, b)
    assert read[0] < BOUND
    assert same.equal and [t.status for t in same.tensors] == ["unchanged"]
    (change,) = moved.tensors
    assert change.status == "values_changed" and change.changed_elements == 1
    assert change.max_abs_diff == 1.0 and not moved.equal and not whole.equal


@sync
async def test_the_diff_pane_worker_ends_on_1tib_sparse_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    a = _sparse(root / "a.bin", TIB, {})
    b = _sparse(root / "b.bin", TIB, {})
    app = ArtlensApp(tmp_path / "index.db", [root], watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = FileDiffScreen(bytes(a), bytes(b))
        await app.push_screen(screen)
        deadline = time.monotonic() + 120  # generous: the fixed diff reads no hole
        while screen.diff is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert screen.diff is not None, "the diff worker did not end"
        assert screen.diff.equal and screen.diff.error is None
        shown = str(screen.query_one("#file-diff-notes").render())
        assert "equal" in shown


@pytest.mark.parametrize("suffix", [".csv", ".json", ".txt"])
def test_text_and_table_diffs_of_1tib_sparse_files_end(tmp_path: Path, suffix: str) -> None:
    """They read 64 MiB of each side, then look past it for a difference: by data only."""
    a = _sparse(tmp_path / f"a{suffix}", TIB, {0: b"x,y\n1,2\n"})
    b = _sparse(tmp_path / f"b{suffix}", TIB, {0: b"x,y\n1,2\n", 900 << 30: b"3"})
    with _reads() as read:
        differ = diff_files(a, b)
        same = diff_files(a, a)
    assert read[0] < 512 << 20  # the capped heads each engine reads, not the 2 TiB
    assert not differ.equal and same.equal, (differ.notes, same.notes)


def _torch_zip(path: Path, size: int, writes: dict[int, bytes]) -> Path:
    """A torch zip (zip64, as torch writes one over 4 GiB) whose one tensor is a uint8
    storage of ``size`` bytes, sparse but for ``writes``."""
    numel = b"\x8a\x06" + size.to_bytes(6, "little")  # LONG1
    pid = b"(" + _str("storage") + b"ctorch\nByteStorage\n" + _str("0") + _str("cpu")
    layout = b"(" + pid + numel + b"tQ" + _int(0) + b"(" + numel + b"t(" + _int(1) + b"t\x89"
    tensor = b"ctorch._utils\n_rebuild_tensor_v2\n" + layout + ORDERED_DICT + b"tR"
    pickle = b"\x80\x02}(" + _str("w") + tensor + b"u."
    entries: list[tuple[bytes, int, int, int, bool]] = []
    with open(path, "wb") as out:

        def local(name: str, length: int, crc: int, big: bool) -> None:
            raw = name.encode()
            extra = struct.pack("<HHQQ", 1, 16, length, length) if big else b""
            shown = 0xFFFFFFFF if big else length
            entries.append((raw, out.tell(), length, crc, big))
            out.write(
                struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, shown, shown,
                            len(raw), len(extra)) + raw + extra
            )  # fmt: skip

        for name, data in (("archive/data.pkl", pickle), ("archive/byteorder", b"little")):
            local(name, len(data), zlib.crc32(data), False)
            out.write(data)
        local("archive/data/0", size, 0, True)  # no reader here checks a storage's CRC
        start = out.tell()
        out.truncate(start + size)
        for offset, data in writes.items():
            os.pwrite(out.fileno(), data, start + offset)
        out.seek(start + size)
        directory = out.tell()
        for raw, offset, length, crc, big in entries:
            extra = struct.pack("<HHQQ", 1, 16, length, length) if big else b""
            shown = 0xFFFFFFFF if big else length
            out.write(
                struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, shown,
                            shown, len(raw), len(extra), 0, 0, 0, 0, offset) + raw + extra
            )  # fmt: skip
        record = out.tell()
        count = len(entries)
        out.write(
            struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count,
                        record - directory, directory)
            + struct.pack("<IIQI", 0x07064B50, 0, record, 1)
            + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, 0xFFFFFFFF,
                          0xFFFFFFFF, 0)
        )  # fmt: skip
    if os.stat(path).st_blocks * 512 >= size:
        pytest.skip("this filesystem keeps no holes")
    return path


def test_a_torch_zip_diff_of_1tib_sparse_checkpoints_ends(tmp_path: Path) -> None:
    a = _torch_zip(tmp_path / "a.pt", TIB, {5: b"\x01"})
    b = _torch_zip(tmp_path / "b.pt", TIB, {5: b"\x01", 800 << 30: b"\x07"})
    with _reads() as read:
        same = diff_files(a, a)
        moved = diff_files(a, b)
    assert read[0] < BOUND
    assert same.kind == "tensors" and same.equal, same.notes
    diff = moved.result
    assert isinstance(diff, TensorDiff) and diff.format == "torch-zip" and not moved.equal
    (change,) = diff.tensors
    assert change.status == "values_changed" and change.changed_elements == 1
