"""The files pane: the selected run's artifact tree, reading its pages from the index (or a
followed remote's mirror) in the tree's page workers, following index changes itself.

The tree widget (``tui.widgets.artifact_tree``) knows folders, pages, marks and finding;
this pane knows where pages come from, what a run's root line says, which entries are
pinned, and which open folders a delta of the change feed touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text

from store import paths
from store.index.events import in_scope
from store.index.views import ChildPage, ReaderPool, children_page
from store.integrity import problems_of
from store.safetext import visible
from tui.format import WARNING
from tui.hosts import Hosts
from tui.messages import FolderPage, IndexChanged
from tui.widgets.artifact_tree import ArtifactTree, outside_folders

if TYPE_CHECKING:
    from store.checklist import ChecklistResult
    from store.index.events import Delta
    from store.index.query import RunRow

MAX_PAGES_WITH_CHANGES = 8
"""Open tree folders the change reader reads beside the changes; beyond, the tree asks."""
ShownFolders = tuple[int, int, dict[bytes, int]]
"""The file tree when a read of the changes began: generation, root id, open folders."""


def run_label(run: RunRow, checklist: ChecklistResult | None) -> Text:
    """The tree's root line: name, missing checklist items (red), path and framework."""
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append(visible(run.name), style="bold")
    if checklist is not None and not checklist.complete:
        label.append("  ")
        label.append(f"✗ missing {visible(', '.join(checklist.short_items()))}", style=WARNING)
    label.append(f"  {paths.display(run.path) or '.'} · {run.framework}", style="dim")
    return label


class FilesPane(ArtifactTree):
    """One run's files, a page at a time, from the index or a mirror."""

    def __init__(
        self,
        pool: ReaderPool,
        *,
        hosts: Hosts,
        clock: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(self._load_page, clock=clock, id=id)
        self.pool = pool
        self.hosts = hosts

    def on_mount(self) -> None:
        self.border_title = "Files"

    def _load_page(self, root_id: int, folder: bytes, offset: int, limit: int) -> ChildPage:
        """Called on a tree worker thread."""
        mirrored = self.hosts.children(root_id, folder, offset, limit)
        if mirrored is not None:
            return mirrored
        with self.pool.connection() as db:
            return children_page(db, root_id, folder, offset=offset, limit=limit)

    def show(self, run: RunRow, checklist: ChecklistResult | None) -> None:
        """Show ``run``'s folder (and its folders elsewhere), flagging its problems."""
        self.show_run(
            run.id,
            run.root_id,
            run.path,
            run_label(run, checklist),
            tuple(problems_of(run.meta)),
            outside_folders(run.path, run.meta),
        )

    def show_pins(self, pins: frozenset[tuple[bytes, str]], root: bytes | None) -> None:
        """Mark the shown entries pinned in the user state: ``pins`` are (root path,
        root-relative path), ``root`` the shown run's root path."""
        if self.root_id is None:
            return
        if self.hosts.is_remote(self.root_id):  # pins name this machine's paths
            self.set_pinned(frozenset())
            return
        self.set_pinned(frozenset(paths.key(rel) for r, rel in pins if r == root))

    def shown_folders(self) -> ShownFolders | None:
        """What the change reader needs to read this tree's changed pages beside the
        changes (``pages_changed``), taken on the UI thread when a read begins."""
        if self.root_id is None:
            return None
        return (self.generation, self.root_id, self.open_folders())

    def pages_changed(self, shown: ShownFolders, delta: Delta) -> tuple[FolderPage, ...]:
        """On the change reader's thread: new first pages of the open folders ``delta``
        touched (none when too many: the tree then asks for them itself, as before)."""
        generation, root_id, limits = shown
        if delta.full or root_id in delta.rescanned_roots:
            keys = set(limits)
        else:
            keys = {key for rid, key in delta.folders if rid == root_id and key in limits}
            covered = in_scope(delta.rescanned_folders)
            keys |= {k for k in limits if covered(root_id, k)}
        if len(keys) > MAX_PAGES_WITH_CHANGES:
            return ()
        return tuple(
            FolderPage(generation, key, limits[key], self.read_page(root_id, key, 0, limits[key]))
            for key in sorted(keys)
        )

    def index_changed(self, message: IndexChanged) -> None:
        """Follow a delta of the change feed (the shown run is still there): its problems,
        and the open folders it touched, from the pages read beside it or asked anew."""
        for run in message.updated:
            if run.id == self.run_id:
                self.problems = tuple(problems_of(run.meta))
        if self.root_id is None:
            return
        if self.root_id in message.rescanned_roots or message.full:
            self.refresh_folders(set(self.open_folders()), message.pages)
        else:
            changed = {k for r, k in message.changed_paths if r == self.root_id}
            covered = in_scope(message.rescanned_folders)
            changed |= {k for k in self.open_folders() if covered(self.root_id, k)}
            self.refresh_folders(changed, message.pages)

    def refresh_open(self) -> None:
        """Reload every open folder (a followed remote's mirror was pulled again)."""
        self.refresh_folders({n.data.key for n in self._open_folders(self.root) if n.data})
