"""One torch zip reader serves diffs (tensor map) and run params (plain values): an archive
that loaders could read two ways is refused by both."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import pytest

from store.diff._io import DiffError
from store.diff.torch_zip import read_torch_zip
from store.frameworks import _io, _torchmeta


def write_zip(path: Path, entries: list[tuple[str, bytes]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            for name, data in entries:
                archive.writestr(name, data)


def test_plain_values_come_through_the_shared_reader(tmp_path: Path) -> None:
    data = pickle.dumps({"epoch": 3, "args": {"lr": 0.1}}, protocol=2)
    write_zip(tmp_path / "ckpt.pt", [("archive/data.pkl", data), ("archive/byteorder", b"little")])
    assert _torchmeta.read_values(tmp_path, "ckpt.pt") == {"epoch": 3, "args": {"lr": 0.1}}


def test_a_duplicate_data_pkl_is_refused_by_both_readers(tmp_path: Path) -> None:
    first = pickle.dumps({"epoch": 1}, protocol=2)
    second = pickle.dumps({"epoch": 2}, protocol=2)
    write_zip(tmp_path / "ckpt.pt", [("archive/data.pkl", first), ("archive/data.pkl", second)])
    with pytest.raises(_io.ReadError, match="appears twice"):
        _torchmeta.read_values(tmp_path, "ckpt.pt")
    with pytest.raises(DiffError, match="refused"):  # the scan says so before the mapper
        read_torch_zip(tmp_path / "ckpt.pt")
