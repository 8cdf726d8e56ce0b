"""No false alarms on real files (issue #12): every file in tests/fixtures/benign was written
by the real library (make_benign.py there) and must never be ``dangerous``; all are proved
``safe`` except those listed in ``EXPECTED_UNKNOWN`` with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.inspect import inspect_file
from store.inspect.pickle_scan import scan_bytes

BENIGN = Path(__file__).parent / "fixtures" / "benign"
FILES = sorted(p for p in BENIGN.iterdir() if p.suffix not in (".py", ".md", ".txt"))

EXPECTED_UNKNOWN: dict[str, str] = {
    "torchscript_scripted.pt": "TorchScript archive: holds code that torch.jit.load compiles",
    "torchscript_traced.pt": "TorchScript archive: holds code that torch.jit.load compiles",
    "torch_export.pt2": "PyTorch 2 export: torch.export.load evaluates its graph's sympy",
}
"""File name -> why a proof of safety is out of reach for it (the start of the reason
given): formats that hold code."""


def test_the_set_covers_every_library() -> None:
    names = {p.name for p in FILES}
    assert len(names) >= 20
    for expected in (
        "torch_state_dict.pt",
        "torch_whole_module.pt",
        "torch_training_checkpoint.pt",
        "lightning_partial_hparams.ckpt",
        "hf_training_args.bin",
        "sklearn_pipeline_z3.joblib",
        "sklearn_boosting.joblib",
        "pandas_frame.pkl",
        "arrays.npz",
        "range_p0.pkl",
        "range_p5.pkl",
        "torchscript_scripted.pt",
        "torch_export.pt2",
    ):
        assert expected in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_real_benign_file_is_not_a_false_alarm(path: Path) -> None:
    found = inspect_file(path)
    assert found.verdict != "dangerous", found.reasons
    expected = "unknown" if path.name in EXPECTED_UNKNOWN else "safe"
    assert found.verdict == expected, (found.verdict, found.reasons[:3], found.imports)
    if expected == "unknown":
        assert found.reasons[0].startswith("unknown: " + EXPECTED_UNKNOWN[path.name])


def test_torchscript_tags_its_lists_with_harmless_identity_functions() -> None:
    """TorchScript's pickles (data.pkl and code/*.debug_pkl) call torch.jit._pickle's list
    taggers, which return their argument: vetted safe, so only the archive's own classes
    (compiled from its code) leave it unknown, never dangerous."""
    found = inspect_file(BENIGN / "torchscript_scripted.pt")
    tags = {i for i in found.imports if i.startswith("torch.jit._pickle.")}
    assert {"torch.jit._pickle.build_intlist", "torch.jit._pickle.build_tensorlist"} <= tags
    assert (
        "torch.jit._pickle.restore_type_tag"
        in inspect_file(BENIGN / "torchscript_traced.pt").imports
    )
    assert not any(r.startswith("dangerous") or ": dangerous" in r for r in found.reasons)
    unvetted = {r.split("imports ", 1)[1] for r in found.reasons if "unknown: imports" in r}
    assert unvetted and all(name.startswith("__torch__.") for name in unvetted), unvetted


def test_a_pytorch2_export_is_recognised_with_its_sample_inputs_vetted() -> None:
    """torch.export.save's archive is a "pt2" (by content), its sample inputs (a torch.save)
    are read and proved harmless, and it stays unknown for its graph alone."""
    found = inspect_file(BENIGN / "torch_export.pt2")
    assert (found.format, found.verdict) == ("pt2", "unknown")
    assert "torch._utils._rebuild_tensor_v2" in found.imports
    assert len(found.reasons) == 1, found.reasons


def test_lightning_partial_hparams_are_vetted() -> None:
    """Hydra's ``_partial_`` optimiser is a partial of an allow-listed class, not a pass."""
    found = inspect_file(BENIGN / "lightning_partial_hparams.ckpt")
    assert "functools.partial(torch.optim.adamw.AdamW)" in found.imports


def test_pandas_3_public_paths_are_read() -> None:
    """pandas 3 names its classes under ``pandas.`` and Cython's array unpickler."""
    found = inspect_file(BENIGN / "pandas_frame.pkl")
    assert "pandas.DataFrame" in found.imports
    assert "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked" in found.imports


def test_pandas_array_unpickler_vets_the_class_it_creates() -> None:
    """``__pyx_unpickle_NDArrayBacked(cls, ...)`` creates ``cls``: only a safe class is safe."""

    def stream(module: str, name: str) -> bytes:
        unpickler = b"cpandas._libs.arrays\n__pyx_unpickle_NDArrayBacked\n"
        cls = f"c{module}\n{name}\n".encode()
        return b"\x80\x02" + unpickler + cls + b"K\x01N\x87R."  # cls, 1, None: TUPLE3 REDUCE

    assert scan_bytes(stream("pandas", "Categorical")).verdict == "safe"
    assert scan_bytes(stream("mypackage", "Thing")).verdict == "unknown"
    assert scan_bytes(stream("posix", "system")).verdict == "dangerous"
