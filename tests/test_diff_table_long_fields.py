"""A field over 131,072 characters, csv's default field limit ("field larger than field
limit"), in a metric log.

First the rows after it were dropped with a warning, and two logs differing only there
were "equal after parsing" (exit 0); then they were "not known to be equal", their last
values still taken from before the long field.  Now the limit is the text's length
(``store.csvrows``): the rows after it are read and compared like any other.
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


def test_rows_after_a_long_field_are_compared(tmp_path: Path) -> None:
    old, new = write_logs(tmp_path, "0.9")
    result = diff_csv(old, new)
    assert result.warnings == [] and not result.equal
    assert [(c.row, c.column, c.old, c.new) for c in result.cells] == [("3", "loss", "0.3", "0.9")]
    last = {v.column: (v.old, v.new) for v in result.last_values}
    assert last["loss"] == (0.3, 0.9)  # the last row's, not one from before the long field
    file_diff = diff_files(old, new)
    assert file_diff.kind == "table" and not file_diff.equal
    run = CliRunner().invoke(main, ["diff", str(old), str(new)])
    assert run.exit_code == 1, run.output[:500]
    assert "row 3, loss: 0.3 → 0.9" in run.output


def test_the_same_bytes_are_equal(tmp_path: Path) -> None:
    old, _ = write_logs(tmp_path, "0.3")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(old.read_bytes())
    result = diff_csv(old, copy)
    assert result.equal and result.warnings == []
    assert result.rows_old == 3
