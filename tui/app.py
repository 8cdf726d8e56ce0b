"""The artlens explorer: wiring only (bindings, screens, the worker error sink, the watcher).

Layout lives in ``app.tcss``; panes live in ``tui.widgets``; the main screen and its
workers in ``tui.screens.explorer``.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from store.index.db import data_version, open_db
from store.index.views import ReaderPool
from store.remote import live
from store.remote.config import Remote
from tui.commands import ExplorerCommands
from tui.hosts import Hosts, HostsChanged
from tui.keys import titled
from tui.messages import IndexChanged
from tui.screens.explorer import ExplorerScreen
from tui.screens.help import HelpScreen
from tui.widgets.status import StatusLine

if TYPE_CHECKING:
    import sqlite_utils

    from store.objpoll import BucketPoller

SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (Python's default: 0.005)."""
DARK_THEME = "textual-dark"
LIGHT_THEME = "textual-light"


class IndexCommitted(Message):
    """The in-process watcher committed changes to the index (posted from its thread)."""


class IndexProgress(Message):
    """The in-process watcher's first scan walked more files (posted from its thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class FirstScanOver(Message):
    """The in-process watcher's start (a new root's first scan) ended, whichever way
    (posted from its thread, after its last ``IndexProgress``)."""


PROGRESS_EVERY = 0.25
"""Seconds between two progress lines of a first scan."""
HASH_SHARE = 0.25
"""The share of its time the in-process watcher's background hashing works (``Watcher``'s
``hash_share``): the UI keeps the interpreter lock the rest."""
POLL_SECONDS = 0.25
"""How often the read connection is asked whether another connection committed, when the
writer is this process's watcher (which also wakes the app after each commit)."""
FAST_POLL_SECONDS = 0.04
"""The same, when the writer is another process: nothing wakes us, and the PRAGMA is cheap."""


class ArtlensApp(App[None]):
    """Runs, their files and a preview of one file, following the index live."""

    CSS_PATH = "app.tcss"
    TITLE = "artlens"
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {ExplorerCommands}
    """Textual's own commands (theme, keys, screenshot, quit) and every screen's entries."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", show=False, id="app.quit", tooltip="Quit artlens"),
        titled(
            Binding("question_mark", "help", "Help", id="app.help", tooltip="List every key"),
            "view: help",
        ),
        titled(
            Binding("t", "toggle_theme", "Theme", show=False, id="app.theme"),
            "view: toggle theme",
            "Switch light and dark",
        ),
    ]

    def __init__(
        self,
        db_path: Path | str,
        roots: list[Path] | None = None,
        *,
        watch: bool = False,
        clock: Callable[[], float] = time.time,
        writer: str | None = None,
        config: Path | None = None,
        settings: Path | None = None,
        remotes: list[Remote] | None = None,
        follow: tuple[float, float, float] = (live.EVERY, live.BACKOFF_FIRST, live.BACKOFF_MAX),
    ) -> None:
        super().__init__()
        self.config = config
        """The user config whose ``[keys]`` change keys (None: the keys as built)."""
        self.settings = settings
        """Where the chosen theme is saved and restored from (None: not saved)."""
        self.keymap: dict[str, str] = {}
        """The keys ``[keys]`` changed, by binding id (help and palette show them)."""
        self.hosts = Hosts(remotes or [])
        """Remotes whose mirrors show beside the index, pulled while the app runs."""
        self.follow = follow
        """(seconds between pulls, first and longest back-off) for every remote."""
        self.db_path = Path(db_path)
        self.roots = list(roots or [])
        self.unwatched_urls: list[str] = []
        """The index's object-store roots, which the local watcher leaves alone."""
        self.bucket_poller: BucketPoller | None = None
        self.bucket_schedule: dict[str, float] = {}
        """``live_every``/``reconcile_every`` for bucket polling (the defaults when empty)."""
        self.watch_enabled = watch
        self.clock = clock
        self.pool = ReaderPool(self.db_path)
        self.watcher: Any = None
        self.watch_state: tuple[str, bool] = ("not watching", False)
        """What the status line says about the watcher, and whether that is healthy."""
        self.theme = DARK_THEME
        self._saved_theme: str | None = None
        """The theme the settings file holds, as far as this app knows."""
        self._wake_posted = threading.Event()
        self._watcher_guard = threading.Lock()
        """Between the watcher thread handing over a started watcher and quitting."""
        self._starting: Any = None
        """The watcher while its ``start`` runs (a new root's first scan): quitting cancels it."""
        self._closing = False
        """Set while an IndexCommitted waits in the queue: a storm of commits posts one."""
        self._progress: tuple[float, int] = (0.0, 0)
        """When the watcher's first scan last said how far it got, and how far."""
        self.writer = writer
        self.explorer: ExplorerScreen | None = None
        """The main screen: it reads the change feed when the index moves."""
        self._poll_db: sqlite_utils.Database | None = None
        self._data_version = -1
        self._last_poll = 0.0
        self._switch_interval = sys.getswitchinterval()
        """Who writes the index when another process does (``store.lock.holder``)."""

    def on_mount(self) -> None:
        # Workers (previews, checklists) are pure Python: at the default 5 ms switch
        # interval the UI thread waits up to 5 ms for the GIL at each wake-up, several
        # times per key.  1 ms keeps keys answered while a preview is being built.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.explorer = ExplorerScreen(self.db_path, self.pool, clock=self.clock, hosts=self.hosts)
        self.push_screen(self.explorer)
        self.set_interval(FAST_POLL_SECONDS, self._timed_poll, name="poll data_version")
        if self.config is not None or self.settings is not None:
            self.run_worker(self._load_settings, thread=True, group="settings", exit_on_error=False)
        if self.hosts:
            every, first, most = self.follow
            self.hosts.start(
                self._follow_thread, self._host_state, every=every, first=first, most=most
            )
        if self.writer is not None:
            self._follow_writer(self.writer)
        elif self.watch_enabled:
            self.call_after_refresh(self._start_watcher)
        else:
            self._watch_status("not watching (read only)", ok=False)

    def _follow_thread(self, loop: Callable[[], None], name: str) -> None:
        self.run_worker(loop, thread=True, group="hosts", name=name, exit_on_error=False)

    def _host_state(self, state: live.HostState, changed: bool) -> None:
        """On a remote's following thread, after each pull."""
        self.post_message(HostsChanged(state, changed))

    def on_hosts_changed(self, message: HostsChanged) -> None:
        self.hosts.states[message.state.name] = message.state
        for screen in self.screen_stack:
            follow = getattr(screen, "hosts_changed", None)
            if follow is not None:
                follow(message.changed)

    def _watch_status(self, text: str, *, ok: bool) -> None:
        self.watch_state = (text, ok)
        for screen in self.screen_stack:
            for status in screen.query(StatusLine):
                status.change(watcher=text, watcher_ok=ok)

    def _start_watcher(self) -> None:
        """Watch in-process unless another process is already the index's writer."""
        from store.lock import holder

        busy = holder(self.db_path)
        if busy is not None:
            self._follow_writer(busy)
            return
        try:
            from store.watch import Watcher
        except ImportError:
            self._watch_status("no watcher (store.watch not available)", ok=False)
            return
        self._watch_status("starting watcher…", ok=False)
        self.run_worker(
            lambda: self._run_watcher(Watcher), thread=True, group="watcher", exit_on_error=False
        )

    def _follow_writer(self, busy: str) -> None:
        """Another process writes the index: read it and follow its changes, and say so
        (short in the status line, whole in a notice that goes away)."""
        found = re.match(r"pid (\d+)(?: on \S+ \((\w+):)?", busy)
        who = f"pid {found[1]}" + (f", {found[2]}" if found[2] else "") if found else busy
        self._watch_status(f"following {who}", ok=True)
        self.notify(
            f"opened as a reader: {busy} writes this index; its changes show here",
            markup=False,
            timeout=6,
        )

    def _run_watcher(self, watcher_class: Any) -> None:
        """The folders' watcher, then (on this thread, until quit) the index's buckets
        polled beside it: the watcher holds the writer lock for both."""
        roots: list[Path] = list(self.roots)
        try:
            found = self._index_roots()  # also the index's buckets, in unwatched_urls
        except Exception:
            if not roots:
                raise
            found = []  # no index yet: the watcher's first scan makes it
        roots = roots or found
        if not roots and self.unwatched_urls:
            self._poll_buckets(self.unwatched_urls)
            return
        watcher = watcher_class(
            self.db_path,
            roots,
            on_commit=self._index_committed,
            progressive=True,
            on_progress=self._scan_progress,
            hash_share=HASH_SHARE,
        )
        with self._watcher_guard:
            if self._closing:
                return
            self._starting = watcher
        from store.progressive import ScanStopped

        try:
            watcher.start()
        except ScanStopped:
            return  # quitting stopped the first scan: the root stays fresh for next time
        finally:
            self._starting = None
            self.post_message(FirstScanOver())
        with self._watcher_guard:
            if self._closing:  # quit while it started: nobody else will stop it
                watcher.stop()
                return
            self.watcher = watcher
        self.call_from_thread(self._watch_status, "watching", ok=True)
        if self.unwatched_urls:
            self._poll_buckets(self.unwatched_urls, beside_watcher=True)

    def _poll_buckets(self, urls: list[str], *, beside_watcher: bool = False) -> None:
        """On the watcher's thread: bucket roots are watched by polling their listings,
        and the status line says what that cost so far and costs a month (after
        "watching" when a watcher keeps the index's folders)."""
        from store.objpoll import BucketPoller, PollReport
        from store.root.shared import counted
        from tui.format import human_size

        def on_pass(report: PollReport) -> None:
            if self._closing:
                return
            if report.added or report.changed or report.removed:
                self._index_committed()
            previews = counted()
            requests, nbytes = poller.requests + previews[0], poller.nbytes + previews[1]
            text = ("watching · " if beside_watcher else "") + (
                f"polling {len(urls)} bucket{'s' if len(urls) > 1 else ''} "
                f"({poller.schedule_text()}): {requests:,} requests, {human_size(nbytes)}, "
                f"~${poller.monthly_cost():.2f}/month"
            )
            if report.error:
                text += f"; {report.error[:80]}"
            self.call_from_thread(self._watch_status, text, ok=report.error is None)

        poller = BucketPoller(
            self.db_path,
            urls,
            on_pass=on_pass,
            hold_lock=not beside_watcher,
            **self.bucket_schedule,
        )
        with self._watcher_guard:
            if self._closing:
                return
            self.bucket_poller = poller
        if not beside_watcher:
            self.call_from_thread(self._watch_status, "polling buckets…", ok=False)
        try:
            poller.run()
        except Exception as exc:  # the lock is taken, the bucket is gone: say so, once
            if self._closing:
                return
            text = ("watching · " if beside_watcher else "") + (
                f"not polling: {' '.join(str(exc).split())[:160]}"
            )
            self.call_from_thread(self._watch_status, text, ok=False)

    def _scan_progress(self, files: int, total: int) -> None:
        """On the watcher's thread, during a new root's first scan: say how far its walk
        got (of about how many files, when the scan can tell), and how fast it went since
        the last time it said so."""
        now = time.monotonic()
        at, before = self._progress
        if total and files >= total:
            self.post_message(IndexProgress(f"indexing: {files:,} files in, reading runs…"))
            return
        if now - at < PROGRESS_EVERY:
            return
        self._progress = (now, files)
        text = f"indexing: {files:,} files"
        if total:
            text = f"indexing: {files:,} of ~{total:,} files ({100 * files // total}%)"
        if at and files > before:
            text += f", {(files - before) / (now - at):,.0f} files/s"
        self.post_message(IndexProgress(text))

    def on_index_progress(self, message: IndexProgress) -> None:
        if self.watcher is None:  # the watcher started: "watching" is already said
            self._watch_status(message.text, ok=False)
            if self.explorer is not None:
                self.explorer.first_scan_running(True)

    def on_first_scan_over(self) -> None:
        if self.explorer is not None:
            self.explorer.first_scan_running(False)

    def _index_committed(self) -> None:
        """On the watcher's thread, after each commit: wake the screens, once per wait."""
        if not self._wake_posted.is_set():
            self._wake_posted.set()
            self.post_message(IndexCommitted())

    def on_index_committed(self) -> None:
        """The watcher in this process committed: read the changes now, not at the next poll."""
        self._wake_posted.clear()
        self._poll()

    def _timed_poll(self) -> None:
        if self.watcher is not None and time.monotonic() - self._last_poll < POLL_SECONDS:
            return  # the in-process writer wakes us; this poll only catches the hasher
        self._poll()

    def _poll(self) -> None:
        """Cheap on the UI thread: one PRAGMA on an idle connection.  Its module is imported
        with the app's: imported here, the first poll waited on the import lock for as long
        as a worker took to import the index's modules (150 ms before the first frame)."""
        self._last_poll = time.monotonic()
        try:
            if self._poll_db is None:
                self._poll_db = open_db(self.db_path, readonly=True)
            version = data_version(self._poll_db)
        except Exception as exc:  # the index vanished or is locked: say so, keep polling
            for screen in self.screen_stack:
                for status in screen.query(StatusLine):
                    status.change(watcher=f"index unreadable: {exc}")
            self._poll_db = None
            return
        if version != self._data_version:
            self._data_version = version
            if self.explorer is not None:
                self.explorer.index_moved()

    def on_key(self, event: events.Key) -> None:
        """A letter that reaches the app while a text box has focus was queued for the
        widget focused before it ("/hydra" arriving in one read over SSH: the letters are
        forwarded to the runs table before "/" moves the focus); the box stops every letter
        it takes itself, so hand this one over, in order, instead of dropping it."""
        box = self.focused
        if isinstance(box, Input) and event.is_printable and not hasattr(event, "rerouted"):
            event.stop()
            again = events.Key(event.key, event.character)
            again.rerouted = True  # type: ignore[attr-defined]  # once: a box that lets it
            box.post_message(again)  # through again (read-only, disabled) ends it here

    def on_index_changed(self, message: IndexChanged) -> None:
        """One delta of the change feed, handed to every screen (each keeps what is its own)."""
        for screen in self.screen_stack:
            screen.post_message(replace(message))

    def _index_roots(self) -> list[Path]:
        import os

        from store.index import query
        from store.root import is_url

        with self.pool.connection() as db:
            found = [os.fsdecode(path) for _, path, _ in query.roots(db)]
        # object-store roots are polled, not watched (``_poll_buckets``)
        self.unwatched_urls = [path for path in found if is_url(path)]
        return [Path(path) for path in found if not is_url(path)]

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)  # the process outlives the app (tests)
        self.hosts.stop()
        if self._poll_db is not None:
            self._poll_db.conn.close()
            self._poll_db = None
        with self._watcher_guard:
            self._closing = True
            if self._starting is not None:  # its thread ends at the scan's next safe point
                self._starting.cancel()
            if self.bucket_poller is not None:
                self.bucket_poller.stop()
        if self.watcher is not None:
            try:
                self.watcher.stop()
            finally:
                self.watcher = None
        self.pool.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers' failures; those of screens and panes come through
        ``tui.workers.SaysWorkerFailures``."""
        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker[Any]) -> None:
        """The one place worker failures become a message for the user."""
        error = worker.error
        text = " ".join(str(error).split())[:200] or type(error).__name__
        if worker.group == "watcher":
            self._watch_status(f"watcher failed: {text}", ok=False)
        self.notify(text, title="error", severity="error", markup=False, timeout=8)

    def _load_settings(self) -> None:
        """On a worker: read ``[keys]`` and the saved theme, then apply them on the UI."""
        from store.uiconfig import load_keymap, load_theme
        from tui.keys import checked_keymap, known_ids

        keymap: dict[str, str] = {}
        warnings: list[str] = []
        if self.config is not None:
            wanted, warnings = load_keymap(self.config)
            keymap, unknown = checked_keymap(wanted, known_ids())
            warnings += unknown
        theme = load_theme(self.settings) if self.settings is not None else None
        self.call_from_thread(self._apply_settings, keymap, warnings, theme)

    def _apply_settings(
        self, keymap: dict[str, str], warnings: list[str], theme: str | None
    ) -> None:
        if keymap:
            self.keymap = keymap
            self.set_keymap(keymap)
        for warning in warnings:
            self.notify(warning, title="config", severity="warning", markup=False, timeout=8)
        if theme is not None:
            if theme in self.available_themes:
                self._saved_theme = theme
                self.theme = theme
            else:
                self.notify(
                    f"saved theme {theme} is not available; using {self.theme}",
                    severity="warning",
                    markup=False,
                )
        if self.settings is not None:
            # After the restore, so restoring does not save; each change saves from here on.
            self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme: Any) -> None:
        settings = self.settings
        if settings is None or theme.name == self._saved_theme:
            return  # the restored theme's own signal, maybe late: nothing new to write
        self._saved_theme = theme.name
        from store.uiconfig import save_theme

        self.run_worker(
            partial(save_theme, settings, theme.name),
            thread=True,
            group="settings",
            exit_on_error=False,
        )

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.current_theme.dark else DARK_THEME

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        from tui.keys import help_rows

        self.push_screen(HelpScreen(help_rows(self, self.screen)))


def run_app(db_path: Path, roots: list[Path], *, watch: bool, writer: str | None = None) -> None:
    """Open the explorer on the index at ``db_path`` (the CLI's entry point); ``writer``
    names the process that writes it when that is not us.  Configured remotes are shown
    and followed (``artlens remote``)."""
    from store.errors import ArtlensError
    from store.remote import config
    from store.uiconfig import settings_path, user_config_path

    try:
        remotes = config.load()
    except ArtlensError as exc:
        print(f"artlens: remotes not shown: {exc}", file=sys.stderr)
        remotes = []
    ArtlensApp(
        db_path,
        roots,
        watch=watch,
        writer=writer,
        config=user_config_path(),
        settings=settings_path(),
        remotes=remotes,
    ).run()
