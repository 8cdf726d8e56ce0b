"""Benchmark: inspect_file on a ~2 GiB torch-zip-shaped checkpoint reads only kilobytes;
then the evasion corpus, file by file, beside picklescan in the same run; then the hostile
budget cases (memo flood, 1M-tensor safetensors header, zip of huge pickles), each in a
fresh process with its time and peak memory.

Run: ``.venv/bin/python tests/bench/bench_inspect.py [GiB]``.  picklescan is not a
dependency: run with the side venv (``/tmp/side12/bin/python tests/bench/bench_inspect.py``,
see tests/fixtures/evasion/compare_scanners.py) to get its column; without it the bench
says so.  The checkpoint is written sparse (a small real-shaped data.pkl plus stored
storage entries whose bytes are holes), so building it takes about a second.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
import types
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "evasion"))

import make_evasion  # noqa: E402

from store.inspect import inspect_file  # noqa: E402

ZERO_CHUNK = bytes(1 << 24)


def _fake_torch() -> tuple[type, object]:
    """Stand-ins named like torch's, so the pickle carries torch's GLOBALs without torch."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("never called: this pickle is only written")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage = FloatStorage  # type: ignore[attr-defined]
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    torch._utils = utils  # type: ignore[attr-defined]
    sys.modules.setdefault("torch", torch)
    sys.modules.setdefault("torch._utils", utils)
    return FloatStorage, _rebuild_tensor_v2


def _data_pkl(shapes: dict[str, tuple[int, int]]) -> bytes:
    storage_type, rebuild = _fake_torch()

    class Storage:
        def __init__(self, key: str, numel: int) -> None:
            self.key, self.numel = key, numel

    class Tensor:
        def __init__(self, storage: Storage, shape: tuple[int, ...]) -> None:
            self.storage, self.shape = storage, shape

        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            stride: list[int] = []
            step = 1
            for dim in reversed(self.shape):
                stride.insert(0, step)
                step *= dim
            return rebuild, (
                self.storage,
                0,
                self.shape,
                tuple(stride),
                False,
                collections.OrderedDict(),
            )

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if isinstance(obj, Storage):
                return ("storage", storage_type, obj.key, "cpu", obj.numel)
            return None

    state = collections.OrderedDict()
    for index, (name, shape) in enumerate(shapes.items()):
        numel = 1
        for dim in shape:
            numel *= dim
        state[name] = Tensor(Storage(str(index), numel), shape)
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(state)
    data: bytes = buffer.getvalue()
    return data


def _crc_of_zeros(size: int) -> int:
    crc = 0
    while size > 0:
        step = min(size, len(ZERO_CHUNK))
        crc = zlib.crc32(ZERO_CHUNK[:step], crc)
        size -= step
    return crc


def build(path: Path, gib: float) -> int:
    """Write a stored (uncompressed) torch-style zip whose storages are sparse holes."""
    per_tensor = 4
    numel = int(gib * (1 << 30)) // per_tensor // 4
    shapes = {f"layers.{i}.weight": (numel // 1024, 1024) for i in range(per_tensor)}
    entries: list[tuple[str, int, int, int]] = []  # name, offset, size, crc
    with path.open("wb") as out:

        def add(name: str, size: int, crc: int, data: bytes | None) -> None:
            raw = name.encode()
            offset = out.tell()
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, size,
                                  size, len(raw), 0) + raw)  # fmt: skip
            if data is None:
                out.seek(size, os.SEEK_CUR)
            else:
                out.write(data)
            entries.append((name, offset, size, crc))

        pkl = _data_pkl(shapes)
        add("archive/data.pkl", len(pkl), zlib.crc32(pkl), pkl)
        add("archive/byteorder", 6, zlib.crc32(b"little"), b"little")
        for index, shape in enumerate(shapes.values()):
            size = shape[0] * shape[1] * 4
            add(f"archive/data/{index}", size, _crc_of_zeros(size), None)
        add("archive/version", 2, zlib.crc32(b"3\n"), b"3\n")
        directory = out.tell()
        for name, offset, size, crc in entries:
            raw = name.encode()
            out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc,
                                  size, size, len(raw), 0, 0, 0, 0, 0, offset) + raw)  # fmt: skip
        end = out.tell()
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                              end - directory, directory, 0))  # fmt: skip
    return path.stat().st_size


def _rchar() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def main() -> None:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.ckpt"
        started = time.perf_counter()
        size = build(path, gib)
        built = time.perf_counter() - started
        blocks = path.stat().st_blocks * 512
        timings, result = [], None
        rchar_before = _rchar()
        for _ in range(5):
            started = time.perf_counter()
            result = inspect_file(path)
            timings.append(time.perf_counter() - started)
        rchar = (_rchar() - rchar_before) // 5 if rchar_before >= 0 else -1
        assert result is not None
        print(f"checkpoint: {size:,} bytes ({size / (1 << 30):.2f} GiB), {blocks:,} on disk, "
              f"built in {built:.2f}s")  # fmt: skip
        print(f"inspect_file: format={result.format} verdict={result.verdict} "
              f"tensors={result.summary.get('tensor_count')} "
              f"parameters={result.summary.get('parameter_count'):,}")  # fmt: skip
        print(f"bytes read (counted by inspect_file): {result.bytes_read:,}")
        print(f"bytes read (/proc/self/io rchar per call): {rchar:,}")
        print(f"fraction of file read: {result.bytes_read / size:.2e}")
        print(f"time: best {min(timings) * 1000:.2f} ms, median "
              f"{sorted(timings)[2] * 1000:.2f} ms over 5 runs")  # fmt: skip


def evasion() -> None:
    """Time per file on the evasion corpus, artlens beside picklescan in the same run."""
    try:
        from picklescan.scanner import scan_file_path
    except ImportError:
        scan_file_path = None
    with tempfile.TemporaryDirectory() as tmp:
        cases = make_evasion.build(Path(tmp) / "corpus", Path(tmp) / "MARKER")
        paths = [Path(tmp) / "corpus" / case.name for case in cases]
        ours: list[float] = []
        theirs: list[float] = []
        for path in paths:
            started = time.perf_counter()
            inspect_file(path)
            ours.append(time.perf_counter() - started)
            if scan_file_path is not None:
                started = time.perf_counter()
                with contextlib.suppress(Exception):  # a crash costs what it cost
                    scan_file_path(str(path))
                theirs.append(time.perf_counter() - started)
        assert not (Path(tmp) / "MARKER").exists()
    print(f"evasion corpus: {len(paths)} files")
    print(f"  artlens:    total {sum(ours) * 1000:.1f} ms, "
          f"{sum(ours) / len(ours) * 1000:.3f} ms/file, max {max(ours) * 1000:.2f} ms")  # fmt: skip
    if theirs:
        print(f"  picklescan: total {sum(theirs) * 1000:.1f} ms, "
              f"{sum(theirs) / len(theirs) * 1000:.3f} ms/file, "
              f"max {max(theirs) * 1000:.2f} ms")  # fmt: skip
    else:
        print("  picklescan: not importable here (run with the side venv for its column)")


_HOSTILE = {
    "memo flood (2M MEMOIZE)": (
        "data = b'\\x80\\x04N' + b'\\x94' * 2_000_000 + b'.'\nopen(PATH, 'wb').write(data)"
    ),
    "safetensors header, 1M tensors": (
        "import json, struct\n"
        "n = 1_000_000\n"
        'body = (\'{\' + \',\'.join(f\'"t{i}":{{"dtype":"U8","shape":[1],\'\n'
        "        f'\"data_offsets\":[{i},{i + 1}]}}' for i in range(n)) + '}').encode()\n"
        "f = open(PATH, 'wb'); f.write(struct.pack('<Q', len(body)) + body)\n"
        "f.truncate(8 + len(body) + n); f.close()"
    ),
    "zip of 20 huge pickles (100 MB each)": (
        "import zipfile, struct\n"
        "big = b'\\x80\\x04\\x8e' + struct.pack('<Q', 100 << 20) + bytes(100 << 20) + b'.'\n"
        "with zipfile.ZipFile(PATH, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as z:\n"
        "    for i in range(20): z.writestr(f'p{i}.pkl', big)"
    ),
}


def hostile() -> None:
    """Each hostile case in a fresh process: verdict, seconds and peak memory of the scan."""
    probe = (
        "import resource, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from store.inspect import inspect_file\n"
        "started = time.perf_counter(); result = inspect_file(sys.argv[1])\n"
        "took = time.perf_counter() - started\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "print(f'{result.verdict} in {took:.2f} s, peak {peak} MB')"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, maker in _HOSTILE.items():
            path = str(Path(tmp) / "hostile.bin")
            subprocess.run([sys.executable, "-c", f"PATH = {path!r}\n" + maker], check=True)
            out = subprocess.run(
                [sys.executable, "-c", probe, path], check=True, capture_output=True, text=True
            )
            print(f"{label}: {out.stdout.strip()}")
            os.unlink(path)


if __name__ == "__main__":
    main()
    evasion()
    hostile()
