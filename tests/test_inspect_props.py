"""Property tests: hostile or broken bytes never crash inspect_file nor come out "safe"."""

from __future__ import annotations

import io
import json
import pickletools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.inspect import FORMATS, VERDICTS, inspect_file

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
