"""The console script keeps compiled bytecode in a folder of artlens's where Python was told
not to write it beside the sources, and only in a folder no one else can write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import sys, tui.launch as l; kept = l.keep_bytecode(); import store.paths, elsewhere;"
    " where = [f.folder for f in sys.meta_path if hasattr(f, 'folder')];"
    " print(kept, where[0] if where else None, sys.pycache_prefix, sys.dont_write_bytecode)"
)


@pytest.fixture
def python(tmp_path: Path) -> Path:
    """A Python of its own environment (its ``sys.prefix`` is the first folder tried)."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")],
        check=True,
        timeout=120,
    )
    return tmp_path / "env" / "bin" / "python"


def probe(python: Path, **env: str) -> str:
    other = python.parents[2] / "other"  # a module of someone else's, never compiled yet
    other.mkdir(exist_ok=True)
    (other / "elsewhere.py").write_text("VALUE = 1\n")
    run = subprocess.run(
        [str(python), "-c", PROBE],
        env={
            **os.environ,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{other}",
            "PYTHONDONTWRITEBYTECODE": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return run.stdout.strip()


def test_bytecode_goes_beside_the_environment_else_to_the_cache(
    tmp_path: Path, python: Path
) -> None:
    cache = tmp_path / "cache"
    beside = tmp_path / "env" / "share" / "artlens" / "pycache"
    # Python's own settings stay as they were: only artlens's modules are redirected
    assert probe(python, ARTLENS_CACHE=str(cache)) == f"True {beside} None True"
    assert oct(beside.stat().st_mode & 0o777) == "0o700"
    compiled = [p.name for p in beside.rglob("*.pyc")]
    assert any(n.startswith("paths.") for n in compiled)  # store/paths.py
    assert not any(n.startswith("elsewhere.") for n in compiled)
    beside.parent.chmod(0o777)  # others may write there: not used
    assert probe(python, ARTLENS_CACHE=str(cache)) == f"True {cache / 'pycache'} None True"
    (cache / "pycache").chmod(0o770)
    assert probe(python, ARTLENS_CACHE=str(cache)) == "False None None True"
    for leftover in (cache / "pycache").rglob("*"):
        if leftover.is_file():
            leftover.unlink()
    for folder in sorted((cache / "pycache").rglob("*"), reverse=True):
        folder.rmdir()
    (cache / "pycache").rmdir()
    (cache / "pycache").symlink_to(tmp_path, target_is_directory=True)
    assert probe(python, ARTLENS_CACHE=str(cache)) == "False None None True"


def test_python_is_left_alone_when_it_writes_bytecode_or_is_told_so(
    tmp_path: Path, python: Path
) -> None:
    cache = str(tmp_path / "cache")
    assert probe(python, ARTLENS_CACHE=cache, ARTLENS_NO_PYCACHE="1") == "False None None True"
    assert probe(python, ARTLENS_CACHE=cache, PYTHONDONTWRITEBYTECODE="") == (
        "False None None False"
    )
    assert not (tmp_path / "env" / "share" / "artlens").exists()


def test_the_command_runs_from_compiled_modules_the_second_time(tmp_path: Path) -> None:
    artlens = Path(sys.executable).with_name("artlens")
    if not artlens.exists():
        pytest.skip("the console script is not installed beside this Python")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "ARTLENS_CACHE": str(tmp_path)}
    venv_folder = Path(sys.prefix) / "share" / "artlens" / "pycache"
    # what other runs left there: an explorer's worker importing while the UI thread
    # compiles one of artlens's modules writes its bytecode there too (launch.py says so)
    before = set(venv_folder.rglob("core.*.pyc"))
    for _ in range(2):
        run = subprocess.run(
            [str(artlens), "--version"], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0 and "artlens" in run.stdout
    folder = venv_folder
    if not folder.is_dir():  # the environment is not ours to write: the cache folder is
        folder = tmp_path / "pycache"
    compiled = list(folder.rglob("group.*.pyc"))  # tui/cli/group.py
    assert compiled and not any(p.is_relative_to(ROOT / "tui") for p in compiled)
    # click/core.py: pip compiled it already, and this single-threaded command leaves it so
    assert set(folder.rglob("core.*.pyc")) <= before


def artlens(*args: str, thread: bool = False) -> subprocess.CompletedProcess[str]:
    """The console script's ``main`` in a new Python; "TEARDOWN" on stderr says Python's
    own exit ran (an atexit function)."""
    code = (
        "import atexit, sys, threading\n"
        "atexit.register(lambda: sys.stderr.write('TEARDOWN\\n'))\n"
        + (
            "stop = threading.Event(); threading.Thread(target=stop.wait, daemon=True).start()\n"
            if thread
            else ""
        )
        + f"sys.argv = ['artlens', *{list(args)!r}]\n"
        "import tui.launch; tui.launch.main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT), "ARTLENS_NO_FORK": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_index_ends_without_teardown_and_says_everything(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "metrics.json").write_text('{"loss": 0.5}')
    db = tmp_path / "index.db"
    done = artlens("index", "--no-hash", "--db", str(db), str(root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"index: {db}"  # flushed before the end
    assert "TEARDOWN" not in done.stderr
    as_json = artlens("index", "--no-hash", "--json", "--db", str(db), str(root))
    assert as_json.returncode == 0 and '"db"' in as_json.stdout and "TEARDOWN" not in as_json.stderr
    # with another thread alive, or a command that failed, Python ends as usual
    threaded = artlens("index", "--no-hash", "--db", str(db), str(root), thread=True)
    assert threaded.returncode == 0 and "TEARDOWN" in threaded.stderr
    failed = artlens("index", "--no-hash", "--db", str(db), str(tmp_path / "missing"))
    assert failed.returncode != 0 and "TEARDOWN" in failed.stderr
    listed = artlens("runs", "--json", "--db", str(db))
    assert listed.returncode == 0 and "TEARDOWN" not in listed.stderr
    assert [run["path"] for run in json.loads(listed.stdout)] == [str(root / "run")]
    other = artlens("runs", "--db", str(db))
    assert other.returncode == 0 and "TEARDOWN" in other.stderr  # only those that ask for it
