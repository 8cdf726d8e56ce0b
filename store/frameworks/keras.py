"""Keras training folders: ``ModelCheckpoint`` files beside a ``CSVLogger`` file.

``ModelCheckpoint(filepath)`` writes ``.keras`` (a zip: ``config.json``, ``metadata.json``,
``model.weights.h5``), ``.h5`` or ``.weights.h5`` files named by the user's template (often
``model.{epoch:02d}-{val_loss:.2f}.keras``, the epoch counted from 1); ``CSVLogger(filename)``
writes a CSV whose header is ``epoch`` then the logs' keys in sorted order (``accuracy``,
``loss``, ``val_accuracy``, ``val_loss``), the epoch counted from 0.  Neither has a fixed
name, so a folder is a Keras run when it holds model files (or a folder of them) and a
CSV or log file whose first line starts with ``epoch,``.  The params are the compile
config inside the newest ``.keras`` archive (optimizer and its learning rate, loss),
read from the zip without loading the model.
"""

from __future__ import annotations

import re
import zipfile

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.flatten import flatten
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework, NumberedName, SeriesSource
from store.safeparse import load_json
from store.safezip import open_zip

FRAMEWORK = "keras"
MODEL_SUFFIXES = (".keras", ".h5")
_LOG_SUFFIXES = (".csv", ".log", ".tsv")
_MAX_CONFIG = 8 << 20
_MAX_LOG_CANDIDATES = 8


def _model_folders(ctx: DetectContext, rel: str) -> list[str]:
    """``rel`` and its direct sub-folders that hold Keras model files."""
    found = []
    for folder in (rel, *(_io.join(rel, d) for d in sorted(ctx.entry(rel).dirs))):
        if any(ctx.has_file_ending(folder, s) for s in MODEL_SUFFIXES):
            found.append(folder)
    return found


def csv_log(root: RootLike, rel: str, files: frozenset[str] | list[str]) -> str | None:
    """The folder's CSVLogger file (first line ``epoch,...``), by a 64-byte read each."""
    names = sorted(f for f in files if f.lower().endswith(_LOG_SUFFIXES))
    for name in names[:_MAX_LOG_CANDIDATES]:
        try:
            head, _ = _io.read_bytes(root, _io.join(rel, name), 64)
        except _io.ReadError:
            continue
        if head.startswith((b"epoch,", b"epoch\t", b"epoch;")):
            return name
    return None


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        if not any(ctx.has_file_ending(rel, s) for s in _LOG_SUFFIXES):
            continue
        entry = ctx.entry(rel)
        if not _model_folders(ctx, rel):
            continue
        if csv_log(ctx.root, rel, entry.files) is None:
            continue
        specs.append(ctx.folder_run(rel, FRAMEWORK))
    return specs


def _is_model(name: str) -> bool:
    return name.lower().endswith(MODEL_SUFFIXES)


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    dirs, files, odd = _io.list_apart(root, spec.path)
    log = csv_log(root, spec.path, files + odd)
    if log is not None:
        out.meta["csv_log"] = _io.display_name(log)
        _common.read_wide_csv(
            root, _io.join(spec.path, log), out, step_column="epoch", one_row_per_step=True
        )
    models: list[tuple[str, str]] = []
    for folder in (spec.path, *(_io.join(spec.path, d) for d in sorted(dirs))):
        names, others = (files, odd) if folder == spec.path else _io.list_apart(root, folder)[1:]
        models += [(folder, n) for n in names if n.lower().endswith(MODEL_SUFFIXES)]
        # a FIFO named like a model is none: said, never listed nor opened
        _common.note_checkpoints(out, (), _is_model, folder=folder, not_files=others)
    models.sort(key=lambda item: _io.natural_key(item[1]))
    if models:
        out.meta["checkpoints"] = [
            _io.display_name(_io.join(f, n)[len(spec.path) + 1 if spec.path else 0 :])
            for f, n in models
        ]
    archives = [m for m in models if m[1].lower().endswith(".keras")]
    newest = max(archives, key=lambda m: _mtime(root, _io.join(*m)), default=None)
    if newest is not None:
        _read_archive_config(root, _io.join(*newest), out)
    return out


def _mtime(root: RootLike, rel: str) -> float:
    try:
        return _io.as_root(root).stat(rel).mtime_ns / 1e9
    except OSError:
        return 0.0


def _read_archive_config(root: RootLike, rel: str, out: Loaded) -> None:
    try:
        stream = _io.open_stream(root, rel)
    except _io.ReadError as exc:
        out.warn(str(exc))
        return
    try:
        with stream, open_zip(stream) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > _MAX_CONFIG:
                out.warn(f"{rel}: config.json larger than {_MAX_CONFIG} bytes, not read")
                return
            with archive.open(info) as member:
                config = load_json(member.read(_MAX_CONFIG).decode("utf-8", "replace"))
    except (KeyError, zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        out.warn(f"{rel}: no readable config.json ({type(exc).__name__})")
        return
    if not isinstance(config, dict):
        return
    out.meta["model_config"] = _io.display_name(rel)
    compiled = config.get("compile_config")
    if isinstance(compiled, dict):
        optimizer = compiled.get("optimizer")
        if isinstance(optimizer, dict):
            inner = optimizer.get("config")
            if isinstance(inner, dict):
                for key, value in flatten(inner, source=rel).items():
                    _common.add_param(out, f"optimizer.{key}", value, rel)
            if optimizer.get("class_name"):
                _common.add_param(out, "optimizer.class_name", str(optimizer["class_name"]), rel)
        for key in ("loss", "metrics", "loss_weights", "jit_compile", "steps_per_execution"):
            if key in compiled and compiled[key] is not None:
                value = compiled[key]
                plain = value if isinstance(value, (int, float, str, bool)) else str(value)
                _common.add_param(out, key, plain, rel)
    if config.get("class_name"):
        _common.add_param(out, "model.class_name", str(config["class_name"]), rel)


ENTRY = Framework(
    name=FRAMEWORK,
    display="Keras",
    priority=900,
    detect=detect,
    load=load,
    marker_patterns=(r".*\.keras", r".*\.h5"),
    checklist=("*.csv|*.log", "*.keras|*.h5"),
    checkpoints=Checkpoints(
        # ModelCheckpoint's {epoch} is the first number of its names and counts from 1
        numbered=(NumberedName(re.compile(r"^\D*(\d+).*\.(?:keras|h5)$"), "epoch"),),
        series=SeriesSource("CSVLogger log", "epoch", -1),
    ),
)
