"""Readers shared by several frameworks: wide metric CSVs, TensorBoard folders, JSON results."""

from __future__ import annotations

import contextlib
import csv
import json
from array import array
from bisect import bisect_right
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar

from store.csvrows import csv_reader
from store.frameworks import _io
from store.frameworks._io import RootLike
from store.frameworks._metrics import MAX_POINTS, add_point
from store.frameworks.flatten import flatten, numbered
from store.frameworks.model import Loaded

STEP_COLUMNS = ("step", "global_step", "_step", "iteration", "iter")
INDEX_COLUMNS = frozenset({*STEP_COLUMNS, "epoch", "timestamp", "time", "wall_time", "created_at"})
NO_VALUE_CELLS = frozenset({"", "NA"})
"""CSV cells that say a metric has no value in that row: Lightning's CSVLogger leaves the
cell empty, Keras' ``CSVLogger`` writes ``NA`` (its ``val_*`` columns in the epochs
``validation_freq`` skips), and so do R's writers."""


def note_checkpoints(
    out: Loaded,
    names: Iterable[str],
    keep: Callable[[str], bool],
    *,
    folder: str = "",
    not_files: Iterable[str] = (),
) -> None:
    """The run's checkpoint files, in natural order (``epoch=9`` before ``epoch=10``), as the
    run summary lists them; nothing when none is kept.  ``names`` are files (or links)
    only (``_io.list_apart``); entries of ``folder`` named like a checkpoint that are no
    file (``not_files``: a FIFO, a socket, a device) are said, never listed."""
    kept = sorted((n for n in names if keep(n)), key=_io.natural_key)
    if kept:
        out.meta["checkpoints"] = [_io.display_name(n) for n in kept]
    odd = sorted((n for n in not_files if keep(n)), key=_io.natural_key)
    if odd:
        first = _io.display_name(_io.join(folder, odd[0]))
        more = f" and {len(odd) - 1} more" if len(odd) > 1 else ""
        out.warn(f"{first}{more}: named like a checkpoint but not a regular file; not listed")


def add_numbers(out: Loaded, row: Mapping[str, object], step: int, skip: Container[str]) -> None:
    """Every numeric field of a logged row as a point at ``step`` (flags and text are not
    metrics; ``skip`` names the row's own index fields)."""
    for name, value in row.items():
        if name in skip or isinstance(value, (bool, str)):
            continue
        number = _io.to_float(value)
        if number is not None:
            add_point(out.series, str(name), step, number)


_CUT_ENDINGS = (".", "e", "E", "+", "-")
"""How a number cut mid-write can visibly end (``0.`` of ``0.53``, ``1e`` of ``1e-05``)."""


def full_row(head: bytes, tail: bytes, delimiter: str = ",") -> bool:
    """Whether ``tail`` (a last line without its line end) has the shape of a whole row:
    what ``_io.read_log`` asks of a quiet file's last line before it reads it.

    One CSV row with as many cells as the header (the first line of ``head``).  Only its
    last cell can have been cut (every other one was followed by a delimiter), so that one
    must not end as a number cut short does (``0.``, ``1e-``), nor be shorter than the same
    cell of the row before (``0.4`` after ``0.53``): a row that fails is dropped, and said.
    A file whose size is a multiple of 4 KiB was most likely left by a buffer flushed whole
    (a writer killed mid-row), and its last line is never taken."""
    if (len(head) + len(tail)) % 4096 == 0:
        return False
    lines = head.splitlines()
    try:
        header = next(csv_reader(lines[0].decode("utf-8", "replace"), delimiter), None)
        rows = list(csv_reader(tail.decode("utf-8", "replace"), delimiter))
        before = next(csv_reader(lines[-1].decode("utf-8", "replace"), delimiter), None)
    except (csv.Error, IndexError):
        return False
    if not header or len(rows) != 1 or len(rows[0]) != len(header):
        return False
    last = rows[0][-1].strip()
    if last.endswith(_CUT_ENDINGS):
        return False
    if len(lines) < 2:  # the header alone comes before: nothing to compare with
        return True
    previous = before[-1].strip() if before and len(before) == len(header) else ""
    return len(last) >= len(previous) or previous in NO_VALUE_CELLS


def read_wide_csv(
    root: RootLike,
    rel: str,
    out: Loaded,
    step_column: str | None = None,
    *,
    one_row_per_step: bool = False,
) -> bool:
    """A CSV with a header and one column per metric (Lightning ``metrics.csv`` and kin).

    Cells with no value (``NO_VALUE_CELLS``) are skipped: Lightning leaves most cells of a
    row empty, Keras writes ``NA``; any other cell that is no number is counted in a
    warning, and marks the metrics read in part.  The step comes from ``step_column`` when
    the file has it (``epoch`` for per-epoch logs), else a step column, else the row number.
    A row with more or fewer cells than the header is skipped and counted in a warning:
    which cell went missing or came extra cannot be told, so its values could land in the
    wrong metric.  Returns False when the file was not read.

    A run resumed into the same file appends a session of its own, from the step it resumed
    at; the rows the dead session logged from that step on are orphaned, as TensorBoard
    purges them from event files (``store.frameworks.tfevents``).  The evidence of a new
    session: a header written again (timm's ``update_summary`` writes one at the first epoch
    of every start; its columns may differ, and name the rows after it), or, with
    ``one_row_per_step`` (writers of one row per epoch: Keras' ``CSVLogger(append=True)``,
    Ultralytics' ``results.csv``), a row whose step is not above the one before.  Rows
    before it at its step or later are dropped, and said.  A step going back with no such
    evidence may be on purpose: nothing is dropped, and the metrics are marked read in part
    (a last, best or count among them may not be the run's).
    """
    data = _io.read_log(root, rel, out, quiet_whole=full_row)
    if data is None:
        return False
    text = data.decode("utf-8", "replace")
    reader = csv_reader(text)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        out.warn_partial(f"{rel}: empty or unreadable CSV", "metrics")
        return False
    columns = (step_column, *STEP_COLUMNS) if step_column else STEP_COLUMNS
    names, lower, step_col = _header(header, columns)
    sessions = _Sessions(one_row_per_step)
    ragged = bad = 0
    row_no = 0
    try:
        for row_no, row in enumerate(reader):
            if not row:
                continue
            if _header_again(row, lower, step_col):  # a resumed run appended its own
                names, lower, step_col = _header(row, columns)
                sessions.header(row_no + 2)
                continue
            if len(row) != len(names):  # a cell lost or added: which one is not known
                ragged += 1
                continue
            step = (
                _io.to_int(row[step_col]) if step_col is not None and step_col < len(row) else None
            )
            if step is None:
                step = row_no
            at = sessions.row(step, row_no + 2, names[step_col] if step_col is not None else "row")
            for col, cell in enumerate(row):
                if col == step_col or lower[col] in INDEX_COLUMNS or cell.strip() in NO_VALUE_CELLS:
                    continue
                value = _io.to_float(cell)
                if value is None:
                    bad += 1
                    continue
                sessions.point(names[col], step, value, at)
    except csv.Error as exc:
        out.warn_partial(f"{rel}: CSV error at row {row_no + 2}: {exc}", "metrics")
    sessions.finish(rel, out)
    if ragged:
        out.warn_partial(
            f"{rel}: {ragged} row(s) with a different number of fields than the header skipped",
            "metrics",
        )
    if bad:
        out.warn_partial(f"{rel}: {bad} non-numeric cell(s) skipped", "metrics")
    return True


_ORPHANS_KEPT: ContextVar[bool] = ContextVar("orphans_kept", default=False)


@contextlib.contextmanager
def orphans_kept() -> Iterator[None]:
    """Within it, ``read_wide_csv`` keeps the rows a restart orphaned: retention judges
    each checkpoint file by the session that saved it, and a dead session's later
    checkpoints are still on disk, judged by its own rows (a step logged again is judged
    by the later row, as the series' step order keeps logging order)."""
    token = _ORPHANS_KEPT.set(True)
    try:
        yield
    finally:
        _ORPHANS_KEPT.reset(token)


class _Sessions:
    """The rows of one metric CSV, in file order, and the sessions that logged them: the
    restarts seen (a header again, or a step not going up in a file of one row per step)
    drop, at the end, every earlier row at or after the step they restarted from.

    Dropping waits for the end, so a file of many restarts costs one pass: each point
    keeps its row's number, each restart its row number and step, and a point's row is
    orphaned when its step is at or above the lowest step a later restart started from."""

    def __init__(self, one_row_per_step: bool) -> None:
        self.one_row_per_step = one_row_per_step
        self.points: dict[str, tuple[list[tuple[int, float]], array[int]]] = {}
        self.steps: list[int] = []
        """The step of every row read, in file order."""
        self.restarts: list[tuple[int, int]] = []
        """``(row index, step)`` of every restart that orphans an earlier row."""
        self.first: str | None = None
        """The first such restart: its step and evidence, to say."""
        self.back: tuple[int, str, int, int] | None = None
        """The first step going back without evidence: line, column, from, to."""
        self.pending: int | None = None
        """The line of a header written again, until the row after it."""
        self.high: int | None = None
        """The highest step of the rows read so far."""

    def header(self, line: int) -> None:
        self.pending = line

    def row(self, step: int, line: int, column: str) -> int:
        """One row at ``step``; returns its index, for its points."""
        at = len(self.steps)
        previous = self.steps[-1] if self.steps else None
        how = None
        if self.pending is not None:
            how = f"a header written again at line {self.pending}"
        elif previous is not None and step <= previous and self.one_row_per_step:
            how = f"line {line}: the {column} went back from {previous}"
        elif previous is not None and step < previous and self.back is None:
            self.back = (line, column, previous, step)
        self.pending = None
        if how is not None and self.high is not None and self.high >= step:
            self.restarts.append((at, step))
            if self.first is None:
                self.first = f"{column} {step} ({how})"
        self.steps.append(step)
        self.high = step if self.high is None else max(self.high, step)
        return at

    def point(self, name: str, step: int, value: float, at: int) -> None:
        points, rows = self.points.setdefault(name, ([], array("q")))
        points.append((step, value))
        rows.append(at)

    def finish(self, rel: str, out: Loaded) -> None:
        """The points kept into ``out.series`` (through ``add_point``'s cap), and what was
        dropped or is in doubt said."""
        if _ORPHANS_KEPT.get():
            self.restarts.clear()
            self.first = None
        rows = [restart[0] for restart in self.restarts]
        floors = [restart[1] for restart in self.restarts]
        for k in range(len(floors) - 2, -1, -1):  # the lowest step restarted from after each
            floors[k] = min(floors[k], floors[k + 1])

        def orphaned(at: int, step: int) -> bool:
            k = bisect_right(rows, at)
            return k < len(floors) and step >= floors[k]

        for name, (points, where) in self.points.items():
            if not rows and name not in out.series and len(points) <= MAX_POINTS:
                out.series[name] = points  # nothing to drop, nothing to cap: as read
                continue
            for (step, value), at in zip(points, where, strict=True):
                if not rows or not orphaned(at, step):
                    add_point(out.series, name, step, value)
        if self.first is not None:
            dropped = sum(orphaned(at, step) for at, step in enumerate(self.steps))
            more = len(self.restarts) - 1
            also = f" (and {more} restart(s) more)" if more else ""
            out.warn(
                f"{rel}: a session restarted from {self.first}{also}: {dropped} row(s) an earlier"
                " session logged at that step or later dropped as orphaned"
            )
        if self.back is not None:
            line, column, high, low = self.back
            out.warn_partial(
                f"{rel}: line {line}: the {column} goes back from {high} to {low} with no"
                " header written again (a resumed run appending, or on purpose?): which rows"
                " are current cannot be told; all kept",
                "metrics",
            )


def _header(row: list[str], columns: tuple[str, ...]) -> tuple[list[str], list[str], int | None]:
    """A header row's names, lower-cased names and step column."""
    names = [h.strip() for h in row]
    lower = [n.lower() for n in names]
    return names, lower, next((lower.index(c) for c in columns if c in lower), None)


def _header_again(row: list[str], lower: list[str], step_col: int | None) -> bool:
    """Whether a row is a header written again: timm's ``update_summary`` writes one at the
    first epoch of every start, so a resumed run's ``summary.csv`` holds two (its columns
    may differ).  A row with no number in it that names the step column (or, without
    one, is the header itself)."""
    if _io.to_float(row[0]) is not None:  # a row of data, nearly always: told at once
        return False
    cells = [c.strip().lower() for c in row]
    if any(_io.to_float(c) is not None for c in cells):
        return False
    return lower[step_col] in cells if step_col is not None else cells == lower


def read_tensorboard(
    root: RootLike,
    folder: str,
    out: Loaded,
    max_bytes: int | None = None,
    *,
    hparams_kept: bool = False,
    damaged: set[str] | None = None,
    sessions: Sequence[str] | None = None,
) -> dict[str, object]:
    """Scalars of the ``events.out.tfevents.*`` files directly in one folder (or in its
    sub-folders ``sessions``, each a session of one run: ``tfevents.read_scalars_dir``);
    returns the hparams ``SummaryWriter.add_hparams`` recorded there (for the caller to
    place).  What the files hold and was not read (a record skipped, a file not read
    whole) marks the metrics read in part, and the params too when the caller keeps the
    hparams as params (``hparams_kept``).  ``damaged`` is given the parts (as
    ``Scalars.damaged``) the files may have held but that were lost to damage, not to
    ``max_bytes``."""
    parts = ("metrics", "params") if hparams_kept else ("metrics",)
    try:
        from store.frameworks.tfevents import DEFAULT_MAX_BYTES, read_scalars_dir
    except ImportError:
        out.warn_partial(f"{folder}: TensorBoard reader not available", *parts)
        if damaged is not None:
            damaged.update(("metrics", "params"))
        return {}
    try:
        scalars = read_scalars_dir(
            folder,
            root=_io.as_root(root),
            max_bytes=max_bytes or DEFAULT_MAX_BYTES,
            sessions=sessions,
        )
    except Exception as exc:  # a foreign reader must not break the run
        out.warn_partial(f"{folder}: unreadable event files ({type(exc).__name__}: {exc})", *parts)
        if damaged is not None:
            damaged.update(("metrics", "params"))
        return {}
    for message in scalars.warnings:
        out.warn(f"{folder}: {message}")
    out.unread.update(part for part in parts if part in scalars.unread)
    if damaged is not None:
        damaged.update(scalars.damaged)
    for tag, points in scalars.series.items():
        name = _io.display_name(str(tag))
        for step, wall, value in points:
            add_point(out.series, name, int(step), float(value))
            if out.started is None or wall < out.started:
                out.started = float(wall)
            if out.ended is None or wall > out.ended:
                out.ended = float(wall)
    return dict(scalars.hparams)


def event_files(root: RootLike, folder: str) -> list[str]:
    _, files = _io.list_dir(root, folder)
    return [f for f in files if f.startswith("events.out.tfevents.")]


def read_json_finals(
    root: RootLike, rel: str, out: Loaded, step: int | None = None, *, sep: str = "/"
) -> bool:
    """Numeric leaves of a JSON results file as final metric values."""
    try:
        data = _io.read_json(root, rel)
    except _io.ReadError as exc:
        if not _missing(exc):
            out.warn(str(exc))
            out.unread.add("metrics")
        return False
    if not isinstance(data, dict):
        out.warn(f"{rel}: not a JSON object")
        out.unread.add("metrics")
        return False
    flat = flatten(data, sep=sep, numbers=True)
    if step is None:
        step = _io.to_int(flat.get("step"))
    for name, value in flat.items():
        if name in INDEX_COLUMNS or isinstance(value, (str, list)) or value is None:
            continue
        number = _io.to_float(value)
        if number is not None:
            out.finals[name] = (step, number)
    return True


def read_params(root: RootLike, rel: str, out: Loaded, prefix: str = "") -> bool:
    """A YAML or JSON config file, flattened into ``out.params``."""
    try:
        data = _io.read_json(root, rel) if rel.endswith(".json") else _io.read_yaml(root, rel)
    except _io.ReadError as exc:
        if not _missing(exc):
            out.warn(str(exc))
            out.unread.add("params")
        return False
    if isinstance(data, dict):
        flat = flatten(data, source=rel)
        for key, value in flat.items():
            add_param(out, f"{prefix}{key}", value, rel)
    elif data is not None:
        out.warn(f"{rel}: not a mapping")
        out.unread.add("params")
    return True


def add_param(out: Loaded, name: str, value: object, source: str) -> str:
    """``value`` as param ``name``; where an earlier file gave ``name`` another value, both
    are kept (this one as ``name (#2)``...) and said: the first file's stays ``name``."""
    if name not in out.params:
        out.params[name] = value
        return name
    if _same_param(out.params[name], value):
        return name
    taken = {str(k) for k in out.params}
    kept = numbered(name, taken)
    out.params[kept] = value
    out.warn(f"{source}: param {name} is given again with another value, kept as {kept}")
    return kept


def _same_param(old: object, new: object) -> bool:
    """One value given twice: of one type, and equal, or spelled alike as JSON (a NaN param,
    kept a float, is never ``==`` itself)."""
    if type(old) is not type(new):
        return False
    if old == new:
        return True
    try:
        return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
    except (TypeError, ValueError):
        return False


def _missing(exc: _io.ReadError) -> bool:
    """Nothing at the path, on any root (the type says so; a message differs by store)."""
    return isinstance(exc, _io.MissingFile)
