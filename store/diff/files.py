"""Pick the right diff engine for two files, by extension first and magic bytes second."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from store.diff._io import DiffCancelled, DiffError, FileRef, RegularFile, cancel_when, ref_name
from store.diff.binary import BinaryDiff, ImageDiff, diff_binary, diff_images, image_info
from store.diff.models import ModelDiff, diff_model_files
from store.diff.structured import StructuredDiff, diff_structured_files, structured_format
from store.diff.table import TableDiff, diff_csv
from store.diff.tensors import FetchBudget, FetchRefused, TensorDiff, diff_safetensors
from store.diff.text import TextDiff, diff_files_text
from store.diff.torch_zip import diff_torch_zips, looks_like_torch_zip

DiffKind = Literal["text", "structured", "table", "tensors", "model", "image", "binary"]
DiffResult = TextDiff | StructuredDiff | TableDiff | TensorDiff | ModelDiff | ImageDiff | BinaryDiff

SNIFF_BYTES = 8192
_MODEL_SUFFIXES = {
    ".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".joblib", ".gguf", ".npy", ".npz",
    ".onnx", ".h5", ".hdf5", ".keras", ".pb", ".tflite", ".msgpack",
}  # fmt: skip
_TABLE_SUFFIXES = {".csv", ".tsv", ".tab"}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif"}


@dataclass
class FileDiff:
    kind: DiffKind
    equal: bool
    size_old: int | None
    size_new: int | None
    result: DiffResult | None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    unknown: bool = False
    """Not equal, but no difference found either: a bounded read stopped first."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _suffix(path: FileRef) -> str:
    return os.path.splitext(ref_name(path))[1].lower()


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= 100_000_000 and head[8:9] == b"{"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    return bad <= max(1, len(text) // 100)


def guess_kind(path: FileRef, head: bytes) -> DiffKind:
    """The engine for a file from its name and first bytes."""
    suffix = _suffix(path)
    if suffix == ".safetensors" or _looks_like_safetensors(head) or looks_like_torch_zip(head):
        return "tensors"
    if structured_format(path) is not None:
        return "structured"
    if suffix in _TABLE_SUFFIXES:
        return "table"
    if suffix in _IMAGE_SUFFIXES or image_info(head) is not None:
        return "image"
    if suffix in _MODEL_SUFFIXES or head.startswith(b"PK\x03\x04"):
        return "model"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "model"
    if _looks_like_text(head):
        return "text"
    return "binary"


def _run(
    kind: DiffKind, path_a: FileRef, path_b: FileRef, budget: FetchBudget | None = None
) -> DiffResult:
    if kind == "text":
        return diff_files_text(path_a, path_b)
    if kind == "structured":
        return diff_structured_files(path_a, path_b)
    if kind == "table":
        return diff_csv(path_a, path_b)
    if kind == "tensors":
        with RegularFile(path_a) as handle:
            torch_zip = looks_like_torch_zip(handle.read_at(0, 512))
        if torch_zip:
            return diff_torch_zips(path_a, path_b, budget=budget)
        return diff_safetensors(path_a, path_b, budget=budget)
    if kind == "model":
        return diff_model_files(path_a, path_b)
    if kind == "image":
        return diff_images(path_a, path_b)
    return diff_binary(path_a, path_b)


_FALLBACK: dict[DiffKind, DiffKind] = {"structured": "text", "table": "text", "tensors": "binary"}


def diff_files(
    path_a: FileRef,
    path_b: FileRef,
    *,
    kind: DiffKind | None = None,
    budget: FetchBudget | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> FileDiff:
    """Diff two files with the engine their kind calls for; never raises for bad input.

    A config that fails to parse falls back to a text diff, an invalid safetensors file to
    a byte diff, a torch zip that is refused or cannot be mapped to the model diff, each
    with a note saying why.  A tensor diff of a side on an object store says what it will
    fetch (``budget.on_plan``, and the first note) and is an error over ``budget``'s bound.
    Comparisons stop, between two chunks, once ``cancelled()`` is true (an error result).
    """
    heads: list[bytes] = []
    sizes: list[int | None] = []
    for path in (path_a, path_b):
        try:
            with RegularFile(path) as handle:
                heads.append(handle.read_at(0, SNIFF_BYTES))
                sizes.append(handle.size)
        except DiffError as exc:
            return FileDiff(kind or "binary", False, None, None, None, error=str(exc))
    if kind is None:
        kind_a, kind_b = guess_kind(path_a, heads[0]), guess_kind(path_b, heads[1])
        kind = kind_a if kind_a == kind_b else "binary"
        if kind_a != kind_b and "text" in (kind_a, kind_b) and "binary" not in (kind_a, kind_b):
            kind = kind_a if kind_a != "text" else kind_b
    notes: list[str] = []
    current: DiffKind | None = kind
    while current is not None:
        try:
            with cancel_when(cancelled):
                result = _run(current, path_a, path_b, budget)
        except DiffCancelled as exc:
            return FileDiff(current, False, sizes[0], sizes[1], None, str(exc), notes)
        except FetchRefused as exc:
            if budget is not None and budget.plan is not None:
                notes.insert(0, budget.plan.line())
            return FileDiff(current, False, sizes[0], sizes[1], None, str(exc), notes)
        except DiffError as exc:
            notes.append(f"{current} diff failed: {exc}")
            fallback = _FALLBACK.get(current)
            if current == "tensors" and looks_like_torch_zip(heads[0]):
                fallback = "model"  # the static model diff still says what each file holds
            if fallback is None:
                return FileDiff(current, False, sizes[0], sizes[1], None, str(exc), notes)
            current = fallback
            continue
        if budget is not None and budget.plan is not None:
            notes.insert(0, budget.plan.line())
        unknown = bool(getattr(result, "unknown", False))
        return FileDiff(current, result.equal, sizes[0], sizes[1], result, None, notes, unknown)
    raise AssertionError("unreachable")  # pragma: no cover
