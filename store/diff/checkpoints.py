"""One-line tensor summaries for the checkpoints a run diff lists as changed.

A run diff must stay quick (it is one command, and a screen that opens on ``d``), while a
tensor diff reads both files whole.  So only tensor files (safetensors, torch zips) are
summarised, each side at most ``MAX_FILE_BYTES``, and at most ``MAX_TOTAL_BYTES`` of both
sides together per run diff (about a second from the page cache), and none is started
after ``MAX_SECONDS`` (a cold disk).  The checkpoints left out say so, and
``artlens diff FILE_A FILE_B`` (or ``enter`` on the row) compares them whole.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from store.diff._io import DiffError, FileRef, RegularFile, ref_name
from store.diff.runs import ArtifactChange
from store.diff.tensors import TensorDiff, diff_safetensors
from store.diff.torch_zip import diff_torch_zips, looks_like_torch_zip
from store.root import Root, join

MAX_FILE_BYTES = 256 << 20
"""Checkpoints larger than this (on either side) are not compared inside a run diff."""
MAX_TOTAL_BYTES = 1 << 30
"""Bytes of checkpoints (both sides) compared per run diff; the rest say so."""
MAX_FILES = 50
MAX_SECONDS = 3.0
"""No new checkpoint is compared once a run diff has spent this long on them (cold disks)."""
_TENSOR_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".pth.tar")


@dataclass(frozen=True)
class TensorSummary:
    """How many tensors of a changed checkpoint changed, and the largest change."""

    changed: int | None = None
    total: int | None = None
    largest: str | None = None
    rel_l2: float | None = None
    max_abs_diff: float | None = None
    values_changed: int = 0
    """Metadata or non-tensor values (epoch, hyper-parameters) that changed."""
    skipped: str | None = None
    """Why the tensors were not compared (too large, refused, unreadable)."""
    unread: str | None = None
    """What of a compared checkpoint was not (values past the bound), so that a count
    of changes never reads as all of them."""

    def line(self) -> str:
        if self.skipped is not None:
            return f"tensors not compared: {self.skipped}"
        text = f"{self.changed} of {self.total} tensors changed"
        if self.largest is not None:
            text += f"; largest {self.largest}"
            figures = []
            if self.rel_l2 is not None:
                figures.append(f"rel L2 {self.rel_l2:.3g}")
            if self.max_abs_diff is not None:
                figures.append(f"max |Δ| {self.max_abs_diff:.3g}")
            if figures:
                text += f" ({', '.join(figures)})"
        if self.values_changed:
            text += f"; {self.values_changed} other value(s) changed"
        if self.unread is not None:
            text += f"; {self.unread}"
        return text

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("rel_l2", "max_abs_diff"):
            if isinstance(data[key], float) and data[key] in (float("inf"), float("-inf")):
                data[key] = str(data[key])
        data["line"] = self.line()
        return data


def summarize(diff: TensorDiff) -> TensorSummary:
    """The summary of a finished tensor diff."""
    largest = diff.largest()
    changed = diff.changed()
    values = len(diff.metadata) + diff.metadata_more  # listed or only counted
    unread = "; ".join(note for note in diff.notes if "not compared" in note) or None
    if largest is None and changed:
        first = changed[0]
        return TensorSummary(
            len(changed), len(diff.tensors), f"{first.name} ({first.status.replace('_', ' ')})",
            values_changed=values, unread=unread,
        )  # fmt: skip
    return TensorSummary(
        len(changed),
        len(diff.tensors),
        largest.name if largest is not None else None,
        largest.rel_l2 if largest is not None else None,
        largest.max_abs_diff if largest is not None else None,
        values,
        unread=unread,
    )


Folder = bytes | tuple[Root, str]
"""One side of a run diff: a local folder, or ``(root, rel)`` of a folder on any root."""


def _file(folder: Folder, rel: str) -> FileRef:
    if isinstance(folder, tuple):
        return folder[0], join(folder[1], rel)
    return os.fsdecode(folder + b"/" + os.fsencode(rel))


def _tensor_kind(path: FileRef) -> str | None:
    """``safetensors`` or ``torch-zip`` from the file's name and first bytes, else None."""
    lower = ref_name(path).lower()
    if not lower.endswith(_TENSOR_SUFFIXES):
        return None
    if lower.endswith(".safetensors"):
        return "safetensors"
    try:
        with RegularFile(path) as handle:
            head = handle.read_at(0, 512)
    except DiffError:
        return None
    return "torch-zip" if looks_like_torch_zip(head) else None


def summarize_checkpoints(
    changed: Sequence[ArtifactChange],
    folder_a: Folder,
    folder_b: Folder,
    *,
    files: Mapping[str, tuple[FileRef, FileRef]] | None = None,
) -> list[ArtifactChange]:
    """``changed`` with a ``tensors`` summary on every checkpoint, within the budgets.
    ``files`` gives the two files of a path that is not in the run folders (a logged model)."""
    result: list[ArtifactChange] = []
    spent = 0
    compared = 0
    started = time.monotonic()
    for change in changed:
        hashes = (change.old_hash or "", change.new_hash or "")
        if any(h.startswith("symlink:") for h in hashes):
            result.append(change)
            continue
        path_a, path_b = (files or {}).get(change.path) or (
            _file(folder_a, change.path),
            _file(folder_b, change.path),
        )
        kind = _tensor_kind(path_a)
        if kind is None or kind != _tensor_kind(path_b):
            result.append(change)
            continue
        size = (change.old_size or 0) + (change.new_size or 0)
        biggest = max(change.old_size or 0, change.new_size or 0)
        if biggest > MAX_FILE_BYTES:
            summary = TensorSummary(
                skipped=f"over {MAX_FILE_BYTES >> 20} MiB; diff the two files to compare them"
            )
        elif (
            spent + size > MAX_TOTAL_BYTES
            or compared >= MAX_FILES
            or time.monotonic() - started > MAX_SECONDS
        ):
            summary = TensorSummary(
                skipped="this run diff's budget is spent; diff the two files to compare them"
            )
        else:
            spent += size
            compared += 1
            try:
                if kind == "safetensors":
                    diff = diff_safetensors(path_a, path_b)
                else:
                    diff = diff_torch_zips(path_a, path_b)
                summary = summarize(diff)
            except DiffError as exc:
                summary = TensorSummary(skipped=str(exc))
        result.append(replace(change, tensors=summary))
    return result


__all__ = ["MAX_FILE_BYTES", "MAX_TOTAL_BYTES", "TensorSummary", "summarize_checkpoints"]
