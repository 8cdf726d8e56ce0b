"""Benchmark: planning retention over an index of 1,000,000 artifacts (target: under 2 s).

Builds a synthetic index (10,000 runs of 100 artifacts: Lightning ``epoch=..-val_loss=..``
files, HF ``checkpoint-N/`` folders, generic ``step_N.pt``, plus configs, logs and images)
in two mixes, then times ``make_plan`` with every rule on (keep_last, keep_best by metric,
keep_within, pins, budget), with the helper process that reads its rows (``rowpump``) and
in one process, and the saving of the plan.  Both mixes repeat one run's names in
every run (each name is read once); ``worst-distinct`` is the worst mix with each run's own
metric values in its Lightning names, as real runs have.
Beside ``make_plan`` it times what a user runs on that index, end to end in a new process:
``artlens retention plan ROOT`` (the policy in the root's ``.artlens.toml``, the same one)
as it prints by default and with ``--json``, output to /dev/null, with ``python -c pass``
as that figure's anchor: work moved out of ``make_plan`` still shows there.
Run: ``python tests/bench/bench_retention.py [N_ARTIFACTS] [typical|worst|worst-distinct ...]``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.index.db import open_db
from store.retention.plan import Plan, make_plan
from store.retention.policy import from_flags

PER_RUN = 100
POLICY_TOML = """[retention]
keep_last = 3
keep_best = 1
metric = "val_loss"
keep_within = "7d"
budget = "500G"
pin = ["**/final/**", "exp1/*"]
"""
"""The policy ``measure`` passes to ``make_plan``, as a root's file for the CLI."""


def _run_files(framework: str, mix: str, run_id: int) -> list[tuple[str, str]]:
    """One run's artifacts (path inside the run, kind)."""
    worst = mix.startswith("worst")
    files: list[tuple[str, str]] = []
    if framework == "lightning":
        for e in range(90 if worst else 5):
            loss = f"{1 / (e + 1):.4f}"
            if mix == "worst-distinct":
                loss = f"{1 / (e + 1) + run_id * 1e-7:.7f}"
            name = f"epoch={e}-step={e * 100}-val_loss={loss}.ckpt"
            files.append((f"checkpoints/{name}", "checkpoint"))
        files += [(f"media/img{i}.png", "image") for i in range(0 if worst else 60)]
    elif framework == "hf-trainer":
        for c in range(15 if worst else 10):
            for name, kind in (
                ("model.safetensors", "checkpoint"),
                ("optimizer.pt", "checkpoint"),
                ("scheduler.pt", "checkpoint"),
                ("rng_state.pth", "checkpoint"),
                ("config.json", "config"),
                ("trainer_state.json", "metrics"),
                ("training_args.bin", "config"),
                ("generation_config.json", "config"),
            )[: 6 if worst else 8]:
                files.append((f"checkpoint-{(c + 1) * 500}/{name}", kind))
    else:
        files += [(f"step_{s * 1000}.pt", "model") for s in range(50 if worst else 10)]
        files += [(f"plots/fig{s}.png", "image") for s in range(40)]
    files += [(f"logs/log{i}.txt", "log") for i in range(PER_RUN - len(files))]
    return files


def build(db_path: Path, root: str, total: int, mix: str) -> None:
    """``mix='typical'``: checkpoints are a minority of files, as on real servers;
    ``mix='worst'``: nine in ten files are checkpoints (every one a unit to decide)."""
    db = open_db(db_path)
    conn = db.conn
    conn.execute("PRAGMA synchronous = OFF")
    now = time.time()
    runs, rows = [], []
    for run_id in range(1, total // PER_RUN + 1):
        style = run_id % 10
        path = f"exp{run_id % 50}/run{run_id}"
        framework = "lightning" if style < 4 else "hf-trainer" if style < 7 else "generic"
        runs.append((run_id, path.encode(), framework, "live" if run_id % 97 == 0 else "finished"))
        for i, (rel, kind) in enumerate(_run_files(framework, mix, run_id)):
            full = f"{path}/{rel}".encode()
            rows.append(
                (
                    run_id,
                    full,
                    full.rsplit(b"/", 1)[0],
                    kind,
                    1_000_000 + i,
                    int((now - 30 * 86400 + i * 600) * 1e9),
                    run_id * PER_RUN + i,
                )
            )
    with conn:
        conn.execute(
            "INSERT INTO roots (id, path, display, added_at) VALUES (1, ?, ?, 0)",
            (os.fsencode(root), root),
        )
        conn.executemany(
            "INSERT INTO runs (id, root_id, path, name, framework, status, updated_at) "
            "VALUES (?, 1, ?, 'r', ?, ?, 0)",
            runs,
        )
        conn.executemany(
            "INSERT INTO artifacts (root_id, run_id, path, parent, name, kind, size, mtime_ns, "
            "inode, dev, first_seen, last_seen) VALUES (1, ?, ?, ?, 'n', ?, ?, ?, ?, 1, 0, 0)",
            rows,
        )
    conn.close()


def measure(total: int, mix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        db_path = Path(tmp) / "index.db"
        started = time.perf_counter()
        build(db_path, root, total, mix)
        print(f"[{mix}] built {total:,} artifacts in {time.perf_counter() - started:.1f}s")
        db = open_db(db_path, readonly=True)
        started, cpu = time.perf_counter(), time.process_time()
        rows = db.conn.execute(
            "SELECT run_id, path, size, mtime_ns, inode, ftype, hash FROM artifacts "
            "WHERE kind IN ('checkpoint', 'model')"
        ).fetchall()
        print(
            f"[{mix}] anchor: a bare SELECT of the {len(rows):,} checkpoint rows: "
            f"{time.perf_counter() - started:.2f}s (CPU {time.process_time() - cpu:.2f}s)"
        )
        del rows
        policy = from_flags(
            keep_last=3,
            keep_best=1,
            metric="val_loss",
            older_than="7d",
            keep_within_budget="500G",
            pin=("**/final/**", "exp1/*"),
        )
        # with the row helper (the default over this many artifacts), then in one process,
        # alternating so that both meet the machine in the same moods
        best = {True: float("inf"), False: float("inf")}
        best_cpu = {True: float("inf"), False: float("inf")}
        first: tuple[float, float] | None = None
        plan: Plan | None = None
        helped = False
        for _ in range(3):
            for helper in (True, False):
                plan = None  # the last plan is freed before the clock starts, not inside it
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                started, cpu = time.perf_counter(), time.process_time()
                plan = make_plan(db, [root], policy, time.time(), pump_after=0 if helper else None)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu += after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
                first = first or (wall, cpu)
                best[helper], best_cpu[helper] = min(best[helper], wall), min(best_cpu[helper], cpu)
                helped = helped or (helper and bool(plan.helper_roots))
        assert first is not None
        assert plan is not None
        started = time.perf_counter()
        plan.save(Path(tmp) / "plan.json")
        saved = time.perf_counter() - started
        print(
            f"[{mix}] {len(plan.items):,} checkpoint units, {len(plan.removals):,} removals, "
            f"{plan.bytes_freed / 1e9:.1f} GB freed"
        )
        print(
            f"[{mix}] make_plan over {total:,} artifacts: {best[True]:.2f}s with its row "
            f"helper{'' if helped else ' (WHICH NEVER HELPED)'} (best of 3; target < 2 s; "
            f"CPU {best_cpu[True]:.2f}s with the helper's); in one process {best[False]:.2f}s "
            f"(CPU {best_cpu[False]:.2f}s); saving the plan: {saved:.2f}s"
        )
        print(
            f"[{mix}] the first make_plan of the process (the one a command makes, its memory "
            f"new from the system): {first[0]:.2f}s (CPU {first[1]:.2f}s)"
        )
        db.conn.close()
        plan = None
        end_to_end(mix, Path(tmp), root, db_path)


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one command (output to /dev/null), and its exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    code = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    ).returncode
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, code


def end_to_end(mix: str, tmp: Path, root: str, db_path: Path) -> None:
    """``artlens retention plan`` as a user runs it (a dry run: it plans, saves and
    prints), by default and with ``--json``; its user state and plans go under ``tmp``."""
    Path(root, ".artlens.toml").write_text(POLICY_TOML)
    env = dict(os.environ)
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        env[name] = str(tmp / name.lower())
    script = Path(sys.executable).with_name("artlens")  # the console script a user runs
    artlens = [str(script)] if script.exists() else [sys.executable, "-m", "tui.cli"]
    env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    wall, cpu, _ = _timed([sys.executable, "-c", "pass"], env)
    print(f"[{mix}] anchor: python -c pass: {wall:.2f}s (CPU {cpu:.2f}s)")
    for extra in ([], ["--json"]):
        argv = [*artlens, "retention", "plan", root, "--db", str(db_path), *extra]
        wall, cpu, code = _timed(argv, env)
        status = "" if code == 0 else f"; EXIT STATUS {code}"
        print(
            f"[{mix}] end to end, `artlens retention plan ROOT{' ' if extra else ''}"
            f"{' '.join(extra)}` > /dev/null: {wall:.2f}s (CPU {cpu:.2f}s{status})"
        )


def main() -> None:
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    mixes = sys.argv[2:] or ["typical", "worst"]
    for mix in mixes:
        measure(total, mix)


if __name__ == "__main__":
    main()
