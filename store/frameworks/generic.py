"""Generic runs: folders that hold artifacts but no framework markers.

Rule: by default every first-level folder of the root is a candidate.  A ``.artlens.toml``
in the root may set ``[runs] depth = N`` (candidates are folders exactly N levels down) and
``[runs] globs = ["experiments/*/*"]`` (folders whose path matches a glob, compared one
path component at a time); a ``[runs]`` that cannot be used (a key it does not know, a
depth that is no whole number from 0 to 32, a file that is not TOML) stops the scan with
one line naming the file, never the default rule.  A candidate becomes a run when
something below it looks like an artifact (a weight, checkpoint, config, metric table or
log file), it is not hidden, and it neither contains nor lies inside a run another
framework detected.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from store.errors import ArtlensError
from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework
from store.paths import display
from store.root import RootError
from store.safeparse import load_toml

FRAMEWORK = "generic"
CONFIG_NAME = ".artlens.toml"
ARTIFACT_SUFFIXES = (
    ".pt",
    ".pth",
    ".ckpt",
    ".safetensors",
    ".bin",
    ".onnx",
    ".h5",
    ".hdf5",
    ".keras",
    ".pkl",
    ".pickle",
    ".joblib",
    ".npz",
    ".npy",
    ".gguf",
    ".pb",
    ".tflite",
    ".msgpack",
    ".json",
    ".yaml",
    ".yml",
    ".csv",
    ".tsv",
    ".log",
    ".parquet",
    ".arrow",
    ".model",
)
_SKIP = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env"})
_PARAM_FILES = (
    "config.yaml",
    "config.yml",
    "config.json",
    "params.yaml",
    "hparams.yaml",
    "args.json",
    "args.yaml",
    "hyperparameters.json",
)
_FINAL_FILES = ("metrics.json", "results.json", "result.json", "eval_results.json", "scores.json")
_CSV_FILES = ("metrics.csv", "log.csv", "history.csv", "progress.csv", "training_log.csv")


MAX_DEPTH = 32
"""Deepest ``[runs] depth`` a root's ``.artlens.toml`` may ask for."""
_RUNS_KEYS = ("depth", "globs")


class RunsConfigError(ArtlensError):
    """A root's ``[runs]`` table that cannot be used: one line naming the file, its line
    and the key.  It stops the scan (the index keeps what it holds), never becomes the
    default rules: runs found at another depth would be added and the real ones dropped."""


def rules(root: RootLike) -> tuple[int, tuple[str, ...]]:
    """(depth, globs) from the root's ``.artlens.toml``; (1, ()) when it has none, or no
    ``[runs]`` table.  ``RunsConfigError`` when the file cannot be read or parsed, or its
    ``[runs]`` holds a key, type or value it cannot mean."""
    try:
        text, cut = _io.read_text(root, CONFIG_NAME, _CONFIG_BYTES)
    except _io.MissingFile:
        return 1, ()
    except _io.ReadError as exc:
        if not _config_seen(root):  # the root itself cannot be looked at: the scan says so
            return 1, ()  # and keeps its rows; whether a config is there is not known
        raise RunsConfigError(f"{_config_shown(root)}: cannot read ({exc})") from None
    if cut:
        raise RunsConfigError(
            f"{_config_shown(root)}: cannot read (larger than {_CONFIG_BYTES} bytes)"
        )
    try:
        config = load_toml(text)
    except ValueError as exc:  # not TOML, or nested too deeply
        from store.retention.policy import _toml_error

        raise RunsConfigError(_toml_error(Path(_config_shown(root)), str(exc), text)) from None
    if "runs" not in config:
        return 1, ()
    runs = config["runs"]

    def fail(key: str | None, message: str) -> RunsConfigError:
        from store.retention.policy import _LineFinder

        finder = _LineFinder(text, ("runs",))
        line = finder.line_of(key) if key is not None else None
        if line is None:
            line = finder.table_line() or _LineFinder(text, ()).line_of("runs")
        return RunsConfigError(f"{_config_shown(root)}:{line or '?'}: {message}")

    if not isinstance(runs, dict):
        raise fail(None, "[runs] must be a table")
    for key in runs:
        if key not in _RUNS_KEYS:
            shown = repr(key[:80]) + ("..." if len(key) > 80 else "")
            raise fail(key, f"unknown key {shown} in [runs] (known: {', '.join(_RUNS_KEYS)})")
    depth = runs.get("depth", 1)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
        shown = repr(depth)[:40]
        raise fail(
            "depth", f"[runs] depth must be a whole number from 0 to {MAX_DEPTH}, not {shown}"
        )
    globs = runs.get("globs", [])
    if isinstance(globs, str):
        globs = [globs]
    if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
        raise fail("globs", '[runs] globs must be a list of strings like "experiments/*/*"')
    kept = tuple(g.strip("/") for g in globs)
    if any(not g for g in kept):
        raise fail("globs", "[runs] globs holds an empty glob (it would match no folder)")
    deep = next((g for g in kept if "**" in g), None)
    if deep is not None:  # fnmatch reads ** as *: one level, where more were meant
        raise fail(
            "globs",
            f"[runs] globs: {deep[:80]!r}: ** is not supported (each part matches one"
            " folder name: write every level, e.g. exps/*/*)",
        )
    return depth, kept


_CONFIG_BYTES = 256 * 1024


def _config_seen(root: RootLike) -> bool:
    """Whether the root's folder shows a ``.artlens.toml`` (a FIFO, a link or a file not
    readable are seen; a root folder that cannot be searched shows nothing)."""
    try:
        _io.as_root(root).stat(CONFIG_NAME)
    except (RootError, OSError):
        return False
    return True


def _config_shown(root: RootLike) -> str:
    """The root's ``.artlens.toml`` as a path or URL, escaped for one line."""
    local = _io.local_path(root)
    where = (
        os.path.join(local, CONFIG_NAME)
        if local is not None
        else f"{_io.as_root(root).url.rstrip('/')}/{CONFIG_NAME}"
    )
    return display(where)


def _matches(rel: str, pattern: str) -> bool:
    parts, pats = rel.split("/"), pattern.split("/")
    if len(parts) != len(pats):
        return False
    return all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pats, strict=True))


def detect(ctx: DetectContext, taken: list[str]) -> list[RunSpec]:
    """Generic runs among the candidates, given the paths other frameworks claimed."""
    depth, globs = rules(ctx.root)
    taken_set = set(taken)
    specs = []
    for rel in ctx.paths:
        level = len(rel.split("/")) if rel else 0
        if globs:
            if not any(_matches(rel, g) for g in globs):
                continue
        elif level != depth:
            continue
        parts = rel.split("/") if rel else []
        if not all(may_hold_run(p) for p in parts):
            continue
        if _overlaps(rel, taken_set) or not _has_artifact(ctx, rel):
            continue
        specs.append(ctx.folder_run(rel, FRAMEWORK))
    return specs


def may_hold_run(name: str) -> bool:
    """Whether a folder of this name may be part of a generic run's path (``detect``)."""
    return not (name.startswith(".") or name in _SKIP)


def _overlaps(rel: str, taken: set[str]) -> bool:
    if rel in taken or "" in taken:
        return True
    prefix = rel + "/"
    folder = rel
    while folder:
        folder = _io.parent(folder)
        if folder in taken:
            return True
    return any(t.startswith(prefix) for t in taken) if rel else bool(taken)


def _has_artifact(ctx: DetectContext, rel: str) -> bool:
    for folder in (rel, *ctx.below(rel)):
        if any(f.lower().endswith(ARTIFACT_SUFFIXES) for f in ctx.entry(folder).files):
            return True
    return False


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    read_known_files(root, spec.path, out)
    return out


def read_known_files(root: RootLike, folder: str, out: Loaded) -> None:
    """The folder's config, results and metric-table files of the names above (a training
    script's own), into ``out``."""
    _, files = _io.list_dir(root, folder)
    for name in _PARAM_FILES:
        if name in files:
            _common.read_params(root, _io.join(folder, name), out)
    for name in _FINAL_FILES:
        if name in files:
            _common.read_json_finals(root, _io.join(folder, name), out)
    for name in _CSV_FILES:
        if name in files:
            _common.read_wide_csv(root, _io.join(folder, name), out)


ENV = "requirements.txt|conda.yaml|conda.yml|environment.yml|environment.yaml|python_env.yaml"
"""Any of the files that pin a run's Python environment (a checklist item)."""

ENTRY = Framework(
    name=FRAMEWORK,
    display="generic",
    priority=1600,
    fallback=detect,
    load=load,
    markers=frozenset({CONFIG_NAME}),
    config_markers=frozenset({CONFIG_NAME}),
    counted_suffixes=ARTIFACT_SUFFIXES,
    counted_folder=may_hold_run,
    checklist=(
        ENV,
        "*.yaml|*.yml|config.json|*.toml",
        "metrics.*|trainer_state.json|*.csv|events.out.tfevents.*",
        "*.safetensors|*.ckpt|*.pt|*.pth|*.bin|model.pkl|*.onnx|*.gguf",
    ),
    checkpoints=Checkpoints(last_names=frozenset({"last.pth"}), best_names=frozenset({"best.pth"})),
)
