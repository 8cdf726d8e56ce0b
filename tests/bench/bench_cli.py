"""CLI start-up: ``artlens --help`` and ``artlens runs --json`` beside a bare ``python -c pass``.

    .venv/bin/python tests/bench/bench_cli.py [--runs 10000] [--trials 15]

Every figure is a whole process, end to end, as a shell starts it: the interpreter, the
imports, the work and the output (written to /dev/null).  Each command runs TRIALS times,
interleaved, and the best time is kept (the least disturbed by other load on the machine).
The index holds RUNS runs with ten params and four metrics each, written as rows (no files
on disk), in a temporary folder.  Bars (issue 15): ``--help`` within 150 ms of the bare
interpreter, ``runs --json`` within 250 ms of it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.index.db import open_db, write_transaction

NOW = 1_780_000_000.0
HELP_BAR_MS = 150.0
RUNS_BAR_MS = 250.0


def make_index(db_path: Path, runs: int) -> None:
    """An index of ``runs`` runs (rows only) with realistic params and metrics JSON."""
    db = open_db(db_path)
    try:
        with write_transaction(db) as conn:
            conn.execute(
                "INSERT INTO roots (id, path, display, added_at) VALUES (1, ?, ?, ?)",
                (b"/data/outputs", "/data/outputs", NOW),
            )
            rows = []
            for i in range(runs):
                params: dict[str, object] = {f"optimizer.p{k}": 0.001 * (k + 1) for k in range(8)}
                params |= {"model.name": f"resnet{i % 5}", "seed": i}
                metrics = {
                    name: {
                        "last": 0.5 / (i + 1),
                        "last_step": 1000,
                        "best": 0.4 / (i + 1),
                        "best_step": 900,
                        "n": 100,
                        "direction": "min" if "loss" in name else "max",
                    }
                    for name in ("train_loss", "val_loss", "val_acc", "lr")
                }
                rows.append(
                    (
                        1,
                        f"exp-{i % 20}/run-{i:05d}".encode(),
                        f"run-{i:05d}",
                        "lightning",
                        f"exp-{i % 20}",
                        NOW - 86400 + i,
                        NOW - 3600 + i,
                        "finished",
                        json.dumps(params),
                        json.dumps(metrics),
                        json.dumps({"warnings": []}),
                        1 << 20,
                        12,
                        NOW,
                    )
                )
            conn.executemany(
                "INSERT INTO runs (root_id, path, name, framework, experiment, started,"
                " last_write, status, params, metrics, meta, size_bytes, n_artifacts,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        db.close()


def best_of(commands: dict[str, list[str]], trials: int) -> dict[str, tuple[float, float]]:
    """The best wall time and the best CPU time (user + system) of each command, in
    seconds, the commands taking turns.  CPU time is what the process itself costs; it
    barely moves when other work shares the cores, where wall time does."""
    best = dict.fromkeys(commands, (float("inf"), float("inf")))
    for _ in range(trials):
        for label, command in commands.items():
            start = time.perf_counter()
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            assert proc.returncode == 0, command
            cpu = usage.ru_utime + usage.ru_stime
            best[label] = (min(best[label][0], wall), min(best[label][1], cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=15)
    args = parser.parse_args()
    artlens = str(Path(sys.executable).with_name("artlens"))
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        db_path = Path(tmp) / "index.db"
        make_index(db_path, args.runs)
        out = subprocess.run(
            [artlens, "runs", "--json", "--db", str(db_path)], capture_output=True, check=True
        ).stdout
        assert len(json.loads(out)) == args.runs
        runs_json = [artlens, "runs", "--json", "--db", str(db_path)]
        runs_label = f"artlens runs --json ({args.runs} runs)"
        best = best_of(
            {
                "python -c pass": [sys.executable, "-c", "pass"],
                "artlens --help": [artlens, "--help"],
                runs_label: runs_json,
            },
            args.trials,
        )
    base_wall, base_cpu = best["python -c pass"]
    print(f"best of {args.trials}, whole processes, {len(out) / 1e6:.1f} MB of runs JSON")
    print(f"  {'':<34} {'wall':>9} {'':<11} {'cpu':>9}")
    for label, (wall, cpu) in best.items():
        if label.startswith("python"):
            print(f"  {label:<34} {wall * 1000:6.1f} ms {'':<11} {cpu * 1000:6.1f} ms")
            continue
        print(
            f"  {label:<34} {wall * 1000:6.1f} ms (+{(wall - base_wall) * 1000:4.0f} ms)"
            f" {cpu * 1000:6.1f} ms (+{(cpu - base_cpu) * 1000:4.0f} ms)"
        )
    for label, bar in (("artlens --help", HELP_BAR_MS), (runs_label, RUNS_BAR_MS)):
        extra = (best[label][0] - base_wall) * 1000
        verdict = "ok" if extra <= bar else "MISSED"
        print(
            f"bar: {label} within {bar:.0f} ms of python -c pass (wall): +{extra:.0f} ms {verdict}"
        )


if __name__ == "__main__":
    main()
