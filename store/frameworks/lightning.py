"""PyTorch Lightning logger folders: ``<save_dir>/<name>/<version>/``.

Recognised by content, wherever it sits and whatever the logger's ``name`` and ``version``
are: ``hparams.yaml`` beside ``metrics.csv``, a ``checkpoints/`` folder or an event file;
a ``checkpoints/*.ckpt`` folder beside ``metrics.csv`` or an event file; or a
``version_N`` folder holding any of those.  The experiment is the logger's ``name``, the
parent folder.

``hparams.yaml`` is written with ``yaml.dump`` and may carry Python tags (read through
``store.yamlsafe``); ``metrics.csv`` (CSVLogger) is a wide CSV whose rows fill only a few
columns; ``checkpoints/*.ckpt`` are listed, never loaded; TensorBoardLogger leaves
``events.out.tfevents.*`` in the same folder.  With both, the CSV wins and every metric
whose values disagree is named in a warning.  A run resumed into the same version has no
CSV of its earlier session (the CSVLogger removes a ``metrics.csv`` it finds) but two event
files: the points they hold before the CSV's first step are the run's too, and are added.
Without them (a CSVLogger alone, or a resume into a new version), a ``metrics.csv`` whose
first row is past epoch 0 holds only the steps from the resume on: said, and the metrics
marked read in part.
"""

from __future__ import annotations

import csv
import math
import posixpath
import re
from dataclasses import dataclass

from store.csvrows import csv_reader
from store.frameworks import _common, _io, _torchmeta
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework, SeriesSource

FRAMEWORK = "lightning"
VERSION_DIR = re.compile(r"^version_\d+$")
_MARKERS = frozenset({"hparams.yaml", "metrics.csv"})
_EVENTS = "events.out.tfevents."
_FIRST_ROW_BYTES = 64 << 10
_TB_ONLY = frozenset({"hp_metric"})
"""TensorBoardLogger's placeholder scalar: never a disagreement, never a metric of its own."""


def is_run_dir(ctx: DetectContext, rel: str) -> bool:
    """True when the folder's files are a Lightning logger's, whatever it is called."""
    entry = ctx.entry(rel)
    has_events = ctx.has_file_starting(rel, _EVENTS)
    has_ckpt_dir = "checkpoints" in entry.dirs
    name = _io.basename(rel) if rel else _io.root_name(ctx.root)
    if VERSION_DIR.match(name):
        return bool(entry.files & _MARKERS or has_ckpt_dir or has_events)
    if "hparams.yaml" in entry.files:
        return "metrics.csv" in entry.files or has_ckpt_dir or has_events
    if has_ckpt_dir and ("metrics.csv" in entry.files or has_events):
        return ctx.has_file_ending(_io.join(rel, "checkpoints"), ".ckpt")
    return False


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        if is_run_dir(ctx, rel):
            specs.append(ctx.folder_run(rel, FRAMEWORK))
    return specs


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    _common.read_params(root, _io.join(spec.path, "hparams.yaml"), out)
    _, files = _io.list_dir(root, spec.path)
    csv_read = "metrics.csv" in files and _common.read_wide_csv(
        root, _io.join(spec.path, "metrics.csv"), out
    )
    if any(f.startswith(_EVENTS) for f in files):
        if csv_read and out.series:
            _check_events(root, spec.path, out)
        else:
            _common.read_tensorboard(root, spec.path, out)
    if csv_read:
        _note_resumed_csv(root, _io.join(spec.path, "metrics.csv"), out)
    folder = _io.join(spec.path, "checkpoints")
    _, ckpts, odd = _io.list_apart(root, folder)
    _common.note_checkpoints(
        out, ckpts, lambda c: c.endswith(".ckpt"), folder=folder, not_files=odd
    )
    return out


_CHECKPOINT_STATE = frozenset(
    {"monitor", "best_model_path", "best_k_models", "dirpath", "last_model_path"}
)
"""Keys of ``ModelCheckpoint.state_dict()``: a callback state with them all is one (its key
in ``checkpoint["callbacks"]`` names its class, a subclass's too)."""
_MONITOR = re.compile(r"[\w./:@-]{1,100}")
"""A monitor name shown as it is in a reason; another one is shown as "a metric"."""


@dataclass(frozen=True)
class SavedBest:
    """A monitored ModelCheckpoint's best checkpoint, as the state saved in a checkpoint
    beside it names it."""

    name: str
    """Its file name, in the folder of the checkpoint the state was read from."""
    monitor: str


def saved_bests(root: RootLike, rel: str, state_pickle_limit: int) -> list[SavedBest]:
    """The best checkpoint of each monitored ModelCheckpoint whose state the checkpoint
    ``rel`` holds, where that state proves the best lies beside ``rel``; empty when none
    does or the checkpoint cannot be read whole (``ReadError`` is not raised: a state that
    cannot be read proves nothing).  Only a torch zip whose ``data.pkl`` is at most
    ``state_pickle_limit`` bytes is read, statically; its tensors never are.

    Its paths are the training machine's (absolute, or relative to where it ran), so they
    are matched by name: the folder the state calls its checkpoint's own is the one the
    state's name for this very file lies in (``last_model_path`` of ``last.ckpt``, which
    ModelCheckpoint sets before it saves; a top-k file is in ``best_k_models``); a best in
    another folder (resumed into a new ``dirpath``, Lightning keeps the old best's path;
    another run's) is no file here."""
    lost: list[str] = []
    try:
        values = _torchmeta.read_values(
            root,
            rel,
            lost,
            keys=frozenset({"callbacks"}),
            zip_pickle_limit=state_pickle_limit,
        )
    except _io.ReadError:
        return []
    callbacks = values.get("callbacks")
    if lost or not isinstance(callbacks, dict):
        return []
    states = [
        state
        for state in callbacks.values()
        if isinstance(state, dict) and state.keys() >= _CHECKPOINT_STATE
    ]
    own_name = posixpath.basename(rel)
    named = [_split(path) for state in states for path in _paths_of(state)]
    homes = {split[0] for split in named if split is not None and split[1] == own_name}
    if len(homes) != 1:  # no state names this file, or they disagree where it lies
        return []
    (home,) = homes
    found: list[SavedBest] = []
    for state in states:
        monitor, best = state.get("monitor"), _split(state.get("best_model_path"))
        if not isinstance(monitor, str) or not monitor or best is None or best[0] != home:
            continue
        shown = monitor if _MONITOR.fullmatch(monitor) else "a metric"
        found.append(SavedBest(best[1], shown))
    return found


def _paths_of(state: dict[str, object]) -> list[object]:
    """Every path a ModelCheckpoint's state names: its last, best and top-k checkpoints."""
    top_k = state.get("best_k_models")
    listed = list(top_k) if isinstance(top_k, dict) else []
    return [state.get("last_model_path"), state.get("best_model_path"), *listed]


def _split(path: object) -> tuple[str, str] | None:
    """(folder, file name) of a checkpoint path as the training machine wrote it; None for
    anything that is not a path to a ``.ckpt`` file.  Folders are compared as written:
    ModelCheckpoint joins each name to the one ``dirpath``, so one folder is one string."""
    if not isinstance(path, str) or "\0" in path or "\\" in path:
        return None
    folder, name = posixpath.split(path)
    return (folder or ".", name) if name.endswith(".ckpt") else None


def _first_row(root: RootLike, rel: str) -> tuple[int, int] | None:
    """The epoch and step of the CSV's first row, when it has both as whole numbers."""
    try:
        head, _ = _io.read_bytes(root, rel, _FIRST_ROW_BYTES)
    except OSError:
        return None
    rows = csv_reader(head.decode("utf-8", "replace"))
    try:
        header = [cell.strip().lower() for cell in next(rows)]
        first = next(rows)
    except (StopIteration, csv.Error):
        return None
    if "epoch" not in header or "step" not in header or len(first) != len(header):
        return None
    epoch = _io.to_int(first[header.index("epoch")])
    step = _io.to_int(first[header.index("step")])
    return None if epoch is None or step is None else (epoch, step)


def _note_resumed_csv(root: RootLike, rel: str, out: Loaded) -> None:
    """Say that a CSV begun past epoch 0 lacks the steps before it, unless found elsewhere.

    ``trainer.fit(ckpt_path=...)`` resumes at the checkpoint's epoch; the CSVLogger of the
    new session writes from there, into a new version or over the earlier session's file.
    A count, best or first value from it alone would pass for the whole run's."""
    first = _first_row(root, rel)
    if first is None or first[0] <= 0:
        return
    epoch, step = first
    if any(point[0] < step for points in out.series.values() for point in points):
        return  # the earlier steps came from the event files
    out.warn_partial(
        f"{rel}: begins at epoch {epoch} (step {step}): the steps before are not in this"
        " folder (a training resumed from a checkpoint: in the version it resumed from, or"
        " removed by Lightning's CSVLogger; or one that logged nothing before), so counts"
        " and bests may be from there on",
        "metrics",
    )


def _check_events(root: RootLike, folder: str, out: Loaded) -> None:
    """Compare the event files with ``metrics.csv`` (which wins); add what only they hold."""
    events = Loaded()
    _common.read_tensorboard(root, folder, events)
    out.take_problems(events)
    earlier: dict[str, tuple[int, int]] = {}
    # a TensorBoardLogger started again in this folder writes an event file of its own
    resumed = len(_common.event_files(root, folder)) > 1
    for name, points in events.series.items():
        if name in _TB_ONLY or name in _common.INDEX_COLUMNS or not points:
            continue
        own = out.series.get(name)
        if not own:
            out.series[name] = list(points)
            continue
        first = min(step for step, _ in own)
        before = [point for point in points if point[0] < first] if resumed else []
        if before:  # what an earlier session logged, before the CSVLogger removed its file
            own[:0] = before
            earlier[name] = (len(before), first)
        csv_at = dict(own)
        common = [(step, value) for step, value in points if step in csv_at]
        if not common:
            continue
        step, value = max(common, key=lambda p: p[0])
        mine = csv_at[step]
        if not math.isclose(mine, value, rel_tol=1e-5, abs_tol=1e-9):
            out.warn(
                f"{folder}: {name} at step {step} is {mine:.6g} in metrics.csv but"
                f" {value:.6g} in the event files; metrics.csv is used"
            )
    if earlier:
        name, (count, first) = next(iter(earlier.items()))
        more = f" (and {len(earlier) - 1} metric(s) more)" if len(earlier) > 1 else ""
        out.warn(
            f"{folder}: metrics.csv begins at step {first} for {name}{more}; the {count}"
            " point(s) the event files hold before it are added (a run resumed into this"
            " folder: Lightning's CSVLogger removes the metrics.csv an earlier session wrote)"
        )
    if out.started is None:
        out.started = events.started
    if out.ended is None:
        out.ended = events.ended


ENTRY = Framework(
    name=FRAMEWORK,
    display="Lightning",
    priority=300,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=_MARKERS,
    checklist=("hparams.yaml", "metrics.csv|events.out.tfevents.*", "checkpoints/*.ckpt"),
    kinds={"hparams.yaml": "config", "last.ckpt": "checkpoint"},
    checkpoints=Checkpoints(series=SeriesSource("tensorboard events", "logged epoch")),
)
