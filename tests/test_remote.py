"""Remotes: indexes on this machine act as hosts through the --command transport.

Every pull runs the real ``artlens feed`` in a child process against a real index of the
real framework fixtures; hostile hosts are small scripts that print a doctored feed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.remote import config
from tests.test_checklist import FIXTURES, index_tree, settle_mtimes
from tui.cli import main

PY = shlex.quote(sys.executable)


@pytest.fixture(autouse=True)
def isolated(
    isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("ARTLENS_CONFIG", str(tmp_path / "config"))
    yield


def make_host(tmp_path: Path, name: str, only: str | None = None) -> tuple[Path, Path]:
    """A copy of the framework fixtures (or of ``only`` one framework's folder), indexed
    and hashed: (root, index)."""
    root = tmp_path / name / "outputs"
    if only is None:
        shutil.copytree(FIXTURES, root, symlinks=True)
        (root / "EXPECTED.json").unlink()
    else:
        shutil.copytree(FIXTURES / only, root / only, symlinks=True)
    settle_mtimes(root)
    db = tmp_path / name / "index.db"
    index_tree(root, db)
    return root, db


def host_command(db: Path) -> str:
    return f"env ARTLENS_DB={shlex.quote(str(db))} {PY} -m tui.cli"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def add(name: str, command: str) -> None:
    code, _out, err = cli("remote", "add", name, "--command", command)
    assert code == 0, err


def set_command(name: str, command: str) -> None:
    remotes = [r for r in config.load() if r.name != name]
    config.save([*remotes, config.Remote(name, None, command)])


def mirror_dump(name: str) -> dict[str, Any]:
    """Every row the read side sees, and the cursor: what a failed pull must not change."""
    conn = sqlite3.connect(config.get(name).mirror_path)
    try:
        tables = {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in ("roots", "runs", "dirs", "artifacts", "events")
        }
        cursor = conn.execute("SELECT value FROM meta WHERE key = 'remote.cursor'").fetchone()
    finally:
        conn.close()
    return {**tables, "cursor": cursor}


def local_runs(db: Path) -> set[str]:
    code, out, err = cli("runs", "--json", "--db", str(db))
    assert code == 0, err
    return {r["name"] for r in json.loads(out)}


def test_two_hosts_list_every_run_with_its_host(tmp_path: Path) -> None:
    _, db_a = make_host(tmp_path, "gpu1")
    root_b, db_b = make_host(tmp_path, "gpu2")
    shutil.rmtree(root_b / "wandb")
    index_tree(root_b, db_b)
    add("gpu1", host_command(db_a))
    add("gpu2", host_command(db_b))
    code, out, err = cli("remote", "pull")
    assert code == 0, err
    assert "gpu1: snapshot" in out and "gpu2: snapshot" in out
    code, out, err = cli("runs", "--all-hosts", "--json")
    assert code == 0, err
    listed = json.loads(out)
    by_host = {h: {r["name"] for r in listed if r["host"] == h} for h in ("gpu1", "gpu2")}
    assert by_host == {"gpu1": local_runs(db_a), "gpu2": local_runs(db_b)}
    assert by_host["gpu1"] != by_host["gpu2"]
    code, out, _ = cli("runs", "--host", "gpu2")
    assert code == 0 and {line.split("\t")[0] for line in out.splitlines()} == {"gpu2"}
    code, out, _ = cli("remote", "list")
    assert [line.split("\t")[:2] for line in out.splitlines()] == [["gpu1", "ok"], ["gpu2", "ok"]]


RUN = "lightning/lightning_logs/version_0"


def test_cross_host_run_diff_equals_the_local_diff(tmp_path: Path) -> None:
    root_a, db_a = make_host(tmp_path, "gpu1", "lightning")
    root_b, db_b = make_host(tmp_path, "gpu2", "lightning")
    run_a, run_b = root_a / RUN, root_b / RUN
    (run_a / "requirements.txt").write_text("torch==2.3\nnumpy==1.26\n")
    (run_b / "requirements.txt").write_text("torch==2.4\nnumpy==1.26\n")
    # same values, other key order: only readable as "unchanged" by reading both files
    (run_b / "hparams.yaml").write_text("name: tiny\nlr: 0.1\nshape: !!python/tuple\n- 4\n- 2\n")
    (run_b / "checkpoints" / "last.ckpt").write_bytes(b"changed weights")
    for path in (run_a / "requirements.txt", run_b / "requirements.txt", run_b / "hparams.yaml",
                 run_b / "checkpoints" / "last.ckpt"):  # fmt: skip
        os.utime(path, (1_767_225_700.0, 1_767_225_700.0))  # not the copies' mtime
    index_tree(root_a, db_a)
    index_tree(root_b, db_b)
    add("gpu1", host_command(db_a))
    add("gpu2", host_command(db_b))
    assert cli("remote", "pull")[0] == 0
    code, out, err = cli("diff", f"gpu1:{run_a}", f"gpu2:{run_b}", "--json")
    assert code == 1, err
    across = json.loads(out)
    # the same two runs in one local index
    local = tmp_path / "local.db"
    index_tree(root_a, local)
    index_tree(root_b, local)
    code, out, err = cli("diff", str(run_a), str(run_b), "--json", "--db", str(local))
    assert code == 1, err
    here = json.loads(out)
    for section in ("equal", "params", "metrics", "env", "artifacts"):
        assert across[section] == here[section], section
    # across hosts, checkpoints are not opened here: the diff says so instead of staying silent
    remote_only = [w for w in across["warnings"] if w not in here["warnings"]]
    assert [w for w in across["warnings"] if w in here["warnings"]] == here["warnings"]
    assert remote_only == [
        "files on another host: tensors not compared here "
        "(artlens diff HOST:/path HOST:/path compares two files)"
    ]
    assert across["env"] == [{"package": "torch", "change": "changed", "old": "2.3", "new": "2.4"}]
    changed = [c["path"] for c in across["artifacts"]["changed"]]
    assert changed == ["checkpoints/last.ckpt", "requirements.txt"]
    assert here["warnings"] == ["hparams.yaml: same values, different layout or key order"]
    assert across["a"]["host"] == "gpu1" and across["b"]["host"] == "gpu2"


def truncating(db: Path, keep: int) -> str:
    """A host that goes away after ``keep`` bytes of its answer."""
    inner = f'{host_command(db)} "$@" | head -c {keep}'
    return f"sh -c {shlex.quote(inner)} sh"


def test_host_gone_mid_pull_leaves_the_mirror_and_resumes(tmp_path: Path) -> None:
    root, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    before = mirror_dump("gpu1")
    for i in range(300):
        (root / "lightning" / f"new-{i}.bin").write_bytes(b"x" * i)
    index_tree(root, db)
    set_command("gpu1", truncating(db, 20_000))
    code, out, err = cli("remote", "pull", "gpu1")
    assert code == 1 and "gpu1: the stream ended" in err and len(err.splitlines()) == 1
    assert mirror_dump("gpu1") == before
    code, out, _ = cli("remote", "list")
    state = out.strip().split("\t")
    assert state[1] == "offline" and state[-1].startswith("error: the stream ended")
    # without a name, a host that just failed waits for its back-off
    code, _, err = cli("remote", "pull")
    assert code == 0 and "offline, next try in" in err
    set_command("gpu1", host_command(db))  # the host is back
    code, out, err = cli("remote", "pull", "gpu1")
    assert code == 0 and "changes" in out, err
    conn = sqlite3.connect(config.get("gpu1").mirror_path)
    names = {
        r[0]
        for r in conn.execute(
            "SELECT path FROM artifacts WHERE CAST(path AS TEXT) LIKE 'lightning/new-%'"
        )
    }
    conn.close()
    assert len(names) == 300
    assert cli("remote", "list")[1].split("\t")[1] == "ok"


def test_a_hanging_host_times_out_in_one_line(tmp_path: Path) -> None:
    add("slow", f"{PY} -c 'import time; time.sleep(60)'")
    code, _, err = cli("remote", "pull", "slow", "--timeout", "1")
    assert code == 1 and err.strip() == "slow: timed out"


def feed_lines(db: Path, *args: str) -> list[dict[str, Any]]:
    code, out, err = cli("feed", "--json", "--db", str(db), *args)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def replaying(tmp_path: Path, lines: list[bytes], stderr: bytes = b"", code: int = 0) -> str:
    """A host that answers anything with ``lines`` (a doctored feed)."""
    data = tmp_path / f"feed-{len(list(tmp_path.glob('feed-*')))}.jsonl"
    data.write_bytes(b"".join(line + b"\n" for line in lines))
    script = (
        "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read());"
        f" sys.stderr.buffer.write({stderr!r}); sys.exit({code})"
    )
    return f"{PY} -c {shlex.quote(script)} {shlex.quote(str(data))}"


def _doctor(lines: list[dict[str, Any]], case: str) -> list[bytes]:
    out = [json.dumps(x).encode() for x in lines]
    first_art = next(i for i, x in enumerate(lines) if x["t"] == "artifact")
    first_run = next(i for i, x in enumerate(lines) if x["t"] == "run")

    def edit(index: int, **fields: Any) -> None:
        out[index] = json.dumps({**lines[index], **fields}).encode()

    if case == "huge line":
        out.insert(first_art, b'{"t":"artifact","path":"' + b"a" * (9 << 20) + b'"}')
    elif case == "wrong type":
        edit(first_art, size="big")
    elif case == "dot-dot path":
        edit(first_art, path="../../../etc/passwd")
    elif case == "absolute path":
        edit(first_art, path="/etc/passwd")
    elif case == "b64 path with NUL":
        edit(first_art, path_b64="YQBi")
    elif case == "file outside its sync":
        edit(next(i for i, x in enumerate(lines) if x["t"] == "sync"), path="zzz-elsewhere")
    elif case == "bad hash":
        edit(first_art, hash="'; DROP TABLE artifacts; --")
    elif case == "deep nesting":
        out.insert(first_run, b"[" * 100_000 + b"]" * 100_000)
    elif case == "not json":
        out.insert(first_run, b"\x00\xff garbage")
    elif case == "unknown root":
        edit(first_run, root_id=99)
    elif case == "no trailer":
        out.pop()
    elif case == "bad trailer":
        out[-1] = json.dumps({"t": "trailer", "last_event": 10**9}).encode()
    elif case == "after trailer":
        out.append(out[-1])
    elif case == "wrong protocol":
        edit(0, protocol=99)
    elif case == "unhashable value":
        edit(first_art, ftype=["file"])
    elif case == "unhashable status":
        edit(first_run, status={"a": 1})
    elif case == "unhashable mode":
        edit(0, mode=[])
    else:
        raise AssertionError(case)
    return out


CASES = {
    "huge line": "a line over 8388608 bytes",
    "wrong type": "size: not an integer",
    "dot-dot path": "path: not a normalised path",
    "absolute path": "path: not a relative path",
    "b64 path with NUL": "path: not a path",
    "file outside its sync": "outside its sync block",
    "bad hash": "hash: not an xxh3-128 hex digest",
    "deep nesting": "not JSON",
    "not json": "not JSON",
    "unknown root": "a run of an unknown root",
    "no trailer": "the stream ended before its trailer",
    "bad trailer": "the trailer's last event id does not match",
    "after trailer": "data after the trailer",
    "wrong protocol": "feed protocol '99', expected 1",
    "unhashable value": "ftype: unexpected value",
    "unhashable status": "status: unexpected value",
    "unhashable mode": "mode: unexpected value",
}


def test_hostile_feeds_never_touch_the_mirror(tmp_path: Path) -> None:
    _, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    before = mirror_dump("gpu1")
    snapshot = feed_lines(db)
    outside = sorted(p for p in tmp_path.rglob("*") if "mirrors" not in p.parts)
    for case, message in CASES.items():
        set_command("gpu1", replaying(tmp_path, _doctor(snapshot, case)))
        code, _out, err = cli("remote", "pull", "gpu1")
        assert code == 1, case
        assert err.startswith("gpu1: ") and len(err.splitlines()) == 1, (case, err)
        assert "Traceback" not in err and len(err) < 600, case
        assert message in err, (case, err)
        assert mirror_dump("gpu1") == before, case
    feeds = {p for p in tmp_path.glob("feed-*")}
    assert sorted(
        p for p in tmp_path.rglob("*") if "mirrors" not in p.parts and p not in feeds
    ) == [p for p in outside]


def test_events_going_backwards_are_refused(tmp_path: Path) -> None:
    root, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    before = mirror_dump("gpu1")
    cursor = int(before["cursor"][0])
    (root / "lightning" / "new.bin").write_bytes(b"new")
    (root / "lightning" / "new2.bin").write_bytes(b"new2")
    index_tree(root, db)
    changes = feed_lines(db, "--after", str(cursor))
    events = [i for i, x in enumerate(changes) if x["t"] == "event"]
    assert len(events) >= 2
    backwards = [dict(x) for x in changes]
    backwards[events[1]]["id"] = backwards[events[0]]["id"]
    older = [dict(x) for x in changes]
    older[0]["newest"] = cursor - 1
    stale = [dict(x) for x in changes]
    stale[events[0]]["id"] = cursor
    for doctored in (backwards, older, stale):
        set_command("gpu1", replaying(tmp_path, [json.dumps(x).encode() for x in doctored]))
        code, _, err = cli("remote", "pull", "gpu1")
        assert code == 1 and len(err.splitlines()) == 1, err
        assert mirror_dump("gpu1") == before
    set_command("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    assert mirror_dump("gpu1")["cursor"] == (str(changes[-1]["last_event"]),)


def test_hostile_names_and_errors_are_escaped_when_shown(tmp_path: Path) -> None:
    _, db = make_host(tmp_path, "gpu1", "lightning")
    lines = feed_lines(db)
    run = next(i for i, x in enumerate(lines) if x["t"] == "run")
    lines[run]["name"] = "evil\x1b]52;c;aGVsbG8=\x07[bold]run"
    lines[run]["framework"] = "fw\x1b[2J"
    add("gpu1", replaying(tmp_path, [json.dumps(x).encode() for x in lines]))
    assert cli("remote", "pull", "gpu1")[0] == 0
    code, out, _ = cli("runs", "--host", "gpu1")
    assert code == 0 and "\x1b" not in out and "evil\\e]52;c;aGVsbG8=\\x07[bold]run" in out
    assert "fw\\e[2J" in out
    add("broken", replaying(tmp_path, [], stderr=b"boom \x1b[2J\nlast \x1b]0;t\x07words", code=3))
    code, _, err = cli("remote", "pull", "broken")
    assert code == 1 and "\x1b" not in err
    assert err.strip() == "broken: exit status 3: last \\e]0;t\\x07words"
    code, out, _ = cli("remote", "list")
    assert "\x1b" not in out and "error: exit status 3" in out


def test_a_host_without_artlens_on_its_path_says_how_to_name_it(tmp_path: Path) -> None:
    # ssh runs the command in a non-interactive shell, whose PATH often lacks artlens's venv
    add("bare", "sh -c 'exec artlens-not-installed-here \"$@\"' sh")
    code, _, err = cli("remote", "pull", "bare")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "exit status 127 (no artlens on the PATH there?" in err
    assert "--command 'ssh HOST /path/to/artlens'" in err


def test_ssh_urls_become_one_quoted_remote_command() -> None:
    remote = config.Remote("gpu1", "ssh://me@gpu1.example:2222/data/my%20index.db")
    argv = remote.argv(["feed", "--after", "0", "--json"])
    assert argv[:2] == ["ssh", "-T"] and argv[-3:-1] == ["--", "me@gpu1.example"]
    assert argv[argv.index("-p") + 1] == "2222"
    assert shlex.split(argv[-1]) == [
        "artlens", "feed", "--db", "/data/my index.db", "--after", "0", "--json",
    ]  # fmt: skip
    for bad in ("ssh://-oProxyCommand=x/", "http://gpu1", "ssh://gpu1:99999", "ssh://a;b@gpu1"):
        code, _, err = cli("remote", "add", "x", bad)
        assert code == 2 and len(err.splitlines()) == 1, bad
    for bad_name in ("local", "a/b", "a:b", "../x", ""):
        code, _, err = cli("remote", "add", bad_name, "--command", "true")
        assert code == 2, bad_name


STAND_IN_SSH = """#!/bin/sh
# stands in for ssh (no sshd here): skips the options, drops the host, and hands the
# remote command line to a shell, as sshd does
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; break ;;
        -o|-p) shift 2 ;;
        *) shift ;;
    esac
done
shift
exec sh -c "$1"
"""


def test_ssh_transport_quotes_the_remote_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sshd can be started here; a stand-in ``ssh`` runs the command line it is given
    in ``sh``, so the quoting of an index path with a space and a quote is what is tested."""
    _, db = make_host(tmp_path, "gpu1", "lightning")
    odd = tmp_path / "it's an index.db"
    shutil.copy(db, odd)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(STAND_IN_SSH)
    (bin_dir / "ssh").chmod(0o755)
    path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    code, _, err = cli("remote", "add", "gpu1", f"ssh://me@gpu1:2222{odd}")
    assert code == 0, err
    code, out, err = cli("remote", "pull", "gpu1")
    assert code == 0 and "gpu1: snapshot" in out, err
    code, out, _ = cli("runs", "--host", "gpu1", "--json")
    assert {r["name"] for r in json.loads(out)} == local_runs(db)


@pytest.mark.slow
def test_a_rebuilt_host_index_is_pulled_afresh(tmp_path: Path) -> None:
    root, db = make_host(tmp_path, "gpu1")
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    cursor = int(mirror_dump("gpu1")["cursor"][0])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(root / "wandb")
    for i in range(300):  # more events than before: the old cursor looks valid
        (root / "mlflow-file" / f"extra-{i}.txt").write_text("x")
    index_tree(root, db)
    assert feed_lines(db, "--after", str(cursor))[0]["mode"] == "changes"
    code, out, err = cli("remote", "pull", "gpu1")
    assert code == 0 and "snapshot" in out, err
    code, out, _ = cli("runs", "--host", "gpu1", "--json")
    assert {r["name"] for r in json.loads(out)} == local_runs(db)


def test_files_hashed_after_a_pull_are_rechecked(tmp_path: Path) -> None:
    """Hashing writes no event: the client asks for the ids it holds unhashed."""
    from store.index.db import open_db
    from store.lock import WriterLock
    from store.scan import Indexer

    root = tmp_path / "gpu1" / "outputs"
    shutil.copytree(FIXTURES / "lightning", root, symlinks=True)
    settle_mtimes(root)
    db_path = tmp_path / "gpu1" / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        indexer = Indexer(db, root, clock=lambda: 1_767_225_601.0)  # files look fresh
        indexer.scan()
        indexer.hash_pending()
        add("gpu1", host_command(db_path))
        assert cli("remote", "pull", "gpu1")[0] == 0
        conn = sqlite3.connect(config.get("gpu1").mirror_path)
        pending = "SELECT count(*) FROM artifacts WHERE hash_state = 'pending'"
        assert conn.execute(pending).fetchone()[0] > 0
        conn.close()
        Indexer(db, root, clock=lambda: 1_767_225_700.0).hash_pending()
        db.conn.close()
    assert cli("remote", "pull", "gpu1")[0] == 0
    conn = sqlite3.connect(config.get("gpu1").mirror_path)
    mirrored = sorted(conn.execute("SELECT id, hash, hash_state FROM artifacts").fetchall())
    conn.close()
    conn = sqlite3.connect(db_path)
    hosted = sorted(conn.execute("SELECT id, hash, hash_state FROM artifacts").fetchall())
    conn.close()
    assert mirrored == hosted and all(state != "pending" for _, _, state in mirrored)


@pytest.mark.slow
def test_a_fetch_never_takes_more_than_it_asked_for(tmp_path: Path) -> None:
    from store.remote.fetch import read_range
    from store.remote.transport import RemoteError

    root, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", host_command(db))
    target = root / "lightning" / "lightning_logs" / "version_0" / "hparams.yaml"
    assert read_range(config.get("gpu1"), str(target), 3, 5) == target.read_bytes()[3:8]
    set_command("gpu1", replaying(tmp_path, [b"x" * 100]))
    with pytest.raises(RemoteError, match="more than the 10 bytes"):
        read_range(config.get("gpu1"), str(target), 0, 10)


@pytest.mark.slow
def test_a_root_gone_from_the_host_goes_from_the_mirror(tmp_path: Path) -> None:
    _, db = make_host(tmp_path, "gpu1", "lightning")
    other = tmp_path / "gpu1" / "other"
    shutil.copytree(FIXTURES / "dvclive", other, symlinks=True)
    settle_mtimes(other)
    index_tree(other, db)
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    assert len(mirror_dump("gpu1")["roots"]) == 2
    # the host forgets the root, leaving its runs, files and events behind
    conn = sqlite3.connect(db)
    with conn:
        (rid,) = conn.execute("SELECT id FROM roots WHERE path = ?", [bytes(other)]).fetchone()
        conn.execute("DELETE FROM roots WHERE id = ?", [rid])
        conn.execute(
            "INSERT INTO events (ts, kind, root_id, path) VALUES (1, 'scan', ?, ?)", [rid, b""]
        )
    conn.close()
    code, _, err = cli("remote", "pull", "gpu1")
    assert code == 0, err
    after = mirror_dump("gpu1")
    assert len(after["roots"]) == 1
    assert not [r for r in after["runs"] if r[1] == rid]
    assert not [a for a in after["artifacts"] if a[1] == rid]


@pytest.mark.slow
def test_file_diff_across_hosts_fetches_only_what_differs(tmp_path: Path) -> None:
    root_a, db_a = make_host(tmp_path, "gpu1", "lightning")
    root_b, db_b = make_host(tmp_path, "gpu2", "lightning")
    big_a, big_b = root_a / RUN / "big.bin", root_b / RUN / "big.bin"
    blob = bytes(range(256)) * 8192  # 2 MiB: over the size that earns a note
    big_a.write_bytes(blob)
    big_b.write_bytes(blob[:1_500_000] + b"!" + blob[1_500_001:])
    for path in (big_a, big_b, root_b / RUN / "hparams.yaml"):
        if path.name == "hparams.yaml":
            path.write_text("lr: 0.2\nname: tiny\n")
        os.utime(path, (1_767_225_700.0, 1_767_225_700.0))
    index_tree(root_a, db_a)
    index_tree(root_b, db_b)
    add("gpu1", host_command(db_a))
    add("gpu2", host_command(db_b))
    assert cli("remote", "pull")[0] == 0
    for name in ("hparams.yaml", "big.bin"):
        code, across, err = cli(
            "diff", f"gpu1:{root_a / RUN / name}", f"gpu2:{root_b / RUN / name}", "--json"
        )
        assert code == 1, err
        code, here, _ = cli("diff", str(root_a / RUN / name), str(root_b / RUN / name), "--json")
        assert code == 1
        fields = ("equal", "engine", "size_a", "size_b", "result")
        assert {k: json.loads(across)[k] for k in fields} == {
            k: json.loads(here)[k] for k in fields
        }
        assert ("fetching 2.0M" in err) == (name == "big.bin"), err
    same = root_a / "lightning" / "lightning_logs" / "version_1" / "metrics.csv"
    other = root_b / "lightning" / "lightning_logs" / "version_1" / "metrics.csv"
    set_command("gpu1", "false")  # equal hashes: nothing is fetched from either host
    code, out, _ = cli("diff", f"gpu1:{same}", f"gpu2:{other}")
    assert code == 0 and "same hash" in out
    code, _, err = cli("diff", f"gpu1:{root_a / RUN / 'hparams.yaml'}", f"gpu2:{other}")
    assert code == 2 and len(err.splitlines()) == 1 and "exit status 1" in err


@pytest.mark.slow
def test_a_second_pull_of_one_mirror_is_refused_in_one_line(tmp_path: Path) -> None:
    from store.lock import WriterLock

    _, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", host_command(db))
    mirror_path = config.get("gpu1").mirror_path
    mirror_path.parent.mkdir(parents=True)
    with WriterLock(mirror_path, role="pull"):
        code, _, err = cli("remote", "pull", "gpu1")
    assert code == 1 and err.startswith("gpu1: ") and len(err.splitlines()) == 1, err
    assert cli("remote", "pull", "gpu1")[0] == 0


def test_folders_removed_on_the_host_leave_the_mirror(tmp_path: Path) -> None:
    root, db = make_host(tmp_path, "gpu1", "lightning")
    (root / "notes" / "deep").mkdir(parents=True)  # folders of no run
    (root / "notes" / "deep" / "todo.txt").write_text("x")
    index_tree(root, db)
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    assert [p for _, p in rows(db, "dirs") if bytes(p) == b"notes/deep"]
    shutil.rmtree(root / "notes")
    shutil.rmtree(root / "lightning" / "lightning_logs" / "version_1")
    (root / "lightning" / "lightning_logs" / "version_0" / "metrics.csv").unlink()
    index_tree(root, db)
    code, out, err = cli("remote", "pull", "gpu1")
    assert code == 0 and "changes" in out, err

    mirror_path = config.get("gpu1").mirror_path
    assert rows(mirror_path, "dirs") == rows(db, "dirs")
    assert rows(mirror_path, "artifacts") == rows(db, "artifacts")
    gone = (b"lightning/lightning_logs/version_1", b"notes")
    assert not [p for _, p in rows(mirror_path, "dirs") if bytes(p).startswith(gone)]


def rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute(f"SELECT root_id, path FROM {table}").fetchall())
    finally:
        conn.close()


@pytest.mark.slow
def test_a_mirror_keeps_only_recent_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from store.remote import mirror

    monkeypatch.setattr(mirror, "KEEP_EVENTS", 5)
    root, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0
    for i in range(20):
        (root / "lightning" / f"new-{i}.bin").write_bytes(b"x")
    index_tree(root, db)
    assert cli("remote", "pull", "gpu1")[0] == 0
    dump = mirror_dump("gpu1")
    ids = sorted(e[0] for e in dump["events"])
    assert ids == list(range(int(dump["cursor"][0]) - 4, int(dump["cursor"][0]) + 1))


def test_file_diff_refuses_a_remote_file_that_changed_size_since_the_pull(
    tmp_path: Path,
) -> None:
    """The mirror says how many bytes the host's file has; a copy of another length (the
    first bytes of a file that grew, or a file cut short) is not the file the mirror
    describes: the diff says so instead of comparing it as if it were."""
    root_a, db_a = make_host(tmp_path, "gpu1", "lightning")
    root_b, db_b = make_host(tmp_path, "gpu2", "lightning")
    file_a, file_b = root_a / RUN / "notes.txt", root_b / RUN / "notes.txt"
    file_a.write_bytes(b"line one\nline two\n")
    file_b.write_bytes(b"line one\nline XYZ\n")
    index_tree(root_a, db_a)
    index_tree(root_b, db_b)
    add("gpu1", host_command(db_a))
    add("gpu2", host_command(db_b))
    assert cli("remote", "pull")[0] == 0
    # after the pull gpu1's file grows and gpu2's takes gpu1's old bytes: they differ,
    # but the first 18 bytes of gpu1's (its size by the mirror) equal gpu2's
    file_a.write_bytes(b"line one\nline two\nline three\n")
    file_b.write_bytes(b"line one\nline two\n")
    code, out, err = cli("diff", f"gpu1:{file_a}", f"gpu2:{file_b}")
    assert code == 2 and "changed since the last pull" in err, (code, out, err)
    assert err.startswith("artlens: error: gpu1: ") and len(err.splitlines()) == 1, err
    # cut short: the copy has fewer bytes than the mirror says
    file_a.write_bytes(b"line one\nline two\n")
    file_b.write_bytes(b"line one\n")
    code, out, err = cli("diff", f"gpu1:{file_a}", f"gpu2:{file_b}")
    assert code == 2 and "gpu2: the file has 9 bytes there, the mirror says 18" in err, err
    assert len(err.splitlines()) == 1


def capped_host(db: Path, max_events: int) -> str:
    """A real host whose feeds carry at most ``max_events`` events each (the host's cap,
    100,000, made small so that a few files make a host several feeds ahead)."""
    script = (
        f"import store.feed as f; from tui.launch import main; f.MAX_EVENTS = {max_events}; main()"
    )
    return f"env ARTLENS_DB={shlex.quote(str(db))} {PY} -c {shlex.quote(script)}"


def test_a_pull_cut_short_says_the_mirror_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull that stops with events still waiting on the host (its feeds or its time
    used up) leaves a mirror the host has moved past: said in the pull's output, in
    ``remote list`` and above the runs it shows, never an "ok" up-to-date mirror."""
    from store.remote import mirror

    root, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", capped_host(db, 3))
    assert cli("remote", "pull", "gpu1")[0] == 0
    for i in range(40):  # 40 events or more: more than two pulls of two feeds of 3
        (root / "lightning" / f"new-{i}.bin").write_bytes(b"x" * i)
    index_tree(root, db)
    monkeypatch.setattr(mirror, "MAX_ROUNDS", 2)
    code, out, err = cli("remote", "pull", "gpu1", "--json")
    assert code == 0, err
    (got,) = json.loads(out)
    assert got["ok"] and got["rounds"] == 2 and got["last_event"] < got["newest"]
    assert got["warnings"] and "behind" in got["warnings"][0]
    code, out, err = cli("remote", "pull", "gpu1")
    assert code == 0 and "gpu1: changes to event" in out
    assert "artlens: gpu1: the mirror is behind the host" in err, err
    code, out, _ = cli("remote", "list")
    assert out.split("\t")[1] == "behind", out
    code, _, err = cli("runs", "--host", "gpu1")
    assert code == 0 and "gpu1: behind the host" in err, err
    monkeypatch.setattr(mirror, "MAX_ROUNDS", 50)
    code, out, err = cli("remote", "pull", "gpu1")
    assert code == 0 and not err, err
    assert cli("remote", "list")[1].split("\t")[1] == "ok"
    assert cli("runs", "--host", "gpu1")[2] == ""


def test_a_child_left_holding_the_pipe_cannot_hold_the_pull_past_its_time(
    tmp_path: Path,
) -> None:
    """The host's command exits at once but leaves a child with its stdout: one in its
    process group, and one in a session of its own.  The pull ends at its deadline
    ("timed out", as a host that hangs) while the children would still hold it; the
    child in the group is killed."""
    pids = tmp_path / "pids"
    escaped = tmp_path / "escaped"
    setsid = f"import os, time; os.setsid(); open({str(escaped)!r}, 'w').write(str(os.getpid()));"
    script = (
        f"sleep 120 & echo $! > {shlex.quote(str(pids))};"
        f" {PY} -c {shlex.quote(setsid + ' time.sleep(120)')} & exit 0"
    )
    add("leaky", f"sh -c {shlex.quote(script)} sh")
    try:
        code, _, err = cli("remote", "pull", "leaky", "--timeout", "2")
        # the pull did not wait for the child that escaped the group: it is still there
        assert escaped.exists() and _alive(int(escaped.read_text()))
        assert code == 1 and err.strip() == "leaky: timed out", err
        pid = int(pids.read_text())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        assert not _alive(pid)
    finally:
        if escaped.exists() and _alive(int(escaped.read_text())):
            os.kill(int(escaped.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_feed_without_end_is_refused_at_the_byte_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid lines without end (one file sent again and again) are refused once the
    feed passes the byte cap, as they arrive, not after the whole exchange's time."""
    from store.remote import mirror

    _, db = make_host(tmp_path, "gpu1", "lightning")
    snapshot = feed_lines(db)
    sync = next(i for i, x in enumerate(snapshot) if x["t"] == "sync")
    head = b"".join(json.dumps(x).encode() + b"\n" for x in snapshot[: sync + 1])
    art = json.dumps(next(x for x in snapshot if x["t"] == "artifact")).encode() + b"\n"
    (tmp_path / "head").write_bytes(head)
    (tmp_path / "art").write_bytes(art)
    script = (
        "import sys; out = sys.stdout.buffer; out.write(open(sys.argv[1], 'rb').read());"
        " line = open(sys.argv[2], 'rb').read() * 100\nwhile True: out.write(line)"
    )
    args = " ".join(shlex.quote(str(tmp_path / n)) for n in ("head", "art"))
    add("endless", f"{PY} -c {shlex.quote(script)} {args}")
    monkeypatch.setattr(mirror, "MAX_BYTES", 4 << 20)
    code, _, err = cli("remote", "pull", "endless", "--timeout", "30")
    assert code == 1 and err.strip() == f"endless: the host sent more than {4 << 20} bytes", err


def test_a_host_whose_shell_greets_says_so_in_one_line(tmp_path: Path) -> None:
    """A host whose ~/.bashrc echoes a greeting puts it before what artlens sends over ssh:
    the pull, a fetch and a remote plan each say so, naming the greeting."""
    root, db = make_host(tmp_path, "gpu1", "lightning")
    add("gpu1", host_command(db))
    assert cli("remote", "pull", "gpu1")[0] == 0  # the mirror knows the file's hash
    greeting = "sh -c 'echo Welcome to gpu-node-07; exec {} \"$@\"' sh"
    set_command("gpu1", greeting.format(host_command(db)))
    hint = "(it starts 'Welcome to gpu-node-07'); does the host's shell print something"
    code, _, err = cli("remote", "pull", "gpu1", "--force")
    assert code == 1 and len(err.strip().splitlines()) == 1 and hint in err, err
    hparams = root / RUN / "hparams.yaml"
    other = tmp_path / "hparams.yaml"
    other.write_text("lr: 0.5\n")
    code, _, err = cli("diff", f"gpu1:{hparams}", str(other))
    assert code == 2 and len(err.strip().splitlines()) == 1 and hint in err, err
    code, _, err = cli("remote", "retention", "plan", "gpu1")
    assert code != 0 and hint in err, err


def test_a_host_whose_first_pull_failed_is_never_pulled_not_its_last_pull(
    tmp_path: Path,
) -> None:
    """A first pull that fails leaves an empty mirror file: nothing of the host is in it.
    Every command says no pull has succeeded yet: never "offline, showing the last pull",
    a host without runs ("no runs found", exit 0), no duplicates with it, or no such run."""
    root, db = make_host(tmp_path, "gpu1", "lightning")
    down = tmp_path / "down"
    down.touch()
    refused = 'echo "ssh: connect to host gpu1 port 22: Connection refused" >&2; exit 255'
    script = f'if [ -e {shlex.quote(str(down))} ]; then {refused}; fi; exec {host_command(db)} "$@"'
    add("gpu1", f"sh -c {shlex.quote(script)} host")
    code, _, err = cli("remote", "pull", "gpu1")
    assert code == 1 and "Connection refused" in err
    assert config.get("gpu1").mirror_path.exists()  # the empty mirror the failure left

    code, out, _ = cli("remote", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["state"] == "never" and listed["last_ok"] is None
    assert "Connection refused" in listed["last_error"]
    for args in (["runs", "--all-hosts"], ["runs", "--all-hosts", "--json"]):
        code, out, err = cli(*args)
        assert "gpu1: no pull has succeeded yet" in err, err
        assert "showing the last pull" not in err and "Connection refused" in err
    code, out, err = cli("runs", "--host", "gpu1", "--json")
    assert code == 2 and out == "" and "gpu1: no pull has succeeded yet" in err, (out, err)
    code, _, err = cli("diff", "gpu1:version_0", "gpu1:version_1")
    assert code == 2 and "gpu1: no pull has succeeded yet" in err and "no run" not in err, err
    code, _, err = cli("diff", f"gpu1:{root / RUN / 'hparams.yaml'}", f"gpu1:{root / RUN}")
    assert code == 2 and "gpu1: no pull has succeeded yet" in err, err

    # the host comes back: its runs; then goes away: now it is its last pull that shows
    down.unlink()
    assert cli("remote", "pull", "gpu1")[0] == 0
    code, out, err = cli("runs", "--host", "gpu1", "--json")
    assert code == 0 and not err and {r["name"] for r in json.loads(out)} == local_runs(db)
    down.touch()
    assert cli("remote", "pull", "gpu1")[0] == 1
    assert json.loads(cli("remote", "list", "--json")[1])[0]["state"] == "offline"
    code, out, err = cli("runs", "--host", "gpu1", "--json")
    assert code == 0 and "gpu1: offline, showing the last pull" in err, err
    assert {r["name"] for r in json.loads(out)} == local_runs(db)
