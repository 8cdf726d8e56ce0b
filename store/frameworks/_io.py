"""Bounded, symlink-aware reads of files under a root.

Artifacts are untrusted: a name may be a FIFO (open would hang), a symlink out of the
root, or a sparse file of terabytes.  Every reader goes through ``read_bytes``, which only
opens regular files that resolve inside the root and never reads more than a cap.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from store.safefile import NotRegularFileError, read_capped
from store.yamlsafe import YamlError, load_yaml

SMALL = 4 * 1024 * 1024
"""Cap for configs and JSON documents."""
LARGE = 64 * 1024 * 1024
"""Cap for metric logs (CSV, MLflow metric files, TSV)."""


class ReadError(OSError):
    """A file could not be read safely; the message is one line."""


def join(rel: str, *names: str) -> str:
    """Join root-relative POSIX parts ('' is the root)."""
    parts = [p for p in (rel, *names) if p]
    return "/".join(parts)


def parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def basename(rel: str) -> str:
    return rel.rpartition("/")[2]


def abspath(root: Path, rel: str) -> str:
    return os.path.join(os.fspath(root), rel) if rel else os.fspath(root)


def _inside(root_real: str, path_real: str) -> bool:
    return path_real == root_real or path_real.startswith(root_real.rstrip(os.sep) + os.sep)


_ROOTS: dict[str, tuple[str, int, int]] = {}
"""Root as given -> (its real path, st_dev, st_ino): resolved once, re-checked per read."""


def _root_real(root: Path) -> str:
    """The root's real path; the cached one only while the root still names the same folder
    (one ``stat`` instead of a ``realpath``: a root retargeted since resolves again)."""
    given = os.fspath(root)
    st = os.stat(given)
    cached = _ROOTS.get(given)
    if cached is not None and cached[1] == st.st_dev and cached[2] == st.st_ino:
        return cached[0]
    real = os.path.realpath(given)
    if len(_ROOTS) > 64:
        _ROOTS.clear()
    _ROOTS[given] = (real, st.st_dev, st.st_ino)
    return real


def regular_file(root: Path, rel: str) -> str:
    """The real absolute path of ``rel`` if it is (or links, inside the root, to) a regular file."""
    try:
        real, st = _real_inside(root, rel)
        if st is None:
            st = os.lstat(real)
    except ReadError:
        raise
    except (OSError, ValueError) as exc:
        raise ReadError(f"{rel}: {getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ReadError(f"{rel}: not a regular file")
    return real


def _real_inside(root: Path, rel: str) -> tuple[str, os.stat_result | None]:
    """The real path of ``rel``, which must resolve inside the root (``ReadError`` if not),
    with its ``lstat`` when the fast path took one.

    Fast path: from the root's real path, every folder on the way is ``lstat``-ed and is no
    symlink, so the joined path is already real.  Any symlink, ``.``/``..`` or empty part
    takes the slow path: a full ``realpath`` and a check that it stays inside the root.
    """
    root_real = _root_real(root)
    parts = rel.split("/") if rel else []
    path = root_real
    for part in parts[:-1]:
        if part in ("", ".", ".."):
            break
        path = os.path.join(path, part)
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            break
    else:
        if not parts:
            return root_real, None
        if parts[-1] not in ("", ".", ".."):
            full = os.path.join(path, parts[-1])
            st = os.lstat(full)
            if not stat.S_ISLNK(st.st_mode):
                return full, st
    real = os.path.realpath(abspath(root, rel))
    if not _inside(root_real, real):
        raise ReadError(f"{rel}: symlink leads out of the root")
    return real, None


def read_bytes(root: Path, rel: str, cap: int = SMALL) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of a regular file under the root, and whether it was cut short."""
    try:
        full, _ = _real_inside(root, rel)
    except ReadError:
        raise
    except (OSError, ValueError) as exc:
        raise ReadError(f"{rel}: {getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    try:
        return read_capped(full, cap)  # lstat + O_NOFOLLOW open + fstat: regular files only
    except NotRegularFileError:
        raise ReadError(f"{rel}: not a regular file") from None
    except OSError as exc:
        raise ReadError(f"{rel}: {exc.strerror or type(exc).__name__}") from None


def read_log(
    root: Path, rel: str, warn: Callable[[str], None], *, missing_ok: bool = False
) -> bytes | None:
    """Up to ``LARGE`` bytes of a run's log (metrics CSV/TSV, JSON lines), cut back to whole
    lines: a partly read last line could parse as a wrong number.  None when the file
    cannot be read, which ``warn`` is told (a missing file too, unless ``missing_ok``)."""
    try:
        data, cut = read_bytes(root, rel, LARGE)
    except ReadError as exc:
        if not (missing_ok and "No such file" in str(exc)):
            warn(str(exc))
        return None
    if cut:
        warn(f"{rel}: larger than {LARGE} bytes, only the start was read")
        data = data[: data.rfind(b"\n") + 1]
    return data


def json_objects(
    data: bytes, label: str, warn: Callable[[str], None], what: str = "line"
) -> Iterator[dict[str, object]]:
    """The JSON objects of a JSON-lines log, one per non-blank line.  A line that is not a
    JSON object is skipped and counted, and ``warn`` is told the count once at the end:
    a metric series that silently lost rows would be a wrong answer."""
    bad = 0
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            yield row
        else:
            bad += 1
    if bad:
        warn(f"{label}: {bad} malformed {what}(s) skipped")


def read_text(root: Path, rel: str, cap: int = SMALL) -> tuple[str, bool]:
    """Text of a file, invalid UTF-8 replaced; see ``read_bytes``."""
    data, cut = read_bytes(root, rel, cap)
    return data.decode("utf-8", "replace"), cut


def read_json(root: Path, rel: str, cap: int = SMALL) -> object:
    """A JSON document; ``ReadError`` on unreadable, truncated or malformed content."""
    data, cut = read_bytes(root, rel, cap)
    if cut:
        raise ReadError(f"{rel}: larger than {cap} bytes, not parsed")
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError) as exc:
        raise ReadError(f"{rel}: invalid JSON ({_first_line(exc)})") from None


def read_yaml(root: Path, rel: str, cap: int = SMALL) -> object:
    """A YAML document (Python tags become plain data); ``ReadError`` on any problem."""
    data, cut = read_bytes(root, rel, cap)
    if cut:
        raise ReadError(f"{rel}: larger than {cap} bytes, not parsed")
    try:
        return load_yaml(data)
    except YamlError as exc:
        raise ReadError(f"{rel}: {exc}") from None


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


def list_dir(root: Path, rel: str) -> tuple[list[str], list[str]]:
    """(sub-folders, files) of a folder under the root; symlinked folders are not entered."""
    dirs: list[str] = []
    files: list[str] = []
    try:
        with os.scandir(abspath(root, rel)) as entries:
            for entry in entries:
                if len(dirs) + len(files) >= 100_000:
                    break
                try:
                    if entry.is_dir(follow_symlinks=False):
                        dirs.append(entry.name)
                    elif entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        files.append(entry.name)
                except OSError:
                    continue
    except OSError:
        pass
    return sorted(dirs), sorted(files)


def walk_files(root: Path, rel: str, limit: int = 20_000) -> list[str]:
    """Every file below a folder, as paths relative to that folder ('a/b' for nested keys)."""
    out: list[str] = []
    stack = [""]
    while stack and len(out) < limit:
        sub = stack.pop()
        dirs, files = list_dir(root, join(rel, sub))
        out.extend(join(sub, f) for f in files)
        stack.extend(join(sub, d) for d in reversed(dirs))
    return sorted(out[:limit])


_NUM_SPLIT = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key that orders ``checkpoint-900`` before ``checkpoint-1000``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
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
