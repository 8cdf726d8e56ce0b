"""Find references inside a run that point at nothing.

A run folder often names its own files: Hugging Face's ``trainer_state.json`` records
``best_model_checkpoint``, and Lightning leaves a ``last.ckpt`` symlink.  After cleanup
(``save_total_limit``, manual deletes, a partial copy) these point at checkpoints that are
gone, which is worth knowing before someone deletes the "other" checkpoints too.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from store.paths import display
from store.safefile import read_fd

MAX_ENTRIES = 200_000
MAX_STATE_BYTES = 16 * 1024 * 1024
_TOP_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIR_FLAGS = _TOP_FLAGS | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _walk(
    run_dir: Path, expect: tuple[int, int] | None = None
) -> Iterator[tuple[str, str, os.stat_result, int]]:
    """(relative path, name, lstat, descriptor of its folder) of every entry under
    ``run_dir``, not following symlinks; the descriptor is open until the next item.

    Each folder is listed through a descriptor opened without following a link (``run_dir``
    itself excepted) and checked to be the folder its parent's listing saw (``run_dir``:
    ``expect``, when given), and its entries are to be looked at relative to it: a folder
    swapped for a link (or one above it) mid-walk is not listed, never listed through it.
    """
    count = 0
    pending: list[tuple[str, tuple[int, int] | None]] = [("", expect)]
    while pending and count < MAX_ENTRIES:
        rel, ident = pending.pop()
        try:
            fd = os.open(run_dir / rel if rel else run_dir, _DIR_FLAGS if rel else _TOP_FLAGS)
        except OSError:
            continue
        try:
            here = os.fstat(fd)
            if ident is not None and (here.st_dev, here.st_ino) != ident:
                continue  # swapped since its parent's listing: not what was listed
            with os.scandir(fd) as entries:
                listed = list(entries)
            for entry in listed:
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                count += 1
                yield child, entry.name, st, fd
                if stat.S_ISDIR(st.st_mode):
                    pending.append((child, (st.st_dev, st.st_ino)))
        except OSError:
            continue
        finally:
            os.close(fd)


def _read_state(name: str, dir_fd: int, listed: os.stat_result) -> object:
    """The JSON of the file ``name`` in the folder open at ``dir_fd``, when it is still the
    file its listing saw (``listed``); None when it is not, or is not JSON."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (
            listed.st_dev,
            listed.st_ino,
        ):
            return None
        data, cut = read_fd(fd, MAX_STATE_BYTES)
        if cut:
            return None
        return json.loads(data.decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)


def _checkpoint_exists(run_dir: Path, state_dir: Path, target: str) -> bool:
    """Whether a recorded checkpoint path still exists, wherever it was recorded from.

    The path is relative to the training process's working directory, which we do not
    know, so it counts as present if it resolves as-is, from the run folder, or by its last
    component next to the trainer state or in the run folder.
    """
    recorded = PurePosixPath(target)
    name = recorded.name
    candidates = [run_dir / target, state_dir / name, state_dir.parent / name, run_dir / name]
    if recorded.is_absolute():
        candidates.insert(0, Path(target))
    else:
        parts = recorded.parts
        candidates += [run_dir.joinpath(*parts[i:]) for i in range(1, len(parts))]
    return any(os.path.lexists(c) for c in candidates if name)


def link_problem(path: Path | str, *, dir_fd: int | None = None) -> str | None:
    """How a symlink fails to lead to something: its target gone (``DANGLING``), a loop
    (``LOOP``: ELOOP, which ``os.path.exists`` took for gone), or not looked at (the
    reason: it may be there); None when it leads to something.  ``path`` is relative to
    the folder open at ``dir_fd`` when given."""
    from store.integrity import DANGLING, LOOP, UNREACHABLE

    try:
        os.stat(path, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            return DANGLING  # nothing there, or nothing that could be
        if exc.errno == errno.ELOOP:
            return LOOP
        reason = exc.strerror or type(exc).__name__
        return f"{UNREACHABLE} ({reason.lower()})"
    except ValueError:  # a name the OS cannot take
        return f"{UNREACHABLE} (invalid name)"
    return None


def dangling_refs(run_dir: Path | str, *, expect: tuple[int, int] | None = None) -> list[str]:
    """Messages naming each reference under ``run_dir`` whose target no longer exists.

    ``expect``, the (device, inode) the caller found the run folder to be, is checked
    against the folder listed; each link and ``trainer_state.json`` is read in the folder
    its listing was made in (see ``_walk``), never through a folder swapped since."""
    run_dir = Path(run_dir)
    found: list[tuple[str, str]] = []
    for rel, name, st, dir_fd in _walk(run_dir, expect):
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError:
                continue
            how = link_problem(name, dir_fd=dir_fd)
            if how is not None:
                found.append((rel, f"{display(rel)}: symlink to {display(target)} {how}"))
        elif stat.S_ISREG(st.st_mode) and name == "trainer_state.json":
            state = _read_state(name, dir_fd, st)
            best = state.get("best_model_checkpoint") if isinstance(state, dict) else None
            if (
                isinstance(best, str)
                and best
                and not _checkpoint_exists(run_dir, (run_dir / rel).parent, best)
            ):
                found.append(
                    (rel, f"{display(rel)}: best_model_checkpoint {display(best)} no longer exists")
                )
    return [message for _, message in sorted(found)]
