"""Rows a CSV error kept from being read never compare as equal.

The csv module stops at a field over 131,072 characters ("field larger than field
limit"); the rows after it were dropped with a warning, and two metric logs differing
only there were "equal after parsing" (exit 0), their last values taken from before the
long field.  Tables whose bytes differ are now equal only when read whole.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from store.diff import diff_csv, diff_files
from tui.cli import main

LONG = "x" * 200_000


def write_logs(tmp_path: Path, last: str) -> tuple[Path, Path]:
    old, new = tmp_path / "a.csv", tmp_path / "b.csv"
    head = f"step,loss,note\n1,0.5,a\n2,0.4,{LONG}\n"
    old.write_text(head + "3,0.3,c\n")
    new.write_text(head + f"3,{last},c\n")
    return old, new


def test_rows_a_csv_error_left_unread_are_never_equal(tmp_path: Path) -> None:
    old, new = write_logs(tmp_path, "0.9")
    result = diff_csv(old, new)
    assert any("CSV error" in w for w in result.warnings)
    assert not result.equal
    assert any("not known to be equal" in w for w in result.warnings)
    file_diff = diff_files(old, new)
    assert file_diff.kind == "table" and not file_diff.equal
    run = CliRunner().invoke(main, ["diff", str(old), str(new)])
    assert run.exit_code == 1, run.output[:500]
    assert "not known to be equal" in run.output


def test_the_same_bytes_are_equal_read_whole_or_not(tmp_path: Path) -> None:
    old, _ = write_logs(tmp_path, "0.3")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(old.read_bytes())
    result = diff_csv(old, copy)
    assert result.equal and any("CSV error" in w for w in result.warnings)
