"""The headless CLI: index, runs, ls, one-line errors and exit codes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.jsonstrict import finite
from store.lock import WriterLock
from store.watch import rescan
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def make_runs(root: Path) -> Path:
    for name, loss in (("alpha", 0.5), ("beta", 0.25)):
        run = root / "lightning_logs" / f"version_{0 if name == 'alpha' else 1}"
        (run / "checkpoints").mkdir(parents=True)
        (run / "hparams.yaml").write_text(
            f"lr: 0.001\nname: {name}\nbetas: !!python/tuple [0.9, 0.99]\n"
        )
        (run / "metrics.csv").write_text(f"epoch,step,train_loss\n0,10,0.9\n1,20,{loss}\n")
        (run / "checkpoints" / "epoch=1-step=20.ckpt").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return root


def test_index_then_runs_json(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    runner = CliRunner()
    result = runner.invoke(main, ["index", str(root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "2 runs" in result.output
    result = runner.invoke(main, ["runs", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert {r["name"] for r in runs} == {"version_0", "version_1"}
    for run in runs:
        assert {
            "name",
            "path",
            "framework",
            "status",
            "started",
            "last_write",
            "size_bytes",
            "n_artifacts",
            "params",
            "metrics",
        } <= run.keys()
        assert run["framework"] == "lightning"
        assert run["params"]["lr"] == 0.001
        assert run["params"]["betas"] == [0.9, 0.99]
    last = {r["name"]: r["metrics"]["train_loss"]["last"] for r in runs}
    assert last == {"version_0": 0.5, "version_1": 0.25}


def test_ls_json_and_run_reference(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    result = runner.invoke(main, ["ls", "version_1", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    rel = {a["relpath"] for a in json.loads(result.output)}
    assert rel == {
        "lightning_logs/version_1/hparams.yaml",
        "lightning_logs/version_1/metrics.csv",
        "lightning_logs/version_1/checkpoints/epoch=1-step=20.ckpt",
    }
    by_path = runner.invoke(
        main, ["ls", str(root / "lightning_logs" / "version_1"), "--db", str(db)]
    )
    assert by_path.exit_code == 0 and "epoch=1-step=20.ckpt" in by_path.output


def test_runs_csv_flattens_params_and_metrics(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    runner = CliRunner()
    runner.invoke(main, ["index", str(root), "--db", str(db)])
    result = runner.invoke(main, ["runs", "--csv", "--db", str(db)])
    header, *rows = result.output.strip().splitlines()
    assert "param.lr" in header.split(",") and "metric.train_loss.last" in header.split(",")
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs"], "no index yet"),
        (["index", "/nonexistent/folder"], "not a folder"),
        (["ls", "nope", "--db", "{tmp}/missing.db"], "no index at"),
    ],
)
def test_errors_are_one_line_with_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_unknown_run_is_one_line(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    runner = CliRunner()
    runner.invoke(main, ["index", str(root), "--db", str(db)])
    result = runner.invoke(main, ["ls", "no-such-run", "--db", str(db)])
    assert result.exit_code == 2
    assert "no run matches 'no-such-run'" in result.output
    odd = os.fsdecode(b"v_\xff\xfe")  # escaped once for the terminal, not again by repr
    result = runner.invoke(main, ["ls", odd, "--db", str(db)])
    assert result.exit_code == 2
    assert "no run matches 'v_\\xff\\xfe' (see" in result.output, result.output


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from store.lock import WriterLock;"
            f"l = WriterLock({str(db)!r}, role='watch'); l.acquire(); print('held', flush=True);"
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    requests = rescan.folder(db)
    stop = threading.Event()

    def end_holder_once_asked() -> None:
        """A watcher that dies with the request unanswered: the command waited out the
        holder's 30 s sleep, then blamed a 600 s timeout."""
        while not stop.wait(0.05):
            if requests.is_dir() and any(n.endswith(".request") for n in os.listdir(requests)):
                holder.kill()
                return

    asker = threading.Thread(target=end_holder_once_asked)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        asker.start()
        result = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
        assert result.exit_code == 2
        assert f"watcher (pid {holder.pid})" in result.output
        assert "ended before it answered" in result.output, result.output
    finally:
        stop.set()
        if asker.ident is not None:
            asker.join()
        holder.kill()
        holder.wait()
    # the kernel released the lock with the process, even though it was killed
    with WriterLock(db):
        pass


def test_a_lock_file_nested_too_deeply_names_an_unknown_holder(tmp_path: Path) -> None:
    import fcntl

    from store.lock import lock_path

    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    fd = os.open(lock_path(db), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: the CLI's own lock conflicts
        os.write(fd, b"[" * 2048 + b"]" * 2048)  # all the 4 KiB read: past 3.11's limit
        result = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    finally:
        os.close(fd)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "already being written by another process" in result.stderr


def test_sigkilled_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from store.lock import WriterLock; WriterLock({str(db)!r}).acquire();"
            "import time; print('x', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None and proc.stdout.readline()
    proc.kill()
    proc.wait()
    deadline = time.time() + 5
    lock = WriterLock(db)
    while True:
        try:
            lock.acquire()
            break
        except RuntimeError:
            assert time.time() < deadline
            time.sleep(0.05)
    lock.release()


def test_store_never_imports_textual_or_rich() -> None:
    code = (
        "import sys, store, store.index.db, store.scan, store.index.query, store.runs, store.lock,"
        " store.locate, store.kinds, store.hashing, store.frameworks;"
        "bad = [m for m in ('textual', 'rich') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_headless_cli_does_not_import_textual() -> None:
    code = "import sys, tui.cli; print('textual' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "False", out.stderr


def test_piped_runs_output_escapes_hostile_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = root / "evil\x1b[2Jname"
    run.mkdir(parents=True)
    (run / "model.pt").write_bytes(b"x")
    db = tmp_path / "i.db"
    env = {**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")}
    cwd = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "tui.cli", "index", str(root), "--db", str(db)],
        check=True,
        capture_output=True,
        env=env,
        cwd=cwd,
    )
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "runs", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stderr
    assert "evil\\e[2Jname" in out.stdout and "\x1b" not in out.stdout


def _run_into_closed_pipe(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run artlens with stdout a pipe whose reader is already gone, as `| head` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whatever the timing
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            timeout=120,
        )
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


def test_closed_pipe_exits_quietly_with_status_0(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    env = {**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")}
    for args in (
        ["ls", "--db", str(db)],
        ["ls", "--json", "--db", str(db)],
        ["runs", "--db", str(db)],
        ["runs", "--json", "--db", str(db)],
        ["runs", "--csv", "--db", str(db)],
        ["check", "--db", str(db)],
        ["--help"],
        ["runs", "--help"],
    ):
        code, err = _run_into_closed_pipe(args, env)
        assert (code, err) == (0, ""), args


def test_head_reading_one_line_of_a_long_listing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = root / "run"
    run.mkdir(parents=True)
    for i in range(1500):  # more than a pipe buffer of output
        (run / f"file-{i:05d}-{'x' * 40}.txt").write_bytes(b"")
    db = tmp_path / "i.db"
    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "ls", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_runs_csv_escapes_controls_and_neutralises_formulas(tmp_path: Path) -> None:
    root = tmp_path / "root"
    hostile = root / "=HYPERLINK(\x1b]8;;x\x07)"  # a generic run named by its folder
    hostile.mkdir(parents=True)
    (hostile / "model.pt").write_bytes(b"x")
    run = root / "exp" / "lightning_logs" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "hparams.yaml").write_text(
        'lr: -0.5\nnote: "@SUM(1)"\ncmd: "=cmd|\' /C calc\'!A0"\nplus: "+1+2"\n'
        'minus: "-2+3"\ntab: "\\tx"\nterm: "\\e[2J\\e]52;c;aGk=\\a"\nneg_text: "-3"\n'
    )
    (run / "metrics.csv").write_text("epoch,step,val_delta\n0,10,-0.25\n")
    (run / "checkpoints" / "epoch=0-step=10.ckpt").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    db = tmp_path / "i.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    result = runner.invoke(main, ["runs", "--csv", "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert not any(ch in out for ch in "\x1b\x07\x9b\x9d"), out
    import csv
    import io

    header, *rows = list(csv.reader(io.StringIO(out)))
    named = {row[1]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(named) == {"version_0", "'=HYPERLINK(\\e]8;;x\\x07)"}
    for cell in (c for row in rows for c in row):
        assert not cell.startswith(("=", "+", "@", "\t", "\r")) or cell[0] == "'"
        if cell.startswith("-"):
            float(cell)  # only numbers may start with a minus
    cells = named["version_0"]
    assert cells["param.lr"] == "-0.5"  # a negative number stays a number
    assert cells["param.neg_text"] == "-3"
    assert cells["metric.val_delta.last"] == "-0.25"
    assert cells["param.note"] == "'@SUM(1)"
    assert cells["param.cmd"] == "'=cmd|' /C calc'!A0"
    assert cells["param.plus"] == "'+1+2"
    assert cells["param.minus"] == "'-2+3"
    assert cells["param.tab"] == "'\\tx"
    assert cells["param.term"] == "\\e[2J\\e]52;c;aGk=\\x07"
    cells = named["'=HYPERLINK(\\e]8;;x\\x07)"]
    assert cells["path"].endswith("/=HYPERLINK(\\e]8;;x\\x07)")  # a path starts with /


def test_json_paths_are_real_with_raw_bytes_when_not_utf8(tmp_path: Path) -> None:
    import base64

    root = tmp_path / "root"
    hostile = "evil\x1b[2J\x9b31m\u202ename"
    (root / hostile).mkdir(parents=True)
    (root / hostile / "model.pt").write_bytes(b"x")
    latin = os.fsencode(root) + b"/caf\xe9"
    os.mkdir(latin)
    with open(latin + b"/w\xff.pt", "wb") as f:
        f.write(b"y")
    db = tmp_path / "i.db"
    env = {**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")}
    cwd = Path(__file__).resolve().parent.parent

    def run_json(*args: str) -> list[dict[str, object]]:
        done = subprocess.run(
            [sys.executable, "-m", "tui.cli", *args, "--json", "--db", str(db)],
            capture_output=True,
            env=env,
            cwd=cwd,
        )
        assert done.returncode in (0, 1), done.stderr  # check: 1 when a run falls short
        out = done.stdout
        for byte in (b"\x1b", b"\xc2\x9b", b"\xe2\x80\xae"):  # ESC, CSI, RLO: never raw
            assert byte not in out
        rows = json.loads(out)
        assert isinstance(rows, list)
        return rows

    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    runs = {r["path"]: r for r in run_json("runs")}
    real = runs[str(root / hostile)]
    assert real["name"] == hostile and real["path_b64"] is None
    (shown,) = [r for r in runs.values() if r["path_b64"] is not None]
    assert isinstance(shown["path_b64"], str)
    assert base64.b64decode(shown["path_b64"]) == latin
    assert shown["path"] == str(root) + "/caf\\xe9"
    files = {a["relpath"]: a for a in run_json("ls")}
    assert files[hostile + "/model.pt"]["path"] == str(root / hostile / "model.pt")
    assert files[hostile + "/model.pt"]["path_b64"] is None
    raw = files["caf\\xe9/w\\xff.pt"]
    assert isinstance(raw["path_b64"], str)
    assert base64.b64decode(raw["path_b64"]) == latin + b"/w\xff.pt"
    checked = {r["path"]: r for r in run_json("check")}
    assert checked[str(root / hostile)]["name"] == hostile
    assert {r["path_b64"] for r in checked.values()} == {None, shown["path_b64"]}


def test_runs_json_fast_path_prints_what_to_json_gives(tmp_path: Path) -> None:
    """Stored JSON is copied when SQLite finds it valid; every other row is re-encoded."""
    from store.index.db import open_db, write_transaction
    from store.index.query import list_runs
    from tests.conftest import make_hostile_tree

    root = make_runs(make_hostile_tree(tmp_path / "root"))
    db_path = tmp_path / "i.db"
    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db_path)]).exit_code == 0
    db = open_db(db_path)
    try:
        ids = [r[0] for r in db.conn.execute("SELECT id FROM runs ORDER BY id")]
        assert len(ids) >= 4
        odd = [
            ("metrics", '{"loss": {"last": NaN, "best": -Infinity}}'),  # what json.dumps writes
            ("params", "not json"),
            ("params", "[1, 2]"),
            ("meta", '{"run_key": "abc", "warnings": ["dangling link: x\\u001b[2J"]}'),
        ]
        with write_transaction(db) as conn:
            for run_id, (column, text) in zip(ids, odd, strict=False):
                conn.execute(f"UPDATE runs SET {column} = ? WHERE id = ?", (text, run_id))
            no_times = "UPDATE runs SET started = NULL, last_write = NULL WHERE id = ?"
            conn.execute(no_times, (ids[-1],))
        expected = [r.to_json() for r in list_runs(db)]
    finally:
        db.close()
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout, parse_constant=refuse_constant)
    assert [r["id"] for r in printed] == [r["id"] for r in expected]
    assert printed == finite(expected)  # the stored NaN as the string "NaN": strict JSON
    assert {"last": "NaN", "best": "-Infinity"} in [r["metrics"].get("loss") for r in printed]
    assert any(r["run_key"] == "abc" for r in printed)


def refuse_constant(token: str) -> object:
    """``parse_constant`` of a strict parser (jq's, RFC 8259's): NaN is no JSON."""
    raise AssertionError(f"not strict JSON: {token}")


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """What artlens prints when its stdout is a terminal (a pseudo-terminal here)."""
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args],
            stdout=terminal,
            stderr=terminal,
            stdin=subprocess.DEVNULL,
            env={**env, "COLUMNS": "200", "NO_COLOR": "1"},
            cwd=Path(__file__).resolve().parent.parent,
        )
        os.close(terminal)
        terminal = -1
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) in (0, 1)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_listings_print_a_header_row_on_a_terminal_only(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    env = {**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")}
    headers = {
        ("runs", "--db", str(db)): ["id", "name", "framework", "status", "last", "write"],
        ("ls", "--db", str(db)): ["kind", "size", "path"],
        ("scan", str(root)): ["verdict", "format", "path"],
    }
    import re

    for args, words in headers.items():
        shown = re.sub(r"\x1b\[[0-9;]*m", "", _on_a_terminal(list(args), env))
        first = shown.strip().splitlines()[0].replace("(", " ").split()
        assert first[: len(words)] == words, (args, shown)
        piped = subprocess.run(
            [sys.executable, "-m", "tui.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout
        assert piped.split()[0] != words[0], (args, piped)  # scripts get bare rows


def test_a_size_that_leaves_out_unread_folders_is_marked_on_a_terminal(tmp_path: Path) -> None:
    """A run whose last scan could not read a folder in it: the terminal table marked
    nothing (its size looked whole); the size now ends in ``?`` and a line says why."""
    import re

    from store.index.db import open_db, write_transaction

    root = make_runs(tmp_path / "root")
    db_path = tmp_path / "i.db"
    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db_path)]).exit_code == 0
    db = open_db(db_path)
    try:
        with write_transaction(db) as conn:
            run_id = conn.execute("SELECT min(id) FROM runs").fetchone()[0]
            conn.execute(
                "UPDATE runs SET meta = json_set(meta, '$.unreadable_places', 1) WHERE id = ?",
                (run_id,),
            )
    finally:
        db.close()
    env = {**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")}
    shown = re.sub(r"\x1b\[[0-9;]*m", "", _on_a_terminal(["runs", "--db", str(db_path)], env))
    marked = [line for line in shown.splitlines() if re.search(r"\dB\? ", line)]
    assert len(marked) == 1 and marked[0].split()[0] == str(run_id), shown
    assert "? size and files leave out folders the last scan could not read (1 run;" in shown


def test_a_one_off_db_does_not_become_the_default_index(tmp_path: Path) -> None:
    usual = make_runs(tmp_path / "usual")
    other = tmp_path / "other"
    (other / "scratch-run").mkdir(parents=True)
    (other / "scratch-run" / "model.pt").write_bytes(b"x")
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(usual)]).exit_code == 0  # the roots' own index
    one_off = tmp_path / "one-off.db"
    assert runner.invoke(main, ["index", str(other), "--db", str(one_off)]).exit_code == 0
    result = runner.invoke(main, ["runs", "--json"])  # no --db: the index used last
    assert result.exit_code == 0, result.output
    assert {r["name"] for r in json.loads(result.stdout)} == {"version_0", "version_1"}
    from store.locate import find_db

    assert find_db(other) != one_off
    result = runner.invoke(main, ["runs", "--json", "--db", str(one_off)])
    assert [r["name"] for r in json.loads(result.stdout)] == ["scratch-run"]


def test_watch_stops_quietly_when_its_reader_leaves(tmp_path: Path) -> None:
    root = make_runs(tmp_path / "root")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", str(root), "--db", str(tmp_path / "i.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "ARTLENS_CACHE": str(tmp_path / "c")},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while b"watching" not in proc.stdout.readline():  # the start-up reconcile line first
            pass
        proc.stdout.close()  # `| head -2` has what it wanted
        deadline = time.monotonic() + 60
        step = 0
        while proc.poll() is None:  # each batch prints a line; the first one meets the pipe
            assert time.monotonic() < deadline, "watch kept running with nobody reading"
            (root / f"new-{step}.txt").write_text("x")
            step += 1
            time.sleep(0.2)
        assert proc.returncode == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()


def _runs_json_before(conn: Any) -> list[str]:
    """``store.index.query.runs_json`` as it was before its rows were built as tuples and
    its times formatted by SQLite: the text to keep."""
    from store import paths
    from store.index.query import _RUN_COLUMNS, _RUN_JSON_COLUMNS, _run_from, _string, iso

    sql = f"SELECT {_RUN_JSON_COLUMNS} FROM runs JOIN roots ON roots.id = runs.root_id"
    rows = conn.execute(sql).fetchall()
    rows.sort(key=lambda r: (-(r[7] if r[7] is not None else r[8] or 0), r[0]))
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    out = []
    for row in rows:
        params, metrics, run_key, warnings, unread, parts_text = row[12:18]
        parts = json.loads(parts_text) if parts_text is not None else []
        texts = (row[4], row[5], row[6], row[9], run_key)
        if (
            params is None
            or metrics is None
            or warnings is None
            or not all(isinstance(t, str) or t is None for t in texts)
            or not all(type(n) is int for n in (row[0], row[10], row[11]))
        ):
            whole = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs JOIN roots ON roots.id = runs.root_id"
                " WHERE runs.id = ?",
                (row[0],),
            ).fetchone()
            out.append(dumps(_run_from(whole).to_json()))
            continue
        root, rel = bytes(row[2]), bytes(row[3])
        path, path_b64 = paths.json_path(root + b"/" + rel if rel else root)
        out.append(
            f'{{"id": {row[0]}, "name": {_string(row[4])}, "run_key": {_string(run_key)},'
            f' "path": {_string(path)}, "path_b64": {_string(path_b64)},'
            f' "root": {_string(paths.json_text(root))},'
            f' "framework": {_string(row[5])}, "experiment": {_string(row[6])},'
            f' "status": {_string(row[9])}, "started": {_string(iso(row[7]))},'
            f' "last_write": {_string(iso(row[8]))}, "size_bytes": {row[10]},'
            f' "n_artifacts": {row[11]},'
            f' "size_complete": {"false" if isinstance(unread, int) and unread > 0 else "true"},'
            f' "metrics_complete": {"false" if "metrics" in parts else "true"},'
            f' "params_complete": {"false" if "params" in parts else "true"},'
            f' "params": {params}, "metrics": {metrics}, "warnings": {warnings}}}'
        )
    return out


def test_runs_json_text_stays_what_it_was_on_hostile_rows(tmp_path: Path) -> None:
    """The fast ``runs --json`` text is, byte for byte, what it was, and the JSON of
    ``to_json``: hostile names (markup, escapes, line separators, bytes that are not
    UTF-8), odd rows, and times that are whole, fractional (rounding up to the next
    second), absent, before 1970 or in the year 9999."""
    from store.index.db import open_db, write_transaction
    from store.index.query import list_runs, runs_json
    from store.readonly import connect_readonly

    db_path = tmp_path / "i.db"
    db = open_db(db_path)
    names = ["[bold]x[/]", "esc\x1b[2Jname", "sep\u2028\u202eevil", "caf\u00e9", "del\x7f", "plain"]
    times = [1_700_000_000, 1_700_000_000.0, 1_699_999_999.9999996, None, -1.5, 253_402_300_799]
    try:
        with write_transaction(db) as conn:
            conn.execute(
                "INSERT INTO roots (id, path, display, added_at) VALUES (1, ?, ?, 0)",
                (b"/data/r\xffoot", "/data/r?oot"),
            )
            for i, (name, ts) in enumerate(zip(names * 2, times * 2, strict=True)):
                conn.execute(
                    "INSERT INTO runs (root_id, path, name, framework, experiment, started,"
                    " last_write, status, params, metrics, meta, size_bytes, n_artifacts,"
                    " updated_at) VALUES (1, ?, ?, 'generic', ?, ?, ?, 'finished', ?, ?, ?,"
                    " ?, ?, 0)",
                    (
                        f"e/{name}-{i}".encode() + (b"\xfe" if i % 3 == 0 else b""),
                        name,
                        None if i % 4 == 0 else name,
                        ts if i < 6 else None,
                        ts,
                        json.dumps({"lr": 0.1 * i, "name": name}),
                        json.dumps({"loss": {"last": 1 / (i + 1), "step": i}}),
                        json.dumps(
                            {
                                "run_key": f"k{i}" if i % 2 else None,
                                "warnings": [name],
                                # how many folders its size leaves out, right or odd
                                "unreadable_places": [2, True, "3", 0, -1, 1.5, None][i % 7],
                                # the parts its files were read in part for, right or odd
                                "unread_parts": [
                                    ["metrics"],
                                    ["params", "metrics"],
                                    "metrics",
                                    [["metrics"]],
                                    ["params"],
                                    None,
                                    [],
                                    ["other", 1],
                                ][i % 8],
                            }
                        ),
                        i << 20,
                        i,
                    ),
                )
            conn.execute("UPDATE runs SET params = 'not json' WHERE id = 2")
        expected = [json.dumps(r.to_json(), ensure_ascii=False) for r in list_runs(db)]
    finally:
        db.close()
    conn = connect_readonly(db_path)
    try:
        fast = list(runs_json(conn))
        assert fast == _runs_json_before(conn)
    finally:
        conn.close()
    assert [json.loads(f) for f in fast] == [json.loads(e) for e in expected]
    result = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\u2028" not in result.stdout
    assert [r["name"] for r in json.loads(result.stdout)] == [
        json.loads(e)["name"] for e in expected
    ]


def test_runs_csv_prints_any_surrogate_as_text(tmp_path: Path) -> None:
    """A param holding a surrogate that is no undecodable byte (a JSON file's "\\ud800")
    ended the CSV in a UnicodeEncodeError; every one is printable text now."""
    import sqlite3

    root = make_runs(tmp_path / "root")
    db = tmp_path / "i.db"
    assert CliRunner().invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    conn = sqlite3.connect(db)
    with conn:
        params = {"k\udcffey": ["v\ud800al"], "lone": "x\udfffy", "nan": [math.nan]}
        conn.execute("UPDATE runs SET params = ?", (json.dumps(params),))
    conn.close()
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "runs", "--csv", "--db", str(db)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    text = result.stdout.decode("utf-8")  # strict: any surrogate written would fail here
    assert "param.k\\xffey" in text and '[""v\\ud800al""]' in text and "x\\udfffy" in text
    assert '[""NaN""]' in text
