"""Objects a torch checkpoint's pickle builds are compared whole: what is called, its
arguments, its items and the state BUILD gives it.

The checkpoint diff walked only a built object's items (or its dict state), so an empty
OrderedDict was no value at all (the same as a missing key), a state_dict's ``_metadata``
was never read, and a numpy array (its bytes are its BUILD state) compared equal to any
other array: checkpoints that differ there were "equal", exit 0.  Pickles are spelled
opcode by opcode or written by ``pickle.dumps`` of plain numpy arrays; nothing is
unpickled.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from store.diff import diff_files
from store.diff.tensors import TensorDiff
from store.diff.torch_zip import diff_torch_zips
from tests.pickle_bytes import ORDERED_DICT
from tests.pickle_bytes import float_tensor as _weight
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str
from tui.cli import main


def write_checkpoint(path: Path, values: bytes) -> None:
    """A STORED torch zip: ``{<values>, "state_dict": {"w": <tensor>}}``."""
    pickled = b"\x80\x02}(" + values + _str("state_dict") + b"}(" + _str("w") + _weight() + b"uu."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.ones(4, dtype=np.float32).tobytes())


def _array(values: list[float]) -> bytes:
    """A numpy array as ``pickle.dumps`` (protocol 2) writes it, without PROTO and STOP."""
    data = pickle.dumps(np.array(values, dtype=np.float64), protocol=2)
    assert data[:2] == b"\x80\x02" and data[-1:] == b"."
    return data[2:-1]


def _ordered_dict_with_metadata(version: int) -> bytes:
    """An OrderedDict ``{"k": 1}`` whose BUILD state is ``{"_metadata": {"version": N}}``,
    as a torch state_dict carries its module versions."""
    items = b"(" + _str("k") + _int(1) + b"u"
    state = b"}(" + _str("_metadata") + b"}(" + _str("version") + _int(version) + b"uu"
    return ORDERED_DICT + items + state + b"b"


def _differs(tmp_path: Path, old: bytes, new: bytes) -> TensorDiff:
    write_checkpoint(tmp_path / "a.ckpt", old)
    write_checkpoint(tmp_path / "b.ckpt", new)
    result = diff_torch_zips(tmp_path / "a.ckpt", tmp_path / "b.ckpt")
    assert [t.status for t in result.tensors] == ["unchanged"]
    assert not result.equal, result.metadata
    assert diff_torch_zips(tmp_path / "a.ckpt", tmp_path / "a.ckpt").equal
    run = CliRunner().invoke(main, ["diff", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt")])
    assert run.exit_code == 1, run.output
    return result


def test_an_empty_ordered_dict_is_not_a_missing_key(tmp_path: Path) -> None:
    result = _differs(tmp_path, _str("callbacks") + ORDERED_DICT, b"")
    assert [(c.path, c.kind) for c in result.metadata] == [("callbacks", "removed")]


def test_the_state_build_gives_a_dict_with_items_is_compared(tmp_path: Path) -> None:
    old = _str("sd") + _ordered_dict_with_metadata(1)
    new = _str("sd") + _ordered_dict_with_metadata(2)
    result = _differs(tmp_path, old, new)
    ((path, before, after),) = [(c.path, c.old, c.new) for c in result.metadata]
    assert "_metadata" in path and (before, after) == (1, 2)


def test_numpy_arrays_with_other_values_differ(tmp_path: Path) -> None:
    old, new = _str("best") + _array([1.0, 2.0]), _str("best") + _array([1.0, 3.0])
    result = _differs(tmp_path, old, new)
    assert result.metadata and all(c.path.startswith("best") for c in result.metadata)
    file_diff = diff_files(tmp_path / "a.ckpt", tmp_path / "b.ckpt")
    assert file_diff.kind == "tensors" and not file_diff.equal


def test_a_dict_built_from_arguments_is_compared(tmp_path: Path) -> None:
    """``OrderedDict([("lr", N)])``: its items are its arguments, never skipped."""

    def built(lr: int) -> bytes:
        pairs = b"(((" + _str("lr") + _int(lr) + b"tlt"
        return _str("opt") + b"ccollections\nOrderedDict\n" + pairs + b"R"

    result = _differs(tmp_path, built(1), built(2))
    ((path, before, after),) = [(c.path, c.old, c.new) for c in result.metadata]
    assert path.startswith("opt") and (before, after) == (1, 2)
