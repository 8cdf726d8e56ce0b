"""Messages that carry worker results to the UI thread.

Workers never touch widgets: they post one of these, and the handler on the UI thread
owns the state change.  Payloads are immutable (tuples, frozen rows); the message objects
themselves are dataclasses because Textual mutates a message while dispatching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.segment import Segment
from textual.message import Message

from store.index.query import ArtifactRow, RunRow
from store.index.views import ChildPage, IndexCounts

if TYPE_CHECKING:
    from store.checklist import ChecklistResult


@dataclass
class RunsLoaded(Message):
    """The whole run list (first load): replaces an older one still in the queue."""

    runs: tuple[RunRow, ...]
    last_event: int
    """The change feed's newest event when the runs were read (read before them)."""
    roots: tuple[tuple[int, bytes], ...] = ()
    elsewhere: tuple[int, int, int] = (0, 0, 0)
    """The followed remotes' mirrors' runs, files and bytes, counted with their runs."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsLoaded)


@dataclass(frozen=True)
class FolderPage:
    """A tree folder's first page, read beside the changes that touched it: for tree
    ``generation`` (the run shown), at the ``limit`` its refresh asked for."""

    generation: int
    key: bytes
    limit: int
    page: ChildPage


@dataclass
class IndexChanged(Message, bubble=False):
    """A delta read from the change feed: never replaces another (deltas add up).

    The explorer reads it and posts it to the app, which hands a copy to every screen
    (so it must not bubble back up to the app).
    """

    updated: tuple[RunRow, ...]
    removed: tuple[int, ...]
    changed_paths: frozenset[tuple[int, bytes]]
    """(root id, key) of every file or folder the events touched, and their parents."""
    counts: IndexCounts | None
    """None: read after the delta is shown (``IndexCounted``), so as not to delay it."""
    last_event: int
    rescanned_roots: frozenset[int] = frozenset()
    """Roots with a 'scan' event: their runs were all re-read (absent ones are gone)."""
    full: bool = False
    """Too many events to follow one by one: ``updated`` is every run in the index."""
    roots: tuple[tuple[int, bytes], ...] = ()
    pages: tuple[FolderPage, ...] = ()
    """New pages of the tree's open folders that changed (the rest the tree asks for)."""
    trash_roots: frozenset[int] = frozenset()
    """Roots whose trash changed: a view of the trash reloads."""
    rescanned_folders: frozenset[tuple[int, bytes]] = frozenset()
    """(root id, key) of folders a 'scan' event covered: their runs, and those above them,
    were re-read (``events.in_scope``; absent ones are gone)."""


class CountWanted(Message):
    """A change went out: the index's totals are to be read again (when is the screen's
    choice, ``ExplorerScreen._count_soon``)."""


@dataclass
class IndexCounted(Message):
    """The index's totals, read after an ``IndexChanged`` went out without them: over a
    million files they take longer than the rest of the change."""

    counts: IndexCounts


@dataclass
class ChildrenLoaded(Message):
    """One page of a tree folder, answering request number ``request`` of tree ``generation``."""

    generation: int
    request: int
    page: ChildPage
    refresh: bool = False


@dataclass
class PreviewReady(Message):
    """Rendered sections of a preview, for the request numbered ``token``."""

    token: int
    key: bytes
    sections: tuple[RenderableType, ...]
    artifact: ArtifactRow | None = None
    scroll_end: bool = False
    lines: tuple[list[Segment], ...] | None = None
    """The sections laid out at ``width`` on the worker (the UI thread only draws them)."""
    width: int = 0
    final: bool = True
    """False for the quick first view of a big file: the whole view follows."""
    warnings: tuple[str, ...] = ()
    """What the file's preview warns of (``store.preview.Preview.warnings``): kept in the
    pane's border, in sight wherever the view is scrolled."""


@dataclass
class ChecklistsLoaded(Message):
    """Checklist results by run id (all runs, or the ones a delta touched)."""

    request: int
    results: tuple[tuple[int, ChecklistResult], ...]
    errors: tuple[str, ...] = ()


@dataclass
class UserStateLoaded(Message):
    """Exact pins and notes of the index's roots: ((root, run-relative path), ...)."""

    pins: frozenset[tuple[bytes, str]]
    notes: tuple[tuple[tuple[bytes, str], str], ...]
    said: str = ""
    """What to tell the user (after a pin or note change)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, UserStateLoaded) and not message.said
