"""Static diffs of model files (pickles, torch zips, safetensors, GGUF...) via inspection.

Nothing is unpickled: both files go through ``store.inspect.inspect_file``, which reads
opcodes and headers only, and the two ``Inspection`` results are compared field by field
(format, verdict, reasons, imports, summary, integrity) next to a byte-level comparison.
Torch zips are compared tensor by tensor in ``store.diff.torch_zip``; this is their
fallback when that refuses (a dangerous or unmappable checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from store.diff._io import DiffCancelled, DiffError, FileRef, ref_basename
from store.diff.binary import BinaryDiff, diff_binary
from store.diff.structured import Change, diff_structured
from store.inspect import Inspection, inspect_at, inspect_file


@dataclass
class ModelDiff:
    format_old: str | None
    format_new: str | None
    verdict_old: str | None
    verdict_new: str | None
    reasons_added: list[str]
    reasons_removed: list[str]
    imports_added: list[str]
    imports_removed: list[str]
    summary: list[Change]
    integrity_old: str | None
    integrity_new: str | None
    binary: BinaryDiff | None
    equal: bool
    notes: list[str] = field(default_factory=list)

    @property
    def unknown(self) -> bool:
        """Bytes equal as far as read, and nothing else seen to differ: not known equal."""
        seen = (self.reasons_added, self.reasons_removed, self.imports_added)
        differs = any(seen) or bool(self.imports_removed or self.summary)
        return self.binary is not None and self.binary.unknown and not differs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return sorted(f"{key} ({item})" if item else str(key) for key, item in value.items())
    if isinstance(value, (str, bytes)):
        return [str(value)]
    if isinstance(value, Iterable):
        return sorted(str(item) for item in value)
    return [str(value)]


def _plain(value: object) -> object:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "__dataclass_fields__"):
        return _plain(asdict(value))  # type: ignore[call-overload]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    return str(value)


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    plain = _plain(value)
    return plain if isinstance(plain, str) else str(plain)


def _inspect(path: FileRef) -> tuple[Inspection | None, str | None]:
    try:
        return (inspect_at(*path) if isinstance(path, tuple) else inspect_file(path)), None
    except Exception as exc:  # the inspector's own error, or anything it let through
        return None, f"{ref_basename(path)}: {' '.join(str(exc).split())}"


def diff_model_files(a: FileRef, b: FileRef) -> ModelDiff:
    """Compare what two model files hold and whether loading them would run code."""
    notes: list[str] = []
    binary: BinaryDiff | None = None
    try:
        binary = diff_binary(a, b)
        notes.extend(binary.notes)
    except DiffCancelled:
        raise
    except DiffError as exc:
        notes.append(str(exc))
    old, error_old = _inspect(a)
    new, error_new = _inspect(b)
    notes.extend(sorted({e for e in (error_old, error_new) if e}))
    formats = {getattr(side, "format", None) for side in (old, new)}
    if "torch-legacy" in formats:
        notes.append(
            "legacy (pre-1.6, non-zip) torch format: tensors are not compared, only bytes; "
            "re-save with torch.save to compare tensor by tensor"
        )

    def field_of(obj: object | None, name: str) -> object:
        return getattr(obj, name, None) if obj is not None else None

    reasons_old = set(_strings(field_of(old, "reasons")))
    reasons_new = set(_strings(field_of(new, "reasons")))
    imports_old = set(_strings(field_of(old, "imports")))
    imports_new = set(_strings(field_of(new, "imports")))
    summary = diff_structured(
        _plain(field_of(old, "summary")) or {}, _plain(field_of(new, "summary")) or {}
    )
    result = ModelDiff(
        format_old=_optional_str(field_of(old, "format")),
        format_new=_optional_str(field_of(new, "format")),
        verdict_old=_optional_str(field_of(old, "verdict")),
        verdict_new=_optional_str(field_of(new, "verdict")),
        reasons_added=sorted(reasons_new - reasons_old),
        reasons_removed=sorted(reasons_old - reasons_new),
        imports_added=sorted(imports_new - imports_old),
        imports_removed=sorted(imports_old - imports_new),
        summary=summary,
        integrity_old=_optional_str(field_of(old, "integrity")),
        integrity_new=_optional_str(field_of(new, "integrity")),
        binary=binary,
        equal=binary is not None and binary.equal,
        notes=notes,
    )
    return result
