"""What loading a checkpoint's tensor sets beside its bytes: Parameter or plain tensor,
``requires_grad``, backward hooks.  ``torch.save`` writes a Parameter as
``_rebuild_parameter(data, requires_grad, OrderedDict())`` and a plain tensor's
``requires_grad`` as the fifth argument of ``_rebuild_tensor_v2``; two checkpoints that
differ only there load differently (a frozen layer trains again) and are never "equal"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from store.diff import diff_files
from store.diff.torch_zip import diff_torch_zips, read_torch_zip
from store.inspect import inspect_file
from tests.pickle_bytes import ORDERED_DICT
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str
from tests.test_torch_zip_diff import write_torch_zip
from tui.cli import main

STORAGE = {"0": np.arange(4, dtype=np.float32).tobytes()}


def _tensor(requires_grad: bool = False, hooks: bytes = ORDERED_DICT, device: str = "cpu") -> bytes:
    """``_rebuild_tensor_v2`` of a float32 [4] tensor in storage ``0``."""
    pid = b"(" + _str("storage") + b"ctorch\nFloatStorage\n" + _str("0") + _str(device)
    pid += _int(4) + b"tQ"
    grad = b"\x88" if requires_grad else b"\x89"
    args = b"(" + pid + _int(0) + b"(" + _int(4) + b"t(" + _int(1) + b"t" + grad + hooks
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"tR"


def _parameter(requires_grad: bool, *, state: bytes | None = None) -> bytes:
    """``torch._utils._rebuild_parameter(data, requires_grad, OrderedDict())`` as
    ``Parameter.__reduce_ex__`` writes it (``_with_state`` and a state when given)."""
    grad = b"\x88" if requires_grad else b"\x89"
    rebuild = "_rebuild_parameter_with_state" if state is not None else "_rebuild_parameter"
    args = b"(" + _tensor() + grad + ORDERED_DICT + (state or b"") + b"t"
    return f"ctorch._utils\n{rebuild}\n".encode() + args + b"R"


def _pair(tmp_path: Path, old: bytes, new: bytes) -> tuple[Path, Path]:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    write_torch_zip(a, {"w": old}, STORAGE)
    write_torch_zip(b, {"w": new}, STORAGE)
    return a, b


def test_a_parameter_against_a_plain_tensor_is_a_change(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, _parameter(True), _tensor())
    result = diff_torch_zips(a, b)
    assert not result.equal
    assert [(c.path, c.kind, c.old) for c in result.metadata] == [
        ("state_dict.w.<Parameter requires_grad>", "removed", True)
    ]
    assert [t.status for t in result.tensors] == ["unchanged"]  # the bytes are the same


def test_requires_grad_of_a_parameter_is_compared(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, _parameter(True), _parameter(False))
    result = diff_torch_zips(a, b)
    assert not result.equal
    assert [(c.path, c.kind, c.old, c.new) for c in result.metadata] == [
        ("state_dict.w.<Parameter requires_grad>", "changed", True, False)
    ]
    assert read_torch_zip(a).tensors.keys() == {"state_dict.w"}
    assert diff_torch_zips(a, a).equal


def test_requires_grad_of_a_plain_tensor_is_compared(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, _tensor(requires_grad=False), _tensor(requires_grad=True))
    result = diff_files(a, b)
    assert result.kind == "tensors" and not result.equal
    runner = CliRunner()
    out = runner.invoke(main, ["diff", str(a), str(b)])
    assert out.exit_code == 1, out.output
    assert "<requires_grad>" in out.output
    # the defaults torch writes (False, empty hooks) add no value of their own
    assert read_torch_zip(a).values == {"epoch": 1}


def test_backward_hooks_and_a_parameter_state_are_compared(tmp_path: Path) -> None:
    hooks = b"ccollections\nOrderedDict\n)R" + _int(0) + _str("hook") + b"s"
    a, b = _pair(tmp_path, _tensor(), _tensor(hooks=hooks))
    result = diff_torch_zips(a, b)
    assert not result.equal
    assert [c.path for c in result.metadata] == ["state_dict.w.<backward_hooks>.0"]
    one = b"}" + _str("scale") + _int(1) + b"s"
    two = b"}" + _str("scale") + _int(2) + b"s"
    a, b = _pair(tmp_path, _parameter(True, state=one), _parameter(True, state=two))
    result = diff_torch_zips(a, b)
    assert not result.equal
    assert [(c.path, c.old, c.new) for c in result.metadata] == [
        ("state_dict.w.<Parameter state>.scale", 1, 2)
    ]


def test_the_device_a_tensor_loads_onto_is_compared(tmp_path: Path) -> None:
    """``torch.load`` without ``map_location`` puts a tensor saved from ``cuda:0`` there."""
    a, b = _pair(tmp_path, _tensor(device="cuda:0"), _tensor())
    result = diff_torch_zips(a, b)
    assert not result.equal
    assert [(c.path, c.kind, c.old) for c in result.metadata] == [
        ("state_dict.w.<device>", "removed", "cuda:0")
    ]
    a, b = _pair(tmp_path, _tensor(device="cuda:0"), _tensor(device="cuda:1"))
    assert [(c.old, c.new) for c in diff_torch_zips(a, b).metadata] == [("cuda:0", "cuda:1")]


def test_a_parameter_saved_with_state_is_in_the_inspectors_tensor_summary(
    tmp_path: Path,
) -> None:
    """``_rebuild_parameter_with_state`` (a Parameter subclass, or one with attributes set)
    was no tensor to the inspector's summary: the checkpoint showed one tensor fewer, and
    the framework reader's scalar metadata skipped it."""
    state = b"}" + _str("scale") + _int(1) + b"s"
    path = tmp_path / "model.pt"
    write_torch_zip(
        path,
        {"w": _parameter(True, state=state), "plain": _parameter(False), "t": _tensor()},
        STORAGE,
    )
    summary = inspect_file(path).summary
    assert summary["tensors"] == {
        "state_dict.w": ["F32", [4]],
        "state_dict.plain": ["F32", [4]],
        "state_dict.t": ["F32", [4]],
    }
    assert summary["tensor_count"] == 3 and summary["parameter_count"] == 12
