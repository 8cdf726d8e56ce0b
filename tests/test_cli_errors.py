"""One error family, one mapping: every command's bad input is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from store.errors import ArtlensError
from store.lock import WriterBusyError
from store.retention.plan import PlanError
from store.retention.policy import PolicyError
from store.userstate import UserStateError
from tui.cli import main


def test_user_facing_errors_share_one_root() -> None:
    for error in (WriterBusyError, PlanError, PolicyError, UserStateError):
        assert issubclass(error, ArtlensError), error
    assert issubclass(WriterBusyError, RuntimeError)  # old callers still catch it


def test_bad_input_to_several_commands_is_one_line_and_exit_2(
    isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "model.ckpt").write_bytes(b"x")
    db = tmp_path / "index.db"
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(root), "--db", str(db)]).exit_code == 0
    (root / ".artlens.toml").write_text("[retention]\nkeep_last = 'many'\n")
    cases = {
        "policy": ["retention", "plan", str(root), "--db", str(db)],
        "plan id": ["retention", "apply", "../../etc", "--db", str(db)],
        "both plan and flags": ["retention", "apply", "x", "--keep-last", "1", "--db", str(db)],
        "no root": ["du", str(tmp_path / "elsewhere"), "--db", str(db)],
        "no index": ["runs", "--db", str(tmp_path / "missing.db")],
        "trash ids": ["trash", "restore", "--db", str(db)],
        "config": ["check", "--config", str(tmp_path / "none.toml"), "--db", str(db)],
        "scan": ["scan", str(tmp_path / "gone.pt")],
        "feed": ["feed", "--db", str(db)],
    }
    for name, args in cases.items():
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 2, (name, result.output, result.stderr)
        assert result.stderr.startswith("artlens: error: "), (name, result.stderr)
        assert result.stderr.count("\n") == 1, (name, result.stderr)
        assert "Traceback" not in result.output, name


def _indexed(tmp_path: Path) -> tuple[Path, Path]:
    """A root with one run and one checkpoint, indexed: (root, index)."""
    root = tmp_path / "root"
    (root / "r").mkdir(parents=True)
    (root / "r" / "a.ckpt").write_bytes(b"x\n")
    db = tmp_path / "index.db"
    result = CliRunner().invoke(main, ["index", str(root), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return root, db


def _damaged_copy(db: Path, name: str, sql: str) -> Path:
    """A copy of the index with ``sql`` applied, as another tool could."""
    import shutil
    import sqlite3

    damaged = db.with_name(name)
    shutil.copy(db, damaged)
    conn = sqlite3.connect(damaged)
    try:
        with conn:
            assert conn.execute(sql).rowcount == 1
    finally:
        conn.close()
    return damaged


def _one_line(result: Any) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    return str(result.stderr)


def test_a_text_path_in_the_index_is_read_as_its_bytes_or_named_as_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TEXT path where artlens writes BLOBs: the readers take it as its UTF-8 bytes, and
    a command that still fails on it says which column, in one line, never a traceback."""
    monkeypatch.delenv("ARTLENS_DEBUG", raising=False)
    root, db = _indexed(tmp_path)
    cast = "UPDATE {0} SET path = CAST(path AS TEXT) WHERE id = 1"
    runner = CliRunner()
    for table in ("artifacts", "runs"):
        damaged = _damaged_copy(db, f"{table}.db", cast.format(table))
        listed = runner.invoke(main, ["ls", "--db", str(damaged)])
        assert listed.exit_code == 0 and "r/a.ckpt" in listed.stdout, listed.output
        runs = runner.invoke(main, ["runs", "--json", "--db", str(damaged)])
        assert runs.exit_code == 0, runs.output
        assert json.loads(runs.stdout)[0]["path"] == str(root / "r")
        feed = runner.invoke(main, ["feed", "--json", "--db", str(damaged)])
        assert feed.exit_code == 0 and '"path":"r"' in feed.stdout, feed.output
        for args in (["du"], ["check"], ["diff", "r", "r"], ["index", str(root)]):
            result = runner.invoke(main, [*args, "--db", str(damaged)])
            if result.exit_code == 2:  # a reader that takes BLOBs only: named, not a crash
                assert _one_line(result) == (
                    f"artlens: error: index database: damaged row ({table}.path holds text)"
                    " (rebuild: artlens index ROOT --db NEW)\n"
                ), args
            else:
                assert result.exit_code in (0, 1), (args, result.output)


def test_a_number_where_a_path_belongs_is_a_damaged_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bytes(7)`` is seven zero bytes: a number in a path column is damage, never a path."""
    monkeypatch.delenv("ARTLENS_DEBUG", raising=False)
    _root, db = _indexed(tmp_path)
    runner = CliRunner()
    for table, args in (("runs", ["runs"]), ("runs", ["runs", "--json"]), ("artifacts", ["ls"])):
        damaged = _damaged_copy(db, f"{table}.db", f"UPDATE {table} SET path = 7 WHERE id = 1")
        result = runner.invoke(main, [*args, "--db", str(damaged)])
        assert result.exit_code == 2, (args, result.output)
        assert f"damaged row ({table}.path holds integer)" in _one_line(result)


def test_a_bug_is_one_line_with_exit_70_or_its_traceback_when_debugging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tui.cli.common import EXIT_INTERNAL, index_used, one_line_errors

    monkeypatch.delenv("ARTLENS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as ended, one_line_errors():
        raise RuntimeError("\x1b]52;c;evil\x07 \udcff\ud800\nsecond line")
    assert ended.value.code == EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert err == (
        "artlens: internal error: RuntimeError: \\e]52;c;evil\\x07 \\xff\\ud800 second line"
        " (set ARTLENS_DEBUG=1 for the traceback)\n"
    )
    with pytest.raises(click.exceptions.Exit), one_line_errors():  # click's own pass
        raise click.exceptions.Exit(0)
    # after a failure on an index whose path columns another tool changed: that, named
    _root, db = _indexed(tmp_path)
    damaged = _damaged_copy(
        db, "d.db", "UPDATE artifacts SET path = CAST(path AS TEXT) WHERE id = 1"
    )
    with pytest.raises(SystemExit) as ended, one_line_errors():
        index_used(damaged)
        raise TypeError("string argument without an encoding")
    assert ended.value.code == 2
    assert "damaged row (artifacts.path holds text)" in capsys.readouterr().err
    monkeypatch.setenv("ARTLENS_DEBUG", "1")
    with pytest.raises(ValueError, match="a bug"), one_line_errors():
        raise ValueError("a bug")


def test_an_empty_root_or_run_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Path("")`` is the current folder: ``index ""`` indexed wherever it was run."""
    _root, db = _indexed(tmp_path)
    here = tmp_path / "cwd"
    (here / "run").mkdir(parents=True)
    (here / "run" / "model.ckpt").write_bytes(b"x")
    monkeypatch.chdir(here)
    runner = CliRunner()
    for args, message in (
        (["index", "", "--db", str(tmp_path / "new.db")], "ROOT is empty"),
        (["index", str(here), "", "--db", str(tmp_path / "new.db")], "ROOT is empty"),
        (["ls", "", "--db", str(db)], "RUN is empty"),
        (["du", "", "--db", str(db)], "ROOT is empty"),
        (["retention", "plan", "", "--db", str(db)], "ROOT is empty"),
        (["scan", ""], "TARGET is empty"),
        (["watch", "", "--db", str(tmp_path / "new.db")], "ROOT is empty"),
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert _one_line(result).startswith(f"artlens: error: {message}"), args
    assert not (tmp_path / "new.db").exists()


def test_the_explorer_refuses_an_empty_root(tmp_path: Path) -> None:
    """``artlens ""`` opened the folder it was run in; it is a usage error before any
    index or screen is touched."""
    result = CliRunner().invoke(main, ["", "--db", str(tmp_path / "new.db")])
    assert result.exit_code == 2 and "is empty" in result.stderr
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--max-time", "nan", "."],
        ["scan", "--max-time", "inf", "."],
        ["scan", "--max-time", "0", "."],
        ["watch", "--poll", "nan", "."],
        ["watch", "--poll", "0", "."],
        ["demo", "--duration", "nan", "--no-open"],
        ["du", "--top", "-1"],
        ["retention", "plan", "--keep-last", "-1"],
        ["retention", "plan", "--keep-best", str(1 << 70), "--metric", "loss"],
    ],
)
def test_numbers_that_are_no_count_or_time_are_usage_errors(
    tmp_path: Path, args: list[str]
) -> None:
    """nan passes ``FloatRange`` (every comparison with it is false), -1 meant 'all' to
    nobody, 2**70 overflowed SQL: each is refused where it is parsed."""
    result = CliRunner().invoke(
        main, [*args, "--db", str(tmp_path / "x.db")] if args[0] != "scan" else args
    )
    assert result.exit_code == 2, (args, result.output)
    assert "Invalid value" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()


def test_integer_options_stop_at_what_sqlite_holds(tmp_path: Path) -> None:
    """A number past SQLite's 64 bits ended in an OverflowError where it met SQL."""
    _root, db = _indexed(tmp_path)
    huge = str(1 << 70)
    runner = CliRunner()
    for args in (
        ["feed", "--json", "--after", huge],
        ["feed", "--json", "--after", "-1"],
        ["remote", "dups", "--min-size", huge],
        ["remote", "dups", "--top", "0"],
        ["bucket", "dups", "s3://b/p", "--top", huge],
    ):
        result = runner.invoke(main, [*args, "--db", str(db)] if args[0] != "bucket" else args)
        assert result.exit_code == 2, (args, result.output)
        assert "is not in the range" in result.stderr and "Traceback" not in result.output
    top = runner.invoke(main, ["feed", "--json", "--after", str((1 << 63) - 1), "--db", str(db)])
    assert top.exit_code == 0, top.output
