"""``artlens index`` while a watcher writes the index: ask the watcher to rescan.

The watcher holds the writer lock for as long as it runs, so a one-shot ``index`` cannot
write.  Instead it drops a request into ``<index>.rescan/`` (the index's own private
folder), the watcher reconciles the roots it watches within a tick and answers with what
changed; a root it does not watch is named in the answer, so ``index`` can say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.safeparse import load_json

MAX_REQUEST_BYTES = 1 << 20
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Answer:
    """What the watcher did for one request."""

    pid: int
    rescanned: dict[str, dict[str, int]] = field(default_factory=dict)
    """Root -> {'added', 'changed', 'removed'} of its reconcile."""
    not_watched: list[str] = field(default_factory=list)


def folder(db_path: Path | str) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".rescan")


def _write_atomic(target: Path, payload: dict[str, Any]) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as out:
        json.dump(payload, out)
    os.replace(tmp, target)


def ask(db_path: Path | str, roots: list[str]) -> str:
    """Leave a rescan request for the watcher; its id."""
    where = folder(db_path)
    where.mkdir(mode=0o700, exist_ok=True)
    request_id = uuid.uuid4().hex
    _write_atomic(where / f"{request_id}.request", {"roots": roots, "ts": time.time()})
    return request_id


def _read(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = load_json(os.read(fd, MAX_REQUEST_BYTES))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None


def wait(
    db_path: Path | str, request_id: str, *, alive: Callable[[], bool], timeout: float
) -> Answer | None:
    """The watcher's answer, or None when it stopped (``alive`` false) or took too long."""
    path = folder(db_path) / f"{request_id}.answer"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = _read(path)
        if data is not None:
            with contextlib.suppress(OSError):
                path.unlink()
            return Answer(
                int(data.get("pid", 0)),
                {str(k): dict(v) for k, v in dict(data.get("rescanned", {})).items()},
                [str(r) for r in data.get("not_watched", [])],
            )
        if not alive():
            break
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        (folder(db_path) / f"{request_id}.request").unlink()
    return None


def take(db_path: Path | str) -> list[tuple[str, list[str]]]:
    """Pending requests (id, roots), removed from the folder (watcher side)."""
    where = folder(db_path)
    try:
        names = os.listdir(where)
    except OSError:
        return []
    found = []
    for name in names:
        request_id, _, suffix = name.partition(".")
        if suffix != "request" or not _ID.fullmatch(request_id):
            continue
        data = _read(where / name)
        with contextlib.suppress(OSError):
            (where / name).unlink()
        roots = data.get("roots") if data else None
        if isinstance(roots, list) and all(isinstance(r, str) for r in roots):
            found.append((request_id, roots))
    return found


def answer(db_path: Path | str, request_id: str, result: Answer) -> None:
    _write_atomic(
        folder(db_path) / f"{request_id}.answer",
        {"pid": result.pid, "rescanned": result.rescanned, "not_watched": result.not_watched},
    )
