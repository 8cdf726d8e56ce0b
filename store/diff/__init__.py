"""Diff engines for artifacts: text, configs, tables, tensors, model files, images, runs.

Every engine returns typed dataclasses (``to_json()`` gives plain data) and never prints:
the CLI and the TUI render them.  Public functions raise only ``DiffError`` (one-line
message) for unreadable input; ``diff_files`` never raises and reports errors in its result.
A file is a ``FileRef``: a local path, or ``(root, rel)`` on any file-layer root.
"""

from __future__ import annotations

from store.diff._io import DiffError, FileRef
from store.diff.binary import BinaryDiff, ImageDiff, ImageInfo, diff_binary, diff_images
from store.diff.files import DiffKind, FileDiff, diff_files, guess_kind
from store.diff.models import ModelDiff, diff_model_files
from store.diff.runs import (
    ArtifactChange,
    ArtifactDiff,
    ArtifactMove,
    MetricDelta,
    MetricSummary,
    PackageChange,
    RunDiff,
    RunSide,
    StaleFile,
    diff_runs,
    metric_direction,
    parse_conda_env,
    parse_requirements,
)
from store.diff.structured import (
    Change,
    StructuredDiff,
    diff_structured,
    diff_structured_files,
    load_structured,
)
from store.diff.table import CellChange, LastValue, TableDiff, diff_csv
from store.diff.tensors import (
    FetchBudget,
    FetchPlan,
    FetchRefused,
    TensorChange,
    TensorDiff,
    diff_safetensors,
)
from store.diff.text import (
    DiffLine,
    Hunk,
    TextDiff,
    diff_files_text,
    diff_text,
    next_change,
    previous_change,
    side_by_side,
)
from store.diff.torch_zip import diff_torch_zips

__all__ = [
    "ArtifactChange",
    "ArtifactDiff",
    "ArtifactMove",
    "BinaryDiff",
    "CellChange",
    "Change",
    "DiffError",
    "DiffKind",
    "DiffLine",
    "FetchBudget",
    "FetchPlan",
    "FetchRefused",
    "FileDiff",
    "FileRef",
    "Hunk",
    "ImageDiff",
    "ImageInfo",
    "LastValue",
    "MetricDelta",
    "MetricSummary",
    "ModelDiff",
    "PackageChange",
    "RunDiff",
    "RunSide",
    "StaleFile",
    "StructuredDiff",
    "TableDiff",
    "TensorChange",
    "TensorDiff",
    "TextDiff",
    "diff_binary",
    "diff_csv",
    "diff_files",
    "diff_files_text",
    "diff_images",
    "diff_model_files",
    "diff_runs",
    "diff_safetensors",
    "diff_structured",
    "diff_structured_files",
    "diff_text",
    "diff_torch_zips",
    "guess_kind",
    "load_structured",
    "metric_direction",
    "next_change",
    "parse_conda_env",
    "parse_requirements",
    "previous_change",
    "side_by_side",
]
