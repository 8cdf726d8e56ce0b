"""Property tests: hostile or broken bytes never crash inspect_file nor come out "safe"."""

from __future__ import annotations

import io
import json
import pickle
import pickletools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.inspect import FORMATS, VERDICTS, inspect_file
from store.inspect.pickle_scan import scan_bytes

MODELS = Path(__file__).parent / "fixtures" / "models"
REAL = sorted(MODELS.iterdir())
NAMES = ["m.pt", "m.pkl", "m.safetensors", "m.npy", "m.npz", "m.gguf", "m.joblib", "m.onnx",
         "m.bin", "m.pkl.gz", "m.ckpt", "m.txt", "m"]  # fmt: skip
MAGICS = [b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"GGUF\x03\x00\x00\x00", b"\x80\x04",
          b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19", b"\x1f\x8b", b"x\x9c", b"BZh",
          b"\x10\x00\x00\x00\x00\x00\x00\x00{"]  # fmt: skip
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _check(path: Path, data: bytes) -> None:
    result = inspect_file(path)
    assert result.format in FORMATS and result.verdict in VERDICTS
    json.dumps(result.summary)
    assert result.bytes_read <= 4 * len(data) + 1024
    if result.verdict == "safe":
        assert result.integrity is None
        assert not any("corrupt" in reason for reason in result.reasons)
        if result.format == "pickle":
            pickletools.dis(data[: int(str(result.summary["bytes_scanned"]))], out=io.StringIO())


@SETTINGS
@given(
    name=st.sampled_from(NAMES),
    magic=st.sampled_from(MAGICS),
    tail=st.binary(max_size=600),
)
def test_random_bytes_never_raise(tmp_path: Path, name: str, magic: bytes, tail: bytes) -> None:
    path = tmp_path / name
    data = magic + tail
    path.write_bytes(data)
    _check(path, data)


@pytest.mark.parametrize("real", REAL, ids=lambda p: p.name)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(min_value=0.0, max_value=0.9999))
def test_truncations_of_real_files_are_never_safe(tmp_path: Path, real: Path, cut: float) -> None:
    data = real.read_bytes()
    keep = int(len(data) * cut)
    path = tmp_path / real.name
    path.write_bytes(data[:keep])
    result = inspect_file(path)
    assert result.format in FORMATS and result.verdict in VERDICTS
    assert result.verdict != "safe", (keep, len(data), result)


@SETTINGS
@given(real=st.sampled_from(REAL), data=st.data())
def test_byte_flips_in_real_files_never_raise(
    tmp_path: Path, real: Path, data: st.DataObject
) -> None:
    raw = bytearray(real.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    path = tmp_path / real.name
    path.write_bytes(bytes(raw))
    _check(path, bytes(raw))


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary() | st.complex_numbers(allow_nan=False),
    lambda inner: st.lists(inner) | st.tuples(inner, inner) | st.dictionaries(st.text(), inner)
    | st.frozensets(st.integers()) | st.sets(st.text()),
    max_leaves=20,
)  # fmt: skip


@given(value=_VALUES, protocol=st.integers(0, 5))
@SETTINGS
def test_pickle_ops_reads_real_pickles_like_genops(value: object, protocol: int) -> None:
    """On what ``pickle`` writes, the loader-faithful reader and the linter agree opcode by
    opcode, and stop at the same byte."""
    from store.inspect.pickle_ops import read_ops

    data = pickle.dumps(value, protocol) + b"trailing"
    ours = io.BytesIO(data)
    theirs = io.BytesIO(data)
    names = [name for name, _, _ in read_ops(ours)]
    assert names == [op.name for op, _, _ in pickletools.genops(theirs)]
    assert ours.tell() == theirs.tell() == len(data) - len(b"trailing")
    assert scan_bytes(data, max_pickles=1).verdict == "safe"
