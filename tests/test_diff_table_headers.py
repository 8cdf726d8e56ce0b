"""Tables whose header repeats a name compare by the names the files give.

A repeated column name is compared as ``name#2``, and the tables' headers were compared
after that renaming: ``step,a,a`` against ``step,a,a#2`` (a column renamed) was "equal",
exit 0.  The headers as written decide equality; the renamed ones only pair the columns.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from store.diff import TableDiff, diff_csv, diff_files
from tui.cli import main


def test_a_repeated_name_against_its_renamed_spelling_differs(tmp_path: Path) -> None:
    old, new = tmp_path / "a.csv", tmp_path / "b.csv"
    old.write_text("step,loss,loss\n1,0.5,0.7\n2,0.4,0.6\n")
    new.write_text("step,loss,loss#2\n1,0.5,0.7\n2,0.4,0.6\n")
    for first, second in ((old, new), (new, old)):
        result = diff_csv(first, second)
        assert not result.equal
        assert any("column 3 is" in w and "'loss#2'" in w for w in result.warnings)
        file_diff = diff_files(first, second)
        assert file_diff.kind == "table" and not file_diff.equal
        run = CliRunner().invoke(main, ["diff", str(first), str(second)])
        assert run.exit_code == 1, run.output
        assert "column 3 is" in run.output


def test_tables_repeating_the_same_names_are_still_equal(tmp_path: Path) -> None:
    old, new = tmp_path / "a.csv", tmp_path / "b.csv"
    old.write_text("step,loss,loss\n1,0.5,0.7\n")
    new.write_text("step,loss,loss\n1,0.5,0.7\n")
    result = diff_csv(old, new)
    assert isinstance(result, TableDiff) and result.equal
    assert not any("column 3 is" in w for w in result.warnings)
    changed = tmp_path / "c.csv"
    changed.write_text("step,loss,loss\n1,0.5,0.8\n")
    moved = diff_csv(old, changed)
    assert not moved.equal and [(c.column, c.old, c.new) for c in moved.cells] == [
        ("loss#2", "0.7", "0.8")
    ]
