"""The live watcher: the index's single writer while training jobs write.

Events are a latency hint, the reconcile scan is the truth.  The watcher reconciles every
root on start, then turns inotify events into folder batches (one ``scan_folders``
transaction per batch), and reconciles again periodically and on every sign of loss:
a reported queue overflow, a dead emitter, a root whose identity changed, a canary that
stopped arriving.  Where events cannot be had (watch limit, network filesystem,
``poll=``) it polls with its own reconcile scan instead of watchdog's polling observer.
Hashing runs in a second, low-priority thread with its own connection, never inside a
write transaction.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils
import watchdog.events
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from store import fsops, paths, progressive
from store.errors import ArtlensError
from store.index import write
from store.index.db import is_network_fs, network_mounts_below, open_db, write_transaction
from store.index.events import EventKind
from store.lock import WriterLock
from store.scan import IGNORED_DIR_NAMES, Indexer, RootGoneError, ScanReport, below_any
from store.watch import canary, rescan

log = logging.getLogger("artlens.watch")

warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
"""watchdog warns when ``mkdir -p`` makes it re-add a watch it already has: harmless."""

_EVENTS_LOST: type[FileSystemEvent] | None = getattr(watchdog.events, "EventsLostEvent", None)
"""What watchdog 7.1+ queues once it has rebuilt its watches after a kernel queue overflow
(filtered out unless the event filter lists it); older versions lose the overflow."""

_FILE_ATTRIB: type[FileSystemEvent] | None = getattr(watchdog.events, "FileAttribEvent", None)
"""A file's metadata changed: ``touch``, ``os.utime``, ``cp -p``/``tar``/``rsync`` setting
the mtime after the write.  watchdog 6 reported it as modified; 7 has a class of its own,
which the filter drops unless it lists it (the inotify mask asks for it either way)."""

EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    *([_EVENTS_LOST] if _EVENTS_LOST is not None else []),
    *([_FILE_ATTRIB] if _FILE_ATTRIB is not None else []),
]
"""Only changes: watchdog's default subscription also reports opens and reads, and loops
at 100% of a core on trees of more than ~4,000 folders.  And the loss of events, which
watchdog reports otherwise only as a log line: one a logging set-up above WARNING drops,
and one written before its watches are back, so a reconcile it starts can list a folder
before events there are seen again."""

WATCH_LIMIT_HINT = (
    "raise the inotify watch limit with `sudo sysctl fs.inotify.max_user_watches=524288`"
)
INSTANCE_LIMIT_HINT = (
    "raise the inotify instance limit with `sudo sysctl fs.inotify.max_user_instances=512`"
    " (each watching program of this user takes one or more), or this process's open-file"
    " limit (`ulimit -n`)"
)
"""inotify_init's EMFILE: not the watch limit, which raising would not help."""

DEFAULT_POLL_SECONDS = 30.0
"""Polling interval when events cannot be had and no interval was given."""

POLL_DUTY = 0.1
"""A polled root is rescanned at most this share of the time (a 3 s scan: every 30 s)."""

TICK_SECONDS = 0.5
"""How often the worker looks after roots when no events arrive."""

REWATCH_DELAY = 1.0
"""Seconds after a folder's deletion event before checking the watches.  watchdog reports
a folder moved elsewhere in the tree as deleted, half a second late, and then drops the
watches its new place shares with the old one: events there would be lost, so the root is
watched afresh and reconciled.  A folder really deleted leaves every watch in place."""
IDENTITY_EVERY = 1.0
UNREADABLE_EVERY = 2.0
"""How often the places the index records as unreadable for want of permission are tried
again: a ``chmod`` back raises no event the watcher subscribes to (attribute changes
are not), and a folder unreadable when its root was watched has no watch of its own."""
UNREADABLE_CHECKS = 64
"""Records tried per root and pass, in turn: a tree of many private folders costs a few
``open`` calls a pass, not one per folder."""
PERMISSION_REASONS = frozenset({"permission denied", "operation not permitted"})
"""The reasons (``unreadable.reason``) a ``chmod`` can take away; others (an I/O error)
wait for the next reconcile."""
TRASH_NAME = b".artlens-trash"
"""A root's trash folder (``store.retention.trash.TRASH_DIR``): its changes are no files
of the index, but a ``trash`` event."""
STATUS_EVERY = 15.0
"""How often runs that went quiet are turned from live to finished/unknown."""

HEALTH_WRITE_EVERY = 30.0
CANARY_TIMEOUT = 5.0
MAX_FOLDERS_PER_BATCH = 2000
"""More folders than this in one batch: one reconcile of the root is cheaper."""

RETRY_SECONDS = 5.0
RETRY_MAX = 60.0
"""A root whose index update failed (a full disk, a locked or damaged index) is rescanned
after ``RETRY_SECONDS``, twice as long after each further failure, at most this long: a
whole-root reconcile every few seconds would keep a core busy while nothing can be written."""
SUMMARY_BATCH = 16
"""Pending run summaries read in one transaction between event batches: a migration marks
every run pending, and reading them all at once would hold events back for minutes."""
HASH_BATCH = 16
HASH_IDLE_WAIT = 30.0
HASH_PENDING_WAIT = 2.5
HASH_RETRY_MAX = 60.0
"""Hashing that failed is tried again after ``HASH_PENDING_WAIT``, then twice as long
after each further failure, at most this long."""
HASH_REST_AFTER = 0.02
"""Hashing rests (``Watcher.hash_share``) once it has worked this long since it last did."""
STOP_JOIN_SECONDS = 10.0


class WatchError(ArtlensError):
    """The watcher cannot run (no root to watch, already started, ...)."""


@dataclass(frozen=True)
class BatchReport:
    """What one batch, poll or reconcile did to one root (for the CLI's one-line log)."""

    root: str
    kind: str
    """batch, reconcile or poll"""
    events: int
    folders: int
    added: int
    changed: int
    removed: int
    seconds: float
    reason: str = ""


@dataclass
class _Root:
    """The watcher's state for one root."""

    number: int
    path: Path
    path_b: bytes
    display: str
    indexer: Indexer
    watched_b: bytes = b""
    """The folder inotify watches, as its events name it: the root with symlinks resolved
    (watchdog never follows a symlink it is given, so a root that is one would be watched
    as the link itself, blind to the files and folders made directly in it)."""
    mode: str = "inotify"
    watch: ObservedWatch | None = None
    identity: tuple[int, int] | None = None
    poll_interval: float | None = None
    next_poll: float = 0.0
    polled_below: tuple[bytes, ...] = ()
    """Network filesystems mounted below a watched root: inotify reports only this
    machine's changes there, so they are rescanned every ``poll_interval`` too."""
    last_event: float | None = None
    last_batch: float | None = None
    last_reconcile: float | None = None
    last_reconcile_mono: float = 0.0
    problems: dict[str, str] = field(default_factory=dict)
    """problem kind -> message; kinds clear themselves when the cause goes away"""
    rescan_reason: str | None = None
    rewatch_at: float | None = None
    """When to check that every indexed folder is still watched (monotonic): set by a
    folder's deletion event."""
    rewatches: int = 0
    events: int = 0
    batches: int = 0
    errors: int = 0
    failures: int = 0
    """Index updates that failed in a row (reset by one that succeeds)."""
    retry_at: float = 0.0
    """No rescan after a failure before this (monotonic): see ``RETRY_MAX``."""
    unreadable_after: bytes = b""
    """Where the next pass over the unreadable records starts (``UNREADABLE_CHECKS``)."""
    unreadable_tried: dict[bytes, object] = field(default_factory=dict)
    """Records found readable and rescanned, by path -> their ``since``: one still there
    after it (a race, a reason the test missed) is not tried again until it is recorded
    anew, so nothing is rescanned every pass."""
    unreadable_seen: set[bytes] = field(default_factory=set)
    """The records met since the pass over them began again (prunes ``unreadable_tried``)."""
    summaries_pending: bool = False
    """Run summaries may be pending (a migration, a cold load, a first scan stopped early):
    the worker reads them a batch at a time (``SUMMARY_BATCH``) after a reconcile, as
    ``artlens index`` does after its scan; nothing else would, in an index only a watcher
    writes."""
    trash_changed: bool = False
    """Something changed in the root's trash (``TRASH_NAME``): another process trashed,
    restored or purged through the filesystem only, while this watcher writes the index.
    The worker records a ``trash`` event, so views of the trash read it again."""


class _Handler(FileSystemEventHandler):
    """Maps every event of one root's watch to its folder and returns: nothing slow on the
    dispatch thread.  One per root, so a root inside another (or reached through a
    symlink) has its events noted for each of them, never only for the deeper one."""

    def __init__(self, watcher: Watcher, root: _Root) -> None:
        self._watcher = watcher
        self._root = root

    def dispatch(self, event: FileSystemEvent) -> None:
        if _EVENTS_LOST is not None and isinstance(event, _EVENTS_LOST):
            self._watcher._lost(self._root)
            return
        note = functools.partial(self._watcher._note, self._root)
        note(
            event.src_path,
            event.is_directory,
            closed=event.event_type == "closed",
            gone=event.is_directory and event.event_type == "deleted",
        )
        dest = getattr(event, "dest_path", "")
        if dest:  # a rename into place ends an atomic save: as final as a close
            note(dest, event.is_directory, closed=True)


class _CanaryHandler(FileSystemEventHandler):
    def __init__(self, seen: Callable[[], None]) -> None:
        self._seen = seen

    def dispatch(self, event: FileSystemEvent) -> None:
        self._seen()


class _OverflowLog(logging.Handler):
    """watchdog reports a kernel queue overflow only as a log line: listen for it."""

    def __init__(self, on_overflow: Callable[[bytes | None], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if "overflow" not in message.lower():
            return
        where = record.args[0] if isinstance(record.args, tuple) and record.args else None
        self._on_overflow(where if isinstance(where, bytes) else None)


_OVERFLOW_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


class _Rest:
    """Asked between hashing's batches (as its ``should_stop``): rests so that work takes
    ``share`` of the time, and says whether the watcher is stopping.  ``begin`` starts
    the clock of a pass: the wait for work before it is no work."""

    def __init__(self, share: float, stopping: threading.Event) -> None:
        self.share = share
        self.stopping = stopping
        self.since = time.monotonic()

    def begin(self) -> None:
        self.since = time.monotonic()

    def after_work(self) -> bool:
        if self.share < 1.0:
            worked = time.monotonic() - self.since
            if worked < HASH_REST_AFTER:  # a pass that found nothing, or just began
                return self.stopping.is_set()
            self.stopping.wait(worked * (1.0 / self.share - 1.0))
            self.since = time.monotonic()
        return self.stopping.is_set()


def backoff(first: float, most: float, failures: int) -> float:
    """The wait after ``failures`` failures in a row: ``first``, doubling, at most ``most``."""
    return min(most, first * 2.0 ** min(max(failures - 1, 0), 64))


def _failed_watch(wd: object) -> bool:
    """A watch descriptor watchdog keeps for a folder it could not watch (-1)."""
    return isinstance(wd, int) and wd < 0


def _is_folder(where: bytes) -> bool:
    """A folder (not a link to one) is at ``where`` now."""
    try:
        return stat.S_ISDIR(os.lstat(where).st_mode)
    except OSError:
        return False


def _readable(where: bytes, kind: str) -> bool | None:
    """Whether a place recorded unreadable can be read now as the scan reads it (a folder
    opened for listing, an entry examined): None if not, else whether it is a folder."""
    try:
        if kind == "folder":
            fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            os.close(fd)
            return True
        mode = os.lstat(where).st_mode
    except OSError:
        return None
    return stat.S_ISDIR(mode)


class Watcher:
    """Keeps the index of ``roots`` current while files change; the index's only writer.

    ``poll`` forces polling every ``poll`` seconds; ``window`` is how long events are
    coalesced; ``reconcile_every`` how often every root is fully rescanned anyway;
    ``canary_every`` how often the observer is proved alive.
    """

    def __init__(
        self,
        db_path: Path | str,
        roots: Sequence[Path | str],
        *,
        poll: float | None = None,
        window: float = 0.1,
        reconcile_every: float = 300.0,
        canary_every: float = 30.0,
        on_batch: Callable[[BatchReport], None] | None = None,
        on_commit: Callable[[], None] | None = None,
        hash_files: bool = True,
        hash_max_bytes: int | None = None,
        fallback_poll: float = DEFAULT_POLL_SECONDS,
        progressive: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        hash_share: float = 1.0,
        mounts: str | None = None,
    ) -> None:
        if not roots:
            raise WatchError("nothing to watch: give at least one root folder")
        self.db_path = Path(db_path)
        self.root_paths = [Path(os.path.abspath(r)) for r in dict.fromkeys(roots)]
        self.poll = poll
        self.window = window
        self.max_wait = max(0.5, window * 5)
        self.reconcile_every = reconcile_every
        self.canary_every = canary_every
        self.on_batch = on_batch
        self.on_commit = on_commit
        """Called on the worker thread right after a scan committed changes, so a reader in
        this process can look now instead of at its next poll; it must return at once."""
        self.hash_files = hash_files
        self.hash_max_bytes = hash_max_bytes
        self.hash_share = min(1.0, max(0.05, hash_share))
        """The share of its time background hashing works, resting the rest between
        batches: in the explorer's process its Python work takes the interpreter lock from
        the UI (a 200k-file backlog doubled the time from a file's close to the screen)."""
        self.fallback_poll = fallback_poll
        self.mounts = mounts
        """The text of /proc/mounts to go by, read afresh when None (tests give a network
        filesystem this machine cannot have)."""
        self.progressive = progressive
        """A root never indexed is scanned piece by piece on start (``store.progressive``),
        ``on_commit`` called after each piece, so a reader shows its first runs at once."""
        self.on_progress = on_progress
        """``progress(files, about)`` during that first scan's walk, on the starting
        thread (``about`` the files it expects in all, 0 while unknown), then
        ``progress(files, files)`` once every file is in (``progressive.first_scan``)."""
        from store.watch.batch import FolderBatcher

        self._batcher = FolderBatcher(window, self.max_wait)
        self._lock = WriterLock(self.db_path, role="watch")
        self._db: sqlite_utils.Database | None = None
        self._roots: list[_Root] = []
        self._state = threading.Lock()
        self._stopping = threading.Event()
        self._cancelled = threading.Event()
        self._hash_wake = threading.Event()
        self._hash_failures = 0
        """Hashing passes that failed in a row (reset by one that succeeds)."""
        self._hash_logged: set[str] = set()
        """The hashing errors logged since hashing last worked: each is logged once."""
        self._worker: threading.Thread | None = None
        self._hasher: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        self._canary_dir: str | None = None
        self._canary_sent = 0.0
        self._canary_seen = 0.0
        self._canary_due = 0.0
        self._overflow_log = _OverflowLog(self._overflowed)
        self._ignored = {
            os.fsencode(where(self.db_path.with_name(self.db_path.name + suffix)))
            for suffix in ("", "-wal", "-shm", "-journal", ".lock")
            for where in (os.path.abspath, os.path.realpath)
        }
        self._started = False

    # -- lifetime ------------------------------------------------------------------------

    def start(
        self, *, wait_for_writer: bool = False, give_up: Callable[[], bool] | None = None
    ) -> None:
        """Take the writer lock, reconcile every root, then follow events.

        Raises ``WriterBusyError`` (naming the holder) when another writer runs, and
        ``WatchError`` when a root is not a folder (``RunsConfigError`` when its ``[runs]``
        cannot be used).  With ``wait_for_writer``, a one-shot
        writer (``index``, ``retention apply``) is waited for instead (``give_up`` is asked
        every 0.2 s); another watcher is still refused.
        """
        if self._started:
            raise WatchError("the watcher is already running")
        from store.frameworks.generic import rules

        for path in self.root_paths:
            if not path.is_dir():
                raise WatchError(f"not a folder: {paths.display(str(path))}")
            rules(path)  # a root's [runs] that cannot be used: its one line, before a scan
        self._lock.acquire(wait=wait_for_writer, on_wait=log.warning, give_up=give_up)
        self._stopping.clear()
        try:
            if self._cancelled.is_set():
                raise progressive.ScanStopped
            self._db = open_db(self.db_path)
            ignore = [Path(os.fsdecode(p)) for p in self._ignored]
            self._roots = [
                _Root(
                    number,
                    path,
                    os.fsencode(path),
                    paths.display(str(path)),
                    Indexer(self._db, path, ignore_paths=ignore),
                )
                for number, path in enumerate(self.root_paths)
            ]
            if self.progressive:  # first runs on screen before watching the whole tree
                for root in self._roots:
                    self._scan_pieces(root)
            for logger_name in _OVERFLOW_LOGGERS:
                logging.getLogger(logger_name).addHandler(self._overflow_log)
            self._start_observer()
            for root in self._roots:
                self._choose_mode(root)
            for root in self._roots:
                self._reconcile(root, "start", first=self.progressive)
            for root in self._roots:
                if root.mode == "inotify":
                    self._check_watch_coverage(root)
                self._write_health(root)
        except BaseException:
            self._teardown()
            raise
        self._started = True
        self._worker = threading.Thread(target=self._run, name="artlens-watch", daemon=True)
        self._worker.start()
        if self.hash_files:
            self._hasher = threading.Thread(
                target=self._hash_loop, name="artlens-watch-hash", daemon=True
            )
            self._hasher.start()

    def cancel(self) -> None:
        """From another thread, while ``start`` runs a new root's first scan: that scan stops
        at its next safe point, and ``start`` undoes itself and raises
        ``progressive.ScanStopped`` (the app is quitting; the root stays fresh, so the next
        open scans it again).  A watcher once cancelled does not start."""
        self._cancelled.set()

    def stop(self) -> None:
        """Stop promptly: the current batch finishes, threads are joined, the lock freed."""
        self._stopping.set()
        self._batcher.close()
        self._hash_wake.set()
        if self._worker is not None:
            self._worker.join(STOP_JOIN_SECONDS)
            self._worker = None
        if self._hasher is not None:
            self._hasher.join(STOP_JOIN_SECONDS)
            self._hasher = None
        if self._started and self._db is not None:
            for root in self._roots:
                root.mode = "none"
                root.problems.pop("stale", None)
                self._safe_write_health(root)
        self._teardown()
        self._started = False

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _teardown(self) -> None:
        for logger_name in _OVERFLOW_LOGGERS:
            logging.getLogger(logger_name).removeHandler(self._overflow_log)
        self._stop_observer()
        if self._canary_dir is not None:
            with contextlib.suppress(OSError):
                fsops.remove_path(self._canary_dir)
            self._canary_dir = None
        if self._db is not None:
            self._db.close()
            self._db = None
        self._lock.release()

    # -- health --------------------------------------------------------------------------

    def health(self) -> dict[str, dict[str, Any]]:
        """Per root (by display path): mode, last event/batch/reconcile, problems."""
        with self._state:
            return {r.display: self._health_of(r) for r in self._roots}

    def _health_of(self, root: _Root) -> dict[str, Any]:
        return {
            "root": root.display,
            "mode": root.mode,
            "poll_interval": root.poll_interval,
            "last_event": root.last_event,
            "last_batch": root.last_batch,
            "last_reconcile": root.last_reconcile,
            "events": root.events,
            "batches": root.batches,
            "errors": root.errors,
            "problems": list(root.problems.values()),
            "update_failures": root.failures,
            "update_retry_in": (
                backoff(RETRY_SECONDS, RETRY_MAX, root.failures) if root.failures else None
            ),
            "hash_failures": self._hash_failures,
            "hash_retry_in": (
                backoff(HASH_PENDING_WAIT, HASH_RETRY_MAX, self._hash_failures)
                if self._hash_failures
                else None
            ),
            "pid": os.getpid(),
        }

    def _problem(self, root: _Root, kind: str, message: str | None) -> None:
        """Set (or clear, with None) one problem; a new one is logged once."""
        with self._state:
            old = root.problems.get(kind)
            if message is None:
                root.problems.pop(kind, None)
            else:
                root.problems[kind] = message
        if message is not None and message != old:
            log.warning("%s: %s", root.display, message)
        if message != old:
            self._safe_write_health(root)

    def _write_health(self, root: _Root) -> None:
        if self._db is None:
            return
        with self._state:
            health = json.dumps(self._health_of(root), default=str)
            mode = root.mode
        write.set_watch_health(self._db, root.indexer.root_id, mode, health)

    def _safe_write_health(self, root: _Root) -> None:
        try:
            self._write_health(root)
        except Exception as exc:  # health is advisory: never let it stop the watcher
            log.debug("could not record health of %s: %s", root.display, exc)

    # -- the observer --------------------------------------------------------------------

    def _start_observer(self) -> None:
        observer = Observer()
        observer.start()
        self._observer = observer
        self._canary_dir = canary.new_dir()
        try:
            observer.schedule(
                _CanaryHandler(self._canary_arrived),
                self._canary_dir,
                recursive=False,
                event_filter=[FileCreatedEvent, FileModifiedEvent, FileClosedEvent],
            )
        except OSError as exc:
            log.warning("canary not watched: %s", exc)
        self._canary_seen = self._canary_sent = 0.0
        self._canary_due = time.monotonic() + self.canary_every

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(STOP_JOIN_SECONDS)
        for root in self._roots:
            root.watch = None

    def _restart_observer(self, reason: str) -> None:
        """Replace a wedged observer, re-watch every root and reconcile them."""
        log.warning("restarting the file observer: %s", reason)
        self._stop_observer()
        if self._canary_dir is not None:
            with contextlib.suppress(OSError):
                fsops.remove_path(self._canary_dir)
        self._start_observer()
        for root in self._roots:
            if root.mode == "inotify":
                self._schedule(root)
                root.rescan_reason = reason

    def _choose_mode(self, root: _Root) -> None:
        if self.poll is not None:
            self._use_polling(root, None, self.poll)
            return
        fs_type = is_network_fs(root.path, self.mounts)
        if fs_type:
            self._use_polling(
                root,
                f"on a network filesystem ({fs_type}): events from other machines are not "
                "reported, polling instead",
                self.fallback_poll,
            )
            return
        if self._schedule(root):
            self._poll_mounts_below(root)

    def _poll_mounts_below(self, root: _Root) -> None:
        """Poll the network filesystems mounted below ``root`` beside its events."""
        below = network_mounts_below(root.path, self.mounts)
        base = os.path.realpath(root.path)
        keys = tuple(paths.key(os.path.relpath(point, base)) for point, _ in below)
        with self._state:
            root.polled_below = keys
            if keys:
                root.poll_interval = self.fallback_poll
                root.next_poll = time.monotonic() + self.fallback_poll
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            self._problem(
                root,
                "polling",
                f"a network filesystem ({below[0][1]}) is mounted at {paths.display(keys[0])}"
                f"{more}: its changes on other machines are found by polling every "
                f"{self.fallback_poll:g} s",
            )

    def _use_polling(self, root: _Root, why: str | None, interval: float) -> None:
        if root.watch is not None and self._observer is not None:
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(root.watch)
            root.watch = None
        with self._state:
            root.mode = "polling"
            root.poll_interval = interval
            root.next_poll = time.monotonic() + interval
        if why:
            self._problem(root, "polling", why)

    def _schedule(self, root: _Root) -> bool:
        """Watch ``root`` recursively; on a watch limit fall back to polling."""
        assert self._observer is not None
        if root.watch is not None:
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(root.watch)
            root.watch = None
        root.identity = root.indexer.root_identity()
        real = os.path.realpath(root.path)
        root.watched_b = os.fsencode(real)
        try:
            root.watch = self._observer.schedule(
                _Handler(self, root), real, recursive=True, event_filter=EVENT_FILTER
            )
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                hint = INSTANCE_LIMIT_HINT if exc.errno == errno.EMFILE else WATCH_LIMIT_HINT
                self._use_polling(
                    root,
                    f"inotify limit reached ({exc.strerror}): polling instead; " + hint,
                    self.poll or self.fallback_poll,
                )
                return False
            self._problem(root, "unwatched", f"cannot watch: {exc.strerror or exc}")
            return False
        self._problem(root, "unwatched", None)
        return True

    def _emitter_alive(self, root: _Root) -> bool:
        observer = self._observer
        if observer is None or root.watch is None:
            return False
        return any(e.watch == root.watch and e.is_alive() for e in list(observer.emitters))

    def _watched_paths(self, root: _Root) -> set[bytes] | None:
        """The folders watchdog really watches under ``root`` (its internals; None if
        unreachable).  watchdog silently skips subfolders it could not watch."""
        observer = self._observer
        if observer is None or root.watch is None:
            return None
        for emitter in list(observer.emitters):
            if emitter.watch == root.watch:
                group = getattr(emitter, "_inotify", None)
                watched = getattr(group, "_active_callbacks_by_path", None)
                if watched is None:  # watchdog 6 (Python 3.10): its buffer's Inotify has them
                    watched = getattr(getattr(group, "_inotify", None), "_wd_for_path", None)
                if not isinstance(watched, dict):
                    return None
                try:  # a folder it could not read is kept with the descriptor -1: no watch
                    return {p for p, wd in list(watched.items()) if not _failed_watch(wd)}
                except RuntimeError:  # changed under us by the emitter's thread: unknown
                    return None
        return None

    def _watches_lost(self, root: _Root) -> bool:
        """Some indexed folder has no watch (True too when watchdog's state is unreadable).
        A folder the index records as unreadable, and what lies below it, cannot be
        watched: renewing the watches would not change that (``_retry_unreadable`` does
        once it is readable)."""
        watched = self._watched_paths(root)
        if watched is None or self._db is None:
            return True
        rows = self._db.conn.execute(
            "SELECT path FROM dirs WHERE root_id = ?", [root.indexer.root_id]
        )
        base = root.watched_b or root.path_b
        shut = self._unreadable_test(root)
        return any(
            (base + b"/" + bytes(rel) if rel else base) not in watched and not shut(bytes(rel))
            for (rel,) in rows
        )

    def _unreadable_test(self, root: _Root) -> Callable[[bytes], bool]:
        """A test of "this key is, or lies below, a place recorded unreadable"."""
        assert self._db is not None
        return below_any(
            bytes(p)
            for (p,) in self._db.conn.execute(
                "SELECT path FROM unreadable WHERE root_id = ?", [root.indexer.root_id]
            )
            if isinstance(p, bytes)
        )

    def _check_watch_coverage(self, root: _Root) -> None:
        """Watches missing on indexed folders mean the watch limit ran out mid-tree (those
        the index records as unreadable could not be watched by anyone: not counted)."""
        watched = self._watched_paths(root)
        if watched is None or self._db is None:
            return
        shut = self._unreadable_test(root)
        base = root.watched_b or root.path_b
        indexed = 0
        unwatched: list[bytes] = []
        for (rel,) in self._db.conn.execute(
            "SELECT path FROM dirs WHERE root_id = ?", [root.indexer.root_id]
        ):
            key = bytes(rel)
            if shut(key):
                continue
            indexed += 1
            where = base + b"/" + key if key else base
            if where not in watched:
                unwatched.append(where)
        if len(unwatched) <= max(10, indexed // 100):
            return
        # a folder removed since the start's scan listed it has lost its watch with it:
        # no sign of the limit, but a sign that the index lists folders that are gone
        gone = sum(not _is_folder(where) for where in unwatched)
        if gone:
            root.rescan_reason = root.rescan_reason or "folders removed while the watch was set"
        indexed -= gone
        missing = len(unwatched) - gone
        if missing > max(10, indexed // 100):
            self._use_polling(
                root,
                f"only {indexed - missing} of {indexed} folders could be watched "
                "(inotify watch limit): polling instead; " + WATCH_LIMIT_HINT,
                self.poll or self.fallback_poll,
            )

    # -- events (dispatch thread) -------------------------------------------------------

    def _note(
        self,
        root: _Root,
        path: str | bytes,
        is_directory: bool,
        *,
        closed: bool = False,
        gone: bool = False,
    ) -> None:
        """One event path of ``root``'s watch: map it to its folder, and queue the folder."""
        abs_b = path if isinstance(path, bytes) else os.fsencode(path)
        if abs_b in self._ignored:
            return
        prefix = root.watched_b or root.path_b
        if abs_b == prefix:
            root.rescan_reason = root.rescan_reason or "root changed"
            self._batcher.wake()
            return
        if abs_b.startswith(prefix) and abs_b[len(prefix) : len(prefix) + 1] == b"/":
            rel = abs_b[len(prefix) + 1 :]
            if rel.split(b"/", 1)[0] == TRASH_NAME:  # never indexed, but the trash changed
                root.trash_changed = True
                self._batcher.wake()
                return
            if any(part in IGNORED_DIR_NAMES for part in rel.split(b"/")):
                return
            root.last_event = time.time()
            root.events += 1
            if gone and root.rewatch_at is None:
                root.rewatch_at = time.monotonic() + REWATCH_DELAY
            self._batcher.add(root.number, paths.parent_key(rel), closed=closed)

    def _canary_arrived(self) -> None:
        self._canary_seen = time.monotonic()

    def _lost(self, root: _Root) -> None:
        """watchdog lost events of ``root``'s watch and has rebuilt the watch: reconcile,
        and check that every folder is watched again (a rebuild can fail part way)."""
        if root.mode == "inotify":
            root.rescan_reason = "inotify queue overflow: events were lost"
            root.rewatch_at = time.monotonic()
        self._batcher.wake()

    def _overflowed(self, where: bytes | None) -> None:
        for root in self._roots:
            if root.mode == "inotify" and (
                where is None or paths.under(where, root.watched_b or root.path_b)
            ):
                root.rescan_reason = "inotify queue overflow: events were lost"
        self._batcher.wake()

    # -- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        next_identity = next_status = next_health = time.monotonic()
        next_unreadable = next_identity + UNREADABLE_EVERY
        while not self._stopping.is_set():
            filling = any(root.summaries_pending for root in self._roots)
            batch, events = self._batcher.take(0.0 if filling else TICK_SECONDS)
            if self._stopping.is_set():
                break
            if batch:
                self._apply(batch, events)
            if filling:
                self._fill_summaries()
            self._record_trash_changes()
            now = time.monotonic()
            if now >= next_identity:
                next_identity = now + IDENTITY_EVERY
                self._check_roots()
                self._check_canary(now)
            for root in self._roots:
                self._due_scans(root, now)
            if now >= next_unreadable:
                next_unreadable = now + UNREADABLE_EVERY
                for root in self._roots:
                    self._retry_unreadable(root)
            self._serve_rescans()
            if now >= next_status:
                next_status = now + STATUS_EVERY
                self._refresh_status()
            if now >= next_health:
                next_health = now + HEALTH_WRITE_EVERY
                for root in self._roots:
                    self._safe_write_health(root)

    def _record_trash_changes(self) -> None:
        """A ``trash`` event for each root whose trash changed since the last tick: an
        apply, restore or purge by another process, which could not write the index
        while this watcher does, is in its trash's manifest only.  After the files'
        batches, so that a view reading the trash again sees the index that follows it."""
        for root in self._roots:
            if not root.trash_changed or self._db is None:
                continue
            root.trash_changed = False
            try:
                with write_transaction(self._db) as conn:
                    write.add_events(
                        conn, time.time(), [(EventKind.TRASH, root.indexer.root_id, None, None)]
                    )
            except Exception as exc:  # the next change of the trash tries again
                root.trash_changed = True
                log.debug("could not record a trash change of %s: %s", root.display, exc)
                continue
            self._committed()

    def _apply(self, batch: dict[int, set[bytes]], events: int) -> None:
        for number, folders in batch.items():
            root = self._roots[number]
            if root.rescan_reason is not None or root.mode != "inotify":
                continue  # a reconcile of the whole root is due anyway
            if len(folders) > MAX_FOLDERS_PER_BATCH:
                self._reconcile(root, f"{len(folders)} folders changed at once")
                continue
            scan = functools.partial(root.indexer.scan_folders, folders)
            self._run_scan(root, "batch", scan, events, len(folders))

    def _run_scan(
        self,
        root: _Root,
        kind: str,
        scan: Callable[[], ScanReport],
        events: int = 0,
        folders: int = 0,
        reason: str = "",
    ) -> bool:
        """Run one scan transaction; an error is recorded, retried later (less often while
        they go on: ``RETRY_MAX``), never raised.  Each distinct error is logged once, and
        the first success after them once."""
        try:
            report = scan()
        except RootGoneError:
            # nothing written: reconciled once the root is back (``_check_roots`` says it
            # is missing meanwhile, and a reconcile waits for it)
            root.rescan_reason = root.rescan_reason or "the root was away during a scan"
            return False
        except Exception as exc:
            with self._state:
                root.errors += 1
                root.failures += 1
                root.retry_at = time.monotonic() + backoff(RETRY_SECONDS, RETRY_MAX, root.failures)
            root.rescan_reason = f"after an error: {type(exc).__name__}"
            self._problem(root, "error", f"index update failed, retrying: {exc}"[:300])
            return False
        if root.failures:
            with self._state:
                failed, root.failures = root.failures, 0
            log.warning("%s: index updates work again (after %d failed)", root.display, failed)
        if "error" in root.problems:
            self._problem(root, "error", None)
        with self._state:
            root.last_batch = time.time()
            root.batches += 1
        if report.added or report.changed or report.removed or report.runs_changed:
            self._hash_wake.set()
            self._committed()
        if self.on_batch is not None and (
            kind != "batch" or report.added or report.changed or report.removed
        ):
            self.on_batch(
                BatchReport(
                    root.display,
                    kind,
                    events,
                    folders,
                    report.added,
                    report.changed,
                    report.removed,
                    report.seconds,
                    reason,
                )
            )
        return True

    def _serve_rescans(self) -> None:
        """Answer ``artlens index`` runs that found this watcher holding the index."""
        for request_id, wanted in rescan.take(self.db_path):
            result = rescan.Answer(os.getpid())
            for path in wanted:
                root = self._root_at(path)
                if root is None:
                    result.not_watched.append(path)
                    continue
                reports: list[ScanReport] = []

                def scan(root: _Root = root, reports: list[ScanReport] = reports) -> ScanReport:
                    reports.append(root.indexer.scan())
                    return reports[-1]

                if self._run_scan(root, "reconcile", scan, reason="asked by artlens index"):
                    with self._state:
                        root.last_reconcile = time.time()
                        root.last_reconcile_mono = time.monotonic()
                    root.summaries_pending = True
                    done = reports[-1]
                    result.rescanned[path] = {
                        "added": done.added,
                        "changed": done.changed,
                        "removed": done.removed,
                    }
                else:
                    result.not_watched.append(path)
            try:
                rescan.answer(self.db_path, request_id, result)
            except OSError as exc:
                log.warning("cannot answer a rescan request: %s", exc)

    def _root_at(self, path: str) -> _Root | None:
        wanted = os.path.abspath(path)
        for root in self._roots:
            if str(root.path) == wanted or os.path.realpath(root.path) == os.path.realpath(wanted):
                return root
        return None

    def _committed(self) -> None:
        if self.on_commit is not None:
            try:
                self.on_commit()
            except Exception:  # a reader's hook never stops the writer
                logging.getLogger(__name__).debug("on_commit failed", exc_info=True)

    def _scan_pieces(self, root: _Root) -> None:
        """A new root's first pieces (``store.progressive``), before it is watched: the
        full scan after the watch is set corrects them, so a failure here only waits."""
        if not progressive.is_fresh(root.indexer):
            return
        try:
            progressive.scan_pieces(
                root.indexer, on_commit=self._committed, should_stop=self._cancelled.is_set
            )
        except Exception as exc:
            log.warning("%s: first pieces not indexed: %s", root.display, exc)

    def _reconcile(
        self, root: _Root, reason: str, kind: str = "reconcile", *, first: bool = False
    ) -> None:
        if root.indexer.root_identity() is None:
            return  # a vanished root keeps its rows until it comes back (or is removed)
        root.rescan_reason = None
        scan: Callable[[], ScanReport] = root.indexer.scan
        if first and progressive.is_fresh(root.indexer):
            scan = functools.partial(
                progressive.first_scan,
                root.indexer,
                on_commit=self._committed,
                progress=self.on_progress,
                budget=0.0,  # the pieces were scanned before the watch was set
                should_stop=self._cancelled.is_set,
            )
        if self._run_scan(root, kind, scan, reason=reason):
            with self._state:
                root.last_reconcile = time.time()
                root.last_reconcile_mono = time.monotonic()
            root.summaries_pending = True

    def _fill_summaries(self) -> None:
        """Read one batch of pending run summaries (``summaries_pending``) of the first root
        that has some; a root whose summaries cannot be read now is tried again after its
        next reconcile, the failure said in its health."""
        for root in self._roots:
            if not root.summaries_pending:
                continue
            try:
                filled = root.indexer.fill_summaries(limit=SUMMARY_BATCH)
            except Exception as exc:
                root.summaries_pending = False
                self._problem(root, "summaries", f"run summaries not read: {exc}"[:300])
                return
            if "summaries" in root.problems:
                self._problem(root, "summaries", None)
            if filled < SUMMARY_BATCH:
                root.summaries_pending = False
            if filled:
                self._committed()
            return

    def _due_scans(self, root: _Root, now: float) -> None:
        if root.rewatch_at is not None and now >= root.rewatch_at:
            root.rewatch_at = None
            if (
                root.mode == "inotify"
                and self._observer is not None
                and self._watches_lost(root)
                and self._schedule(root)
            ):
                root.rewatches += 1
                root.rescan_reason = root.rescan_reason or "watches lost after a folder moved"
        if root.rescan_reason is not None:
            if now >= root.retry_at:
                self._reconcile(root, root.rescan_reason)
        elif root.mode == "polling" and now >= root.next_poll:
            started = time.monotonic()
            self._reconcile(root, "poll", kind="poll")
            spent = time.monotonic() - started
            interval = max(root.poll_interval or DEFAULT_POLL_SECONDS, spent / POLL_DUTY)
            root.next_poll = time.monotonic() + interval
        elif root.mode == "inotify" and root.polled_below and now >= root.next_poll:
            started = time.monotonic()
            for key in root.polled_below:
                scan = functools.partial(root.indexer.scan, key)
                self._run_scan(root, "poll", scan, reason="network mount")
            spent = time.monotonic() - started
            interval = max(root.poll_interval or DEFAULT_POLL_SECONDS, spent / POLL_DUTY)
            root.next_poll = time.monotonic() + interval
        elif now - root.last_reconcile_mono >= self.reconcile_every:
            self._reconcile(root, "periodic")

    def _retry_unreadable(self, root: _Root) -> None:
        """Rescan what the index records as unreadable for want of permission and can be
        read now (``UNREADABLE_EVERY``): a folder's whole subtree, a file's folder.  A
        folder that has no watch (it could not be watched when its root was) makes the
        root watched afresh and reconciled."""
        if root.mode != "inotify" or root.rescan_reason is not None or self._db is None:
            return
        try:
            rows = self._db.conn.execute(
                "SELECT path, kind, reason, since FROM unreadable WHERE root_id = ?"
                " AND path > ? ORDER BY path LIMIT ?",
                [root.indexer.root_id, root.unreadable_after, UNREADABLE_CHECKS],
            ).fetchall()
        except Exception as exc:  # the next reconcile reads them anyway
            log.debug("%s: unreadable records not read: %s", root.display, exc)
            return
        records = [(bytes(r[0]), r[1], r[2], r[3]) for r in rows if isinstance(r[0], bytes)]
        root.unreadable_seen.update(r[0] for r in records)
        if len(rows) == UNREADABLE_CHECKS and records:
            root.unreadable_after = records[-1][0]
        else:  # a whole pass made: forget the tries of records gone since
            root.unreadable_after = b""
            seen, root.unreadable_seen = root.unreadable_seen, set()
            root.unreadable_tried = {k: v for k, v in root.unreadable_tried.items() if k in seen}
        subtrees: list[bytes] = []
        folders: list[bytes] = []
        tried: dict[bytes, object] = {}
        for key, kind, reason, since in records:
            if reason not in PERMISSION_REASONS or root.unreadable_tried.get(key) == since:
                continue
            is_dir = _readable(os.path.join(root.path_b, key) if key else root.path_b, kind)
            if is_dir is None:
                continue
            tried[key] = since
            if is_dir or not key:
                subtrees.append(key)
            else:
                folders.append(paths.parent_key(key))
        for key in subtrees:
            scan = functools.partial(root.indexer.scan, key)
            why = f"{paths.display(key) or '.'} readable again"
            if not self._run_scan(root, "reconcile", scan, folders=1, reason=why):
                return
        if folders and not self._run_scan(
            root,
            "reconcile",
            functools.partial(root.indexer.scan_folders, folders),
            folders=len(folders),
            reason="files readable again",
        ):
            return
        root.unreadable_tried.update(tried)  # rescanned: not again while still recorded
        if any(self._unwatched(root, key) for key in subtrees) and self._schedule(root):
            root.rewatches += 1
            root.rescan_reason = "a folder that could not be watched is readable again"

    def _unwatched(self, root: _Root, key: bytes) -> bool:
        """Some indexed folder at or below ``key`` has no watch (True when unknown)."""
        if not key:
            return self._watches_lost(root)
        watched = self._watched_paths(root)
        if watched is None or self._db is None:
            return True
        base = root.watched_b or root.path_b
        rows = self._db.conn.execute(  # the folder, and the keys that start with it + "/"
            "SELECT path FROM dirs WHERE root_id = ? AND (path = ? OR (path > ? AND path < ?))",
            [root.indexer.root_id, key, key + b"/", key + b"0"],
        )
        shut = self._unreadable_test(root)
        return any(
            base + b"/" + bytes(rel) not in watched and not shut(bytes(rel)) for (rel,) in rows
        )

    def _check_roots(self) -> None:
        """A root deleted and recreated, or an emitter that died, leaves inotify blind."""
        for root in self._roots:
            identity = root.indexer.root_identity()
            if identity is None:
                self._problem(root, "missing", "the root folder is missing; index kept as is")
                root.identity = None
                continue
            if "missing" in root.problems:
                self._problem(root, "missing", None)
            if root.mode != "inotify":
                continue
            if identity != root.identity or not self._emitter_alive(root):
                why = "root replaced" if identity != root.identity else "watch lost"
                if self._schedule(root):
                    root.rescan_reason = why
                    log.info("%s: %s: watching again", root.display, why)
                if root.mode == "polling":
                    root.rescan_reason = why

    def _check_canary(self, now: float) -> None:
        """Prove the observer thread still delivers events (from a private folder)."""
        if self._canary_dir is None or not any(r.mode == "inotify" for r in self._roots):
            return
        if self._observer is None or not self._observer.is_alive():
            self._restart_observer("the observer thread died")
            return
        if self._canary_sent and self._canary_seen < self._canary_sent:
            if now - self._canary_sent > CANARY_TIMEOUT:
                self._canary_sent = 0.0
                self._restart_observer("the observer stopped delivering events")
            return
        if now >= self._canary_due:
            self._canary_due = now + self.canary_every
            self._canary_sent = now
            try:
                with open(os.path.join(self._canary_dir, "beat"), "wb") as f:
                    f.write(b"%f" % now)
            except OSError as exc:
                log.debug("canary write failed: %s", exc)
                self._canary_sent = 0.0

    def _refresh_status(self) -> None:
        """Runs that went quiet for LIVE_SECONDS stop showing as live."""
        if self._db is None:
            return
        now = time.time()
        for root in self._roots:
            runs = root.indexer.runs
            try:
                if runs.refresh_status(self._db.conn, now):
                    with runs.in_step(), write_transaction(self._db) as conn:
                        runs.refresh(conn, now)
            except Exception as exc:  # logged once while it lasts, not every STATUS_EVERY
                message = f"run status refresh failed: {exc}"[:300]
                if root.problems.get("status") != message:
                    log.warning("%s: %s", root.display, message)
                with self._state:
                    root.problems["status"] = message
                continue
            if "status" in root.problems:
                with self._state:
                    root.problems.pop("status", None)
                log.warning("%s: run status refresh works again", root.display)

    # -- hashing -------------------------------------------------------------------------

    def _hash_loop(self) -> None:
        """Hash pending files in small batches, at low priority, with its own connection.

        The connection is opened here, and again after a failure to open it (too many open
        files, an index gone unreadable), as any other failure: retried less often while it
        fails and shown in health, never a thread that ends and leaves every file pending."""
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        db: sqlite_utils.Database | None = None
        indexers: list[Indexer] = []
        rest = _Rest(self.hash_share, self._stopping)
        try:
            while not self._stopping.is_set():
                if db is None:
                    try:
                        db = open_db(self.db_path)
                        ignore = [Path(os.fsdecode(p)) for p in self._ignored]
                        indexers = [Indexer(db, r.path, ignore_paths=ignore) for r in self._roots]
                    except Exception as exc:
                        if db is not None:
                            with contextlib.suppress(Exception):
                                db.close()
                            db = None
                        why = f"cannot open the index: {str(exc) or type(exc).__name__}"
                        self._stopping.wait(self._hash_failed([why]))
                        self._hash_wake.clear()
                        continue
                pending = 0
                errors: list[str] = []
                for indexer in indexers:
                    try:
                        rest.begin()
                        indexer.hash_pending(
                            batch=HASH_BATCH,
                            should_stop=rest.after_work,
                            max_bytes=self.hash_max_bytes,
                        )
                        pending += db.conn.execute(
                            "SELECT count(*) FROM artifacts WHERE root_id = ?"
                            " AND hash_state = 'pending'",
                            [indexer.root_id],
                        ).fetchone()[0]
                    except Exception as exc:
                        errors.append(str(exc) or type(exc).__name__)
                if errors:  # a full disk, a locked index: try again, less often each time
                    self._stopping.wait(self._hash_failed(errors))
                    self._hash_wake.clear()
                    continue
                self._hash_worked()
                self._hash_wake.wait(HASH_PENDING_WAIT if pending else HASH_IDLE_WAIT)
                self._hash_wake.clear()
        finally:
            if db is not None:
                db.close()

    def _hash_failed(self, errors: list[str]) -> float:
        """A hashing pass failed: log each error not logged since hashing last worked, note
        the failure in every root's health, and return how long to wait before the next."""
        with self._state:
            self._hash_failures += 1
            wait = backoff(HASH_PENDING_WAIT, HASH_RETRY_MAX, self._hash_failures)
            for root in self._roots:
                root.problems["hashing"] = f"hashing failed, retrying: {errors[0]}"[:300]
        for error in dict.fromkeys(errors):
            if error not in self._hash_logged:
                self._hash_logged.add(error)
                log.warning(
                    "hashing failed, retrying less often while it fails (at most every %ds): %s",
                    HASH_RETRY_MAX,
                    error,
                )
        return wait

    def _hash_worked(self) -> None:
        """A hashing pass succeeded: after failures, say so once and clear them."""
        if not self._hash_failures:
            return
        with self._state:
            failed, self._hash_failures = self._hash_failures, 0
            for root in self._roots:
                root.problems.pop("hashing", None)
        self._hash_logged.clear()
        log.warning("hashing works again (after %d failed passes)", failed)
