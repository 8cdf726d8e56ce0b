"""Generic runs: folders that hold artifacts but no framework markers.

Rule: by default every first-level folder of the root is a candidate.  A ``.artlens.toml``
in the root may set ``[runs] depth = N`` (candidates are folders exactly N levels down) and
``[runs] globs = ["experiments/*/*"]`` (folders whose path matches a glob, compared one
path component at a time).  A candidate becomes a run when something below it looks like
an artifact (a weight, checkpoint, config, metric table or log file), it is not hidden, and
it neither contains nor lies inside a run another framework detected.
"""

from __future__ import annotations

import fnmatch

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework
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


def rules(root: RootLike) -> tuple[int, tuple[str, ...]]:
    """(depth, globs) from the root's ``.artlens.toml``; (1, ()) when absent or invalid."""
    try:
        text, _ = _io.read_text(root, CONFIG_NAME, 256 * 1024)
        config = load_toml(text)
    except (_io.ReadError, ValueError):  # ValueError: not TOML, or nested too deeply
        return 1, ()
    runs = config.get("runs")
    if not isinstance(runs, dict):
        return 1, ()
    depth = runs.get("depth", 1)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 32:
        depth = 1
    globs = runs.get("globs", ())
    if isinstance(globs, str):
        globs = (globs,)
    if not isinstance(globs, (list, tuple)):
        globs = ()
    return depth, tuple(str(g).strip("/") for g in globs if str(g).strip("/"))


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
