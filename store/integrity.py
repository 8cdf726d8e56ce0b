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
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from store import paths
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
    from store import fsops
    from store.inspect.refs import dangling_refs

    base = os.fsencode(root) if not isinstance(root, bytes) else root
    rel = paths.key(run_path)
    folder = base + b"/" + rel if rel else base
    try:
        # from the root down, a name at a time: a folder on the way that is a link (or was
        # swapped for one) is not followed
        top = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = fsops.open_dir(top, fsops.parts_of(os.fsdecode(rel)) if rel else [])
        finally:
            os.close(top)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
    except (OSError, fsops.UnsafePath):
        return []
    try:
        found = dangling_refs(Path(os.fsdecode(folder)), expect=(st.st_dev, st.st_ino))
        return found[:MAX_PROBLEMS]
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


SNIFF_BYTES = 1024
"""Bytes read from a file with no model name to tell whether it is one by content."""


def model_by_content(
    head: bytes, size: int | None = None, read_at: Callable[[int, int], bytes] | None = None
) -> bool:
    """Whether a file whose first bytes are ``head`` (at least ``SNIFF_BYTES`` of them, or
    the whole file) is inspected whatever its name; ``size``, the file's size when known,
    spares the inspection of a text that cannot be a pickle.  With ``read_at`` (positioned
    reads of the file) and ``size``, also a file h5py opens as HDF5 behind a user block
    past the head (one 8-byte read per power of two of the size).  ``artlens scan`` and
    the index both ask this, so a file one of them inspects the other does not skip."""
    from store.inspect import hdf5_superblock_at, looks_like_model

    if looks_like_model(head[:SNIFF_BYTES], size):
        return True
    if read_at is None or size is None:
        return False
    return hdf5_superblock_at(read_at, size, head) is not None


_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_THROUGH_LINK_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
REPLACED = "replaced while scanned, not read"
"""Why something the walk listed was not read: by the time it was opened, what stood at its
name was another file or folder, or a link (a writer racing the walk).  What the listing
named went unread, so it is unknown, never skipped and never left out."""


class _Replaced(Exception):
    """What is at a name now is not what its listing saw."""


def _first(pair: tuple[bytes, os.DirEntry[str]]) -> bytes:
    return pair[0]


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _open_as_seen(
    name: bytes, dir_fd: int | None, seen: os.stat_result, *, through_link: bool = False
) -> tuple[int, os.stat_result]:
    """A read-only descriptor on the regular file ``name`` (relative to the folder open at
    ``dir_fd``, or a path) and its ``fstat``, when it is the very file ``seen`` describes
    (the listing's ``lstat``; the ``stat`` through the link when ``through_link``, else a
    final link is not followed).  The caller closes it.  Raises ``_Replaced`` when it is
    something else, ``OSError`` when it cannot be opened."""
    try:
        fd = os.open(name, _THROUGH_LINK_FLAGS if through_link else _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not through_link:
            raise _Replaced from None  # a link now
        raise
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode) or not _same(st, seen):
        os.close(fd)
        raise _Replaced
    return fd, st


def _check_file(
    name: bytes,
    dir_fd: int | None,
    seen: os.stat_result,
    *,
    shown: bytes,
    named: bool,
    deadline: _Deadline,
    note: str = "",
    through_link: bool = False,
    read_as: bytes | None = None,
) -> FileCheck | None:
    """The verdict on the file ``name`` (see ``_open_as_seen``), reported as ``shown``;
    every byte of it is read through the one descriptor checked against ``seen``, so the
    verdict is about the file the listing named or there is none.  ``read_as``, the name
    the inspector goes by (a link's target), defaults to ``shown``."""
    from store.inspect import inspect_fd, is_model_candidate

    label = paths.display(shown)
    notes = (note,) if note else ()
    by_name = named or is_model_candidate(os.fsdecode(paths.name_of(shown)))
    try:
        fd, st = _open_as_seen(name, dir_fd, seen, through_link=through_link)
    except _Replaced:
        return FileCheck(label, "-", "unknown", (*notes, REPLACED), size=seen.st_size)
    except OSError as exc:  # unreadable: it may hold a model that nobody vetted
        why = f"cannot open: {exc.strerror or exc}"
        gone = by_name and isinstance(exc, (FileNotFoundError, NotADirectoryError))
        return FileCheck(label, "unknown" if gone else "-", "n/a" if gone else "unknown",
                         (*notes, why), size=seen.st_size)  # fmt: skip
    try:
        if not by_name:
            reading = fd
            try:
                head = os.pread(fd, SNIFF_BYTES, 0)
                modelish = model_by_content(
                    head, st.st_size, lambda at, count: os.pread(reading, count, at)
                )
            except OSError as exc:
                why = f"cannot read: {exc.strerror or exc}"
                return FileCheck(label, "-", "unknown", (*notes, why), size=seen.st_size)
            if not modelish:
                return None
        if deadline.passed():
            why = f"not inspected: the scan's time budget ({deadline.seconds:g} s) ran out"
            return FileCheck(label, "-", "unknown", (*notes, why), size=seen.st_size)
        handed, fd = fd, -1
        found = inspect_fd(handed, st, os.fsdecode(read_as or shown))
    finally:
        if fd >= 0:
            os.close(fd)
    return FileCheck(
        label,
        found.format,
        found.verdict,
        notes + tuple(visible(r) for r in found.reasons),
        visible(found.integrity) if found.integrity else None,
        tuple(visible(i) for i in found.imports),
        seen.st_size,
    )


def _check_link(
    name: bytes,
    dir_fd: int | None,
    *,
    shown: bytes,
    named: bool,
    deadline: _Deadline,
    within: tuple[bytes, ...] = (),
) -> FileCheck | None:
    """A symlinked file is read through its target (read-only), reported under the link's
    name (``shown``) with where it points; links to folders, FIFOs or nothing are not read.
    A link to a folder is always listed: skipped when the folder is inside ``within`` (the
    walked targets, so read anyway), else unknown, as what it holds went unread.  The link
    is ``name`` in the folder open at ``dir_fd`` (or a path), the one its listing saw."""
    from store.inspect import is_model_candidate

    named = named or is_model_candidate(os.fsdecode(paths.name_of(shown)))
    try:
        where = paths.display(os.readlink(name, dir_fd=dir_fd))
    except OSError:
        where = "?"
    try:
        st = os.stat(name, dir_fd=dir_fd)
        target = os.path.realpath(shown)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "cannot resolve"
        if isinstance(exc, OSError) and not _nothing_there(exc):
            return _unreadable(shown, f"symlink to {where}: {why}, not read")
        return _skipped(shown, f"symlink to {where}: {why}, not read") if named else None
    try:
        # the name the target is judged (and read) under is where the link leads
        resolved = _same(os.stat(target), st)
    except OSError:
        resolved = False
    if not resolved:
        return _unreadable(shown, f"symlink to {where}: {REPLACED}")
    if stat.S_ISDIR(st.st_mode):
        real = os.fsencode(target)
        if any(paths.under(real, top) for top in within):
            return _skipped(shown, f"symlink to {where}: a folder scanned where it is")
        return _unreadable(
            shown, f"symlink to {where}: a folder outside what is scanned, not followed"
        )
    if not stat.S_ISREG(st.st_mode):
        return (
            _skipped(shown, f"symlink to {where}: {_special(st.st_mode)}, not read")
            if named
            else None
        )
    note = f"symlink to {where}: read through it"
    return _check_file(name, dir_fd, st, shown=shown, named=named, deadline=deadline,
                       note=note, through_link=True, read_as=os.fsencode(target))  # fmt: skip


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

    Each folder is listed through a descriptor (below a target, opened without following a
    link and checked to be the folder its parent's listing saw), and what it holds is
    opened relative to it and checked against its listing: a folder or file swapped by a
    writer racing the walk (or a folder above it, for a link out) is "unknown"
    (``REPLACED``), never judged by what now stands at its name.
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
            linked = _check_link(start, None, shown=start, named=True, deadline=deadline)
            if linked is not None:
                yield linked
            continue
        if not stat.S_ISDIR(st.st_mode):
            if stat.S_ISREG(st.st_mode):
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    found = _check_file(start, None, st, shown=start, named=True, deadline=deadline)
                    if found is not None:
                        yield found
            else:
                yield _skipped(start, f"{_special(st.st_mode)}: not a regular file, not read")
            continue
        yield from _walk_checks(start, seen, deadline, within, expect=st)


def _walk_checks(
    top: bytes,
    seen: set[tuple[int, int]],
    deadline: _Deadline,
    within: tuple[bytes, ...],
    *,
    expect: os.stat_result | None = None,
) -> Iterator[FileCheck]:
    """Checks of what is at or below the folder ``top``, in name order.  ``top`` itself is
    opened through a link (a target named through one is walked), checked against
    ``expect`` when given; below it no link is followed.  One folder descriptor is open at
    a time, and it is closed when the caller stops early."""
    pending: list[tuple[bytes, os.stat_result | None]] = [(top, expect)]
    while pending:
        folder, listed = pending.pop()
        try:
            # below the top, a folder swapped for a link is refused here (ELOOP/ENOTDIR)
            fd = os.open(folder, _DIR_FLAGS | (os.O_NOFOLLOW if folder != top else 0))
        except OSError as exc:  # it may hold model files: unknown, not skipped
            if folder != top and exc.errno in (errno.ELOOP, errno.ENOTDIR):
                yield _unreadable(folder, f"unreadable folder: {REPLACED}")
            else:
                yield _not_read(folder, f"unreadable folder: {exc.strerror or exc}", exc)
            continue
        try:
            try:
                if listed is not None and not _same(os.fstat(fd), listed):
                    # it, or a folder above it, was swapped since its parent's listing
                    yield _unreadable(folder, f"unreadable folder: {REPLACED}")
                    continue
                with os.scandir(fd) as listing:
                    # listed through a descriptor, names come as str: back to the bytes
                    entries = sorted(((os.fsencode(e.name), e) for e in listing), key=_first)
            except OSError as exc:
                yield _not_read(folder, f"unreadable folder: {exc.strerror or exc}", exc)
                continue
            subfolders: list[tuple[bytes, os.stat_result]] = []
            for name, entry in entries:
                child = os.path.join(folder, name)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:  # gone, or no permission: said, never left out
                    yield _not_read(child, f"cannot stat: {exc.strerror or exc}", exc)
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subfolders.append((child, st))
                elif stat.S_ISREG(st.st_mode):
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                    found = _check_file(name, fd, st, shown=child, named=False, deadline=deadline)
                    if found is not None:
                        yield found
                elif stat.S_ISLNK(st.st_mode):
                    linked = _check_link(
                        name, fd, shown=child, named=False, deadline=deadline, within=within
                    )
                    if linked is not None:
                        yield linked
                else:  # listed, so the counts add up; never opened (a FIFO would block)
                    yield _skipped(child, f"{_special(st.st_mode)}: not a regular file, not read")
        finally:
            os.close(fd)
        pending.extend(reversed(subfolders))
