"""Bounded, symlink-aware reads of files under a root.

Artifacts are untrusted: a name may be a FIFO (open would hang), a symlink out of the
root, or a sparse file of terabytes.  Every reader goes through ``read_bytes``, which only
opens regular files that resolve inside the root and never reads more than a cap.  The
reads go through the file layer (``store.root``): a parser handed a ``Root`` reads from
wherever it lives; a local folder given as a ``Path`` is wrapped in a ``LocalRoot``.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from store.frameworks import _repeats
from store.frameworks.model import Loaded
from store.root import NotAFile, NotFound, Reader, Root, RootError, UnsafeRelPath
from store.root import join as join  # the frameworks call it _io.join: one join for all
from store.root.local import LocalRoot
from store.root.stream import buffered
from store.safeparse import Index, Repeat, load_json, load_json_line_repeats, load_json_repeats
from store.yamlsafe import YamlError, load_yaml, load_yaml_repeats

SMALL = 4 * 1024 * 1024
"""Cap for configs and JSON documents."""
LARGE = 64 * 1024 * 1024
"""Cap for metric logs (CSV, MLflow metric files, TSV)."""
QUIET_SECONDS = 300.0
"""A log whose last line has no line end is taken whole (``read_log``'s ``quiet_whole``)
only when nothing in its folder was written for this long: more than a run counts as live
(``store.runs.LIVE_SECONDS``), and more than a writer takes between the two writes of one
row."""
LIST_LIMIT = 1_000_000
"""A folder with more entries than this is read as empty rather than in part."""
LIST_KEPT = 100_000
"""Names of one folder a reader looks at (the first, sorted); more is said in a warning."""

_listing_problems: ContextVar[list[str] | None] = ContextVar("listing_problems", default=None)


@contextmanager
def listing_problems() -> Iterator[list[str]]:
    """Collect what ``list_dir`` could not list while a run is read, so the run says it
    (a reader that saw part of a folder must not answer as if it saw all of it)."""
    problems: list[str] = []
    token = _listing_problems.set(problems)
    try:
        yield problems
    finally:
        _listing_problems.reset(token)


def _listing_problem(message: str) -> None:
    problems = _listing_problems.get()
    if problems is not None and len(problems) < 100:
        problems.append(message)


class ReadError(OSError):
    """A file could not be read safely; the message is one line."""


class MissingFile(ReadError, FileNotFoundError):
    """Nothing at the path: an optional file that is absent is no warning."""


def parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def basename(rel: str) -> str:
    return rel.rpartition("/")[2]


RootLike = Root | Path
"""What the readers take: a ``Root`` (any store), or a local folder wrapped once here."""

_WRAPPED: dict[str, LocalRoot] = {}


def as_root(root: RootLike) -> Root:
    """The ``Root`` for a folder; a ``Root`` is returned as it is."""
    if not isinstance(root, (str, os.PathLike)):
        return root
    key = os.fspath(root)
    if not os.path.isabs(key):
        key = os.path.abspath(key)  # a relative root means the folder it names now
    local = _WRAPPED.get(key)
    if local is None:
        if len(_WRAPPED) > 64:
            _WRAPPED.clear()
        local = _WRAPPED[key] = LocalRoot(key)
    return local


def root_name(root: RootLike) -> str:
    """The root folder's own name (the last part of its path or URL), which names runs
    that sit at the root itself."""
    if isinstance(root, (str, os.PathLike)):
        return Path(root).name
    return root.url.rstrip("/").rpartition("/")[2]


def local_path(root: RootLike) -> str | None:
    """The local folder a root reads from, or None for a root that is not on this machine
    (an absolute path logged by a library can only be mapped into a local root)."""
    if isinstance(root, (str, os.PathLike)):
        return os.fspath(root)
    if isinstance(root, LocalRoot):
        return root.path
    return None


def _read_error(rel: str, exc: RootError) -> ReadError:
    """The file layer's error as this module's one-line ``ReadError``."""
    if isinstance(exc, UnsafeRelPath):
        return ReadError(f"{rel}: an empty, '.' or '..' part could lead out of the root")
    if isinstance(exc, NotFound):
        return MissingFile(str(exc))
    return ReadError(str(exc))


def is_file(root: RootLike, rel: str) -> bool:
    """Whether ``rel`` is (or links, inside the root, to) a regular file, on any root."""
    try:
        entry = as_root(root).stat(rel)
        if entry.kind == "symlink":
            as_root(root).open(rel).close()
            return True
    except (RootError, ValueError):
        return False
    return entry.kind == "file"


def regular_file(root: RootLike, rel: str) -> str:
    """The real absolute path of ``rel`` if it is (or links, inside the root, to) a regular
    file.  Local roots only: for libraries that open by name (SQLite, zip readers)."""
    local = as_root(root)
    if not isinstance(local, LocalRoot):
        raise ReadError(f"{rel}: needs a local file")
    try:
        return local.real_path(rel)
    except RootError as exc:
        raise _read_error(rel, exc) from None


def open_file(root: RootLike, rel: str) -> Reader:
    """A pinned reader on a regular file under the root (links inside it followed);
    ``ReadError`` if there is none.  The caller closes it."""
    try:
        return as_root(root).open(rel)
    except RootError as exc:
        raise _read_error(rel, exc) from None


def open_stream(root: RootLike, rel: str) -> io.BufferedReader:
    """``open_file`` as a seekable buffered stream (for ``zipfile``); closing it closes the
    reader.  A file changed under it raises ``ChangedError``, an ``OSError``."""
    return buffered(open_file(root, rel))


def read_bytes(root: RootLike, rel: str, cap: int = SMALL) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of a regular file under the root, and whether it was cut short."""
    try:
        return as_root(root).read_capped(rel, cap)
    except RootError as exc:
        raise _read_error(rel, exc) from None


def read_log(
    root: RootLike,
    rel: str,
    out: Loaded,
    *,
    missing_ok: bool = False,
    whole: Callable[[bytes], bool] | None = None,
    quiet_whole: Callable[[bytes, bytes], bool] | None = None,
    parts: tuple[str, ...] = ("metrics",),
    clock: Callable[[], float] = time.time,
) -> bytes | None:
    """Up to ``LARGE`` bytes of a run's log (metrics CSV/TSV, JSON lines), whole lines only.

    Training appends to its logs while they are read: a last line without its line end is
    still being written, and a number cut short parses as another (``0.`` of ``0.53``, a
    step ``1`` of ``12``).  Such a line is dropped, said, and ``parts`` are marked read in
    part, unless ``whole`` proves it complete (a JSON object closes itself) or it ends in
    the ``\r`` of a ``\r\n``.  The same when the cap cuts the file.  None when the file
    cannot be read, said and marked the same way (a missing file too, unless ``missing_ok``).

    Some writers never end their last line (rows joined with ``\n``, a file saved by an
    editor): a finished run's log would then lose its last row for good, with a warning
    on every read.  So ``quiet_whole(head, tail)`` (the text before the last line, and that
    line) may vouch for a line of the right shape (a CSV row with as many cells as the
    header), and then the line is read when nothing in the file's folder (the file, its
    neighbours, its sub-folders) was written for ``QUIET_SECONDS``: a live writer, even one
    whose buffer was flushed mid-row, writes the rest of that row, or other files beside
    it, well within that time, and a run quiet that long is no longer live.  A writer
    killed mid-row is the risk left (a last cell cut short still makes a full row), so the
    line read this way is said, without marking ``parts`` read in part: every byte was
    read.  A NUL in the line (a preallocated block) never makes it whole.
    """
    try:
        data, cut = read_bytes(root, rel, LARGE)
    except ReadError as exc:
        if not (missing_ok and isinstance(exc, MissingFile)):
            out.warn_partial(str(exc), *parts)
        return None
    end = data.rfind(b"\n") + 1
    if cut:
        out.warn_partial(f"{rel}: larger than {LARGE} bytes, only the start was read", *parts)
        return data[:end]
    tail = data[end:]
    if tail.strip() and not tail.endswith(b"\r") and not (whole is not None and whole(tail)):
        if (
            quiet_whole is not None
            and b"\x00" not in tail
            and quiet_whole(data[:end], tail)
            and _quiet_for(root, rel, clock()) >= QUIET_SECONDS
        ):
            out.warn(
                f"{rel}: last line has no line end; read whole, as nothing beside it was"
                f" written for over {QUIET_SECONDS / 60:g} minutes"
            )
            return data
        out.warn_partial(f"{rel}: last line still being written (no line end), not read", *parts)
        return data[:end]
    return data


def _quiet_for(root: RootLike, rel: str, now: float) -> float:
    """Seconds since anything in the folder of ``rel`` was last written (the folder
    itself, every entry in it, each sub-folder's own time); 0 when it cannot be told, or
    when a time lies in the future (a clock that cannot be trusted)."""
    listed = as_root(root)
    folder = parent(rel)
    try:
        entries = listed.list_dir(folder, limit=LIST_KEPT)
        times = [e.mtime_ns for e in entries]
        if folder:
            times.append(listed.stat(folder).mtime_ns)
    except RootError:
        return 0.0
    if not times:
        return 0.0
    newest = max(times) / 1e9
    return max(0.0, now - newest) if newest <= now else 0.0


def is_json_object(line: bytes) -> bool:
    """Whether a line is one whole JSON object (for ``read_log``'s ``whole``: an object
    ends with its own closing brace, so a line cut short never parses as one)."""
    try:
        return isinstance(load_json(line.decode("utf-8", "replace")), dict)
    except ValueError:
        return False


def read_json_lines(
    root: RootLike,
    rel: str,
    out: Loaded,
    *,
    missing_ok: bool = False,
    parts: tuple[str, ...] = ("metrics",),
) -> Iterator[dict[str, object]]:
    """The JSON objects of a JSON-lines log (``read_log`` then ``json_objects``)."""
    data = read_log(root, rel, out, missing_ok=missing_ok, whole=is_json_object, parts=parts)
    if data is not None:
        yield from json_objects(data, rel, out, parts=parts)


def json_objects(
    data: bytes,
    label: str,
    out: Loaded,
    what: str = "line",
    *,
    parts: tuple[str, ...] = ("metrics",),
) -> Iterator[dict[str, object]]:
    """The JSON objects of a JSON-lines log, one per non-blank line.  A line that is not a
    JSON object is skipped and counted, and ``out`` is told the count once at the end, with
    ``parts`` marked read in part: a metric series that silently lost rows would be a
    wrong answer.

    While a run is read, a key a line's object repeats (``{"loss": 0.5, "loss": 0.7}``)
    is reported as ``label``'s, at ``[n].loss`` (``n`` counts the file's non-blank lines
    from 0, as a config diff of a JSON-lines file names them), as ``read_json`` reports a
    JSON document's; a first-wins reading gets each such line as that loader builds it,
    and skips a line it cannot build."""
    bad = 0
    watching = _repeats.watching()
    number = -1
    for line in data.decode("utf-8", "replace").split("\n"):  # U+2028 may sit in a string
        if not line.strip():
            continue
        number += 1
        try:
            if watching:
                row, repeats, more = load_json_line_repeats(line)
                if (repeats or more) and isinstance(row, dict):
                    row = _repeats.seen(label, row, repeats, more, (Index(number),))
            else:
                row = load_json(line)
        except _repeats.NotKnown:
            continue  # the first-wins reading cannot build this line: its rows differ
        except ValueError:  # not JSON, or nested too deeply
            row = None
        if isinstance(row, dict):
            yield row
        else:
            bad += 1
    if bad:
        out.warn_partial(f"{label}: {bad} malformed {what}(s) skipped", *parts)


def read_text(root: RootLike, rel: str, cap: int = SMALL) -> tuple[str, bool]:
    """Text of a file, invalid UTF-8 replaced; see ``read_bytes``."""
    data, cut = read_bytes(root, rel, cap)
    return data.decode("utf-8", "replace"), cut


def read_json(root: RootLike, rel: str, cap: int = SMALL) -> object:
    """A JSON document; ``ReadError`` on unreadable, truncated or malformed content."""
    data, cut = read_bytes(root, rel, cap)
    if cut:
        raise ReadError(f"{rel}: larger than {cap} bytes, not parsed")
    text = data.decode("utf-8", "replace")
    try:
        if not _repeats.watching():
            return load_json(text)
        value, repeats, more = load_json_repeats(text)
    except ValueError as exc:
        raise ReadError(f"{rel}: invalid JSON ({_first_line(exc)})") from None
    return _seen(rel, value, repeats, more)


def read_yaml(root: RootLike, rel: str, cap: int = SMALL) -> object:
    """A YAML document (Python tags become plain data); ``ReadError`` on any problem."""
    data, cut = read_bytes(root, rel, cap)
    if cut:
        raise ReadError(f"{rel}: larger than {cap} bytes, not parsed")
    try:
        if not _repeats.watching():
            return load_yaml(data)
        value, repeats, more = load_yaml_repeats(data)
    except YamlError as exc:
        raise ReadError(f"{rel}: {exc}") from None
    return _seen(rel, value, repeats, more)


def _seen(rel: str, value: object, repeats: list[Repeat], more: int) -> object:
    """A document read while a run is read: its repeated keys reported (``_repeats``)."""
    try:
        return _repeats.seen(rel, value, repeats, more)
    except _repeats.NotKnown as exc:
        raise ReadError(f"{rel}: repeats a key; its first value cannot be placed ({exc})") from None


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def display_name(name: str) -> str:
    """A file-system name as text: undecodable bytes become ``\\xNN`` (JSON/SQLite safe)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def to_float(value: object) -> float | None:
    """A metric value as float (numbers and numeric strings), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def to_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            f = to_float(value)
            return int(f) if f is not None and f.is_integer() else None
    return None


def list_dir(
    root: RootLike, rel: str, others: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """(sub-folders, files) of a folder under the root; symlinked folders are not entered
    (a link counts as a file).  FIFOs, devices and sockets are added to ``others`` when
    given; else they count as files: a reader that looks for ``metrics.csv`` and finds a
    FIFO there then reads it as it reads a link to one, the file layer refuses it ("not
    a regular file") and the reader says so, marking the part the file holds read in
    part, where leaving the name out would pass the run for complete.  A missing folder
    is empty; an unreadable or oversized one is empty or cut, and says so through
    ``listing_problems`` (the run being read then carries the warning)."""
    dirs: list[str] = []
    files: list[str] = []
    listed = as_root(root)
    try:
        if isinstance(listed, LocalRoot):  # kinds without a stat per entry
            kinds = listed.list_kinds(rel, limit=LIST_LIMIT)
        else:
            kinds = [(e.name, e.kind) for e in listed.list_dir(rel, limit=LIST_LIMIT)]
    except (NotFound, NotAFile):
        return dirs, files  # an optional folder that is absent (or a file) is no problem
    except RootError as exc:
        _listing_problem(f"{rel or '.'}: could not list the folder ({exc})")
        return dirs, files
    if len(kinds) > LIST_KEPT:
        _listing_problem(f"{rel or '.'}: read the first {LIST_KEPT:,} of {len(kinds):,} entries")
    for name, kind in kinds[:LIST_KEPT]:
        if kind == "dir":
            dirs.append(name)
        elif kind in ("file", "symlink") or others is None:
            files.append(name)
        else:
            others.append(name)
    return dirs, files


def list_apart(root: RootLike, rel: str) -> tuple[list[str], list[str], list[str]]:
    """(sub-folders, files and links, other entries) of a folder: FIFOs, sockets and
    devices apart.  A reader lists checkpoints (or takes a name's presence as a fact, a
    ``model_final.pth`` that says the run finished) from the second list only: a FIFO named
    ``epoch=3.ckpt`` is no checkpoint, and retention and the index do not hold it.  Files
    it reads by name it looks for in both, so a FIFO where ``metrics.csv`` belongs is
    refused and said (see ``list_dir``)."""
    others: list[str] = []
    dirs, files = list_dir(root, rel, others)
    return dirs, files, others


WALK_COUNTED = LIST_LIMIT
"""Files a cut walk goes on counting (not keeping) to say how many it left out."""


def walk_counted(
    root: RootLike, rel: str, limit: int, others: list[str] | None = None
) -> tuple[list[str], int, bool]:
    """The first ``limit`` files below a folder found (sorted, as paths relative to it:
    'a/b' for nested keys), how many files there are, and whether that count is a floor
    (the counting stopped at ``WALK_COUNTED``).  Entries neither file nor folder (FIFOs,
    devices, sockets) are added to ``others`` when given, as paths relative to ``rel``."""
    out: list[str] = []
    total = 0
    stack = [""]
    while stack:
        if total >= max(limit, WALK_COUNTED):
            return sorted(out), total, True
        sub = stack.pop()
        odd: list[str] | None = [] if others is not None else None
        dirs, files = list_dir(root, join(rel, sub), odd)
        if others is not None and odd:
            others.extend(join(sub, name) for name in odd)
        total += len(files)
        out.extend(join(sub, f) for f in files[: max(0, limit - len(out))])
        stack.extend(join(sub, d) for d in reversed(dirs))
    return sorted(out), total, False


def walk_files(
    root: RootLike,
    rel: str,
    limit: int = 20_000,
    *,
    out: Loaded | None = None,
    parts: tuple[str, ...] = ("metrics",),
) -> list[str]:
    """Every file below a folder, as paths relative to that folder ('a/b' for nested keys),
    at most ``limit`` of them.  More is said, with their count, and marks ``parts`` of
    ``out`` read in part (without ``out``, the run being read is told, see
    ``listing_problems``); so does a sub-folder that could not be listed whole, and, with
    ``out``, an entry that is no file (a FIFO or a device where a file was written)."""
    if out is None:
        names, total, floor = walk_counted(root, rel, limit)
    else:
        others: list[str] = []
        with listing_problems() as problems:
            names, total, floor = walk_counted(root, rel, limit, others)
        for problem in problems:
            out.warn_partial(problem, *parts)
        warn_not_files(out, rel, others, parts)
    if total > len(names):
        more = f"at least {total:,}" if floor else f"{total:,}"
        message = f"{rel or '.'}: {more} files, read the first {len(names):,} found"
        if out is None:
            _listing_problem(message)
        else:
            out.warn_partial(message, *parts)
    return names


def warn_not_files(out: Loaded, rel: str, names: list[str], parts: tuple[str, ...]) -> None:
    """Say that entries of a folder whose files are all read are no regular files (not
    read), marking ``parts`` read in part (with no ``parts``, only said)."""
    if not names:
        return
    first = display_name(join(rel, sorted(names)[0]))
    more = f" and {len(names) - 1} more" if len(names) > 1 else ""
    message = f"{first}{more}: not a regular file, not read"
    if parts:
        out.warn_partial(message, *parts)
    else:
        out.warn(message)


_NUM_SPLIT = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key that orders ``checkpoint-900`` before ``checkpoint-1000``.  ``isdecimal``,
    not ``isdigit``: ``²`` is a digit to the latter, and ``int`` refuses it."""
    return tuple(
        (0, int(part), "") if part.isdecimal() else (1, 0, part)
        for part in _NUM_SPLIT.split(name)
        if part
    )


def param_value(text: str) -> object:
    """A string param as int or float when it is exactly a number, else the stripped text."""
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        value = float(stripped)
    except ValueError:
        return text
    return value if value == value and value not in (float("inf"), float("-inf")) else text
