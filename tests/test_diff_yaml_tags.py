"""A config diff keeps what a YAML tag says: two classes given one state are not equal.

The safe loader turns a Python tag into plain data and, for a mapping, dropped the tag:
``loss: !!python/object:torch.nn.modules.loss.MSELoss {reduction: mean}`` against the
same under ``L1Loss`` (a Lightning ``hparams.yaml`` after the loss was swapped) read as
one value, and ``artlens diff`` said "equal after parsing" (exit 0); so did two unknown
tags on one list, and an ``object/apply`` whose arguments changed.  The diff now loads
with each such tag kept as ``__tag__`` (nothing is imported or constructed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from store.diff import StructuredDiff, diff_files
from store.yamlsafe import load_yaml
from tui.cli import main

LOSS = "!!python/object:torch.nn.modules.loss.{}\n  reduction: mean\n  training: true\n"
APPLY = "!!python/object/apply:mymod.Scheduler\n  args: [{}]\n  state: {{gamma: 0.1}}\n"


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("loss: " + LOSS.format("MSELoss"), "loss: " + LOSS.format("L1Loss"), "loss.__tag__"),
        ("sched: " + APPLY.format(10), "sched: " + APPLY.format(20), "sched.args[0]"),
        ("aug: !flip [1, 2]\n", "aug: !crop [1, 2]\n", "aug.__tag__"),
        ("m: !!python/object:a.B {x: 1}\n", "m: {x: 1}\n", "m"),
    ],
    ids=["class", "apply-args", "unknown-tag-list", "tag-against-none"],
)
def test_values_told_apart_by_their_tag_differ(
    tmp_path: Path, old: str, new: str, path: str
) -> None:
    path_a, path_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    path_a.write_text(old)
    path_b.write_text(new)
    result = diff_files(path_a, path_b)
    assert result.kind == "structured" and isinstance(result.result, StructuredDiff)
    assert not result.equal
    assert path in {c.path for c in result.result.changes} or any(
        c.path.startswith(path) for c in result.result.changes
    )
    run = CliRunner().invoke(main, ["diff", str(path_a), str(path_b)])
    assert run.exit_code == 1, run.output
    assert diff_files(path_a, path_a).equal


def test_tags_that_say_nothing_more_stay_equal(tmp_path: Path) -> None:
    """A tuple is a list to a config, and an OrderedDict its mapping."""
    path_a, path_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    path_a.write_text(
        "shape: !!python/tuple [4, 2]\n"
        "opt: !!python/object/apply:collections.OrderedDict\n  - [[lr, 0.1]]\n"
    )
    path_b.write_text("shape: [4, 2]\nopt: {lr: 0.1}\n")
    result = diff_files(path_a, path_b)
    assert result.kind == "structured" and result.equal


def test_nothing_is_constructed_and_other_readers_keep_plain_values(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f'x: !!python/object/apply:os.system ["touch {marker}"]\n'
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text.replace("touch", "rm"))
    assert not diff_files(tmp_path / "a.yaml", tmp_path / "b.yaml").equal
    assert not marker.exists()
    assert load_yaml("m: !!python/object:a.B {x: 1}\n") == {"m": {"x": 1}}
