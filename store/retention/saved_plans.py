"""Keep artlens's own plans folder bounded.

Every ``artlens retention plan`` saves its plan there, dry run or not, so that ``apply
PLAN_ID`` acts on exactly what was shown.  A plan over a million artifacts is about 100 MB:
a daily dry run from cron, on the tool meant to keep disks from filling up, would fill
the user's state folder by itself.  After each save, the older plans past the newest
``KEEP_PLANS``, or past ``KEEP_BYTES`` in all, are removed (the plan just saved never is),
and so are temporary files a save that died left behind.

The folder is artlens's own (made 0700), but it is still read as hostile: only names
artlens gives plans are touched, only regular files, through a folder descriptor opened
without following links, and the listing is bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from pathlib import Path

KEEP_PLANS = 20
"""Saved plans kept at most, newest first."""
KEEP_BYTES = 1 << 30
"""Bytes the kept plans may hold in all; the newest plan is kept whatever its size."""
STALE_TEMP_SECONDS = 24 * 3600
"""A save's temporary file older than this belongs to a save that died."""
MAX_LISTED = 100_000
"""Names looked at in the folder at most: past this, nothing more is pruned this time."""

_PLAN_NAME = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}\.json$")
"""A plan artlens saved: ``<UTC date>-<UTC time>-<8 hex>.json`` (``make_plan``'s id)."""
_TEMP_NAME = re.compile(r"^\.\d{8}-\d{6}-[0-9a-f]{8}\.json\.[0-9a-f]{12}\.tmp$")
"""A save still writing, or one that died (``Plan.save``'s temporary name)."""


def prune(folder: Path, spare: str, *, now: float | None = None) -> list[str]:
    """Remove the older plans of ``folder`` past ``KEEP_PLANS`` or ``KEEP_BYTES``, and
    stale temporary files; ``spare`` (the file just saved) is never removed.  Returns the
    names removed.  Never raises: a plan left behind costs only disk."""
    now = time.time() if now is None else now
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(folder, flags)
    except OSError:
        return []
    try:
        return _prune_at(fd, spare, now)
    except OSError:
        return []
    finally:
        os.close(fd)


def _prune_at(fd: int, spare: str, now: float) -> list[str]:
    plans: list[tuple[int, str, int]] = []  # (mtime_ns, name, size)
    doomed: list[str] = []
    with os.scandir(fd) as entries:
        for count, entry in enumerate(entries):
            if count >= MAX_LISTED:
                break
            name = entry.name
            is_plan = _PLAN_NAME.match(name) is not None
            if name == spare or not (is_plan or _TEMP_NAME.match(name)):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if is_plan:
                plans.append((st.st_mtime_ns, name, st.st_size))
            elif now - st.st_mtime > STALE_TEMP_SECONDS:
                doomed.append(name)
    try:
        held = os.stat(spare, dir_fd=fd, follow_symlinks=False).st_size
    except OSError:
        held = 0
    kept = 1
    plans.sort(reverse=True)  # newest first; a tie by name, the id's time then its random part
    for _mtime, name, size in plans:
        if kept < KEEP_PLANS and held + size <= KEEP_BYTES:
            kept += 1
            held += size
        else:
            doomed.append(name)
    removed = []
    for name in doomed:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=fd)
            removed.append(name)
    return removed
