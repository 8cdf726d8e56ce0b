"""store.inspect: formats, verdicts and integrity on real and hostile files."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from store.inspect import FORMATS, VERDICTS, Inspection, inspect_file, is_model_candidate
from store.inspect.errors import InspectError
from store.inspect.pickle_scan import scan_bytes
from store.inspect.refs import dangling_refs
from store.inspect.safetensors import parameter_count, read_header

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = FIXTURES / "models"
PICKLES = FIXTURES / "pickles"
MARKER = Path("/tmp/artlens_inspect_PWNED")  # what every hostile payload would create

HOSTILE = sorted(p for p in PICKLES.iterdir() if p.suffix != ".md")
BENIGN = sorted(MODELS.iterdir())


def _well_formed(result: Inspection) -> None:
    assert result.format in FORMATS
    assert result.verdict in VERDICTS
    json.dumps(result.summary)
    assert all(isinstance(r, str) and "\n" not in r for r in result.reasons)


def test_corpus_is_present() -> None:
    assert len(HOSTILE) >= 25
    assert len(BENIGN) >= 12


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_hostile_files_are_dangerous_and_never_run(path: Path) -> None:
    if MARKER.exists():
        MARKER.unlink()
    result = inspect_file(path)
    _well_formed(result)
    assert result.verdict == "dangerous", result.reasons
    assert any(r.startswith("dangerous") or ": dangerous" in r for r in result.reasons)
    assert not MARKER.exists()


@pytest.mark.parametrize("path", BENIGN, ids=lambda p: p.name)
def test_library_written_files_are_not_dangerous(path: Path) -> None:
    result = inspect_file(path)
    _well_formed(result)
    assert result.verdict != "dangerous", result.reasons
    assert result.integrity is None
    # headers may be read twice, and the start once more as a pickle (polyglots)
    assert 0 < result.bytes_read <= 3 * path.stat().st_size


@pytest.mark.parametrize(
    ("name", "fmt", "verdict"),
    [
        ("state_dict.pt", "torch-zip", "safe"),
        ("whole_model.pt", "torch-zip", "safe"),
        ("whole_custom_model.pt", "torch-zip", "unknown"),
        ("lightning.ckpt", "torch-zip", "safe"),
        ("legacy.pt", "torch-legacy", "safe"),
        ("sklearn.joblib", "joblib", "safe"),
        ("sklearn_zlib.joblib", "joblib", "safe"),
        ("sklearn.pkl.gz", "joblib", "safe"),
        ("arrays.joblib", "joblib", "safe"),
        ("array.npy", "npy", "safe"),
        ("arrays.npz", "npz", "safe"),
        ("arrays_compressed.npz", "npz", "safe"),
        ("model.safetensors", "safetensors", "safe"),
        ("tiny.gguf", "gguf", "safe"),
        ("weights.h5", "hdf5", "unknown"),
        ("plain.pkl", "pickle", "safe"),
    ],
)
def test_format_and_verdict(name: str, fmt: str, verdict: str) -> None:
    result = inspect_file(MODELS / name)
    assert (result.format, result.verdict) == (fmt, verdict), result.reasons


def test_same_model_counts_agree_across_formats() -> None:
    torch_zip = inspect_file(MODELS / "state_dict.pt").summary
    legacy = inspect_file(MODELS / "legacy.pt").summary
    safetensors = inspect_file(MODELS / "model.safetensors").summary
    lightning = inspect_file(MODELS / "lightning.ckpt").summary
    counts = {int(str(s["parameter_count"])) for s in (torch_zip, legacy, safetensors, lightning)}
    assert len(counts) == 1 and counts.pop() > 0
    assert torch_zip["dtypes"] == safetensors["dtypes"]
    top_keys = lightning["top_keys"]
    assert isinstance(top_keys, list)
    assert {"state_dict", "hyper_parameters"} <= set(top_keys)


def test_custom_class_is_named_as_unknown_import() -> None:
    result = inspect_file(MODELS / "whole_custom_model.pt")
    assert "tiny_models.TinyNet" in result.imports


def test_joblib_array_data_is_skipped_not_parsed() -> None:
    result = inspect_file(MODELS / "arrays.joblib")
    assert ["f8", [2, 3]] in result.summary["arrays"]  # type: ignore[operator]


# --- pickle walker ---------------------------------------------------------------------


def test_memoized_stack_global_resolves() -> None:
    scan = scan_bytes((PICKLES / "stack_global_memoized.pkl").read_bytes())
    assert "builtins.exec" in scan.imports and scan.verdict == "dangerous"


def test_computed_stack_global_is_dangerous() -> None:
    data = b"\x80\x04K\x01K\x02\x93)R."  # STACK_GLOBAL on two ints
    scan = scan_bytes(data)
    assert scan.verdict == "dangerous"


def test_unknown_import_is_never_safe() -> None:
    data = pickle.dumps(Path("x"), protocol=4).replace(b"pathlib", b"pathlab")
    scan = scan_bytes(data)
    # pathlib.PosixPath pickles as pathlib._local.PosixPath from Python 3.13 on
    assert scan.verdict == "unknown"
    assert scan.unknown and all(name.startswith("pathlab.") for name in scan.unknown)


def test_nested_pickle_inner_imports_are_reported() -> None:
    scan = scan_bytes((PICKLES / "nested_pickle_loads.pkl").read_bytes())
    assert {"pickle.loads", "posix.system"} <= set(scan.imports)
    assert scan.nested == 1


def test_scan_cap_gives_unknown_not_safe() -> None:
    data = pickle.dumps(list(range(5000)), protocol=4)
    assert scan_bytes(data).verdict == "safe"
    capped = scan_bytes(data, limit=100)
    assert capped.capped and capped.verdict == "unknown"


def test_truncated_benign_pickle_is_corrupt() -> None:
    data = pickle.dumps({"a": [1, 2, 3]}, protocol=2)
    scan = scan_bytes(data[:-1])
    assert scan.verdict == "corrupt" and scan.truncated


def test_concatenated_pickles_all_scanned() -> None:
    scan = scan_bytes((PICKLES / "concatenated_benign_then_evil.pkl").read_bytes())
    assert scan.pickles == 2 and "posix.system" in scan.dangerous


# --- safetensors -----------------------------------------------------------------------


def _st(tmp_path: Path, header: object, data: bytes, raw: bytes | None = None) -> Path:
    body = raw if raw is not None else json.dumps(header).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def test_safetensors_reads_header_only(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]},
              "b": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]},
              "__metadata__": {"format": "pt"}}  # fmt: skip
    parsed = read_header(_st(tmp_path, header, b"\0" * 16))
    assert parsed.tensors["a"].shape == (2, 2) and parsed.tensors["b"].start == 8
    assert parsed.metadata == {"format": "pt"}
    assert parameter_count(parsed) == 5
    assert parsed.data_offset == parsed.file_size - 16


def test_safetensors_header_padding_is_allowed(tmp_path: Path) -> None:
    body = json.dumps({"a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}) + "   "
    assert read_header(_st(tmp_path, None, b"abc", raw=body.encode())).tensors["a"].end == 3


def _t(dtype: str, shape: list[int], start: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}


@pytest.mark.parametrize(
    ("header", "data", "fragment", "truncated"),
    [
        ([1, 2], b"", "does not start with", False),
        ({"a": _t("F99", [1], 0, 4)}, b"\0" * 4, "dtype", False),
        ({"a": _t("F32", [2], 0, 4)}, b"\0" * 4, "needs 8", False),
        ({"a": _t("F32", [1], 4, 8)}, b"\0" * 8, "gap", False),
        ({"a": _t("U8", [4], 0, 4), "b": _t("U8", [4], 2, 6)}, b"\0" * 6, "overlap", False),
        ({"a": _t("F32", [4], 0, 16)}, b"\0" * 10, "declare", True),
        ({"a": _t("F32", [1], 0, 4)}, b"\0" * 9, "cover only", False),
        ({"a": _t("F32", [-1], 0, 4)}, b"\0" * 4, "shape", False),
        ({"a": _t("F4", [3], 0, 2)}, b"\0" * 2, "whole number", False),
        ({"__metadata__": {"k": 1}}, b"", "__metadata__", False),
    ],
)
def test_safetensors_rejects(
    tmp_path: Path, header: object, data: bytes, fragment: str, truncated: bool
) -> None:
    with pytest.raises(InspectError, match=fragment) as caught:
        read_header(_st(tmp_path, header, data))
    assert caught.value.truncated is truncated
    assert "\n" not in str(caught.value)


def test_safetensors_rejects_bad_lengths(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(InspectError, match="8-byte"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 100_000_001) + b"{}")
    with pytest.raises(InspectError, match="limit"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 50) + b"{}")
    with pytest.raises(InspectError, match="past end"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 4) + b'{"a"')
    with pytest.raises(InspectError, match="JSON"):
        read_header(path)
    path.write_bytes(struct.pack("<Q", 16) + b'{"a":{},"a":{}} ')
    with pytest.raises(InspectError, match="duplicate"):
        read_header(path)


def test_huge_sparse_safetensors_reads_only_the_header(tmp_path: Path) -> None:
    size = 1 << 30
    body = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    path = tmp_path / "big.safetensors"
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(body)) + body.encode())
        handle.truncate(8 + len(body) + size)
    result = inspect_file(path)
    assert result.verdict == "safe" and result.summary["parameter_count"] == size
    assert result.bytes_read < 4096


# --- integrity -------------------------------------------------------------------------


def test_truncated_torch_zip_says_central_directory_missing(tmp_path: Path) -> None:
    data = (MODELS / "state_dict.pt").read_bytes()
    path = tmp_path / "half.pt"
    path.write_bytes(data[: len(data) // 2])
    result = inspect_file(path)
    assert result.format == "torch-zip" and result.verdict == "corrupt"
    assert result.integrity == "truncated: zip central directory missing"


def test_torch_zip_with_missing_storage_is_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "missing.pt"
    with zipfile.ZipFile(MODELS / "state_dict.pt") as src, zipfile.ZipFile(path, "w") as dst:
        dropped = [i for i in src.infolist() if i.filename.endswith("/data/0")]
        assert dropped
        for info in src.infolist():
            if info not in dropped:
                dst.writestr(info, src.read(info))
    result = inspect_file(path)
    assert result.verdict == "corrupt" and (result.integrity or "").startswith("incomplete")


def test_truncated_npy_and_safetensors(tmp_path: Path) -> None:
    for name in ("array.npy", "model.safetensors"):
        data = (MODELS / name).read_bytes()
        path = tmp_path / name
        path.write_bytes(data[:-3])
        result = inspect_file(path)
        assert result.verdict == "corrupt", name
        assert (result.integrity or "").startswith("truncated"), name


def test_object_npy_in_npz_is_scanned() -> None:
    result = inspect_file(PICKLES / "npz_object_array.npz")
    assert "posix.system" in result.imports


def test_lz4_is_recognised_not_inspected(tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    path.write_bytes(b"\x04\x22\x4d\x18" + b"\0" * 40)
    result = inspect_file(path)
    assert result.verdict == "unknown" and "lz4" in result.reasons[0]


def test_non_regular_files_are_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pkl"
    os.mkfifo(fifo)
    assert inspect_file(fifo).verdict == "n/a"
    link = tmp_path / "link.pt"
    link.symlink_to(MODELS / "state_dict.pt")
    unfollowed = inspect_file(link)  # it may point at a model: not read, so not vetted
    assert unfollowed.verdict == "unknown" and unfollowed.reasons == ("a symlink, not followed",)
    assert unfollowed.bytes_read == 0
    assert inspect_file(tmp_path).verdict == "n/a"
    assert inspect_file(tmp_path / "gone.pt").verdict == "n/a"


def test_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = inspect_file(path)
    assert (result.format, result.verdict) == ("unknown", "n/a")


def test_is_model_candidate() -> None:
    yes = ["a.pt", "B.PTH", "x.ckpt", "pytorch_model.bin", "m.safetensors", "w.npz", "m.gguf",
           "model.pkl.gz", "clf.joblib", "w.h5", "m.onnx", "m.keras"]  # fmt: skip
    no = ["metrics.csv", "config.yaml", "events.out.tfevents.1", "log.gz", "README", "a.txt"]
    assert all(is_model_candidate(n) for n in yes)
    assert not any(is_model_candidate(n) for n in no)


# --- dangling references ---------------------------------------------------------------


def test_dangling_refs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoint-200").mkdir(parents=True)
    (run / "checkpoint-100").mkdir()
    state = {"best_model_checkpoint": "out/run/checkpoint-100", "global_step": 200}
    (run / "checkpoint-200" / "trainer_state.json").write_text(json.dumps(state))
    gone = {"best_model_checkpoint": "/elsewhere/out/checkpoint-50"}
    (run / "trainer_state.json").write_text(json.dumps(gone))
    (run / "last.ckpt").symlink_to("epoch=9.ckpt")
    (run / "epoch=3.ckpt").write_bytes(b"x")
    (run / "best.ckpt").symlink_to("epoch=3.ckpt")
    (run / "bad").mkdir()
    (run / "bad" / "trainer_state.json").write_text("{not json")
    problems = dangling_refs(run)
    assert len(problems) == 2, problems
    assert any("last.ckpt" in p and "epoch=9.ckpt" in p for p in problems)
    assert any(p.startswith("trainer_state.json") and "checkpoint-50" in p for p in problems)
    (run / "checkpoint-50").mkdir()
    assert len(dangling_refs(run)) == 1


def test_scan_result_survives_json(tmp_path: Path) -> None:
    for path in [*BENIGN, *HOSTILE]:
        buffer = io.StringIO()
        json.dump(inspect_file(path).summary, buffer)
        assert buffer.getvalue()


@pytest.mark.parametrize(
    ("module", "name", "verdict"),
    [
        ("builtins", "eval.__call__", "dangerous"),
        ("torch", "load", "dangerous"),
        ("posix", "system", "dangerous"),
        ("asyncio.subprocess", "create_subprocess_shell", "dangerous"),
        ("sklearn.linear_model._logistic", "LogisticRegression", "safe"),
        ("sklearn.utils", "check_array", "unknown"),
        ("sklearn.base", "Foo.__init__", "dangerous"),
        ("numpy.dtypes", "__builtins__.get", "dangerous"),
        ("sklearn.utils", "GzipFile", "unknown"),
        ("__builtin__", "eval", "dangerous"),
        ("__builtin__", "set", "safe"),
        ("commands", "getoutput", "dangerous"),
        ("torch.optim.adamw", "AdamW", "safe"),
        ("torch._utils", "_rebuild_tensor_v2", "safe"),
        ("torch.jit._pickle", "build_intlist", "safe"),
        ("torch.jit._pickle", "restore_type_tag", "safe"),
        ("torch.jit._pickle", "build_intlist.__globals__", "dangerous"),
        ("torch.jit._pickle", "os", "dangerous"),
        ("torch.jit", "load", "dangerous"),
        ("torch", "per_tensor_affine", "safe"),
        ("numpy._core.multiarray", "_reconstruct", "safe"),
        ("mypackage", "Model", "unknown"),
    ],
)
def test_policy(module: str, name: str, verdict: str) -> None:
    from store.inspect.policy import classify

    assert classify(module, name) == verdict


def test_a_file_that_cannot_be_opened_leaves_nothing_to_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed open raises one InspectError; the half-made object's finaliser must not
    raise again (Python 3.13 reports that as an unraisable exception)."""
    import gc
    import sys

    from store.inspect._io import BoundedFile

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    os.mkfifo(tmp_path / "pipe.pt")
    with pytest.raises(InspectError):
        BoundedFile(tmp_path / "pipe.pt")
    gc.collect()
    assert unraisable == []
