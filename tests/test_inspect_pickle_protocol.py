"""Each pickle of a file is loaded by a fresh ``load()``, which starts at protocol 0 until
its own PROTO: a legacy torch file's five pickles, joblib's nested ones.  Python 2 names
(``copy_reg``) in a pickle without PROTO resolve as Python 3 maps them, whatever the
pickle before it declared, and are vetted as what they resolve to.  Nothing is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.inspect import inspect_file
from store.inspect.pickle_scan import scan_bytes

_TORCH_MAGIC = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _reconstructs(module: str, base: str) -> bytes:
    """``<module>._reconstructor(OrderedDict, base, None)``: ``base.__init__`` runs."""
    return (
        _g(module, "_reconstructor")
        + b"("
        + _g("collections", "OrderedDict")
        + _g(*base.rsplit(".", 1))
        + b"NtR."
    )


_CONSTRUCTED = "accelerate.state.PartialState"  # created bare only: its __init__ does work


@pytest.mark.parametrize("module", ["copyreg", "copy_reg"])
@pytest.mark.parametrize("before", [b"", b"\x80\x04N.", b"\x80\x05N."])
def test_a_python_2_name_after_a_protocol_4_pickle_is_vetted(module: str, before: bytes) -> None:
    found = scan_bytes(before + _reconstructs(module, _CONSTRUCTED))
    assert found.verdict == "unknown", found.reasons
    assert f"copyreg._reconstructor({_CONSTRUCTED})" in found.imports


def test_a_legacy_torch_file_whose_later_pickles_have_no_proto_is_not_safe(
    tmp_path: Path,
) -> None:
    """torch's legacy format: magic number, protocol version, sys info, the object, the
    storage keys, each its own ``pickle.load``; the first declares protocol 4."""
    main = _reconstructs("copy_reg", _CONSTRUCTED)
    data = b"\x80\x04" + _TORCH_MAGIC + b"." + b"M\xe9\x03." + b"}." + main + b"]."
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    found = inspect_file(path)
    assert found.format == "torch-legacy"
    assert found.verdict == "unknown", found.reasons
    # the same file with a harmless object is still safe
    benign = b"\x80\x04" + _TORCH_MAGIC + b"." + b"M\xe9\x03." + b"}." + b"}." + b"]."
    path.write_bytes(benign)
    assert inspect_file(path).verdict == "safe"
