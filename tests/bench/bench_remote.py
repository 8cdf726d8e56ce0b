"""Remote pull benchmark: a first pull of a big host index and an incremental pull of a few
changes, beside copying the host's index file whole.

Run:  python tests/bench/bench_remote.py [--files 100000] [--runs 1000] [--changes 1000]

Builds a host in a temp folder (a Lightning-style tree of N small files in R runs, indexed
and hashed), adds it as a remote through the --command transport (the host is a child
process on this machine, so the figures are the feed's own cost, not a network's), then in
one run times: the first pull (a snapshot), changing C files on the host (rescanned and
hashed there, not timed), the incremental pull, and the anchor: ``cat`` of the host's index
file (what ``scp`` would copy), with the bytes each put on the wire.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.index.db import open_db
from store.lock import WriterLock
from store.remote import config, mirror
from store.scan import Indexer
from tests.bench.bench_index import make_tree


def index(root: Path, db_path: Path) -> None:
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            indexer = Indexer(db, root, clock=lambda: time.time() + 60)
            indexer.scan()
            indexer.hash_pending()
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.conn.close()


def cat_copy(db_path: Path, target: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with open(target, "wb") as out:
        subprocess.run(["cat", str(db_path)], stdout=out, check=True)
    return time.perf_counter() - start, target.stat().st_size


def host_side(command: str, after: int) -> tuple[float, int]:
    """The host's half alone: ``artlens feed`` written to a pipe that is only counted."""
    argv = [*shlex.split(command), "feed", "--after", str(after), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    total = 0
    while chunk := proc.stdout.read(1 << 20):
        total += len(chunk)
    proc.wait()
    return time.perf_counter() - start, total


def line(label: str, seconds: float, wire: int, cpu: float | None = None) -> None:
    busy = f"  ({cpu:.2f} s CPU)" if cpu is not None else ""
    print(f"  {label:<34} {seconds:8.2f} s  {wire / 1e6:9.2f} MB on the wire{busy}")


def cpu_now() -> float:
    """CPU seconds of this process and its finished children: on a loaded machine the
    wall clock mostly measures waiting for a core."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(files: int, runs: int, changes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="artlens-bench-remote-") as tmp:
        work = Path(tmp)
        os.environ["ARTLENS_CACHE"] = str(work / "cache")
        os.environ["ARTLENS_CONFIG"] = str(work / "config")
        root, host_db = work / "host", work / "host.db"
        print(f"building the host: {files} files in {runs} runs ...", flush=True)
        make_tree(root, files, runs)
        index(root, host_db)
        command = (
            f"env ARTLENS_DB={shlex.quote(str(host_db))} {shlex.quote(sys.executable)} -m tui.cli"
        )
        remote = config.Remote("bench", None, command)
        config.save([remote])

        cpu = cpu_now()
        first = mirror.pull(remote)
        first_cpu = cpu_now() - cpu
        feed_s, feed_bytes = host_side(command, 0)
        copy_s, copy_bytes = cat_copy(host_db, work / "copy.db")
        cursor = first.last_event
        victims = sorted((root / "lightning_logs").rglob("*.png"))[:changes]
        for path in victims:
            path.write_bytes(b"changed " * 10)
        index(root, host_db)
        cpu = cpu_now()
        second = mirror.pull(remote)
        second_cpu = cpu_now() - cpu
        feed2_s, feed2_bytes = host_side(command, cursor)
        copy2_s, copy2_bytes = cat_copy(host_db, work / "copy2.db")

        db = open_db(remote.mirror_path, readonly=True)
        n = db.conn.execute("SELECT count(*) FROM artifacts").fetchone()[0]
        db.close()
        print(f"host index: {files} files ({n} in the mirror), {runs} runs, {changes} changed")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        line("first pull (snapshot)", first.seconds, first.bytes, first_cpu)
        line("  the host's feed alone, to a pipe", feed_s, feed_bytes)
        line("  anchor: cat of the index file", copy_s, copy_bytes)
        line(f"incremental pull ({changes} changes)", second.seconds, second.bytes, second_cpu)
        line("  the host's feed alone, to a pipe", feed2_s, feed2_bytes)
        line("  anchor: cat of the index file", copy2_s, copy2_bytes)
        assert n == files, (n, files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args()
    measure(args.files, args.runs, args.changes)


if __name__ == "__main__":
    main()
