"""``artlens diff`` of two runs whose names, keys or lines print alike without being one:
a zero-width space (printed as its escape ``\\u200b``) against the six characters
``\\u200b`` typed into a name.  Each side is spelled (``safetext.spelled``) so the two read
differently, and the row says why; before, ``- a\\u200bb`` and ``+ a\\u200bb`` read alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_rundiff import age
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")

TYPED = "a\\u200bb"  # six characters: a backslash, u, 2, 0, 0, b (then a b)
ZWSP = "a\u200bb"  # a zero-width space between a and b
ALIKE = "differs only in characters that print alike"


def two_runs(tmp_path: Path, contents: tuple[str, str]) -> Path:
    """Run ``typed`` holds a file and a config key named ``TYPED``, run ``zwsp`` the same
    named ``ZWSP``; indexed and hashed by the CLI: the index."""
    root = tmp_path / "root"
    for run, name, content in (("typed", TYPED, contents[0]), ("zwsp", ZWSP, contents[1])):
        (root / run).mkdir(parents=True)
        (root / run / name).write_text(content)
        config = {name: 1, "tag": name, "lr": 0.1}
        (root / run / "config.json").write_text(json.dumps(config, ensure_ascii=False))
        (root / run / "metrics.csv").write_text("step,loss\n0,1.0\n")
    age(root)
    db = tmp_path / "i.db"
    done = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    assert done.exit_code == 0, done.output
    return db


def diff(*args: str) -> tuple[int, list[list[str]]]:
    result = CliRunner().invoke(main, ["diff", *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, [line.split("\t") for line in result.stdout.splitlines()]


def rows_of(lines: list[list[str]], kind: str) -> list[list[str]]:
    return [line for line in lines if line[0] == kind]


def test_added_and_removed_files_that_print_alike_read_differently(tmp_path: Path) -> None:
    db = two_runs(tmp_path, ("one", "two"))
    code, lines = diff("typed", "zwsp", "--db", str(db))
    assert code == 1
    (removed,) = rows_of(lines, "- removed")
    (added,) = rows_of(lines, "+ added")
    assert removed[1] == "a\\\\u200bb"  # the typed backslash doubled
    assert added[1] == "a\\u200bb"  # the zero-width space as its escape
    assert removed[-1] == f"only in A (name {ALIKE} from another)"
    assert added[-1] == f"only in B (name {ALIKE} from another)"


def test_a_file_moved_to_a_name_that_prints_alike_reads_as_a_move(tmp_path: Path) -> None:
    db = two_runs(tmp_path, ("same", "same"))
    _, lines = diff("typed", "zwsp", "--db", str(db))
    (moved,) = rows_of(lines, "→ moved")
    assert moved[1:3] == ["a\\u200bb", "a\\\\u200bb"]  # new name, old name
    assert moved[-1] == f"same content, name {ALIKE}"


def test_param_and_config_keys_and_values_that_print_alike(tmp_path: Path) -> None:
    db = two_runs(tmp_path, ("same", "same"))
    _, lines = diff("typed", "zwsp", "--db", str(db))
    params = {(line[0], line[1]): line for line in rows_of(lines, "- param")}
    params |= {(line[0], line[1]): line for line in rows_of(lines, "+ param")}
    assert set(params) == {("- param", "a\\\\u200bb"), ("+ param", "a\\u200bb")}
    assert all(f"(key {ALIKE} from another)" in line[-1] for line in params.values())
    (tag,) = [line for line in rows_of(lines, "~ param") if line[1] == "tag"]
    assert tag[2:] == ["a\\\\u200bb", "a\\u200bb", f"changed ({ALIKE})"]
    configs = [line[1] for line in lines if line[0] in ("- config", "+ config")]
    assert sorted(configs) == ["config.json: a\\\\u200bb", "config.json: a\\u200bb"]


def test_text_lines_that_print_alike_are_said_to(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(f"x\n{TYPED}\n")
    (tmp_path / "b.txt").write_text(f"x\n{ZWSP}\n")
    result = CliRunner().invoke(main, ["diff", str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[-1].startswith(
        f"old line 2 and new line 2 look alike but {ALIKE.replace('differs', 'differ')}"
    )
