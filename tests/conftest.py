"""Shared fixtures: a hostile tree with every pathology the indexer must survive."""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

USER_DIR_VARS = ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")


@pytest.fixture(autouse=True, scope="session")
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Saved plans, configs, cached indexes and user state (pins, notes, bucket trash
    records) go under the session's tmp folder, never
    into the home of whoever runs the tests (subprocesses inherit the variables)."""
    base = tmp_path_factory.mktemp("user-dirs")
    saved = {name: os.environ.get(name) for name in USER_DIR_VARS}
    for name in USER_DIR_VARS:
        os.environ[name] = str(base / name.lower())
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def _bugs_keep_their_traceback() -> Iterator[None]:
    """``ARTLENS_DEBUG=1``: a bug in a command raises (CliRunner keeps the exception, a
    subprocess prints the traceback) instead of the one-line internal error users get.
    A test of that line removes the variable with ``monkeypatch``."""
    saved = os.environ.get("ARTLENS_DEBUG")
    os.environ["ARTLENS_DEBUG"] = "1"
    yield
    if saved is None:
        os.environ.pop("ARTLENS_DEBUG", None)
    else:
        os.environ["ARTLENS_DEBUG"] = saved


HOSTILE_NAMES = [
    "lr[0.1].yaml",
    "[bold]x.txt",
    "exp[bold]name.json",
    "red\x1b[31mtext.log",
    "new\nline.txt",
    "osc\x1b]52;c;aGVsbG8=\x07.txt",
]


def make_hostile_tree(root: Path) -> Path:
    """Write a small tree holding every case of reliability.md's failure list."""
    run = root / "run-a"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "epoch=1-step=10.ckpt").write_bytes(b"\x80\x04K\x01." * 10)
    (run / "metrics.json").write_text('{"loss": 0.5, "acc": ')  # truncated JSON
    (run / "metrics.csv").write_text("step,loss\n1,0.5\n2\n3,0.3,extra\n")  # ragged CSV
    for name in HOSTILE_NAMES:
        (run / name).write_text("hostile name\n")
    (run / "ckpt[").mkdir()
    (run / "ckpt[" / "]evil").write_text("the path reads ckpt[/]evil: a markup closing tag\n")
    os.mkfifo(run / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(run / "sock"))
    (run / "outside").symlink_to("/etc")
    (run / "loop-a").symlink_to("loop-b")
    (run / "loop-b").symlink_to("loop-a")
    (run / "dangling.ckpt").symlink_to("missing.ckpt")
    (run / "dirlink").symlink_to(run)  # a link back to its own folder: must not be followed
    with open(os.fsencode(run) + b"/caf\xe9-\xff.txt", "wb") as f:
        f.write(b"not utf-8 name\n")
    sparse = run / "sparse.bin"
    with open(sparse, "wb") as f:
        f.truncate(1 << 34)  # 16 GiB apparent size, no blocks
    (root / "run-b" / "deep" / "er").mkdir(parents=True)
    (root / "run-b" / "deep" / "er" / "model.safetensors").write_bytes(b"\x00" * 8)
    (root / "run-b" / "requirements.txt").write_text("torch==2.3\n")
    return root


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    return make_hostile_tree(tmp_path / "root")


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Keep indexes, the registry and user state out of the real home folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARTLENS_CACHE", str(cache))
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("ARTLENS_CONFIG", str(tmp_path / "config"))  # remotes.json
    monkeypatch.delenv("ARTLENS_DB", raising=False)
    yield cache


def indexed_paths(db_path: Path) -> list[str]:
    """Every artifact path the index at ``db_path`` holds, sorted (read-only)."""
    from store.index.db import open_db

    db = open_db(db_path, readonly=True)
    try:
        rows = db.conn.execute("SELECT path FROM artifacts")
        return sorted(bytes(path).decode() for (path,) in rows)
    finally:
        db.close()


def descriptors_into(top: Path) -> set[tuple[str, str]]:
    """The (fd, target) pairs of this process's open descriptors that point at or below
    ``top``. Leak checks compare these, not a count of every descriptor: the collector may
    close an earlier test's files at any moment, which a count reads as a change."""
    gc.collect()
    prefix = os.path.realpath(top)
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between the listing and the look
            continue
        if target == prefix or target.startswith(prefix + os.sep):
            found.add((fd, target))
    return found


def ground_truth(root: Path) -> dict[bytes, int]:
    """The convergence oracle: every file and symlink under root with its size, walked with
    os.scandir + lstat, never following links, skipping what the indexer ignores."""
    found: dict[bytes, int] = {}
    base = os.fsencode(root)
    stack = [b""]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(base + b"/" + rel if rel else base))
        except OSError:
            continue
        for entry in entries:
            child = rel + b"/" + entry.name if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            import stat as stat_mod

            if stat_mod.S_ISDIR(st.st_mode):
                if entry.name not in (b".artlens-trash", b".git", b"__pycache__"):
                    stack.append(child)
            elif stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISLNK(st.st_mode):
                found[child] = st.st_size
    return found


DROP_ROOT = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
"""Run a command as nobody: CI runs as root, where permission tests would pass vacuously."""


def unprivileged_python() -> list[str]:
    """The command prefix that runs this Python as nobody, or skip the test.

    Skips where setpriv is missing, or where nobody cannot run this interpreter (a Python
    installed under root's 0700 home folder, as pyenv does).
    """
    import shutil
    import subprocess
    import sys

    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is missing: a permission test would pass vacuously as root")
    command = [*DROP_ROOT, sys.executable]
    probe = subprocess.run(
        [*command, "-c", "import store"],
        capture_output=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.skip("the unprivileged user cannot run this Python interpreter")
    return command


def unprivileged_env(base: Path) -> dict[str, str]:
    """The environment of an artlens run as nobody: this checkout importable, and its
    home, cache, state and config under ``base``, which nobody may write."""
    return {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "HOME": str(base),
        "ARTLENS_CACHE": str(base / "cache"),
        "ARTLENS_STATE": str(base / "state.db"),
        "ARTLENS_CONFIG": str(base / "config"),
    }


@pytest.fixture
def lightning_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A copy of the real Lightning output, indexed and hashed, with user state, plans and
    config under tmp_path: (root, index path)."""
    import shutil

    from store.index.db import open_db
    from store.lock import WriterLock
    from store.scan import Indexer

    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    root = tmp_path / "lightning"
    shutil.copytree(Path(__file__).parent / "fixtures" / "frameworks" / "lightning", root)
    db_path = tmp_path / "index.db"
    with WriterLock(db_path):
        db = open_db(db_path)
        indexer = Indexer(db, root)
        indexer.scan()
        indexer.hash_pending()
        db.conn.close()
    return root, db_path


def index_dated(root: Path, db_path: Path, now: float, age: float) -> None:
    """Date every file and folder under ``root`` ``age`` seconds before ``now`` (links
    themselves, never followed), then index ``root`` into ``db_path`` with ``now`` as the
    clock: a tree whose runs are settled or live as the test says."""
    from store.index.db import open_db
    from store.lock import WriterLock
    from store.scan import Indexer

    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (now - age, now - age), follow_symlinks=False)
    with WriterLock(db_path):
        db = open_db(db_path)
        try:
            Indexer(db, root, clock=lambda: now).scan()
        finally:
            db.conn.close()
