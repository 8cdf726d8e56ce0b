"""What kind of artifact a file is: by name first, by magic bytes where names lie.

The scanner classifies by name only (no open per file, so a cold index stays close to the
cost of a bare walk); the hasher, which reads the file anyway, refines the kind from the
first bytes with ``refine``.  Names only one framework writes (``trainer_state.json``,
``wandb-summary.json``) are in that framework's registry entry, not here.
"""

from __future__ import annotations

import os
import re
from typing import Any

from store.frameworks import registry

KINDS = (
    "checkpoint",
    "model",
    "data",
    "config",
    "metrics",
    "log",
    "image",
    "code",
    "env",
    "doc",
    "other",
)

_BASE_NAMES: dict[str, str] = {
    "requirements.txt": "env",
    "conda.yaml": "env",
    "conda.yml": "env",
    "environment.yml": "env",
    "environment.yaml": "env",
    "python_env.yaml": "env",
    "pipfile": "env",
    "pipfile.lock": "env",
    "poetry.lock": "env",
    "uv.lock": "env",
    "dockerfile": "code",
    "makefile": "code",
    "config.json": "config",
    "metrics.csv": "metrics",
    "metrics.json": "metrics",
    "readme": "doc",
    "license": "doc",
}

_BASE_EXTS: dict[str, str] = {
    ".ckpt": "checkpoint",
    ".safetensors": "model",
    ".pt": "model",
    ".pth": "model",
    ".pkl": "model",
    ".pickle": "model",
    ".joblib": "model",
    ".onnx": "model",
    ".h5": "model",
    ".keras": "model",
    ".gguf": "model",
    ".ggml": "model",
    ".tflite": "model",
    ".pb": "model",
    ".mar": "model",
    ".pt2": "model",
    ".msgpack": "model",
    ".engine": "model",
    ".parquet": "data",
    ".pq": "data",
    ".arrow": "data",
    ".feather": "data",
    ".npy": "data",
    ".npz": "data",
    ".tfrecord": "data",
    ".tfrecords": "data",
    ".hdf5": "data",
    ".csv": "data",
    ".tsv": "data",
    ".jsonl": "data",
    ".ndjson": "data",
    ".avro": "data",
    ".lmdb": "data",
    ".tar": "data",
    ".gz": "data",
    ".zst": "data",
    ".zip": "data",
    ".yaml": "config",
    ".yml": "config",
    ".toml": "config",
    ".ini": "config",
    ".cfg": "config",
    ".conf": "config",
    ".log": "log",
    ".out": "log",
    ".err": "log",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".gif": "image",
    ".bmp": "image",
    ".webp": "image",
    ".tif": "image",
    ".tiff": "image",
    ".svg": "image",
    ".py": "code",
    ".ipynb": "code",
    ".sh": "code",
    ".c": "code",
    ".cc": "code",
    ".cpp": "code",
    ".cu": "code",
    ".h": "code",
    ".js": "code",
    ".ts": "code",
    ".rs": "code",
    ".go": "code",
    ".r": "code",
    ".jl": "code",
    ".md": "doc",
    ".rst": "doc",
    ".txt": "doc",
    ".pdf": "doc",
    ".html": "doc",
    ".json": "other",
}

_CHECKPOINT_NAME = re.compile(
    r"(^|[/_\-.=])(epoch|step|iter|ckpt|checkpoint)[=_\-]?\d+|^checkpoint[-_]\d+$", re.I
)
_CHECKPOINT_DIR = re.compile(r"(^|/)(checkpoint[-_]\d+|checkpoints?|ckpts?)(/|$)", re.I)
_WEIGHT_KINDS = frozenset({"model", "checkpoint"})
_REQUIREMENTS = re.compile(r"^requirements([-_.][\w.-]*)?\.(txt|in)$", re.I)
_METRIC_NAME = re.compile(r"(^|[_\-.])(metrics?|results?|scores?|history)([_\-.]|$)", re.I)
_CONFIG_NAME = re.compile(r"(^|[_\-.])(config|hparams|params|args|settings)([_\-.]|$)", re.I)


_TORCH_TAR = (".pth.tar", ".pt.tar")
"""torch.save files named the old way (timm's ``checkpoint-N.pth.tar``): not tar archives."""

_SETTLED_BY_EXT = frozenset({"image", "code", "log"})
"""Kinds an extension decides alone (no special names among them): the common fast path."""


_BY_NAME: dict[str, str] = {}
_BY_EXT: dict[str, str] = {}
_SETTLED_EXT_BYTES: dict[bytes, str] = {}


def _settled_extensions() -> dict[bytes, str]:
    """Extensions whose kind is final whatever the rest of the name says."""
    settled = {ext: kind for ext, kind in _BY_EXT.items() if kind in _SETTLED_BY_EXT}
    for name, kind in _BY_NAME.items():
        dot = name.rfind(".")
        if dot > 0 and settled.get(name[dot:], kind) != kind:
            del settled[name[dot:]]
    return {ext.encode(): kind for ext, kind in settled.items()}


def _rebuild() -> None:
    """The tables above plus every registered framework's ``kinds`` (a framework's own name
    wins over the general table); updated in place, as callers hold the dicts."""
    names, exts = dict(_BASE_NAMES), dict(_BASE_EXTS)
    for entry in registry.entries():
        for key, kind in entry.kinds.items():
            if kind in KINDS:
                (exts if key.startswith(".") else names)[key.lower()] = kind
    _replace(_BY_NAME, names)
    _replace(_BY_EXT, exts)
    _replace(_SETTLED_EXT_BYTES, _settled_extensions())


def _replace(table: dict[Any, str], new: dict[Any, str]) -> None:
    """New entries first, stale ones after: a reader on another thread never sees a table
    emptied on the way."""
    table.update(new)
    for stale in table.keys() - new.keys():
        del table[stale]


_rebuild()
registry.on_change(_rebuild)
_TFEVENTS = b"events.out.tfevents"
SETTLED_EXT_BYTES = _SETTLED_EXT_BYTES
"""Extension (bytes, with its dot) -> kind, for extensions that decide alone, unless the
name starts with ``TFEVENTS``: ``classify_key``'s fast path, for callers that inline it."""
TFEVENTS = _TFEVENTS


def classify_key(key: bytes) -> str:
    """``classify`` of a path key: images, code and logs skip decoding the name (the scan's
    hot path), anything else goes through ``classify``."""
    cut = key.rfind(b"/") + 1
    dot = key.rfind(b".")
    if dot > cut:
        kind = _SETTLED_EXT_BYTES.get(key[dot:])
        if kind is not None and key[cut : cut + 19].lower() != _TFEVENTS:
            return kind
    return classify(os.fsdecode(key))


def classify(relpath: str) -> str:
    """The kind of a file from its root-relative path alone."""
    slash = relpath.rfind("/")
    kind = kind_by_name(relpath[slash + 1 :])
    if kind is not None:
        return kind
    return _kind_in_folder(relpath[slash + 1 :].lower(), relpath[:slash] if slash >= 0 else "")


def kind_by_name(name: str) -> str | None:
    """``classify`` of a file called ``name`` in any folder, or None when its folder decides
    (weights in a checkpoint folder, a CSV under ``metrics/``): a scan classifies each name
    once, since the same names recur in every run."""
    lower = name.lower()
    kind = _BY_NAME.get(lower)
    if kind is not None:
        return kind
    if lower.startswith("events.out.tfevents"):
        return "metrics"
    if lower.endswith(_TORCH_TAR):
        return "checkpoint"
    dot = lower.rfind(".")
    ext = lower[dot:] if dot > 0 else ""
    kind = _BY_EXT.get(ext, "other")
    if kind in _SETTLED_BY_EXT:
        return kind
    if lower.startswith("requirements") and _REQUIREMENTS.match(lower):
        return "env"
    if kind in _WEIGHT_KINDS or ext == ".bin":
        if kind == "checkpoint" or _CHECKPOINT_NAME.search(lower):
            return "checkpoint"
        return None
    if kind in ("data", "other") and ext in (".csv", ".tsv", ".json", ".jsonl"):
        return "metrics" if _METRIC_NAME.search(lower) else None
    if kind == "other" and not ext:
        return None
    return kind


def _kind_in_folder(lower: str, folder: str) -> str:
    """The rest of ``classify`` for a name ``kind_by_name`` leaves to its folder."""
    dot = lower.rfind(".")
    ext = lower[dot:] if dot > 0 else ""
    kind = _BY_EXT.get(ext, "other")
    if kind in _WEIGHT_KINDS or ext == ".bin":
        return "checkpoint" if _CHECKPOINT_DIR.search(folder) else "model"
    wrapped = f"/{folder}/"
    if ext:  # a CSV, TSV or JSON whose name says no metrics
        if "/metrics/" in wrapped or "/plots/" in wrapped:
            return "metrics"
        if ext == ".json":
            return "config" if _CONFIG_NAME.search(lower) else "other"
        return kind
    if "/metrics/" in wrapped:
        return "metrics"
    if "/params/" in wrapped or "/tags/" in wrapped:
        return "config"
    return kind


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"\x89HDF\r\n\x1a\n", "model"),
    (b"GGUF", "model"),
    (b"\x93NUMPY", "data"),
    (b"PAR1", "data"),
    (b"ARROW1", "data"),
    (b"%PDF", "doc"),
)


def refine(kind: str, relpath: str, head: bytes) -> str:
    """Correct a name-based kind with the file's first bytes, where the extension lies."""
    for magic, magic_kind in _MAGIC:
        if head.startswith(magic):
            if magic_kind == "model" and kind == "checkpoint":
                return kind
            return magic_kind if kind in ("other", "doc", "data", "model") else kind
    if kind in ("other", "data", "doc") and _looks_like_weights(head):
        return "checkpoint" if _CHECKPOINT_DIR.search(relpath) else "model"
    return kind


def _looks_like_weights(head: bytes) -> bool:
    """A pickle (protocol 2+), a torch zip, or a safetensors header."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head.startswith(b"PK\x03\x04") and (b"data.pkl" in head[:512] or b"/data/" in head[:512]):
        return True
    if len(head) >= 10 and head[8:10] == b'{"':
        length = int.from_bytes(head[:8], "little")
        return 2 <= length < 100_000_000
    return False
