"""The local index and every mirror, side by side: runs by host, ``host:run`` references."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from store.errors import ArtlensError
from store.index.db import open_db
from store.index.query import RunRow, list_runs, resolve_run
from store.remote import config, mirror
from store.rundiff import Reader

if TYPE_CHECKING:
    import sqlite_utils

LOCAL = "local"
"""The host name of this machine's own index in tables, JSON and ``local:RUN``."""


@dataclass(frozen=True)
class Host:
    """One index to read: the local one (``remote`` None) or a remote's mirror."""

    name: str
    db_path: Path
    remote: config.Remote | None = None

    def reader(self) -> Reader | None:
        """How to read this host's files: None for the local disk."""
        if self.remote is None:
            return None
        from store.remote.fetch import reader

        return reader(self.remote)


def hosts(local_db: Path | None, names: list[str] | None = None) -> list[Host]:
    """The local index (when it exists) and the mirrors of ``names`` (default: all) that
    were pulled at least once: a mirror whose every pull failed holds nothing of its host
    (``unpulled_notes`` says so), and is never listed as a host without runs."""
    found: list[Host] = []
    if (names is None or LOCAL in names) and local_db is not None and local_db.exists():
        found.append(Host(LOCAL, local_db))
    for remote in _wanted(names):
        if pulled(remote):
            found.append(Host(remote.name, remote.mirror_path, remote))
    return found


def _wanted(names: list[str] | None) -> list[config.Remote]:
    remotes = config.load()
    for name in names or []:
        if name != LOCAL and not any(r.name == name for r in remotes):
            raise ArtlensError(f"no remote named {name[:60]!r} (see `artlens remote list`)")
    return [r for r in remotes if names is None or r.name in names]


def pulled(remote: config.Remote) -> bool:
    """Whether a pull of ``remote`` has ever succeeded (its mirror holds the host's state)."""
    return remote.mirror_path.exists() and mirror.status(remote).last_ok is not None


def never_pulled(state: mirror.Status) -> str:
    """Says that no pull of a remote has succeeded yet (one line, with its last error)."""
    tried = f" (the last try failed: {state.last_error})" if state.last_error else ""
    return f"{state.name}: no pull has succeeded yet{tried}: nothing of it is shown"


def unpulled_notes(names: list[str] | None = None) -> list[str]:
    """One line per remote of ``names`` (default: all) that ``hosts`` leaves out because
    no pull of it has succeeded yet."""
    notes = []
    for remote in _wanted(names):
        state = mirror.status(remote)
        if state.last_ok is None:
            notes.append(never_pulled(state))
    return notes


@contextmanager
def opened(host: Host) -> Iterator[sqlite_utils.Database]:
    db = open_db(host.db_path, readonly=True)
    try:
        yield db
    finally:
        db.close()


def runs_by_host(found: list[Host]) -> list[tuple[str, RunRow]]:
    rows: list[tuple[str, RunRow]] = []
    for host in found:
        with opened(host) as db:
            rows += [(host.name, run) for run in list_runs(db)]
    return rows


def offline_notes(found: list[Host]) -> list[str]:
    """One line per mirror whose last pull failed or stopped before it caught up."""
    notes = []
    for host in found:
        if host.remote is None:
            continue
        state = mirror.status(host.remote)
        if state.state == "offline":
            notes.append(f"{host.name}: offline, showing the last pull: {state.last_error}")
        elif state.state == "behind":
            notes.append(
                f"{host.name}: behind the host, showing event {state.last_event} of its"
                f" {state.newest}: the last pull stopped before it caught up"
            )
    return notes


def split_ref(ref: str) -> tuple[str, str] | None:
    """``(host, run)`` when ``ref`` is ``HOST:RUN`` for a configured remote (or
    ``local``), else None (a run name may hold a colon)."""
    host, sep, rest = ref.partition(":")
    if not sep or not rest:
        return None
    if host == LOCAL or any(r.name == host for r in config.load()):
        return host, rest
    return None


def resolve(ref: str, local_db: Path | None) -> tuple[Host, RunRow]:
    """The host and run ``ref`` names (``HOST:RUN``, or a run of the local index)."""
    split = split_ref(ref)
    host_name, run_ref = split if split else (LOCAL, ref)
    found = hosts(local_db, [host_name])
    if not found:
        if host_name == LOCAL:
            raise ArtlensError("no local index: name runs as HOST:RUN")
        (note,) = unpulled_notes([host_name])
        raise ArtlensError(f"{note}: run `artlens remote pull {host_name}`")
    host = found[0]
    with opened(host) as db:
        return host, resolve_run(db, run_ref)


def find_file(host: Host, path: str) -> tuple[bytes, int, str | None] | None:
    """(absolute path, size, hash) of the indexed file at absolute ``path`` on ``host``, or
    None when its index holds no file there."""
    raw = os.fsencode(path)
    if not raw.startswith(b"/"):
        return None
    with opened(host) as db:
        for root_id, root in db.conn.execute("SELECT id, path FROM roots"):
            base = bytes(root).rstrip(b"/") + b"/"
            if not raw.startswith(base):
                continue
            row = db.conn.execute(
                "SELECT size, hash, hash_state, ftype FROM artifacts"
                " WHERE root_id = ? AND path = ?",
                [root_id, raw[len(base) :]],
            ).fetchone()
            if row is not None and row[3] == "file":
                return raw, int(row[0]), row[1] if row[2] == "done" else None
    return None
