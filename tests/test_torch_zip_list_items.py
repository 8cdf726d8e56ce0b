"""A list subclass in a checkpoint (``NEWOBJ`` of the class, then ``APPENDS``, as pickle
writes any list subclass) keeps its items: the static reader dropped them, so two
checkpoints whose list-subclass items differ read "equal"."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from store.diff import diff_files
from store.diff.torch_zip import diff_torch_zips, read_torch_zip
from store.inspect.pickle_scan import Call, scan_bytes
from tests.pickle_bytes import float_tensor
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str

TAGS = b"cmylib\nTagList\n)\x81"
"""``mylib.TagList.__new__(TagList)``: a list subclass, built empty."""


def _write(path: Path, tags: bytes) -> None:
    pickle = b"\x80\x02}(" + _str("tags") + tags + _str("w") + float_tensor() + b"u."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.ones(4, dtype=np.float32).tobytes())


def test_the_scanner_keeps_what_appends_add_to_a_list_subclass() -> None:
    scan = scan_bytes(b"\x80\x02" + TAGS + b"(" + _int(1) + _int(2) + b"e" + _int(3) + b"a.")
    (made,) = scan.objects
    assert isinstance(made, Call) and made.appended == [1, 2, 3]


def test_list_subclass_items_that_differ_are_a_change(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    _write(a, TAGS + b"(" + _str("x") + _str("y") + b"e")
    _write(b, TAGS + b"(" + _str("x") + _str("z") + b"e")
    assert read_torch_zip(a).values["tags.<items>.1"] == "y"
    result = diff_torch_zips(a, b)
    assert not result.equal
    assert [(c.path, c.old, c.new) for c in result.metadata] == [("tags.<items>.1", "y", "z")]
    assert not diff_files(a, b).equal
    # one APPEND more is a change too, and the same file is equal
    _write(b, TAGS + b"(" + _str("x") + _str("y") + b"e" + _str("w") + b"a")
    assert [(c.path, c.kind) for c in diff_torch_zips(a, b).metadata] == [
        ("tags.<items>.2", "added")
    ]
    assert diff_torch_zips(a, a).equal


def test_set_subclass_members_are_compared_in_no_order(tmp_path: Path) -> None:
    """ADDITEMS onto a set subclass: its members count, their pickled order does not (a
    set of strings is pickled in another order by another process)."""
    tags = b"cmylib\nTagSet\n)\x81"
    a, b, c = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    _write(a, tags + b"(" + _str("x") + _str("y") + b"\x90")
    _write(b, tags + b"(" + _str("y") + _str("x") + b"\x90")
    _write(c, tags + b"(" + _str("x") + _str("z") + b"\x90")
    assert diff_torch_zips(a, b).equal
    result = diff_torch_zips(a, c)
    assert not result.equal
    assert [(ch.path, ch.old, ch.new) for ch in result.metadata] == [("tags.<members>.1", "y", "z")]
