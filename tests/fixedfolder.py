"""A fixed scratch folder that concurrent runs take turns on.

Pictures of the UI show paths, so the demo they are shot from lives at a fixed path; two
runs at once (two checkouts, CI beside a developer) would empty each other's folder.  An
exclusive ``flock`` on a file beside it makes the second run wait for the first.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def fixed_folder(path: Path) -> Iterator[Path]:
    """``path`` emptied and held for this process until the block ends."""
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        yield path
    finally:
        os.close(fd)  # releases the lock
