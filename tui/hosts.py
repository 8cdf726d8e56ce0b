"""The explorer over every host: the local index and each remote's mirror in one table.

Rows of a mirror carry explorer ids (``store.remote.live.encode``) so the screen keeps
one ``dict[int, RunRow]``; ``Hosts`` turns an id back into its host, its read pool and
the host's own id.  Following the remotes (a thread per remote, ``store.remote.live
.follow``) starts here too; results come back as ``HostsChanged`` messages.

Nothing here reads a remote's paths on the local disk: a mirror's root may name a folder
that also exists here, holding other files.  Previews fetch bytes over the transport.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message

from store.index import query
from store.index.views import ChildPage, ReaderPool, children_page, counts
from store.remote import live
from store.remote.config import Remote

if TYPE_CHECKING:
    import sqlite_utils

    from store.index.query import ArtifactRow, RunRow
    from store.preview import Preview
    from tui.widgets.run_detail import RunDetail

LOCAL = "local"
SAME_BYTES_LISTED = 5
"""Files with the same content listed per other host under a file's preview."""
PREVIEWS_KEPT = 16
"""Previews of mirrored files kept, so going back to one fetches nothing."""
PREVIEW_FETCH = 8 << 20
"""Bytes of a remote file fetched whole for its preview; of a larger one, only its ends."""


class HostsChanged(Message):
    """A followed remote's state changed, or its mirror got new rows."""

    def __init__(self, state: live.HostState, changed: bool) -> None:
        super().__init__()
        self.state = state
        self.changed = changed


class MirrorsLoaded(Message):
    """Every mirror's runs, reread after a pull changed one (posted by a worker)."""

    def __init__(self, loaded: HostRuns) -> None:
        super().__init__()
        self.loaded = loaded


@dataclass(frozen=True)
class HostRuns:
    """Every mirror's runs and roots, in explorer ids (read on a worker thread)."""

    runs: tuple[RunRow, ...]
    roots: tuple[tuple[int, bytes], ...]
    skipped: int = 0
    """Rows refused because their ids would alias another host's."""
    totals: tuple[int, int, int] = (0, 0, 0)
    """The runs, files and bytes of the mirrors read: the status line's totals count them
    beside the local index's (the runs pane shows their runs)."""


class Hosts:
    """The followed remotes: slot ``i + 1`` is ``remotes[i]``; slot 0 is the local index."""

    def __init__(self, remotes: Iterable[Remote]) -> None:
        self.remotes = list(remotes)[: live.MAX_HOSTS]
        self.pools = [ReaderPool(r.mirror_path, size=2) for r in self.remotes]
        self.states: dict[str, live.HostState] = {
            r.name: live.HostState(r.name) for r in self.remotes
        }
        self._stop = threading.Event()
        self._wakes = [threading.Event() for _ in self.remotes]
        self.fetching = threading.Lock()
        """One preview fetch at a time: a key held over many remote files queues their
        workers here, and each gives up once its turn comes if the cursor moved on."""
        self._previews: OrderedDict[tuple[object, ...], Preview] = OrderedDict()
        """Recent previews of mirrored files, by what the mirror says of the file."""

    def __bool__(self) -> bool:
        return bool(self.remotes)

    # -- ids -----------------------------------------------------------------------------

    def name_of(self, explorer_id: int) -> str:
        slot, _ = live.decode(explorer_id)
        return self.remotes[slot - 1].name if 0 < slot <= len(self.remotes) else LOCAL

    def remote_of(self, explorer_id: int) -> tuple[Remote, ReaderPool, int] | None:
        """(remote, mirror pool, the host's own id), or None for the local index."""
        slot, own = live.decode(explorer_id)
        if not 0 < slot <= len(self.remotes):
            return None
        return self.remotes[slot - 1], self.pools[slot - 1], own

    def is_remote(self, explorer_id: int) -> bool:
        return live.decode(explorer_id)[0] > 0

    def offline(self, explorer_id: int) -> bool:
        state = self.states.get(self.name_of(explorer_id))
        return state is not None and state.online is False

    def own_run(self, run: RunRow) -> RunRow:
        """``run`` with the host's own ids (to query its mirror)."""
        return replace(run, id=live.decode(run.id)[1], root_id=live.decode(run.root_id)[1])

    def preview(self, remote: Remote, root: bytes, artifact: ArtifactRow) -> Preview:
        """``remote_preview``, remembered for the last ``PREVIEWS_KEPT`` files while the
        mirror says the same of them (size, mtime, hash); call with ``fetching`` held."""
        key = (remote.name, root, artifact.path, artifact.size, artifact.mtime, artifact.hash)
        found = self._previews.get(key)
        if found is not None:
            self._previews.move_to_end(key)
            return found
        result = remote_preview(remote, root, artifact)
        if result.kind != "error":
            self._previews[key] = result
            while len(self._previews) > PREVIEWS_KEPT:
                self._previews.popitem(last=False)
        return result

    def mirrored_run(self, run: RunRow) -> MirroredRun | None:
        """What the run diff needs to read ``run`` from its mirror; None for a local run."""
        found = self.remote_of(run.id)
        return None if found is None else MirroredRun(found[0], found[1], self.own_run(run))

    # -- reading mirrors (worker threads) ----------------------------------------------

    def load_runs(self) -> HostRuns:
        runs: list[RunRow] = []
        roots: list[tuple[int, bytes]] = []
        skipped = files = size = 0
        for slot, (remote, pool) in enumerate(zip(self.remotes, self.pools, strict=True), 1):
            if not remote.mirror_path.exists():
                continue
            try:
                with pool.connection() as db:
                    found = query.with_flags(db, query.list_runs(db))
                    host_roots = [(rid, path) for rid, path, _ in query.roots(db)]
                    totals = counts(db)
            except Exception:  # a mirror being created or replaced: its next pull says
                continue
            files += totals.artifacts
            size += totals.bytes
            for rid, path in host_roots:
                mapped = live.encode(slot, rid)
                if mapped is None:
                    skipped += 1
                else:
                    roots.append((mapped, path))
            for run in found:
                run_id, root_id = live.encode(slot, run.id), live.encode(slot, run.root_id)
                if run_id is None or root_id is None:
                    skipped += 1
                    continue
                runs.append(replace(run, id=run_id, root_id=root_id))
        return HostRuns(tuple(runs), tuple(roots), skipped, (len(runs), files, size))

    def children(self, root_id: int, folder: bytes, offset: int, limit: int) -> ChildPage | None:
        """A page of a mirror's folder, or None when ``root_id`` is the local index's."""
        found = self.remote_of(root_id)
        if found is None:
            return None
        _, pool, own = found
        with pool.connection() as db:
            return children_page(db, own, folder, offset=offset, limit=limit)

    def connection(self, explorer_id: int) -> tuple[ReaderPool, int] | None:
        found = self.remote_of(explorer_id)
        return None if found is None else (found[1], found[2])

    def same_bytes_elsewhere(
        self, local: ReaderPool, explorer_root: int, artifact: ArtifactRow
    ) -> list[tuple[str, bytes]]:
        """(host, absolute path) of files on the other hosts with ``artifact``'s content:
        the same full hash and size on both sides (never a pending or partial hash)."""
        if not self or artifact.hash_state != "done" or not artifact.hash or artifact.size <= 0:
            return []
        own = live.decode(explorer_root)[0]
        sources = [(0, LOCAL, local)] + [
            (slot, r.name, pool)
            for slot, (r, pool) in enumerate(zip(self.remotes, self.pools, strict=True), 1)
            if r.mirror_path.exists()
        ]
        found: list[tuple[str, bytes]] = []
        for slot, name, pool in sources:
            if slot == own:
                continue
            try:
                with pool.connection() as db:
                    rows = db.conn.execute(
                        "SELECT r.path, a.path FROM artifacts a JOIN roots r ON r.id = a.root_id"
                        " WHERE a.hash = ? AND a.size = ? AND a.hash_state = 'done'"
                        " AND a.ftype = 'file' ORDER BY a.root_id, a.path LIMIT ?",
                        [artifact.hash, artifact.size, SAME_BYTES_LISTED],
                    ).fetchall()
            except Exception:  # a mirror being created: nothing to say about it yet
                continue
            found += [(name, bytes(root).rstrip(b"/") + b"/" + bytes(rel)) for root, rel in rows]
        return found

    # -- following ----------------------------------------------------------------------

    def start(
        self,
        run_thread: Callable[[Callable[[], None], str], object],
        on_state: Callable[[live.HostState, bool], None],
        *,
        every: float = live.EVERY,
        first: float = live.BACKOFF_FIRST,
        most: float = live.BACKOFF_MAX,
    ) -> None:
        """One following loop per remote, each started with ``run_thread(fn, name)``."""
        for remote, wake in zip(self.remotes, self._wakes, strict=True):

            def loop(remote: Remote = remote, wake: threading.Event = wake) -> None:
                live.follow(remote, on_state, self._stop, wake, every=every, first=first, most=most)

            run_thread(loop, remote.name)

    def pull_now(self) -> None:
        """Every remote pulls at once (an offline one too: the user asked)."""
        for wake in self._wakes:
            wake.set()

    def stop(self) -> None:
        self._stop.set()
        for wake in self._wakes:
            wake.set()
        for pool in self.pools:
            pool.close()

    def status_text(self) -> tuple[str, bool]:
        """The status line's word on the hosts, and whether every one is online."""
        parts = []
        healthy = True
        for remote in self.remotes:
            state = self.states[remote.name]
            if state.online is False:
                healthy = False
                never = ", never pulled" if state.never_pulled else ""
                parts.append(f"{remote.name} offline{never}")
            elif state.online is None:
                parts.append(f"{remote.name} …")
            elif state.last_event < state.newest:
                healthy = False
                parts.append(f"{remote.name} catching up")
            else:
                parts.append(f"{remote.name} ✓")
        return "hosts: " + ", ".join(parts), healthy


def remote_preview(remote: Remote, root: bytes, artifact: ArtifactRow) -> Preview:
    """The preview of a mirrored file, from the bytes a local preview would read, fetched
    over the transport into a private temporary file and checked against the mirror's
    size.  Up to ``PREVIEW_FETCH`` the whole file comes; a larger one comes as its first
    and last ``store.preview.MAX_READ`` bytes in a sparse file of its size (all a preview
    of it reads), except a model file, whose inspection may read anywhere: a size note."""
    from store.inspect import is_model_candidate
    from store.preview import MAX_READ, Preview, preview_file
    from store.remote.fetch import fetch_file, read_range
    from store.remote.transport import RemoteError
    from tui.format import human_size

    size = artifact.size
    where = os.fsdecode(root.rstrip(b"/") + b"/" + artifact.path)
    name = local_name(artifact.path)
    ranged = size > PREVIEW_FETCH
    if ranged and (is_model_candidate(name) or size > MAX_SPARSE):
        note = (
            f"{human_size(size)} on {remote.name}: not fetched for a preview (over "
            f"{human_size(PREVIEW_FETCH)}); its size, hash and verdict come from the mirror"
        )
        return Preview("remote", size=size, notes=(note,))
    with tempfile.TemporaryDirectory(prefix="artlens-remote-") as tmp:
        target = os.path.join(tmp, name)
        try:
            # either raises RemoteError when the host's file has another length than the
            # mirror says (it changed since the last pull)
            if ranged:
                _fetch_ends(remote, where, size, target, MAX_READ, read_range)
            else:
                fetch_file(remote, where, size, target)
        except (RemoteError, OSError) as exc:
            return Preview("error", size=size, notes=(f"{remote.name}: {exc}",))
        result = preview_file(target)
    if ranged:
        note = (
            f"{human_size(size)} on {remote.name}: fetched its first and last "
            f"{human_size(MAX_READ)}, what a preview reads"
        )
        result = replace(result, notes=(note, *result.notes))
    return result


MAX_SPARSE = 1 << 40
"""A remote file larger than this is not previewed at all (its sparse copy's size)."""


def _fetch_ends(
    remote: Remote,
    where: str,
    size: int,
    target: str,
    span: int,
    read_range: Callable[[Remote, str, int, int], bytes],
) -> None:
    """Write the first and last ``span`` bytes of the host's file into a sparse local file
    of ``size`` bytes, which must be the host's file's length.

    The last read asks for one byte past ``size``: a file that grew since the pull has
    other bytes at its end than at the mirror's size, and a preview of those would show
    an end the file no longer has.  A file of another length than the mirror says raises
    RemoteError (it changed since the last pull), as ``fetch_file`` does."""
    from store.remote.transport import RemoteError

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(target, flags, 0o600)
    try:
        os.ftruncate(fd, size)
        for offset, want in ((0, span), (size - span, span + 1)):
            chunk = read_range(remote, where, offset, want)
            if len(chunk) > span:
                raise RemoteError(
                    f"the file has more than the {size} bytes the mirror says: "
                    "it changed since the last pull"
                )
            if len(chunk) < span:
                had = f"{offset + len(chunk)}" if chunk or not offset else f"at most {offset}"
                raise RemoteError(
                    f"the file has {had} bytes there, the mirror says {size}: "
                    "it changed since the last pull"
                )
            os.pwrite(fd, chunk, offset)
    finally:
        os.close(fd)


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,12}$")


def local_name(path: bytes) -> str:
    """The temporary copy's name: the host's file name when it is plain (the preview
    picks its reader by name), else ``file`` with the suffix if that is plain."""
    name = os.fsdecode(path.rsplit(b"/", 1)[-1])
    if _SAFE_NAME.match(name):
        return name
    suffix = os.path.splitext(name)[1]
    return "file" + suffix if _SAFE_SUFFIX.match(suffix) else "file"


@dataclass(frozen=True)
class MirroredRun:
    """A run of a remote's mirror, for the run diff: where to read it and its own ids."""

    remote: Remote
    pool: ReaderPool
    run: RunRow
    """With the host's own ids (``Hosts.own_run``)."""


@dataclass(frozen=True)
class RemoteFile:
    """One side of a file diff that lives on a remote host (its mirror's size)."""

    remote: Remote
    path: bytes
    """Absolute on the host."""
    size: int

    @property
    def label(self) -> str:
        from store import paths

        return f"{self.remote.name}:{paths.display(self.path)}"


def fetch_for_diff(side: RemoteFile, folder: str, tag: str) -> bytes:
    """Copy ``side`` into ``folder`` (at most ``fetch.MAX_FETCH`` bytes, checked against
    the mirror's size); the local copy's path.  Raises RemoteError."""
    from store.remote.fetch import fetch_file
    from store.remote.transport import RemoteError

    target = os.path.join(folder, tag + "-" + local_name(side.path))
    try:
        fetch_file(side.remote, os.fsdecode(side.path), side.size, target)
    except RemoteError as exc:
        raise RemoteError(f"{side.remote.name}: {exc}") from None
    return os.fsencode(target)


def same_bytes_sections(found: list[tuple[str, bytes]]) -> tuple[Text, ...]:
    """ "same bytes on gpu2: /path" lines under a file's preview, or nothing."""
    if not found:
        return ()
    from store import paths
    from store.safetext import visible

    text = Text()
    text.append("same bytes on other hosts", style="bold")
    text.append(" (xxh3-128 and size)", style="dim")
    for host, path in found:
        text.append(f"\n  {host}: ", style="cyan")
        text.append(visible(paths.display(path)), style="dim")
    return (text,)


def remote_run_detail(db: sqlite_utils.Database, run: RunRow, host: str) -> RunDetail:
    """The run detail of a mirrored run (``run`` in the host's own ids): from the mirror
    only; the checklist (configured on the host) and a ``.git`` near the run are not read."""
    from store.lineage import duplicates, provenance
    from tui.widgets.run_detail import RunDetail

    return RunDetail(
        run,
        None,
        f"not evaluated here: {host}'s checklist configuration is on {host}",
        provenance(db, run, read_git=False),
        duplicates(db, run),
    )
