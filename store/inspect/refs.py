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
from pathlib import Path, PurePosixPath

from store.paths import display
from store.safefile import read_capped

MAX_ENTRIES = 200_000
MAX_STATE_BYTES = 16 * 1024 * 1024


def _walk(run_dir: Path) -> list[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every entry under ``run_dir``, not following symlinks."""
    found: list[tuple[str, os.stat_result]] = []
    pending = [""]
    while pending and len(found) < MAX_ENTRIES:
        rel = pending.pop()
        try:
            with os.scandir(run_dir / rel if rel else run_dir) as entries:
                for entry in entries:
                    child = f"{rel}/{entry.name}" if rel else entry.name
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    found.append((child, st))
                    if stat.S_ISDIR(st.st_mode):
                        pending.append(child)
        except OSError:
            continue
    return found


def _read_state(path: Path) -> object:
    try:
        data, cut = read_capped(path, MAX_STATE_BYTES)
        if cut:
            return None
        return json.loads(data.decode("utf-8", "replace"))
    except (OSError, ValueError, RecursionError):
        return None


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


def link_problem(path: Path) -> str | None:
    """How a symlink fails to lead to something: its target gone (``DANGLING``), a loop
    (``LOOP``: ELOOP, which ``os.path.exists`` took for gone), or not looked at (the
    reason: it may be there); None when it leads to something."""
    from store.integrity import DANGLING, LOOP, UNREACHABLE

    try:
        os.stat(path)
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


def dangling_refs(run_dir: Path) -> list[str]:
    """Messages naming each reference under ``run_dir`` whose target no longer exists."""
    run_dir = Path(run_dir)
    problems: list[str] = []
    for rel, st in sorted(_walk(run_dir)):
        path = run_dir / rel
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(path)
            except OSError:
                continue
            how = link_problem(path)
            if how is not None:
                problems.append(f"{display(rel)}: symlink to {display(target)} {how}")
        elif stat.S_ISREG(st.st_mode) and PurePosixPath(rel).name == "trainer_state.json":
            state = _read_state(path)
            best = state.get("best_model_checkpoint") if isinstance(state, dict) else None
            if (
                isinstance(best, str)
                and best
                and not _checkpoint_exists(run_dir, path.parent, best)
            ):
                problems.append(
                    f"{display(rel)}: best_model_checkpoint {display(best)} no longer exists"
                )
    return problems
