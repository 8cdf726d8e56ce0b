"""Run-level integrity: references inside a run that point at nothing.

A truncated or incomplete checkpoint is a per-file problem and already gets the verdict
"corrupt" when the indexer hashes it.  What a single file cannot tell is that the run
*names* something that is gone: a ``last.ckpt`` symlink to a deleted checkpoint, or a
``trainer_state.json`` whose ``best_model_checkpoint`` was rotated away.  Those are found
here (by ``store.inspect.refs``), stored in the run's meta as ``integrity`` and appended to
its ``warnings``, and shown by the UI next to the run and the file they concern.

``check_paths`` is the index-free side (``artlens scan``): the verdict and integrity of
every model file under some paths, from static inspection only.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from store import paths
from store.safefile import NotRegularFileError, open_regular
from store.safetext import visible

META_KEY = "integrity"
"""The key of a run's meta that lists its integrity problems (one-line messages)."""
MAX_PROBLEMS = 50
"""Problems kept per run: enough to act on, small enough for the runs table's JSON."""
_KINDS = ("symlink to ", "best_model_checkpoint ")
"""How the message about one file continues after ``"<path>: "`` (see ``refs``)."""
DANGLING = "points to nothing"
"""How a message about a symlink whose target is gone ends (``refs.link_problem``)."""
LOOP = "is a link loop (too many levels of links)"
"""How a message about a symlink that leads back to itself ends (ELOOP): not dangling."""
UNREACHABLE = "cannot be followed"
"""How a message about a symlink whose target could not be looked at begins its ending
(with the reason after it): it may be there."""


def link_state(problem: str) -> str | None:
    """What a problem about a symlink (``problem_for``) says of it, in a word or two for a
    label: "dangling", "link loop" or "unreachable"; None for any other problem."""
    if not problem.startswith("symlink to "):
        return None
    if problem.endswith(DANGLING):
        return "dangling"
    if problem.endswith(LOOP):
        return "link loop"
    return "unreachable"


def run_problems(root: Path | str | bytes, run_path: str | bytes) -> list[str]:
    """One-line messages for each reference under the run folder whose target is gone.

    ``run_path`` is root-relative ('' for the root).  Runs that are not a real folder (an
    archive, a SQLite-backed MLflow run) have none; a symlinked run folder is not followed.
    """
    from store.inspect.refs import dangling_refs

    base = os.fsencode(root) if not isinstance(root, bytes) else root
    rel = paths.key(run_path)
    folder = base + b"/" + rel if rel else base
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return []
    except OSError:
        return []
    try:
        return dangling_refs(Path(os.fsdecode(folder)))[:MAX_PROBLEMS]
    except Exception as exc:  # a bug in a reader must not stop the index
        return [f"integrity check failed: {type(exc).__name__}"]


def may_have_refs(conn: sqlite3.Connection, run_id: int) -> bool:
    """Whether the index holds a symlink or a ``trainer_state.json`` in the run (cheap:
    runs with neither are not walked again)."""
    row = conn.execute(
        "SELECT 1 FROM artifacts WHERE run_id = ?"
        " AND (ftype = 'symlink' OR name = 'trainer_state.json') LIMIT 1",
        [run_id],
    ).fetchone()
    return row is not None


def runs_with_refs(conn: sqlite3.Connection, root_id: int) -> set[int]:
    """``may_have_refs`` for every run of a root in one pass over its rows (cheaper than a
    probe per run when many runs are read at once)."""
    return {
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT run_id FROM artifacts WHERE root_id = ? AND run_id IS NOT NULL"
            " AND (ftype = 'symlink' OR name = 'trainer_state.json')",
            [root_id],
        )
    }


def annotate(
    meta: MutableMapping[str, object],
    root: Path,
    run_path: str,
    conn: sqlite3.Connection | None = None,
    run_id: int | None = None,
    *,
    has_refs: bool | None = None,
) -> None:
    """Store a run's problems in its ``meta`` (``integrity``) and add them to ``warnings``.

    With ``conn`` and ``run_id``, a run whose indexed files hold no reference is skipped;
    ``has_refs`` says so when the caller already knows (``runs_with_refs``).
    """
    if has_refs is None and conn is not None and run_id is not None:
        has_refs = may_have_refs(conn, run_id)
    problems = [] if has_refs is False else run_problems(root, run_path)
    meta.pop(META_KEY, None)
    if not problems:
        return
    meta[META_KEY] = problems
    warnings = meta.get("warnings")
    meta["warnings"] = [*(warnings if isinstance(warnings, list) else []), *problems]


def problems_of(meta: MutableMapping[str, object] | dict[str, object]) -> list[str]:
    """The integrity problems recorded in a run's meta (strings only, whatever the JSON)."""
    found = meta.get(META_KEY)
    if not isinstance(found, list):
        return []
    return [p for p in found if isinstance(p, str)]


def problem_for(problems: Iterable[str], rel: bytes | str) -> str | None:
    """The problem about the file at ``rel`` (relative to the run folder), if any."""
    prefix = paths.display(rel) + ": "
    for problem in problems:
        if problem.startswith(prefix) and problem[len(prefix) :].startswith(_KINDS):
            return problem[len(prefix) :]
    return None


# -- checking files outside any index (``artlens scan``) -----------------------------------


@dataclass(frozen=True)
class FileCheck:
    """What ``check_paths`` found about one file (``verdict`` is "skipped" when not read)."""

    path: str
    """Printable path, as given on the command line plus the part below it."""
    format: str
    verdict: str
    reasons: tuple[str, ...] = ()
    integrity: str | None = None
    imports: tuple[str, ...] = ()
    size: int | None = None

    def to_json(self) -> dict[str, object]:
        """The stable ``artlens scan --json`` shape of one file (see README)."""
        return {
            "path": self.path,
            "format": self.format,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "integrity": self.integrity,
            "imports": list(self.imports),
            "size_bytes": self.size,
        }


SCAN_SECONDS = 600.0
"""Default time budget of one ``check_paths`` walk: model files reached after it are
reported ``unknown`` (not inspected), never left out and never ``safe``."""


class _Deadline:
    """The whole scan's time budget, shared by every file it reaches."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._at = None if seconds is None else time.monotonic() + seconds

    def passed(self) -> bool:
        return self._at is not None and time.monotonic() >= self._at


def _has_model_magic(path: bytes) -> bool:
    """Whether the first bytes of a regular file say model, whatever its name: a pickle of
    any protocol, an archive, a compressed stream (never follows a link).  Raises
    ``OSError`` when the file cannot be read: then nobody knows."""
    fd, _ = open_regular(path)
    try:
        head = os.pread(fd, SNIFF_BYTES, 0)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    return model_by_content(head, size)


SNIFF_BYTES = 1024
"""Bytes read from a file with no model name to tell whether it is one by content."""


def model_by_content(head: bytes, size: int | None = None) -> bool:
    """Whether a file whose first bytes are ``head`` (at least ``SNIFF_BYTES`` of them, or
    the whole file) is inspected whatever its name; ``size``, the file's size when known,
    spares the inspection of a text that cannot be a pickle.  ``artlens scan`` and the
    index both ask this, so a file one of them calls dangerous the other does not skip."""
    from store.inspect import looks_like_model

    return looks_like_model(head[:SNIFF_BYTES], size)


def _check_file(
    path: bytes,
    size: int,
    *,
    named: bool,
    deadline: _Deadline,
    shown_as: bytes | None = None,
    note: str = "",
) -> FileCheck | None:
    from store.inspect import inspect_file, is_model_candidate

    shown = paths.display(shown_as or path)
    by_name = named or is_model_candidate(os.fsdecode(paths.name_of(shown_as or path)))
    try:
        if not by_name and not _has_model_magic(path):
            return None
    except NotRegularFileError:
        return None  # replaced by a FIFO or a link since the walk saw it
    except OSError as exc:  # unreadable: it may hold a model that nobody vetted
        why = f"cannot open: {exc.strerror or exc}"
        return FileCheck(shown, "-", "unknown", ((note,) if note else ()) + (why,), size=size)
    if deadline.passed():
        why = f"not inspected: the scan's time budget ({deadline.seconds:g} s) ran out"
        return FileCheck(shown, "-", "unknown", ((note,) if note else ()) + (why,), size=size)
    found = inspect_file(os.fsdecode(path))
    return FileCheck(
        shown,
        found.format,
        found.verdict,
        ((note,) if note else ()) + tuple(visible(r) for r in found.reasons),
        visible(found.integrity) if found.integrity else None,
        tuple(visible(i) for i in found.imports),
        size,
    )


def _check_link(
    link: bytes, *, named: bool, deadline: _Deadline, within: tuple[bytes, ...] = ()
) -> FileCheck | None:
    """A symlinked file is read through its target (read-only), reported under the link's
    name with where it points; links to folders, FIFOs or nothing are not read.  A link to
    a folder is always listed: skipped when the folder is inside ``within`` (the walked
    targets, so read anyway), else unknown, as what it holds went unread."""
    from store.inspect import is_model_candidate

    named = named or is_model_candidate(os.fsdecode(paths.name_of(link)))
    try:
        where = paths.display(os.readlink(link))
    except OSError:
        where = "?"
    try:
        st = os.stat(link)
        target = os.path.realpath(link)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "cannot resolve"
        if isinstance(exc, OSError) and not _nothing_there(exc):
            return _unreadable(link, f"symlink to {where}: {why}, not read")
        return _skipped(link, f"symlink to {where}: {why}, not read") if named else None
    if stat.S_ISDIR(st.st_mode):
        real = os.fsencode(target)
        if any(paths.under(real, top) for top in within):
            return _skipped(link, f"symlink to {where}: a folder scanned where it is")
        return _unreadable(
            link, f"symlink to {where}: a folder outside what is scanned, not followed"
        )
    if not stat.S_ISREG(st.st_mode):
        return (
            _skipped(link, f"symlink to {where}: {_special(st.st_mode)}, not read")
            if named
            else None
        )
    note = f"symlink to {where}: read through it"
    return _check_file(target.encode() if isinstance(target, str) else target, st.st_size,
                       named=named, deadline=deadline, shown_as=link, note=note)  # fmt: skip


def _skipped(path: bytes, why: str) -> FileCheck:
    return FileCheck(paths.display(path), "-", "skipped", (why,))


def _unreadable(path: bytes, why: str) -> FileCheck:
    """Something that could not be read and may hold model files: unknown, never skipped,
    so a strict gate (``--fail-on unknown``) fails on it."""
    return FileCheck(paths.display(path), "-", "unknown", (why,))


def _not_read(path: bytes, why: str, exc: OSError) -> FileCheck:
    """Skipped when ``exc`` says nothing is there, else unknown (see ``_unreadable``)."""
    return (_skipped if _nothing_there(exc) else _unreadable)(path, why)


def _nothing_there(exc: OSError) -> bool:
    """Whether ``exc`` says there is nothing to read (gone, a link loop): not unknown."""
    return exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def _special(mode: int) -> str:
    for test, what in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return what
    return "device"


def check_paths(
    targets: Iterable[str | bytes | os.PathLike[str]], *, max_seconds: float | None = SCAN_SECONDS
) -> Iterator[FileCheck]:
    """Inspect every model file at or below ``targets``, in name order, never unpickling.

    Folders are walked without following symlinked folders; inside them, a file is
    inspected when its name looks like a model (``is_model_candidate``) or its content
    does (``looks_like_model``).  A file named directly is always inspected, a folder
    named through a symlink is walked.  A symlinked file is read through its target and
    reported with where it points.  FIFOs, sockets, devices and links to folders inside the
    targets are yielded as "skipped", with why; what could not be read (a folder, a file, a
    link's target, a linked folder outside the targets) may hold a model: "unknown".
    Model files reached after ``max_seconds`` are yielded "unknown", not inspected.
    """
    deadline = _Deadline(max_seconds)
    seen: set[tuple[int, int]] = set()
    starts = [os.fsencode(target) for target in targets]
    within = tuple(os.fsencode(os.path.realpath(s)) for s in starts if os.path.isdir(s))
    for start in starts:
        try:
            st = os.lstat(start)
        except OSError as exc:
            yield _not_read(start, f"cannot stat: {exc.strerror or exc}", exc)
            continue
        if stat.S_ISLNK(st.st_mode) and os.path.isdir(start):
            # named, so walked (``models -> /data/models``); the links met inside are not
            yield from _walk_checks(start, seen, deadline, within)
            continue
        if stat.S_ISLNK(st.st_mode):
            linked = _check_link(start, named=True, deadline=deadline)
            if linked is not None:
                yield linked
            continue
        if not stat.S_ISDIR(st.st_mode):
            if stat.S_ISREG(st.st_mode):
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    found = _check_file(start, st.st_size, named=True, deadline=deadline)
                    if found is not None:
                        yield found
            else:
                yield _skipped(start, f"{_special(st.st_mode)}: not a regular file, not read")
            continue
        yield from _walk_checks(start, seen, deadline, within)


def _walk_checks(
    top: bytes, seen: set[tuple[int, int]], deadline: _Deadline, within: tuple[bytes, ...]
) -> Iterator[FileCheck]:
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:  # it may hold model files: unknown, not skipped
            yield _not_read(folder, f"unreadable folder: {exc.strerror or exc}", exc)
            continue
        subfolders: list[bytes] = []
        for entry in entries:
            child = os.fsencode(entry.path)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:  # gone, or no permission: said, never silently left out
                yield _not_read(child, f"cannot stat: {exc.strerror or exc}", exc)
                continue
            if stat.S_ISDIR(st.st_mode):
                subfolders.append(child)
            elif stat.S_ISREG(st.st_mode):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                found = _check_file(child, st.st_size, named=False, deadline=deadline)
                if found is not None:
                    yield found
            elif stat.S_ISLNK(st.st_mode):
                linked = _check_link(child, named=False, deadline=deadline, within=within)
                if linked is not None:
                    yield linked
            else:  # listed, so the counts add up; never opened (a FIFO would block)
                yield _skipped(child, f"{_special(st.st_mode)}: not a regular file, not read")
        pending.extend(reversed(subfolders))
