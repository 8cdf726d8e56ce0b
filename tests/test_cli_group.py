"""The command group: lazy commands, the default command, completion, a fast --help."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tui.cli import main
from tui.cli.group import COMMANDS, DEFAULT_COMMAND

PROJECT = Path(__file__).resolve().parent.parent
MODULES = (
    *("open_app", "index", "watch", "diff", "scan", "check", "retention", "feed", "remote"),
    "objstore",
)
"""Every module of tui.cli that defines commands (each lists them in ``COMMANDS``)."""


def artlens(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess, never near the user's own indexes (no TUI can start)."""
    base = {k: v for k, v in os.environ.items() if k != "ARTLENS_DB"}
    base["ARTLENS_CACHE"] = os.devnull + "/none"  # an empty registry: nothing to open
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={**base, **(env or {})},
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_registry_lists_every_command_with_its_own_summary() -> None:
    found: dict[str, click.Command] = {}
    for name in MODULES:
        for command in importlib.import_module(f"tui.cli.{name}").COMMANDS:
            assert command.name is not None
            found[command.name] = command
    assert set(COMMANDS) == set(found)
    for name, entry in COMMANDS.items():
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        assert command is found[name]
        assert entry.summary == command.get_short_help_str(limit=200), name


def test_help_imports_no_command_module_textual_or_rich() -> None:
    code = (
        "import sys; from tui.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('textual', 'rich', 'store.diff', 'store.inspect', 'sqlite_utils')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy\n"
        "    or m.startswith('tui.cli.') and m != 'tui.cli.group')\n"
        "print('IMPORTED', bad, file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=60
    )
    assert "Commands:" in out.stdout and "runs" in out.stdout
    assert out.stderr.strip() == "IMPORTED []", out.stderr


def test_a_file_diff_to_json_imports_neither_the_index_nor_rich(tmp_path: Path) -> None:
    """Two files need no index, no run diff and no Rich: every import costs start-up."""
    (tmp_path / "a.json").write_text('{"lr": 0.1}')
    (tmp_path / "b.json").write_text('{"lr": 0.2}')
    code = (
        "import sys; from tui.cli import main\n"
        f"try:\n    main(['diff', {str(tmp_path / 'a.json')!r}, {str(tmp_path / 'b.json')!r},"
        " '--json'])\n"
        "except SystemExit as exc:\n    print('EXIT', exc.code, file=sys.stderr)\n"
        "heavy = ('textual', 'rich', 'sqlite_utils', 'store.rundiff', 'tui.diff_render')\n"
        "print('IMPORTED', sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=60
    )
    assert '"lr"' in done.stdout and "EXIT 1" in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "IMPORTED []", done.stderr


def test_runs_json_imports_no_textual_diff_or_inspect(tmp_path: Path) -> None:
    out = artlens("runs", "--json", "--db", str(tmp_path / "none.db"))
    assert out.returncode == 2  # no index: the import check below is what matters
    code = (
        "import sys; from tui.cli import main\n"
        f"try:\n    main(['runs', '--json', '--db', {str(tmp_path / 'none.db')!r}])\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('textual', 'rich', 'store.diff', 'store.inspect', 'store.scan')\n"
        "print('IMPORTED', sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=60
    )
    assert done.stderr.strip().splitlines()[-1] == "IMPORTED []", done.stderr


def test_unknown_option_is_named_as_artlens_own() -> None:
    out = artlens("--bogus")
    assert out.returncode == 2
    assert "Usage: artlens [OPTIONS] COMMAND" in out.stderr
    assert "No such option" in out.stderr and "--bogus" in out.stderr
    assert "artlens open" not in out.stderr


def test_default_command_takes_roots_and_its_own_options(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    for args in ([missing], ["--no-watch", missing], [f"--db={tmp_path / 'i.db'}", missing]):
        out = artlens(*args, env={"ARTLENS_CACHE": str(tmp_path / "c")})
        assert out.returncode == 2
        assert out.stderr.strip() == f"artlens: error: not a folder: {missing}", args


def test_no_arguments_runs_the_default_command(tmp_path: Path) -> None:
    out = artlens(env={"ARTLENS_CACHE": str(tmp_path / "c")})
    assert out.returncode == 2 and "nothing to show yet" in out.stderr


def _complete(words: str, cword: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", "from tui.cli import main; main(prog_name='artlens')"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={
            **os.environ,
            "_ARTLENS_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        },
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("artlens ru", 1, ["plain,runs"]),
        ("artlens re", 1, ["plain,remote", "plain,retention"]),
        ("artlens ret", 1, ["plain,retention"]),
        ("artlens runs --j", 2, ["plain,--json"]),
        ("artlens retention pl", 2, ["plain,plan"]),
    ],
)
def test_shell_completion_of_subcommands(words: str, cword: int, expected: list[str]) -> None:
    assert _complete(words, cword) == expected


def test_every_command_is_offered_on_an_empty_word() -> None:
    offered = _complete("artlens ", 1)
    assert offered == [f"plain,{name}" for name in sorted(COMMANDS)]
    assert f"plain,{DEFAULT_COMMAND}" in offered


def test_help_marks_the_default_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "  open*" in result.output


def test_the_explorer_without_a_terminal_is_a_one_line_error_before_any_work(
    tmp_path: Path,
) -> None:
    """With stdin or stdout redirected the app drew into the pipe and waited for keys that
    never came, a core busy until killed; nothing is indexed for it now."""
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "metrics.csv").write_text("step,loss\n0,1.0\n")
    db = tmp_path / "i.db"
    out = artlens(str(root), f"--db={db}")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        "artlens: error: the explorer needs a terminal (standard input is not a terminal): "
        "`artlens index`, `runs`, `ls` and `diff` work without one"
    )
    assert not db.exists()
    demo = artlens("demo", str(tmp_path / "demo"), f"--db={db}", "--no-live")
    assert demo.returncode == 2, demo.stderr
    assert "not opened: the explorer needs a terminal" in demo.stderr
    assert "demo written to" in demo.stdout and db.exists()
