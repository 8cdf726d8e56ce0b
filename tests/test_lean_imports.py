"""A command that opens the index does not pay for numpy (sqlite_utils would import it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=120
    )


def test_index_writes_without_importing_numpy(tmp_path: Path) -> None:
    run = tmp_path / "root" / "run-1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"loss": 0.5}')
    args = ["index", str(tmp_path / "root"), "--db", str(tmp_path / "index.db"), "--no-hash"]
    done = _run(
        "import sys; from tui.cli import main\n"
        f"try:\n    main({args!r})\n"
        "except SystemExit as exc:\n    print('EXIT', exc.code, file=sys.stderr)\n"
        "print('NUMPY', 'numpy' in sys.modules, 'sqlite_utils' in sys.modules, file=sys.stderr)\n"
        "import numpy, sqlite_utils.db\n"
        "print('LATER', numpy.zeros(2).tolist(), sqlite_utils.db.np, file=sys.stderr)"
    )
    lines = done.stderr.strip().splitlines()
    assert "EXIT 0" in lines, done.stderr
    assert "NUMPY False True" in lines, done.stderr  # the index was written, numpy never loaded
    assert "LATER [0.0, 0.0] None" in lines, done.stderr  # and numpy still imports after


def test_with_another_thread_alive_nothing_is_hidden() -> None:
    done = _run(
        "import sys, threading\n"
        "stop = threading.Event(); t = threading.Thread(target=stop.wait); t.start()\n"
        "import store, sqlite_utils\n"
        "stop.set(); t.join()\n"
        "print('NUMPY', 'numpy' in sys.modules)"
    )
    assert done.stdout.strip() == "NUMPY True", done.stderr


def test_commands_load_without_yaml_and_read_yaml_after() -> None:
    """PyYAML is imported by the first YAML read, not by every command's start."""
    done = _run(
        "import sys, store.scan, store.frameworks, tui.cli.index\n"
        "print('YAML', 'yaml' in sys.modules)\n"
        "from store.yamlsafe import YamlError, load_yaml\n"
        "print('READ', load_yaml('a: !!python/tuple [1, 2]'))\n"
        "try:\n    load_yaml('a: [1')\nexcept YamlError as exc:\n    print('BAD', exc)"
    )
    lines = done.stdout.strip().splitlines()
    assert lines[:2] == ["YAML False", "READ {'a': [1, 2]}"], done.stderr
    assert lines[2].startswith("BAD invalid YAML"), done.stdout
