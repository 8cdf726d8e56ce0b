"""Benchmarks for store.diff: python tests/bench/bench_diff.py

1. Text diff of two 20 MB logs (1% of lines changed) against ``diff -u`` on the same files,
   once with unique lines and once with logs built from 1,000 distinct lines repeated.
2. Run diff of 10,000 vs 10,000 artifacts.
3. ``artlens diff --json`` of two 1 GiB safetensors files and of two 1 GiB torch zips
   (real bytes, 2 of 16 tensors changed), end to end, beside ``cat`` of both files to
   /dev/null in the same run (page cache warm for both), with peak RSS from /usr/bin/time.
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


TENSORS = 16
ELEMENTS = 16 * 1024 * 1024  # 64 MiB of F32 each: 1 GiB per file
CHANGED = ("layer3.weight", "layer11.weight")
WRITE_CHUNK = 1 << 22  # elements generated at a time


def _values(index: int, changed: bool, part: int, rng_seed: int = 7) -> bytes:
    """Real (non-sparse) float32 bytes of one slice of one tensor; b moves two tensors."""
    import numpy as np

    rng = np.random.default_rng([rng_seed, index, part])
    values = rng.standard_normal(WRITE_CHUNK, dtype=np.float32)
    if changed and f"layer{index}.weight" in CHANGED:
        values *= np.float32(1.001)
    return values.tobytes()


def write_safetensors_file(path: Path, changed: bool) -> None:
    header: dict[str, object] = {}
    size = ELEMENTS * 4
    for i in range(TENSORS):
        header[f"layer{i}.weight"] = {
            "dtype": "F32",
            "shape": [ELEMENTS],
            "data_offsets": [i * size, (i + 1) * size],
        }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for i in range(TENSORS):
            for part in range(ELEMENTS // WRITE_CHUNK):
                handle.write(_values(i, changed, part))


def _pickle_str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _pickle_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def torch_data_pkl() -> bytes:
    """The data.pkl torch.save writes for {"state_dict": {name: tensor}}, as opcodes."""
    body = b""
    for i in range(TENSORS):
        pid = b"(" + _pickle_str("storage") + b"ctorch\nFloatStorage\n" + _pickle_str(str(i))
        pid += _pickle_str("cpu") + _pickle_int(ELEMENTS) + b"tQ"
        args = b"(" + pid + _pickle_int(0) + b"(" + _pickle_int(ELEMENTS) + b"t("
        args += _pickle_int(1) + b"t\x89ccollections\nOrderedDict\n)Rt"
        body += _pickle_str(f"layer{i}.weight") + b"ctorch._utils\n_rebuild_tensor_v2\n" + args
        body += b"R"
    return b"\x80\x02}(" + _pickle_str("state_dict") + b"}(" + body + b"uu."


def write_torch_zip_file(path: Path, changed: bool) -> None:
    """A torch.save-style zip: STORED entries, data.pkl first, storages data/0..15."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", torch_data_pkl())
        archive.writestr("archive/byteorder", "little")
        for i in range(TENSORS):
            with archive.open(f"archive/data/{i}", "w") as member:
                for part in range(ELEMENTS // WRITE_CHUNK):
                    member.write(_values(i, changed, part))
        archive.writestr("archive/version", "3\n")


def _timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command, measured by /usr/bin/time."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds, peak = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(peak)


def _best(command: list[str], runs: int = 3) -> tuple[float, int]:
    results = [_timed(command) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results)


def bench_tensor_pair(workdir: Path, kind: str) -> None:
    """End-to-end ``artlens diff A B --json`` beside ``cat A B > /dev/null``, warm cache."""
    suffix = "safetensors" if kind == "safetensors" else "ckpt"
    path_a, path_b = workdir / f"a.{suffix}", workdir / f"b.{suffix}"
    writer = write_safetensors_file if kind == "safetensors" else write_torch_zip_file
    writer(path_a, changed=False)
    writer(path_b, changed=True)
    try:
        artlens = [str(Path(sys.executable).with_name("artlens")), "diff", "--json"]
        subprocess.run(["cat", str(path_a), str(path_b)], stdout=subprocess.DEVNULL, check=True)
        out = subprocess.run(
            [*artlens, str(path_a), str(path_b)], capture_output=True, text=True, check=False
        )
        report = json.loads(out.stdout)
        moved = [t["name"] for t in report["result"]["tensors"] if t["status"] != "unchanged"]
        cat_s, cat_kb = _best(["sh", "-c", f"cat '{path_a}' '{path_b}' > /dev/null"])
        diff_s, diff_kb = _best([*artlens, str(path_a), str(path_b)])
        start_s, _ = _best([str(Path(sys.executable).with_name("artlens")), "--version"])
        inproc = (
            "import sys, time; sys.path.insert(0, sys.argv[3]);"
            "from store.diff import diff_files; best = 1e9\n"
            "for _ in range(3):\n"
            "    t = time.perf_counter(); diff_files(sys.argv[1], sys.argv[2])\n"
            "    best = min(best, time.perf_counter() - t)\n"
            "print(best)"
        )
        engine = subprocess.run(
            [sys.executable, "-c", inproc, str(path_a), str(path_b), str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
        )
        engine_s = float(engine.stdout.strip())
        size = (path_a.stat().st_size + path_b.stat().st_size) / (1 << 30)
        print(
            f"{kind:<11} two files, {size:.2f} GiB in all, {len(moved)} of {TENSORS} tensors "
            f"changed ({', '.join(moved)}):\n"
            f"  artlens diff --json {diff_s:.2f} s end to end (start-up alone {start_s:.2f} s, "
            f"the diff itself {engine_s:.2f} s), peak RSS {diff_kb / 1024:.0f} MB\n"
            f"  cat both > /dev/null {cat_s:.2f} s, peak RSS {cat_kb / 1024:.0f} MB\n"
            f"  ratio {diff_s / max(cat_s, 1e-3):.1f}x end to end, "
            f"{engine_s / max(cat_s, 1e-3):.1f}x for the diff itself "
            f"(bars: within 2x of cat, peak RSS under 300 MB)",
            flush=True,
        )
    finally:
        path_a.unlink(missing_ok=True)
        path_b.unlink(missing_ok=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="artlens-bench-") as tmp:
        workdir = Path(tmp)
        bench_text(workdir)
        bench_runs()
        for name in ("a.log", "b.log"):
            (workdir / name).unlink(missing_ok=True)
        bench_tensor_pair(workdir, "safetensors")
        bench_tensor_pair(workdir, "torch-zip")


if __name__ == "__main__":
    main()
