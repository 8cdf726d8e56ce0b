"""MMEngine (MMDetection, MMPretrain, ...) work dirs: ``work_dirs/<config>/``.

The runner dumps the config as ``<config>.py`` there, and each start (a resume too) gets
a ``<YYYYMMDD_HHMMSS>/`` log folder with ``<timestamp>.log`` and ``vis_data/scalars.json``
(one JSON object per line: ``loss``, ``lr``, ``epoch``, ``iter``, ``step``; validation lines
carry the metrics, e.g. ``coco/bbox_mAP``, at the epoch as ``step``) and a copy of the
config as ``vis_data/config.py``.  CheckpointHook saves ``epoch_<N>.pth`` or
``iter_<N>.pth`` (counted from 1) and ``best_<metric>_epoch_<N>.pth`` in the work dir and
writes the newest path into ``last_checkpoint``.  The config is Python: only its literal
assignments are read (``store.frameworks._pyconfig``), never executed.
"""

from __future__ import annotations

import re

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks._pyconfig import parse_py_config
from store.frameworks.flatten import flatten
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework, SeriesSource

FRAMEWORK = "mmengine"
TIMESTAMP = re.compile(r"^\d{8}_\d{6}$")
CHECKPOINT = re.compile(r"^(?:best_.*_)?(epoch|iter)_(\d+)\.pth$")
_INDEX = frozenset({"epoch", "iter", "step", "data_time", "time", "memory"})


def _log_dirs(ctx: DetectContext, rel: str) -> list[str]:
    return sorted(
        d
        for d in ctx.entry(rel).dirs
        if TIMESTAMP.match(d) and "vis_data" in ctx.entry(_io.join(rel, d)).dirs
    )


def is_run_dir(ctx: DetectContext, rel: str) -> bool:
    entry = ctx.entry(rel)
    if not ("last_checkpoint" in entry.files or any(TIMESTAMP.match(d) for d in entry.dirs)):
        return False
    if TIMESTAMP.match(_io.basename(rel) or ""):
        return False  # a log folder belongs to its work dir
    numbered = ctx.has_file_ending(rel, ".pth") and any(CHECKPOINT.match(f) for f in entry.files)
    if "last_checkpoint" in entry.files and numbered:
        return True
    return bool(_log_dirs(ctx, rel)) and (numbered or ctx.has_file_ending(rel, ".py"))


def detect(ctx: DetectContext) -> list[RunSpec]:
    return [ctx.folder_run(rel, FRAMEWORK) for rel in ctx.paths if is_run_dir(ctx, rel)]


def _is_checkpoint(name: str) -> bool:
    return CHECKPOINT.match(name) is not None


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    dirs, files, odd = _io.list_apart(root, spec.path)
    logs = sorted(d for d in dirs if TIMESTAMP.match(d))
    config = _config_rel(spec, files + odd, logs, root)
    if config is not None:
        try:
            text, cut = _io.read_text(root, config, 4 << 20)
            if cut:
                out.warn(f"{config}: larger than 4 MiB, not read")
                out.unread.add("params")  # not "no params": a diff must not call them removed
            else:
                out.params = flatten(parse_py_config(text))
                out.meta["config"] = config
        except (_io.ReadError, ValueError) as exc:
            out.warn(f"{config}: {exc}")
            out.unread.add("params")
    for log in logs:  # oldest first: a resume's values come after the first start's
        _read_scalars(root, _io.join(spec.path, log, "vis_data", "scalars.json"), out)
    _common.note_checkpoints(out, files, _is_checkpoint, folder=spec.path, not_files=odd)
    try:
        pointer, _ = _io.read_text(root, _io.join(spec.path, "last_checkpoint"), 4096)
        out.meta["last_checkpoint"] = _io.display_name(pointer.strip().rsplit("/", 1)[-1])
    except _io.ReadError:
        pass
    _status(out)
    return out


def _config_rel(spec: RunSpec, files: list[str], logs: list[str], root: RootLike) -> str | None:
    """The dumped config: ``<work dir name>.py``, else the only ``.py``, else the newest
    log folder's ``vis_data/config.py``."""
    own = (_io.basename(spec.path) or _io.root_name(root)) + ".py"
    if own in files:
        return _io.join(spec.path, own)
    scripts = [f for f in files if f.endswith(".py")]
    if len(scripts) == 1:
        return _io.join(spec.path, scripts[0])
    for log in reversed(logs):
        rel = _io.join(spec.path, log, "vis_data", "config.py")
        if _io.is_file(root, rel):
            return rel
    return None


def _read_scalars(root: RootLike, rel: str, out: Loaded) -> None:
    no_step = 0
    for row in _io.read_json_lines(root, rel, out, missing_ok=True):
        step = _io.to_int(row.get("step"))
        if step is None:
            step = _io.to_int(row.get("iter"))
        if step is None:
            no_step += 1
            continue
        _common.add_numbers(out, row, step, _INDEX)
        epoch = _io.to_int(row.get("epoch"))
        if epoch is not None:
            out.meta["epoch"] = max(epoch, _io.to_int(out.meta.get("epoch")) or 0)
    if no_step:
        out.warn_partial(f"{rel}: {no_step} line(s) without a step or iter skipped", "metrics")


def _status(out: Loaded) -> None:
    """Finished when the newest checkpoint is the last epoch or iteration of the schedule."""
    last = out.meta.get("last_checkpoint")
    match = CHECKPOINT.match(last) if isinstance(last, str) else None
    if match is None:
        return
    key = "train_cfg.max_epochs" if match.group(1) == "epoch" else "train_cfg.max_iters"
    limit = _io.to_int(out.params.get(key))
    if limit and int(match.group(2)) >= limit:
        out.status = "finished"


ENTRY = Framework(
    name=FRAMEWORK,
    display="MMEngine",
    priority=700,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=frozenset({"last_checkpoint"}),
    marker_patterns=(r"(epoch|iter)_\d+\.pth",),
    checklist=("*.py", "scalars.json", "last_checkpoint", "epoch_*.pth|iter_*.pth"),
    checkpoints=Checkpoints(best_prefix="best_", series=SeriesSource("scalars.json", "either")),
)
