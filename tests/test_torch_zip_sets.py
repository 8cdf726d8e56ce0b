"""Sets in a torch checkpoint's pickle (protocol 4: ``EMPTY_SET``, ``ADDITEMS``) are
compared by their items.

The static pickle reader dropped the items ``ADDITEMS`` adds, and the checkpoint diff
recorded nothing for an empty set: ``{"classes": {1, 2}}`` against ``{1, 3}``, or an
empty set against no key at all, were "equal" (exit 0).  Nothing is unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from store.diff.torch_zip import diff_torch_zips
from store.inspect import inspect_file
from tests.pickle_bytes import float_tensor as _weight
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str
from tui.cli import main


def write_checkpoint(path: Path, values: bytes) -> None:
    pickled = b"\x80\x04}(" + values + _str("state_dict") + b"}(" + _str("w") + _weight()
    pickled += b"uu."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.ones(4, dtype=np.float32).tobytes())


def a_set(*items: int) -> bytes:
    """``EMPTY_SET``, then ``MARK``, the items and ``ADDITEMS`` (as protocol 4 writes)."""
    added = b"(" + b"".join(_int(i) for i in items) + b"\x90" if items else b""
    return b"\x8f" + added


def _differ(tmp_path: Path, old: bytes, new: bytes) -> None:
    write_checkpoint(tmp_path / "a.pt", old)
    write_checkpoint(tmp_path / "b.pt", new)
    assert inspect_file(tmp_path / "a.pt").verdict == "safe"
    result = diff_torch_zips(tmp_path / "a.pt", tmp_path / "b.pt")
    assert [t.status for t in result.tensors] == ["unchanged"]
    assert not result.equal and result.metadata
    assert diff_torch_zips(tmp_path / "a.pt", tmp_path / "a.pt").equal
    run = CliRunner().invoke(main, ["diff", str(tmp_path / "a.pt"), str(tmp_path / "b.pt")])
    assert run.exit_code == 1, run.output


def test_sets_with_other_items_differ(tmp_path: Path) -> None:
    _differ(tmp_path, _str("classes") + a_set(1, 2), _str("classes") + a_set(1, 3))


def test_an_empty_set_is_not_a_missing_key(tmp_path: Path) -> None:
    _differ(tmp_path, _str("classes") + a_set(), b"")


def test_an_unhashable_item_is_no_clean_pass(tmp_path: Path) -> None:
    """``load()`` fails on a list added to a set: the reading is never 'safe'."""
    write_checkpoint(tmp_path / "bad.pt", _str("s") + b"\x8f(]\x90")
    assert inspect_file(tmp_path / "bad.pt").verdict != "safe"
