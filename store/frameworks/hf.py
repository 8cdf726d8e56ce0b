"""Hugging Face Trainer output folders.

An output dir holds ``checkpoint-N/`` folders (each with ``trainer_state.json``: the
``log_history``, ``best_metric``, ``best_model_checkpoint``, ``global_step``), the final
``config.json`` / ``model.safetensors``, ``*_results.json`` and ``runs/<date>_<host>/``
TensorBoard logs, which belong to this run.  ``training_args.bin`` is a pickle and is never
loaded.  Checkpoints sort numerically (``checkpoint-900`` before ``checkpoint-1000``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks.flatten import flatten
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import STEP_LIMIT, Framework

FRAMEWORK = "hf-trainer"
CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
_RESULTS = ("all_results.json", "train_results.json", "eval_results.json", "test_results.json")
_TOP_MARKERS = frozenset({"trainer_state.json", "training_args.bin", *_RESULTS})


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        entry = ctx.entry(rel)
        has_ckpt = any(
            CHECKPOINT_DIR.match(d) and _is_hf_checkpoint(ctx, _io.join(rel, d)) for d in entry.dirs
        )
        if not has_ckpt and not entry.files & _TOP_MARKERS:
            continue
        if CHECKPOINT_DIR.match(_io.basename(rel)):
            continue  # a checkpoint folder belongs to its output dir
        specs.append(ctx.folder_run(rel, FRAMEWORK))
    return specs


def _is_hf_checkpoint(ctx: DetectContext, rel: str) -> bool:
    files = ctx.entry(rel).files
    return bool(files & {"trainer_state.json", "training_args.bin", "optimizer.pt", "scheduler.pt"})


def checkpoints(root: RootLike, folder: str) -> list[str]:
    """``checkpoint-N`` sub-folders in numeric order; those whose number is past 64 bits
    (``absurd_checkpoints``) come first: their number is not trusted to say they are new."""
    dirs, _ = _io.list_dir(root, folder)
    found = [d for d in dirs if CHECKPOINT_DIR.match(d)]
    return sorted(found, key=_checkpoint_order)


def _checkpoint_order(name: str) -> tuple[int, int, str]:
    number = checkpoint_number(name)
    return (1, number, name) if number < STEP_LIMIT else (0, 0, name)


def checkpoint_number(name: str) -> int:
    """The N of ``checkpoint-N`` (its digits are checked by ``CHECKPOINT_DIR`` first; a
    name is at most 255 bytes, far below ``int``'s digit limit)."""
    return int(name.split("-", 1)[1])


def absurd_checkpoints(names: list[str]) -> list[str]:
    """The ``checkpoint-N`` names whose number does not fit in 64 bits."""
    return [name for name in names if checkpoint_number(name) >= STEP_LIMIT]


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    ckpts = checkpoints(root, spec.path)
    if ckpts:
        out.meta["checkpoints"] = ckpts
    absurd = absurd_checkpoints(ckpts)
    if absurd:
        out.warn(
            f"{spec.path}: {len(absurd)} checkpoint folder(s) numbered past 64 bits, no step a"
            f" Trainer saves at ({_io.join(spec.path, absurd[0])}): not taken for the newest"
        )
    top_rel = _io.join(spec.path, "trainer_state.json")
    candidates = [_io.join(spec.path, c, "trainer_state.json") for c in reversed(ckpts)]
    state, highest = _best_state(root, [top_rel, *candidates], out)
    state, state_rel = _current_state(root, spec.path, [top_rel, *candidates], state, highest, out)
    if state and state_rel:
        out.meta["trainer_state"] = state_rel
        _apply_state(state, state_rel, out)
    _read_results(root, spec.path, out, state, state_rel == top_rel)
    _common.read_params(root, _io.join(spec.path, "config.json"), out, prefix="model.")
    # a dead session's newer checkpoint is not the current one's: its arguments neither
    current = _io.basename(_io.parent(state_rel)) if state_rel != highest and state_rel else None
    _read_training_args(root, spec.path, [current] if current in ckpts else ckpts, out)
    _merge_tensorboard(root, spec.path, out)
    return out


def _read_results(
    root: RootLike, folder: str, out: Loaded, state: dict[str, object] | None, top: bool
) -> None:
    """``*_results.json``: what ``Trainer.save_metrics`` wrote after training (or an
    evaluation), with no step of its own.  Their step is the training's last: the
    ``global_step`` of the ``trainer_state.json`` beside them (``save_state``, called with
    them), else of the newest checkpoint when it ended the training (``global_step`` at
    ``max_steps``: the Trainer saves a checkpoint at its last step); else it is not known,
    and said: a newer checkpoint was never saved (an early stop, an older Trainer, a save
    strategy by epochs or none), so the newest one's step would date the results too early.
    A result logged after the series' last point (the final evaluation, which
    ``trainer_state.json`` was saved before) is its last point, as the event files have it.
    """
    found = [
        name
        for name in _RESULTS
        if _common.read_json_finals(root, _io.join(folder, name), out, None, sep=".")
    ]
    if not found:
        return
    step = _io.to_int(state.get("global_step")) if state else None
    max_steps = _io.to_int(state.get("max_steps")) if state else None
    if not top and not (step is not None and max_steps and step >= max_steps):
        newest = (
            f"the newest state is at step {step} of {max_steps}"
            if step is not None and max_steps
            else f"the newest state is at step {step}"
            if step is not None
            else "no trainer_state.json was read"
        )
        out.warn(
            f"{folder}: {', '.join(found)} give no step, and no trainer_state.json saved"
            f" with them says where training ended ({newest}): shown with no step"
        )
        step = None
    for name, (own, value) in list(out.finals.items()):
        at = own if own is not None else step
        out.finals[name] = (at, value)
        points = out.series.get(name)
        if at is not None and points and at > max(p[0] for p in points):
            points.append((at, value))


def _read_training_args(root: RootLike, folder: str, ckpts: list[str], out: Loaded) -> None:
    """``args.*`` params from the pickled ``TrainingArguments`` (the output dir's, else the
    newest checkpoint's), read statically: the pickle is walked, never loaded."""
    from store.frameworks import _torchmeta

    candidates = [_io.join(folder, "training_args.bin")]
    candidates += [_io.join(folder, c, "training_args.bin") for c in ckpts[-1:]]
    for rel in candidates:
        lost: list[str] = []
        try:
            values = _torchmeta.read_values(root, rel, lost)
        except _io.ReadError as exc:
            if not isinstance(exc, _io.MissingFile):  # there, and its args.* not shown
                out.warn_partial(f"{exc}; its training arguments are not shown", "params")
            continue
        for what in lost:  # an argument left out or cut short: not all of them are shown
            out.warn_partial(f"{rel}: {what}", "params")
        public = {key: value for key, value in values.items() if not key.startswith("_")}
        for key, value in flatten(public, source=rel).items():
            _common.add_param(out, f"args.{key}", value, rel)
        out.meta["training_args"] = rel
        return


def _trainer_name(tag: str) -> str:
    """Undo TensorBoardCallback renames: ``eval/loss`` -> ``eval_loss``, ``train/x`` -> ``x``."""
    for prefix in ("eval", "test"):
        if tag.startswith(prefix + "/"):
            return f"{prefix}_{tag[len(prefix) + 1 :]}"
    return tag[len("train/") :] if tag.startswith("train/") else tag


def _merge_tensorboard(root: RootLike, folder: str, out: Loaded) -> None:
    """Fill in from ``runs/*`` what the newest trainer_state misses (steps after the last save).

    Every start of the Trainer logs into a sub-folder of its own: a run resumed from a
    checkpoint logs again from that step, and the dead session's later steps are orphaned.
    The sub-folders are read as one run's sessions, so these are dropped, whatever order
    the folders' names sort in (``Dec01_...`` before ``Nov30_...``)."""
    runs_dir = _io.join(folder, "runs")
    tb = Loaded()
    sessions = _io.list_dir(root, runs_dir)[0]
    if sessions:
        _common.read_tensorboard(root, runs_dir, tb, sessions=sessions)
    out.take_problems(tb)
    for tag, points in tb.series.items():
        name = _trainer_name(tag)
        known = out.series.get(name)
        if not known:
            out.series[name] = list(points)
            continue
        _compare(runs_dir, out, name, known, points)
        last_step = max(step for step, _ in known)
        known.extend(p for p in points if p[0] > last_step)
    if out.started is None:
        out.started = tb.started
    if out.ended is None:
        out.ended = tb.ended


def _compare(
    runs_dir: str,
    out: Loaded,
    name: str,
    known: list[tuple[int, float]],
    logged: list[tuple[int, float]],
) -> None:
    """Warn when the event files disagree with trainer_state.json (which wins) at a step
    both hold; float32 rounding of the events is not a disagreement.  A disagreement is
    two records of one run that cannot both be right (a session resumed from an earlier
    checkpoint logs the steps after it again, into a ``runs/`` folder of its own, before it
    saves a state): the metrics are marked read in part."""
    import math

    state_at = dict(known)
    for step, value in sorted(logged, reverse=True):
        mine = state_at.get(step)
        if mine is None:
            continue
        if not math.isclose(mine, value, rel_tol=1e-5, abs_tol=1e-9):
            out.warn_partial(
                f"{runs_dir}: {name} at step {step} is {mine:.6g} in trainer_state.json but"
                f" {value:.6g} in the event files (a session resumed from an earlier"
                " checkpoint that has not saved yet?); trainer_state.json is used, but which"
                " is current cannot be told",
                "metrics",
            )
        return


def _best_state(
    root: RootLike, rels: list[str], out: Loaded
) -> tuple[dict[str, object] | None, str | None]:
    """The trainer_state.json to read (``choose_state``); the newer ones passed over for
    logging no step are said."""

    def read(rel: str) -> dict[str, object] | None:
        try:
            data = _io.read_json(root, rel, 64 * 1024 * 1024)
        except _io.ReadError as exc:
            if not isinstance(exc, _io.MissingFile):  # its log history and trainer.* unread
                out.warn_partial(str(exc), "params", "metrics")
            return None
        if not isinstance(data, dict):
            out.warn_partial(f"{rel}: not a JSON object", "params", "metrics")
            return None
        return data

    state, state_rel, passed = choose_state(rels, read)
    if passed:
        out.warn(
            f"{', '.join(passed[:3])}{' ...' if len(passed) > 3 else ''}: no step in its"
            f" log_history (a newer state never loses an older one's): passed over for {state_rel}"
        )
    return state, state_rel


def logs_a_step(state: dict[str, object]) -> bool:
    """Whether a state's ``log_history`` holds an entry with a step: a newer state of the
    same training holds every entry of an older one, so one with none (``{}``, an empty
    history) is not the training's newest, whatever its folder's number says."""
    history = state.get("log_history")
    return isinstance(history, list) and any(
        isinstance(entry, dict) and _io.to_int(entry.get("step")) is not None for entry in history
    )


def choose_state(
    rels: list[str], read: Callable[[str], object]
) -> tuple[dict[str, object] | None, str | None, list[str]]:
    """Of ``rels`` (the top-level trainer_state.json, then the checkpoints' newest first),
    the state to read, its file, and the files passed over for it.

    The top-level state and the newest checkpoint's that logs a step (``logs_a_step``;
    at most ``MAX_STATES_STATTED`` are read): the one of the highest ``global_step``, the
    top-level one on a tie.  When none logs a step, the same of the top-level state and the
    newest checkpoint's that is read at all, and nothing is said passed over."""
    logging: list[tuple[dict[str, object], str]] = []
    top: tuple[dict[str, object], str] | None = None
    newest: tuple[dict[str, object], str] | None = None  # the newest checkpoint's read
    passed: list[str] = []
    for index, rel in enumerate(rels[: MAX_STATES_STATTED + 1]):
        data = read(rel)
        if not isinstance(data, dict):
            continue
        if index == 0:
            top = (data, rel)
        elif newest is None:
            newest = (data, rel)
        if not logs_a_step(data):
            passed.append(rel)
            continue
        logging.append((data, rel))
        if index > 0:
            break
    found = logging or [one for one in (top, newest) if one is not None]
    if not found:
        return None, None, []
    best, best_rel = found[0]
    for data, rel in found[1:]:
        if (_io.to_int(data.get("global_step")) or 0) > (_io.to_int(best.get("global_step")) or 0):
            best, best_rel = data, rel
    return best, best_rel, passed if logging else []


MAX_STATES_STATTED = 16
"""The newest checkpoints (by number) whose ``trainer_state.json`` is looked at for the
newest written (a stat each: a HEAD request on a bucket): a session resumed from an
earlier checkpoint saves among them, below the dead session's newest few."""


def _current_state(
    root: RootLike,
    folder: str,
    rels: list[str],
    state: dict[str, object] | None,
    state_rel: str | None,
    out: Loaded,
) -> tuple[dict[str, object] | None, str | None]:
    """The state of the training's current session, given the one of the highest
    ``global_step`` (``_best_state``).

    A training resumed explicitly from an earlier checkpoint (``resume_from_checkpoint=
    "checkpoint-600"``) logs and saves again from there, while the dead session's later
    ``checkpoint-1000`` stays on disk (rotation removes the lowest numbers): its state has
    the highest step, and a history of steps the current session replaced.  The evidence
    is both: another state written later (its file's mtime) at a lower step, whose
    ``log_history`` parts from the highest one's at a step both logged (the same session
    logs the same values at the same steps).  Then the later one is used, and said.  Written
    later but with the same history (a copied tree, whose mtimes say nothing), the highest is
    kept; with no step logged in both to compare, which is current cannot be told: the
    highest is kept, and the metrics are marked read in part.  A state written later that
    says no step (``{}``) is no evidence either way: the one written before it is looked at."""
    if state is None or state_rel is None:
        return state, state_rel
    high = _io.to_int(state.get("global_step")) or 0
    for newest in by_write_time(root, rels[: MAX_STATES_STATTED + 1]):
        if newest == state_rel:
            return state, state_rel
        try:
            other = _io.read_json(root, newest, 64 * 1024 * 1024)
        except _io.ReadError as exc:
            out.warn_partial(
                f"{exc}; written after {state_rel}, so which state is current is not known",
                "metrics",
            )
            return state, state_rel
        step = _io.to_int(other.get("global_step")) if isinstance(other, dict) else None
        if isinstance(other, dict) and step is not None:
            return _resumed(folder, state, state_rel, high, other, newest, step, out)
        out.warn(f"{newest}: written last, but says no global_step: passed over")
    return state, state_rel


def _resumed(
    folder: str,
    state: dict[str, object],
    state_rel: str,
    high: int,
    other: dict[str, object],
    newest: str,
    step: int,
    out: Loaded,
) -> tuple[dict[str, object], str]:
    """``_current_state`` given the state written last (``other``, at ``step``)."""
    if step >= high:
        return state, state_rel
    parted, common = history_parting(state.get("log_history"), other.get("log_history"))
    if parted is not None:
        out.warn(
            f"{folder}: {newest} (step {step}) was written after {state_rel} (step {high}),"
            f" and their log histories part at step {parted}: the training was resumed from"
            f" an earlier checkpoint, and the steps after {step} there are a dead session's;"
            f" {newest} is used"
        )
        return other, newest
    if not common:
        out.warn_partial(
            f"{folder}: {newest} (step {step}) was written after {state_rel} (step {high}),"
            " with no logged step in both to compare: the training may have been resumed from"
            f" an earlier checkpoint, and which state is current cannot be told; {state_rel}"
            " is used",
            "metrics",
        )
    return state, state_rel


def by_write_time(root: RootLike, rels: list[str]) -> list[str]:
    """The files of ``rels`` that are there, last modified first (ties: in ``rels``' order)."""
    found: list[tuple[int, str]] = []
    for rel in rels:
        try:
            found.append((_io.as_root(root).stat(rel).mtime_ns, rel))
        except OSError:
            continue
    return [rel for _, rel in sorted(found, key=lambda one: -one[0])]


def history_parting(high: object, low: object) -> tuple[int | None, int]:
    """The first step at which two ``log_history`` lists log another value for the same
    key (None when they agree everywhere both log), and how many steps both log."""
    import math

    def by_step(history: object) -> dict[int, dict[str, float]]:
        steps: dict[int, dict[str, float]] = {}
        for entry in history if isinstance(history, list) else ():
            if not isinstance(entry, dict):
                continue
            step = _io.to_int(entry.get("step"))
            if step is None:
                continue
            values = steps.setdefault(step, {})
            for key, value in entry.items():
                if key in ("step", "epoch") or isinstance(value, (bool, str)):
                    continue
                number = _io.to_float(value)
                if number is not None and not math.isnan(number):
                    values.setdefault(str(key), number)
        return steps

    mine, theirs = by_step(high), by_step(low)
    common = sorted(set(mine) & set(theirs))
    for step in common:
        a, b = mine[step], theirs[step]
        if any(
            not math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=0.0) for k in a.keys() & b.keys()
        ):
            return step, len(common)
    return None, len(common)


def _apply_state(state: dict[str, object], rel: str, out: Loaded) -> None:

    for key in (
        "best_metric",
        "best_model_checkpoint",
        "global_step",
        "max_steps",
        "epoch",
        "num_train_epochs",
        "best_global_step",
    ):
        if state.get(key) is not None:
            out.meta[key] = state[key]
    for key in (
        "train_batch_size",
        "num_train_epochs",
        "max_steps",
        "logging_steps",
        "eval_steps",
        "save_steps",
    ):
        value = state.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.params[f"trainer.{key}"] = value
    history = state.get("log_history")
    if isinstance(history, list):
        skipped = 0
        for entry in history:
            if not isinstance(entry, dict) or (step := _io.to_int(entry.get("step"))) is None:
                skipped += 1
                continue
            _common.add_numbers(out, entry, step, ("step", "epoch"))
        if skipped:
            out.warn_partial(
                f"{rel}: {skipped} of {len(history)} log_history entries not an object with"
                " a step: skipped",
                "metrics",
            )
    global_step = _io.to_int(state.get("global_step"))
    max_steps = _io.to_int(state.get("max_steps"))
    if global_step and max_steps and global_step >= max_steps:
        out.status = "finished"


ENTRY = Framework(
    name=FRAMEWORK,
    display="Hugging Face Trainer",
    priority=400,
    detect=detect,
    load=load,
    owns_children=CHECKPOINT_DIR,
    markers=frozenset({"trainer_state.json", "training_args.bin"}),
    checklist=(
        "config.json|adapter_config.json",
        "trainer_state.json",
        "model.safetensors|model-*.safetensors|pytorch_model.bin|pytorch_model-*.bin"
        "|adapter_model.safetensors",
        "training_args.bin",
    ),
    kinds={
        "generation_config.json": "config",
        "tokenizer_config.json": "config",
        "special_tokens_map.json": "config",
        "tokenizer.json": "config",
        "training_args.bin": "config",
        "trainer_state.json": "metrics",
        **{name: "metrics" for name in _RESULTS},
        "optimizer.pt": "checkpoint",
        "scheduler.pt": "checkpoint",
        "scaler.pt": "checkpoint",
        "rng_state.pth": "checkpoint",
    },
)
