"""The artifact tree: one run's files, loaded a page at a time when a folder opens.

Pages are read in thread workers (``load_page`` is called off the UI thread) and come back
as ``ChildrenLoaded`` messages, so a folder with 100,000 files opens at once: the first page
shows, and a "… N more" node loads the next one.  Labels are ``Text`` (never markup).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from store import paths
from store.index.query import FolderEntry
from store.index.views import PAGE_SIZE, ChildPage
from store.integrity import link_state, problem_for
from tui.format import DANGER, cut_name_apart, human_age, human_size
from tui.keys import titled
from tui.messages import ChildrenLoaded, FolderPage
from tui.workers import SaysWorkerFailures

TYPE_AHEAD_SECONDS = 1.0
"""Keys typed within this long of each other extend the jump-to-name prefix."""
FLAGGED = frozenset({"dangerous", "corrupt"})
FIND_PAGE = 5000
"""Entries a find reads from the index per query when it searches past the loaded pages."""
_DIGITS = re.compile(r"(\d+)")

PageLoader = Callable[[int, bytes, int, int], ChildPage]
"""(root id, folder key, offset, limit) -> page; runs on a worker thread."""


@dataclass
class NodeInfo:
    """What a tree node stands for: a folder, a file, or the "… N more" placeholder."""

    key: bytes
    is_dir: bool
    entry: FolderEntry | None = None
    loaded: bool = False
    more_offset: int | None = None
    outside: bool = False
    """A folder of the run that lives outside its folder (an MLflow 3 logged model)."""
    spelled: str | None = None
    """The name as shown when a sibling's name looks the same (``paths.shown_names``:
    ``café`` in NFC and in NFD), else None (the entry's own name)."""

    @property
    def shown_name(self) -> str:
        """The name the tree shows for this node's entry."""
        if self.spelled is not None:
            return self.spelled
        return self.entry.name if self.entry is not None else paths.display(paths.name_of(self.key))


def outside_folders(run_path: bytes, meta: dict[str, Any]) -> tuple[bytes, ...]:
    """The run's own folders elsewhere under the root (``extra_paths``: MLflow 3 keeps a
    run's logged models in ``<experiment>/models/m-<id>/``), as root-relative keys."""
    extra = meta.get("extra_paths")
    if not isinstance(extra, list):
        return ()
    found = []
    for item in extra[:100]:
        if not isinstance(item, str) or not item:
            continue
        key = paths.key(item)
        if run_path and (key == run_path or key.startswith(run_path + b"/")):
            continue
        found.append(key)
    return tuple(sorted(found))


def outside_label(key: bytes) -> Text:
    """``logged model m-1a2b/  in 1/models/m-1a2b``: what it is and where it really lives."""
    label = Text(no_wrap=True, overflow="ellipsis")
    name = paths.display(paths.name_of(key))
    kind = "logged model " if name.startswith("m-") else ""
    label.append(f"⧉ {kind}{name}/", style="bold cyan")
    label.append(f"  in {paths.display(key)}", style="dim")
    return label


def natural_key(name: str) -> list[str | int]:
    """Sort key that compares runs of digits as numbers: ``epoch=8`` before ``epoch=10``."""
    parts: list[str | int] = []
    for index, part in enumerate(_DIGITS.split(name)):
        parts.append(int(part) if index % 2 else part.lower())
    return parts


def entry_label(
    entry: FolderEntry,
    now: float,
    problem: str | None = None,
    name: str | None = None,
    width: int | None = None,
    siblings: Sequence[str] = (),
) -> Text:
    """Name, then size, kind and age, dim; a red "!" when a model file is unsafe or broken,
    or when it refers to something that is gone (``problem``, from ``store.integrity``);
    ``name``: the name to show instead of the entry's (spelled apart from a look-alike).
    ``width``: the cells the label may take; past them the name is cut in its middle
    (its extension kept, ``cut_name``) and the details after it at their end; a cut that
    would read as one of the ``siblings``' names (as shown) keeps what tells them apart
    (``cut_name_apart``)."""
    flag = Text()
    art = entry.artifact
    if (art is not None and art.verdict in FLAGGED) or problem is not None:
        flag.append("!", style=DANGER)
        flag.append(" ")
    name = entry.name if name is None else name
    details = Text()
    if entry.is_dir:
        shown, name_style = name + "/", "bold"
        details.append(f"  {human_size(entry.size)} · {entry.count} files", style="dim")
    else:
        shown, name_style = name, ""
        if art is not None and art.ftype == "symlink":
            details.append(f" → {paths.display(art.link_target or '?')}", style="dim italic")
        state = link_state(problem) if problem is not None else None
        if state is not None:
            details.append(f" ({state})", style="bold red")
        details.append(f"  {human_size(entry.size)}", style="dim")
        if entry.kind and entry.kind != "other":
            details.append(f" · {entry.kind}", style="dim")
        details.append(f" · {human_age(entry.mtime, now)}", style="dim")
    label = Text(no_wrap=True, overflow="ellipsis")
    room = None if width is None else width - flag.cell_len
    whole = cell_len(shown) + details.cell_len
    if room is not None and whole > room:
        # the name first (whole when it fits with a cell or so of the details to say they
        # are cut); the details have what is left (the preview shows both whole)
        name_room = max(room - details.cell_len, min(cell_len(shown), room - 3))
        if entry.is_dir:
            shown = cut_name_apart(name, max(0, name_room - 1), siblings) + "/"
        else:
            shown = cut_name_apart(name, max(0, name_room), siblings)
    label.append_text(flag)
    label.append(shown, style=name_style)
    label.append_text(details)
    if width is not None:
        label.truncate(max(0, width), overflow="ellipsis")
    return label


class ArtifactTree(SaysWorkerFailures, Tree[NodeInfo]):
    """A lazy tree of one run's folder."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("k", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("l", "open_node", "Open", show=False, id="tree.open"),
        Binding("h", "close_node", "Close", show=False, id="tree.close"),
        Binding("g", "first", "Top", show=False, id="tree.top"),
        Binding("G", "last", "Bottom", show=False, id="tree.bottom"),
        Binding(
            "f",
            "find",
            "Find",
            show=False,
            id="tree.find",
            tooltip="Type a name to jump to it; every key types (enter or escape ends)",
        ),
        titled(
            Binding(
                "space",
                "mark_file",
                "Mark",
                id="tree.mark",
                tooltip="Mark the file (two marked files: d diffs them)",
            ),
            "files: mark / unmark",
            "Mark a file for a diff",
        ),
    ]

    def __init__(
        self, load_page: PageLoader, *, clock: Callable[[], float] = time.time, **kwargs: Any
    ) -> None:
        super().__init__(Text("no run selected", style="dim"), **kwargs)
        self.load_page = load_page
        self.clock = clock
        self.root_id: int | None = None
        self.run_id: int | None = None
        self.generation = 0
        self._pending: dict[int, TreeNode[NodeInfo]] = {}
        self._requests = 0
        self._typed = ""
        self._typed_at = 0.0
        self._finding = False
        """After ``f``: every printable key types, even those bound to actions."""
        self.problems: tuple[str, ...] = ()
        self.pinned: frozenset[bytes] = frozenset()
        """Keys of pinned files and folders (user state): marked with a "◆"."""
        """The shown run's integrity problems (``store.integrity``): flagged on their files."""
        self.show_root = True
        self.guide_depth = 2
        self.marked_files: dict[tuple[int, bytes], str] = {}
        self._siblings: dict[int, tuple[tuple[int, int, int], list[str]]] = {}
        """(root id, key) -> name of files marked for a diff; kept across runs."""
        self.outside: tuple[bytes, ...] = ()
        """The shown run's folders outside its own (shown after its files)."""
        self._early_moves = 0
        """Cursor moves typed before the run's first page arrived: applied when it does."""
        self._jump_after: str | None = None
        """A find matched past the loaded pages: jump to it when they arrive."""

    # -- showing a run -------------------------------------------------------------------

    def show_run(
        self,
        run_id: int | None,
        root_id: int,
        folder: bytes,
        label: Text,
        problems: tuple[str, ...] = (),
        outside: tuple[bytes, ...] = (),
    ) -> None:
        """Replace the tree with the run at ``folder`` and start loading its first page;
        ``outside`` folders of the run (logged models) are listed after its files."""
        self.problems = problems
        self.outside = outside
        self.generation += 1
        self.workers.cancel_group(self, "tree")
        self.run_id, self.root_id = run_id, root_id
        self._pending.clear()
        self.clear()
        self.root.set_label(label)
        self.root.data = NodeInfo(folder, True)
        self.root.allow_expand = True
        self.root.expand()
        self._early_moves = 0
        self._request(self.root, 0, refresh=False)

    def problem_for(self, key: bytes) -> str | None:
        """The integrity problem about the file at ``key`` (root-relative), if any."""
        if not self.problems or self.root.data is None:
            return None
        folder = self.root.data.key
        if folder and not key.startswith(folder + b"/"):
            return None
        return problem_for(self.problems, key[len(folder) + 1 :] if folder else key)

    def _label(
        self,
        entry: FolderEntry,
        now: float,
        spelled: str | None = None,
        width: int | None = None,
        siblings: Sequence[str] = (),
    ) -> Text:
        pin = Text("◆ ", style="bold yellow", no_wrap=True, overflow="ellipsis")
        pinned = entry.key in self.pinned
        if pinned and width is not None:
            width -= pin.cell_len
        problem = self.problem_for(entry.key)
        label = entry_label(entry, now, problem, spelled, width, siblings)
        return pin + label if pinned else label

    def set_pinned(self, keys: frozenset[bytes]) -> None:
        """Mark pinned entries; relabels the loaded nodes whose pin changed."""
        changed = keys ^ self.pinned
        self.pinned = keys
        if not changed:
            return
        now = self.clock()
        for folder in self._open_folders(self.root):
            for child in folder.children:
                data = child.data
                if data is not None and data.entry is not None and data.key in changed:
                    child.set_label(self._label(data.entry, now, data.spelled))

    def show_nothing(self, message: str) -> None:
        self.problems = ()
        self.outside = ()
        self.generation += 1
        self.run_id = self.root_id = None
        self._pending.clear()
        self.clear()
        self.root.set_label(Text(message, style="dim"))
        self.root.data = None

    # -- loading -------------------------------------------------------------------------

    def _request(
        self, node: TreeNode[NodeInfo], offset: int, *, refresh: bool, limit: int = PAGE_SIZE
    ) -> None:
        info = node.data
        if info is None or self.root_id is None:
            return
        folder = info.key
        if info.more_offset is not None and node.parent is not None:
            parent_info = node.parent.data
            folder = parent_info.key if parent_info is not None else folder
        if refresh:
            limit = self._refresh_limit(node)
        # Node ids are not usable here: Tree.clear() reuses them while keeping stale entries.
        self._requests += 1
        self._pending[self._requests] = node
        self._load(self.generation, self._requests, self.root_id, folder, offset, limit, refresh)

    @work(thread=True, group="tree", exit_on_error=False)
    def _load(
        self,
        generation: int,
        request: int,
        root_id: int,
        folder: bytes,
        offset: int,
        limit: int,
        refresh: bool,
    ) -> None:
        page = self.read_page(root_id, folder, offset, limit)
        self.post_message(ChildrenLoaded(generation, request, page, refresh))

    def read_page(self, root_id: int, folder: bytes, offset: int, limit: int) -> ChildPage:
        """One page of ``folder`` as the tree shows it (any thread: it reads the index)."""
        page = self.load_page(root_id, folder, offset, limit)
        if page.offset == 0 and len(page.entries) >= page.total:
            # The whole folder is here: numbers in names in numeric order (epoch=8 before
            # epoch=10).  A folder read in pages keeps the index's order across pages.
            ordered = sorted(page.entries, key=lambda e: (not e.is_dir, natural_key(e.name)))
            page = ChildPage(tuple(ordered), page.offset, page.total)
        return page

    @staticmethod
    def _refresh_limit(node: TreeNode[NodeInfo]) -> int:
        """How many entries a refresh of ``node`` reads: every one it shows."""
        return max(PAGE_SIZE, sum(1 for c in node.children if c.data and c.data.entry))

    def open_folders(self) -> dict[bytes, int]:
        """The loaded, open folders, each with the limit a refresh of it reads: a reader of
        the change feed can read their new pages beside the changes (``refresh_folders``)."""
        return {
            node.data.key: self._refresh_limit(node)
            for node in self._open_folders(self.root)
            if node.data is not None
        }

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeInfo]) -> None:
        info = event.node.data
        if info is not None and info.is_dir and not info.loaded and event.node is not self.root:
            info.loaded = True
            self._request(event.node, 0, refresh=False)

    def on_tree_node_selected(self, event: Tree.NodeSelected[NodeInfo]) -> None:
        info = event.node.data
        if info is not None and info.more_offset is not None and event.node.parent is not None:
            event.node.set_label(Text("loading…", style="dim italic"))
            self._request(event.node, info.more_offset, refresh=False)

    def on_children_loaded(self, message: ChildrenLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        node = self._pending.pop(message.request, None)
        if node is None or not self._attached(node):
            return
        info = node.data
        if info is not None and info.more_offset is not None and node.parent is not None:
            parent = node.parent
            node.remove()
            self._append(parent, message.page)
            self._jump_when_loaded()
            return
        if info is not None:
            info.loaded = True
        if message.refresh:
            self._reconcile(node, message.page)
        else:
            node.remove_children()
            self._append(node, message.page)
        self._jump_when_loaded()
        if node is self.root and self._early_moves:
            moves, self._early_moves = self._early_moves, 0
            self.cursor_line = max(0, min(self.last_line, max(self.cursor_line, 0) + moves))

    def _root_pending(self) -> bool:
        return self.root_id is not None and any(n is self.root for n in self._pending.values())

    def action_cursor_down(self) -> None:
        """Down; typed before the run's files arrived, it waits for them (j 2 j j)."""
        if self._root_pending():
            self._early_moves += 1
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self._root_pending():
            self._early_moves -= 1
            return
        super().action_cursor_up()

    def _attached(self, node: TreeNode[NodeInfo]) -> bool:
        while node.parent is not None:
            if node not in node.parent.children:
                return False
            node = node.parent
        return node is self.root

    def _append(self, node: TreeNode[NodeInfo], page: ChildPage) -> None:
        now = self.clock()
        before = self._first_outside(node)
        for entry in page.entries:
            label, data = self._label(entry, now), NodeInfo(entry.key, entry.is_dir, entry)
            if before is not None:
                node.add(label, data, before=before, allow_expand=entry.is_dir)
            else:
                node.add(label, data, allow_expand=entry.is_dir)
        self._place_more(node, page)
        self._spell_twins(node)

    def _spell_twins(self, node: TreeNode[NodeInfo]) -> None:
        """Spell apart the loaded children of ``node`` whose names would look the same
        (``café`` in NFC and in NFD, a zero-width joiner): relabel those whose spelling
        changed, as a look-alike arrives or goes."""
        children = [c for c in node.children if c.data is not None and c.data.entry is not None]
        raw = [paths.name_of(c.data.key) for c in children if c.data is not None]
        now = self.clock()
        for child, name, own in zip(children, paths.shown_names(raw), raw, strict=True):
            data = child.data
            if data is None or data.entry is None:
                continue
            spelled = name if name != paths.display(own) else None
            if spelled != data.spelled:
                data.spelled = spelled
                child.set_label(self._label(data.entry, now, spelled))

    def _place_more(self, node: TreeNode[NodeInfo], page: ChildPage) -> None:
        for child in list(node.children):
            if child.data is not None and child.data.more_offset is not None:
                child.remove()
        first_outside = self._first_outside(node)
        shown = page.offset + len(page.entries)
        if shown < page.total:
            more = NodeInfo(b"", False, None, more_offset=shown)
            text = Text(f"… {page.total - shown} more (enter to load)", style="dim italic")
            if first_outside is not None:
                node.add_leaf(text, more, before=first_outside)
            else:
                node.add_leaf(text, more)
        if node is self.root:
            present = {c.data.key for c in node.children if c.data is not None and c.data.outside}
            for key in self.outside:
                if key not in present:
                    node.add(
                        outside_label(key), NodeInfo(key, True, outside=True), allow_expand=True
                    )

    def _first_outside(self, node: TreeNode[NodeInfo]) -> TreeNode[NodeInfo] | None:
        """The first of the run's outside folders (kept last, after the run's own files)."""
        if node is not self.root:
            return None
        return next((c for c in node.children if c.data is not None and c.data.outside), None)

    def _reconcile(self, node: TreeNode[NodeInfo], page: ChildPage, nested: bool = True) -> None:
        """Bring loaded children up to date by key: update labels, add new, drop gone;
        ``nested``: reload the open folders inside too (unless the caller does)."""
        now = self.clock()
        wanted = {e.key for e in page.entries}
        for child in list(node.children):
            data = child.data
            if data is not None and data.more_offset is None and data.key not in wanted:
                if child is self.cursor_node:
                    # The file under the cursor is gone (a checkpoint rotated away): the
                    # node that takes its line is highlighted, so the preview follows.
                    self.call_after_refresh(self._rehighlight)
                child.remove()
        for index, entry in enumerate(page.entries):
            children = [
                c
                for c in node.children
                if c.data and c.data.more_offset is None and not c.data.outside
            ]
            current = children[index] if index < len(children) else None
            had = current.data if current is not None else None
            same = had is not None and had.key == entry.key
            label = self._label(entry, now, had.spelled if had is not None and same else None)
            if current is not None and current.data is not None and same:
                current.data.entry = entry
                if current.label != label:
                    current.set_label(label)
                    if current is self.cursor_node and entry.is_dir:
                        # The preview shows this folder's totals: let it redraw them.
                        self.post_message(Tree.NodeHighlighted(current))
                if nested and current.data.is_dir and current.data.loaded and current.is_expanded:
                    self._request(current, 0, refresh=True)
                continue
            data = NodeInfo(entry.key, entry.is_dir, entry)
            before = current if current is not None else self._first_outside(node)
            if before is not None:
                node.add(label, data, before=before, allow_expand=entry.is_dir)
            else:
                node.add(label, data, allow_expand=entry.is_dir)
        self._place_more(node, page)
        self._spell_twins(node)

    def _rehighlight(self) -> None:
        node = self.cursor_node
        if node is not None:
            self.post_message(Tree.NodeHighlighted(node))

    def refresh_folders(self, keys: set[bytes], pages: Sequence[FolderPage] = ()) -> None:
        """Reload the loaded, open folders whose key is in ``keys`` (after index events).

        A folder whose new page came read already (read for this tree, at the limit it
        still needs) is updated now, in the same turn as the runs table: no worker to
        start, no second redraw of the screen before the tree shows the change.  With
        ``pages``, ``keys`` must name every open folder that changed."""
        ready = {p.key: p for p in pages if p.generation == self.generation}
        for node in self._open_folders(self.root):
            if node.data is None or node.data.key not in keys:
                continue
            page = ready.get(node.data.key)
            if page is not None and page.limit == self._refresh_limit(node):
                # every changed open folder is in ``keys``: one inside that is not, is as it was
                self._reconcile(node, page.page, nested=False)
            else:
                self._request(node, 0, refresh=True)

    def _open_folders(self, node: TreeNode[NodeInfo]) -> list[TreeNode[NodeInfo]]:
        found: list[TreeNode[NodeInfo]] = []
        if node.data is not None and node.data.is_dir and node.data.loaded:
            found.append(node)
            for child in node.children:
                found.extend(self._open_folders(child))
        return found

    # -- keys ----------------------------------------------------------------------------

    def action_mark_file(self) -> None:
        """Mark or unmark the file under the cursor; on a folder, open or close it."""
        node = self.cursor_node
        if node is None or node.data is None or self.root_id is None:
            return
        info = node.data
        if info.is_dir or info.entry is None:
            if node.allow_expand:
                node.toggle()
            return
        mark = (self.root_id, info.key)
        if mark in self.marked_files:
            del self.marked_files[mark]
        else:
            self.marked_files[mark] = info.shown_name
        node.refresh()

    def render_label(self, node: TreeNode[NodeInfo], base_style: Any, style: Any) -> Text:
        """The node's label, fitted to the tree's width: a long name is cut with an
        ellipsis where the tree would otherwise scroll sideways (the preview shows it
        whole)."""
        label = super().render_label(node, base_style, style)
        info = node.data
        if info is not None and not info.is_dir and (self.root_id, info.key) in self.marked_files:
            label = Text.assemble(("✓", "bold reverse"), " ", label)  # ● is the live marker
        room = self._room(node)
        if room is None or label.cell_len <= room:
            return label
        own = Text(node.label) if isinstance(node.label, str) else node.label
        fits = max(0, own.cell_len - (label.cell_len - room))
        if info is not None and info.entry is not None:
            siblings = self._sibling_names(node.parent) if node.parent is not None else []
            fitted = self._label(info.entry, self.clock(), info.spelled, fits, siblings)
        else:
            fitted = own.copy()
            fitted.truncate(fits, overflow="ellipsis")
        fitted.stylize(style)
        return label[: len(label.plain) - len(own.plain)] + fitted

    def _sibling_names(self, parent: TreeNode[NodeInfo]) -> list[str]:
        """The shown names of ``parent``'s entries, sorted, kept until its children change:
        a label is fitted at every render, and a folder may hold 100,000 of them."""
        children = parent.children
        version = (len(children), id(children[0]), id(children[-1])) if children else (0, 0, 0)
        cached = self._siblings.get(id(parent))
        if cached is not None and cached[0] == version:
            return cached[1]
        names = sorted(
            child.data.shown_name
            for child in children
            if child.data is not None and child.data.entry is not None
        )
        if len(self._siblings) > 64:
            self._siblings.clear()
        self._siblings[id(parent)] = (version, names)
        return names

    def _room(self, node: TreeNode[NodeInfo]) -> int | None:
        """Cells for ``node``'s label: the tree's width less its guides, or None before
        the tree has a size."""
        width = self.scrollable_content_region.width
        if width <= 0:
            return None
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        return max(1, width - depth * self.guide_depth)

    def action_first(self) -> None:
        self.cursor_line = 0

    def action_last(self) -> None:
        self.cursor_line = self.last_line

    def action_open_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.expand()

    def action_close_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def action_find(self) -> None:
        self._finding = True
        self._typed = ""
        self.border_subtitle = Text("find: ")

    def _end_find(self) -> None:
        self._finding = False
        self._typed = ""
        self.border_subtitle = None

    def _find_key(self, event: events.Key) -> None:
        """A key while finding: it types, edits, or ends the find (others pass through)."""
        char = event.character
        if event.key in ("escape", "enter"):
            self._end_find()
        elif event.key == "backspace":
            self._typed = self._typed[:-1]
        elif char and char.isprintable():
            self._typed += char.lower()
        else:
            self._end_find()
            return
        event.stop()
        event.prevent_default()
        if self._finding:
            found = not self._typed or self.jump_to(self._typed) or self.find_beyond(self._typed)
            subtitle = Text("find: ")
            subtitle.append(self._typed, style="bold" if found else "bold red")
            if not found:
                subtitle.append("  no match", style="dim")
            self.border_subtitle = subtitle

    def on_blur(self) -> None:
        if self._finding:
            self._end_find()

    def on_key(self, event: events.Key) -> None:
        """Type-ahead: printable keys that are not bindings jump to the next matching name."""
        if self._finding:
            self._find_key(event)
            return
        char = event.character
        if not char or not char.isprintable() or char == " ":
            return
        now = time.monotonic()
        active = bool(self._typed) and now - self._typed_at < TYPE_AHEAD_SECONDS
        if not active and event.key in self.screen.active_bindings:
            return
        self._typed = (self._typed if active else "") + char.lower()
        self._typed_at = now
        event.stop()
        event.prevent_default()
        self.jump_to(self._typed)

    def find_beyond(self, prefix: str) -> bool:
        """Search the pages not loaded yet of open folders, through the index: a find
        covers the whole folder, not only its first page.  True when a search started (the
        cursor jumps when the page holding the match arrives)."""
        started = False
        for folder in self._open_folders(self.root):
            more = [c for c in folder.children if c.data and c.data.more_offset is not None]
            if folder.data is None or not more or self.root_id is None:
                continue
            offset = more[0].data.more_offset if more[0].data else None
            if offset is not None:
                self._find_worker(self.generation, self.root_id, folder.data.key, offset, prefix)
                started = True
        return started

    @work(thread=True, group="tree-find", exit_on_error=False)
    def _find_worker(
        self, generation: int, root_id: int, folder: bytes, offset: int, prefix: str
    ) -> None:
        start = offset
        while True:
            page = self.load_page(root_id, folder, offset, FIND_PAGE)
            for index, entry in enumerate(page.entries):
                if entry.name.lower().startswith(prefix):
                    self.app.call_from_thread(
                        self._found_beyond, generation, folder, start, offset + index, prefix
                    )
                    return
            offset += len(page.entries)
            if not page.entries or offset >= page.total:
                self.app.call_from_thread(self._not_found_beyond, generation, prefix)
                return

    def _not_found_beyond(self, generation: int, prefix: str) -> None:
        if generation == self.generation and self._finding and self._typed == prefix:
            subtitle = Text("find: ")
            subtitle.append(prefix, style="bold red")
            subtitle.append("  no match", style="dim")
            self.border_subtitle = subtitle

    def _found_beyond(
        self, generation: int, folder: bytes, start: int, at: int, prefix: str
    ) -> None:
        """Load the folder's pages up to the match, then jump to it."""
        if generation != self.generation or (self._finding and self._typed != prefix):
            return
        for node in self._open_folders(self.root):
            if node.data is None or node.data.key != folder:
                continue
            for child in node.children:
                if child.data is not None and child.data.more_offset == start:
                    child.set_label(Text("loading…", style="dim italic"))
                    self._jump_after = prefix
                    self._request(child, start, refresh=False, limit=at - start + PAGE_SIZE)
                    return

    def _jump_when_loaded(self) -> None:
        prefix, self._jump_after = self._jump_after, None
        if prefix:
            self.jump_to(prefix)

    def jump_to(self, prefix: str) -> bool:
        """Move the cursor to the first visible node after it whose name starts with ``prefix``."""
        start = max(self.cursor_line, 0)
        count = self.last_line + 1
        for step in range(count):
            line = (start + step) % count if len(prefix) > 1 else (start + 1 + step) % count
            node = self.get_node_at_line(line)
            if node is None or node.data is None or node.data.entry is None:
                continue
            if node.data.entry.name.lower().startswith(prefix):
                self.move_cursor(node)
                return True
        return False
