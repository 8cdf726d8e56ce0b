"""Benchmarks for store.diff: python tests/bench/bench_diff.py

1. Text diff of two 20 MB logs (1% of lines changed) against ``diff -u`` on the same files,
   once with unique lines and once with logs built from 1,000 distinct lines repeated.
2. Run diff of 10,000 vs 10,000 artifacts.
3. Peak memory (ru_maxrss of a subprocess) of a safetensors diff of two ~1 GB sparse files
   whose values differ in a few tensors.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from store.diff import RunSide, diff_files_text, diff_runs  # noqa: E402

TARGET_BYTES = 20_000_000


def unique_log(rng: random.Random) -> list[str]:
    lines: list[str] = []
    size = i = 0
    while size < TARGET_BYTES:
        line = (
            f"2026-11-27 12:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100:02d} INFO "
            f"step={i} loss={rng.random():.6f} lr=0.0003 worker={i % 8} batch processed ok"
        )
        lines.append(line)
        size += len(line) + 1
        i += 1
    return lines


def repeated_log(rng: random.Random) -> tuple[list[str], list[str]]:
    pool = [
        f"INFO [worker-{k % 16}] event {k} value {rng.randint(0, 10**6)} with padding text"
        for k in range(1000)
    ]
    lines: list[str] = []
    size = 0
    while size < TARGET_BYTES:
        line = rng.choice(pool)
        lines.append(line)
        size += len(line) + 1
    return lines, pool


def mutate(rng: random.Random, lines: list[str], pool: list[str] | None) -> list[str]:
    """Change 1% of lines: 60% replaced, 20% deleted, 20% with a line inserted before."""
    out = list(lines)
    for pos in sorted(rng.sample(range(len(out)), len(out) // 100), reverse=True):
        new = rng.choice(pool) if pool else out[pos].replace("loss=", "loss=9")
        roll = rng.random()
        if roll < 0.6:
            out[pos] = new
        elif roll < 0.8:
            del out[pos]
        else:
            out.insert(pos, new)
    return out


def best_of(runs: int, func: object) -> float:
    assert callable(func)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def time_text_case(label: str, path_a: Path, path_b: Path, lines: int) -> None:
    ours = best_of(3, lambda: diff_files_text(path_a, path_b))
    plain = best_of(3, lambda: diff_files_text(path_a, path_b, intraline=False))
    result = diff_files_text(path_a, path_b)
    line = (
        f"text  {label:22s} {path_a.stat().st_size / 1e6:.0f} MB, {lines} lines: "
        f"ours {ours:.3f}s (no intraline {plain:.3f}s), -{result.removed} +{result.added}"
    )
    diff_tool = shutil.which("diff")
    if diff_tool:
        command = [diff_tool, "-u", str(path_a), str(path_b)]
        theirs = best_of(3, lambda: subprocess.run(command, stdout=subprocess.DEVNULL))
        out = subprocess.run(command, capture_output=True, text=True).stdout.splitlines()
        changed = sum(1 for x in out if x[:1] in "+-" and x[:3] not in ("+++", "---"))
        line += (
            f"; diff -u {theirs:.3f}s, -/+ {changed} lines; ratio {ours / theirs:.2f}x (bar: 3x)"
        )
    print(line, flush=True)


def bench_text(workdir: Path) -> None:
    rng = random.Random(7)
    path_a, path_b = workdir / "a.log", workdir / "b.log"
    old = unique_log(rng)
    path_a.write_text("\n".join(old) + "\n")
    path_b.write_text("\n".join(mutate(rng, old, None)) + "\n")
    time_text_case("unique lines", path_a, path_b, len(old))
    old, pool = repeated_log(rng)
    path_a.write_text("\n".join(old) + "\n")
    path_b.write_text("\n".join(mutate(rng, old, pool)) + "\n")
    time_text_case("1,000 distinct lines", path_a, path_b, len(old))


def bench_runs() -> None:
    rng = random.Random(3)
    old = [
        (f"ckpt/step_{i:06d}/model.pt", rng.randint(1, 10**9), f"{i:032x}") for i in range(10_000)
    ]
    new = list(old)
    for index in rng.sample(range(10_000), 500):
        path, size, _ = new[index]
        new[index] = (path, size + 1, f"changed{index}")
    for index in rng.sample(range(10_000), 300):
        path, size, digest = new[index]
        new[index] = ("moved/" + path, size, digest)
    side_a = RunSide(artifacts=old, params={f"p{i}": i for i in range(500)})
    side_b = RunSide(artifacts=new, params={f"p{i}": i * 2 for i in range(500)})
    elapsed = best_of(5, lambda: diff_runs(side_a, side_b))
    result = diff_runs(side_a, side_b).artifacts
    print(
        f"runs  10,000 vs 10,000 artifacts: {elapsed * 1000:.1f} ms "
        f"(changed {len(result.changed)}, moved {len(result.moved)}; bar: 300 ms)",
        flush=True,
    )


BIG_TENSORS = 15
BIG_ELEMENTS = 16 * 1024 * 1024  # 64 MB of F32 each
SMALL_ELEMENTS = 256 * 1024  # 1 MB


def write_sparse_safetensors(path: Path, changed: bool) -> None:
    """~1 GB file with holes; a few windows hold real (and, in b, different) values."""
    layout: list[tuple[str, int]] = [(f"layer{i}.weight", BIG_ELEMENTS) for i in range(BIG_TENSORS)]
    layout += [(f"head{i}.bias", SMALL_ELEMENTS) for i in range(4)]
    header: dict[str, object] = {}
    offset = 0
    for name, count in layout:
        header[name] = {
            "dtype": "F32",
            "shape": [count],
            "data_offsets": [offset, offset + count * 4],
        }
        offset += count * 4
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    data_start = 8 + len(raw)
    rng = random.Random(11)
    window = struct.pack("<262144f", *(rng.random() for _ in range(262144)))
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(data_start + offset)
        for name in ("layer3.weight", "head1.bias", "head2.bias"):
            start = header[name]["data_offsets"][0]  # type: ignore[index]
            handle.seek(data_start + start)
            handle.write(window[::-1] if changed else window)


def bench_safetensors(workdir: Path) -> None:
    path_a, path_b = workdir / "a.safetensors", workdir / "b.safetensors"
    write_sparse_safetensors(path_a, changed=False)
    write_sparse_safetensors(path_b, changed=True)
    code = (
        "import sys, time, tracemalloc; sys.path.insert(0, sys.argv[3]);"
        "from store.diff import diff_safetensors;"
        "hwm = lambda: [int(x.split()[1]) for x in open('/proc/self/status')"
        " if x.startswith('VmHWM')][0];"
        "base = hwm(); tracemalloc.start();"
        "t = time.perf_counter(); r = diff_safetensors(sys.argv[1], sys.argv[2]);"
        "t = time.perf_counter() - t; traced = tracemalloc.get_traced_memory()[1];"
        "changed = [c.name for c in r.tensors if c.status == 'values_changed'];"
        "print(base, hwm(), traced, f'{t:.2f}', ','.join(changed) or '-')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path_a), str(path_b), str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    base, peak, traced, seconds, changed = int(out[0]), int(out[1]), int(out[2]), out[3], out[4]
    size = path_a.stat().st_size / 1e9
    print(
        f"safetensors two {size:.2f} GB files: {seconds}s, peak RSS {peak / 1024:.0f} MB "
        f"(after imports {base / 1024:.0f} MB, Python allocations {traced / 1e6:.0f} MB; "
        f"bar: 300 MB); values changed in: {changed}",
        flush=True,
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="artlens-bench-") as tmp:
        workdir = Path(tmp)
        bench_text(workdir)
        bench_runs()
        for name in ("a.log", "b.log"):
            (workdir / name).unlink(missing_ok=True)
        bench_safetensors(workdir)


if __name__ == "__main__":
    main()
