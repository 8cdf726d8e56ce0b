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
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.worker import Worker, WorkerState

from store.views import ReaderPool
from tui.commands import ExplorerCommands
from tui.screens.explorer import ExplorerScreen
from tui.screens.help import HelpScreen
from tui.widgets.status import StatusLine

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


PROGRESS_EVERY = 0.25
"""Seconds between two progress lines of a first scan."""


class ArtlensApp(App[None]):
    """Runs, their files and a preview of one file, following the index live."""

    CSS_PATH = "app.tcss"
    TITLE = "artlens"
    COMMANDS: ClassVar[set[Any]] = {ExplorerCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", show=False, id="app.quit", tooltip="Quit artlens"),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="List every key"),
        Binding("t", "toggle_theme", "Theme", show=False, id="app.theme"),
    ]

    def __init__(
        self,
        db_path: Path | str,
        roots: list[Path] | None = None,
        *,
        watch: bool = False,
        clock: Callable[[], float] = time.time,
        writer: str | None = None,
    ) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.roots = list(roots or [])
        self.unwatched_urls: list[str] = []
        """The index's object-store roots, which the watcher leaves alone."""
        self.watch_enabled = watch
        self.clock = clock
        self.pool = ReaderPool(self.db_path)
        self.watcher: Any = None
        self.watch_state: tuple[str, bool] = ("not watching", False)
        """What the status line says about the watcher, and whether that is healthy."""
        self.theme = DARK_THEME
        self._wake_posted = threading.Event()
        """Set while an IndexCommitted waits in the queue: a storm of commits posts one."""
        self._progress: tuple[float, int] = (0.0, 0)
        """When the watcher's first scan last said how far it got, and how far."""
        self.writer = writer
        self._switch_interval = sys.getswitchinterval()
        """Who writes the index when another process does (``store.lock.holder``)."""

    def on_mount(self) -> None:
        # Workers (previews, checklists) are pure Python: at the default 5 ms switch
        # interval the UI thread waits up to 5 ms for the GIL at each wake-up, several
        # times per key.  1 ms keeps keys answered while a preview is being built.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.push_screen(ExplorerScreen(self.db_path, self.pool, clock=self.clock))
        if self.writer is not None:
            self._follow_writer(self.writer)
        elif self.watch_enabled:
            self.call_after_refresh(self._start_watcher)
        else:
            self._watch_status("not watching (read only)", ok=False)

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
        roots = self.roots or self._index_roots()
        if not roots and self.unwatched_urls:
            text = "not watching: bucket roots refresh with `artlens index URL`"
            self.call_from_thread(self._watch_status, text, ok=False)
            return
        watcher = watcher_class(
            self.db_path,
            roots,
            on_commit=self._index_committed,
            progressive=True,
            on_progress=self._scan_progress,
        )
        watcher.start()
        self.watcher = watcher
        self.call_from_thread(self._watch_status, "watching", ok=True)

    def _scan_progress(self, files: int, total: int) -> None:
        """On the watcher's thread, during a new root's first scan: say how far its walk
        got, and how fast it went since the last time it said so."""
        now = time.monotonic()
        at, before = self._progress
        if total and files >= total:
            self.post_message(IndexProgress(f"indexing: {files:,} files in, reading runs…"))
            return
        if now - at < PROGRESS_EVERY:
            return
        self._progress = (now, files)
        text = f"indexing: {files:,} files"
        if at and files > before:
            text += f", {(files - before) / (now - at):,.0f} files/s"
        self.post_message(IndexProgress(text))

    def on_index_progress(self, message: IndexProgress) -> None:
        if self.watcher is None:  # the watcher started: "watching" is already said
            self._watch_status(message.text, ok=False)

    def _index_committed(self) -> None:
        """On the watcher's thread, after each commit: wake the screens, once per wait."""
        if not self._wake_posted.is_set():
            self._wake_posted.set()
            self.post_message(IndexCommitted())

    def on_index_committed(self) -> None:
        self._wake_posted.clear()
        for screen in self.screen_stack:
            wake = getattr(screen, "index_committed", None)
            if wake is not None:
                wake()

    def _index_roots(self) -> list[Path]:
        import os

        from store import query
        from store.root import is_url

        with self.pool.connection() as db:
            found = [os.fsdecode(path) for _, path, _ in query.roots(db)]
        # object-store roots are not watched (yet): `artlens index URL` refreshes them
        self.unwatched_urls = [path for path in found if is_url(path)]
        return [Path(path) for path in found if not is_url(path)]

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)  # the process outlives the app (tests)
        if self.watcher is not None:
            try:
                self.watcher.stop()
            finally:
                self.watcher = None
        self.pool.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures become a message for the user."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        text = " ".join(str(error).split())[:200] or type(error).__name__
        if event.worker.group == "watcher":
            self._watch_status(f"watcher failed: {text}", ok=False)
        self.notify(text, title="error", severity="error", markup=False, timeout=8)

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.current_theme.dark else DARK_THEME

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.binding_rows()))

    def binding_rows(self) -> list[tuple[str, str, str]]:
        """(keys, description, id) for every binding of the app, the screen and the panes."""
        from textual.widgets import DataTable, Tree

        from tui.widgets.artifact_tree import ArtifactTree
        from tui.widgets.runs_table import RunsTable

        rows: list[tuple[str, str, str]] = [("ctrl+p", "Command palette", "app.command_palette")]
        sources: list[type[Any]] = [
            ArtlensApp,
            ExplorerScreen,
            RunsTable,
            ArtifactTree,
            DataTable,
            Tree,
        ]
        seen: set[str] = set()
        for source in sources:
            for binding in source.BINDINGS:
                if not isinstance(binding, Binding):
                    continue
                key = binding.key.replace("question_mark", "?").replace("slash", "/")
                if key in seen or not binding.description:
                    continue
                seen.add(key)
                rows.append((key, binding.description, binding.id or ""))
        return rows


def run_app(db_path: Path, roots: list[Path], *, watch: bool, writer: str | None = None) -> None:
    """Open the explorer on the index at ``db_path`` (the CLI's entry point); ``writer``
    names the process that writes it when that is not us."""
    ArtlensApp(db_path, roots, watch=watch, writer=writer).run()
