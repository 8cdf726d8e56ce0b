"""The one-line status bar: index path, watcher health, counts, filter and sort."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual.widgets import Static

from store.index.views import IndexCounts
from tui.format import human_size


@dataclass(frozen=True)
class StatusInfo:
    index: str = ""
    watcher: str = "off"
    watcher_ok: bool = False
    counts: IndexCounts | None = None
    shown: int = 0
    marked: int = 0
    marked_hidden: int = 0
    """Of the marked runs, those the filter hides (the actions on marks leave them out)."""
    filter: str = ""
    sort: str = ""
    hosts: str = ""
    """Followed remotes and their state (``tui.hosts``); empty without remotes."""
    hosts_ok: bool = True
    elsewhere: tuple[int, int, int] = (0, 0, 0)
    """Runs, files and bytes in the followed remotes' mirrors: the table shows their runs,
    so the totals count them too."""


class StatusLine(Static):
    """Rebuilt from a ``StatusInfo`` as plain ``Text`` (the index path may hold anything)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.info = StatusInfo()
        self._shown: Text | None = None

    def change(self, **changes: Any) -> None:
        """Show ``changes``; repaint only this line when its size is fixed (``height: 1``
        in the app's styles): a layout of the whole screen costs tens of milliseconds, and
        the live view changes the counts after every commit."""
        self.info = replace(self.info, **changes)
        text = self.render_info()
        if text == self._shown:
            return
        self._shown = text
        height, width = self.styles.height, self.styles.width
        fixed = height is not None and height.is_cells and (width is None or not width.is_auto)
        self.update(text, layout=not fixed)

    def render_info(self) -> Text:
        """Counts, marks, the filter and the sort first: at 80 columns the line is cut from
        the end, so the watcher's (possibly long) description and the index path go."""
        info = self.info
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("artlens ", style="bold")
        text.append("● " if info.watcher_ok else "○ ", style="green" if info.watcher_ok else "dim")
        if info.counts is not None:
            counts, (runs, files, size) = info.counts, info.elsewhere
            text.append(
                f"{info.shown}/{counts.runs + runs} runs · {counts.artifacts + files} files · "
                f"{human_size(counts.bytes + size)} │ "
            )
        if info.marked:
            text.append(f"{info.marked} marked", style="bold")
            if info.marked_hidden:
                text.append(f" ({info.marked_hidden} hidden)", style="bold yellow")
            text.append(" │ ")
        if info.filter:
            text.append("filter: ")
            text.append(info.filter, style="bold")
            text.append(" │ ")
        if info.sort:  # short, and what the table's order means: before the watcher's words
            text.append(f"sort: {info.sort} │ ")
        if info.hosts:
            text.append(info.hosts, style="" if info.hosts_ok else "bold yellow")
            text.append(" │ ")
        text.append(info.watcher)
        text.append(" │ ")
        text.append(info.index, style="dim")
        return text
