"""Weights & Biases local run folders.

``wandb/run-YYYYMMDD_HHMMSS-<id>/`` (``offline-run-...`` when offline) holds
``files/config.yaml`` (``{key: {value: ...}}`` plus ``_wandb``), ``files/wandb-summary.json``,
``files/wandb-metadata.json`` (git, host, startedAt) and ``run-<id>.wandb``, the binary
record log.  Recent offline runs write only the ``.wandb`` file, so config and summary fall
back to the binary reader (``store.frameworks.wandb_records``); the history (every logged
step) only ever lives there.  ``latest-run`` is a symlink, not a run.  Lightning's
``WandbLogger`` puts its checkpoints in ``<save_dir>/<project>/<run id>/checkpoints/``,
which the run owns (``extra_paths``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
from dataclasses import replace
from typing import Any

from store.frameworks import _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks._metrics import add_point
from store.frameworks.flatten import flatten
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Framework

FRAMEWORK = "wandb"
RUN_DIR = re.compile(r"^(offline-)?run-(\d{8}_\d{6})-([A-Za-z0-9]+)$")
RECORD = re.compile(r"^run-([A-Za-z0-9]+)\.wandb$")
_FILES_MARKERS = frozenset({"wandb-metadata.json", "wandb-summary.json"})


def detect(ctx: DetectContext) -> list[RunSpec]:
    """Run folders by content: a ``run-<id>.wandb`` record or ``files/wandb-*.json``,
    whatever the folder is called (the id comes from the record's name, else the folder's)."""
    specs = []
    for rel in ctx.paths:
        name = _io.basename(rel) if rel else _io.root_name(ctx.root)
        match = RUN_DIR.match(name)
        entry = ctx.entry(rel)
        run_id = match.group(3) if match else None
        has_record = (
            f"run-{run_id}.wandb" in entry.files
            if run_id
            else ctx.has_file_starting(rel, "run-") and ctx.has_file_ending(rel, ".wandb")
        )
        if run_id is None and has_record:
            ids = [m.group(1) for m in map(RECORD.match, entry.files) if m]
            run_id = ids[0] if len(ids) == 1 else None
            has_record = run_id is not None
        has_files = "files" in entry.dirs and (
            match is not None or bool(ctx.entry(_io.join(rel, "files")).files & _FILES_MARKERS)
        )
        if not (has_record or has_files):
            continue
        specs.append(
            RunSpec(
                path=rel,
                framework=FRAMEWORK,
                name=run_id or _io.display_name(name),
                experiment=None,
                run_key=run_id,
            )
        )
    return _with_checkpoint_folders(ctx, specs)


def _with_checkpoint_folders(ctx: DetectContext, specs: list[RunSpec]) -> list[RunSpec]:
    """Lightning's ``WandbLogger`` runs own their ``ModelCheckpoint`` folder.

    W&B writes ``<save_dir>/wandb/<run folder>``; ModelCheckpoint writes beside it, to
    ``<save_dir>/<project>/<run id>/checkpoints/*.ckpt``.  The folder is claimed only by
    the one W&B run of ``<save_dir>/wandb`` with exactly that id, and only when exactly one
    project folder holds it (the project itself is in the record log, not read here).
    """
    by_id: dict[tuple[str, str], list[int]] = {}
    for index, spec in enumerate(specs):
        parent = _io.parent(spec.path)
        if spec.run_key and spec.path and _io.basename(parent) == "wandb":
            by_id.setdefault((_io.parent(parent), spec.run_key), []).append(index)
    for (save_dir, run_id), indexes in by_id.items():
        if len(indexes) != 1:  # a resumed or reused id: whose checkpoints they are is unknown
            continue
        found = [
            _io.join(save_dir, project, run_id)
            for project in sorted(ctx.entry(save_dir).dirs)
            if project != "wandb"
            and run_id in ctx.entry(_io.join(save_dir, project)).dirs
            and ctx.has_file_ending(_io.join(save_dir, project, run_id, "checkpoints"), ".ckpt")
        ]
        if len(found) == 1:
            spec = specs[indexes[0]]
            specs[indexes[0]] = replace(spec, extra_paths=(*spec.extra_paths, found[0]))
    return specs


def _binary(root: RootLike, spec: RunSpec, out: Loaded, parts: tuple[str, ...]) -> Any:
    run_id = spec.run_key
    rel = _io.join(spec.path, f"run-{run_id}.wandb")
    try:
        _io.open_file(root, rel).close()  # absent or no regular file: no binary log
    except _io.ReadError:
        return None
    try:
        from store.frameworks.wandb_records import read_wandb_file
    except ImportError:
        out.warn_partial(f"{rel}: W&B binary reader not available", *parts)
        return None
    try:
        return read_wandb_file(rel, root=_io.as_root(root))
    except Exception as exc:  # a foreign reader must not break the run
        out.warn_partial(f"{rel}: unreadable W&B record log ({type(exc).__name__}: {exc})", *parts)
        return None


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    out.meta["run_id"] = spec.run_key
    files = _io.join(spec.path, "files")
    # a config or summary there but not read (cut, invalid, no mapping) leaves params or
    # final values out, whatever the record log gives in their place
    config = _read_optional(root, _io.join(files, "config.yaml"), out, yaml=True, part="params")
    summary = _read_optional(
        root, _io.join(files, "wandb-summary.json"), out, yaml=False, part="metrics"
    )
    metadata = _read_optional(root, _io.join(files, "wandb-metadata.json"), out, yaml=False)
    # what the record log holds and was not read leaves out metrics, and params unless
    # config.yaml gave them
    parts = ("metrics",) if config is not None else ("metrics", "params")
    records = _binary(root, spec, out, parts)
    if records is not None:
        rec_meta = getattr(records, "meta", None) or {}
        if config is None:
            config = getattr(records, "config", None)
        if summary is None:
            summary = getattr(records, "summary", None)
        _apply_record_meta(rec_meta, out)
        for message in getattr(records, "warnings", None) or []:
            out.warn(f"{spec.path}: {message}")
        out.unread.update(p for p in parts if p in (getattr(records, "unread", None) or ()))
        for row in getattr(records, "history", None) or []:
            _history_row(row, out)
    history_rel = _io.join(files, "wandb-history.jsonl")  # written by wandb < 0.10
    if not out.series:
        _read_history_jsonl(root, history_rel, out)
    if isinstance(config, dict):
        out.params = flatten(_config_values(config))
    if isinstance(summary, dict):
        step = _io.to_int(summary.get("_step"))
        for name, value in flatten(summary, numbers=True).items():
            number = _io.to_float(value) if not isinstance(value, str) else None
            if number is not None and not name.startswith("_"):
                out.finals[name] = (step, number)
        runtime = summary.get("_runtime")
        stamp = _io.to_float(summary.get("_timestamp"))
        if stamp is not None:
            out.ended = stamp
        if out.started is None and stamp is not None and isinstance(runtime, (int, float)):
            out.started = stamp - float(runtime)
    if isinstance(metadata, dict):
        _apply_metadata(metadata, out)
    if out.started is None and (
        match := RUN_DIR.match(_io.basename(spec.path) or _io.root_name(root))
    ):
        with contextlib.suppress(ValueError):
            out.started = _dt.datetime.strptime(match.group(2), "%Y%m%d_%H%M%S").timestamp()
    project = out.meta.get("project")
    if isinstance(project, str) and project.strip():
        out.meta["experiment"] = project  # what W&B calls the run's experiment
    return out


def _read_optional(
    root: RootLike, rel: str, out: Loaded, *, yaml: bool, part: str | None = None
) -> dict[str, object] | None:
    """A mapping file of the run, None when absent or not read; one there but not read
    (or no mapping) is said, and marks ``part`` read in part."""
    try:
        data = _io.read_yaml(root, rel) if yaml else _io.read_json(root, rel)
    except _io.ReadError as exc:
        if not isinstance(exc, _io.MissingFile):
            _warn(out, str(exc), part)
        return None
    if not isinstance(data, dict):  # W&B writes a mapping: an empty file is being written
        _warn(out, f"{rel}: {'empty' if data is None else 'not a mapping'}", part)
        return None
    return data


def _warn(out: Loaded, message: str, part: str | None) -> None:
    if part:
        out.warn_partial(message, part)
    else:
        out.warn(message)


def _config_values(config: dict[str, object]) -> dict[str, object]:
    """Unwrap ``{key: {desc, value}}`` and drop W&B's own keys."""
    plain: dict[str, object] = {}
    for key, item in config.items():
        if key in ("wandb_version", "_wandb"):
            continue
        if isinstance(item, dict) and "value" in item and set(item) <= {"value", "desc"}:
            plain[str(key)] = item["value"]
        else:
            plain[str(key)] = item
    return plain


def _history_row(row: object, out: Loaded) -> None:
    if not isinstance(row, dict):
        return
    step = _io.to_int(row.get("_step"))
    if step is None:
        step = max((len(p) for p in out.series.values()), default=0)
    for name, value in flatten(row, numbers=True).items():
        if name.startswith("_") or isinstance(value, str):
            continue
        number = _io.to_float(value)
        if number is not None:
            add_point(out.series, name, step, number)
    stamp = _io.to_float(row.get("_timestamp"))
    if stamp is not None and (out.ended is None or stamp > out.ended):
        out.ended = stamp


def _read_history_jsonl(root: RootLike, rel: str, out: Loaded) -> None:
    for row in _io.read_json_lines(root, rel, out, missing_ok=True):
        _history_row(row, out)


def _apply_record_meta(meta: object, out: Loaded) -> None:
    if not isinstance(meta, dict):
        return
    for src, key in (
        ("display_name", "name"),
        ("name", "name"),
        ("project", "project"),
        ("entity", "entity"),
        ("run_id", "run_id"),
        ("git_commit", "git_commit"),
        ("git_remote", "git_remote"),
        ("host", "host"),
        ("exit_code", "exit_code"),
    ):
        value = meta.get(src)
        if value is not None and value != "":
            out.meta.setdefault(key, value if isinstance(value, (int, float)) else str(value))
    exit_code = meta.get("exit_code")
    if isinstance(exit_code, int) and not isinstance(exit_code, bool):
        out.status = "finished" if exit_code == 0 else "failed"
    started = _io.to_float(meta.get("start_time") or meta.get("started"))
    if started is not None:
        out.started = started


def _apply_metadata(metadata: dict[str, object], out: Loaded) -> None:
    git = metadata.get("git")
    if isinstance(git, dict):
        if git.get("commit"):
            out.meta["git_commit"] = str(git["commit"])
        if git.get("remote"):
            out.meta["git_remote"] = str(git["remote"])
    for src, key in (
        ("host", "host"),
        ("python", "python"),
        ("program", "program"),
        ("os", "os"),
        ("username", "user"),
        ("gpu", "gpu"),
    ):
        if metadata.get(src) is not None:
            out.meta.setdefault(key, str(metadata[src]))
    args = metadata.get("args")
    if isinstance(args, list):
        out.meta["args"] = [str(a) for a in args][:200]
    started = metadata.get("startedAt")
    if isinstance(started, str):
        try:
            stamp = _dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=_dt.timezone.utc)
            out.started = stamp.timestamp()
        except ValueError:
            out.warn(f"wandb-metadata.json: bad startedAt {started[:40]!r}")


ENTRY = Framework(
    name=FRAMEWORK,
    display="W&B",
    priority=200,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=_FILES_MARKERS,
    marker_patterns=(r"run-.*\.wandb",),
    checklist=(
        "files/config.yaml|run-*.wandb",
        "requirements.txt|conda-environment.yaml",
        "wandb-metadata.json|run-*.wandb",
    ),
    kinds={
        "wandb-metadata.json": "env",
        "wandb-summary.json": "metrics",
        "output.log": "log",
        "debug.log": "log",
        "debug-internal.log": "log",
        ".wandb": "metrics",
    },
)
