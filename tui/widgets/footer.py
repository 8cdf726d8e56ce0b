"""Textual's footer, showing only the keys that fit whole beside the palette key.

Textual's footer lays every key out in one scrolling row and docks the palette key over
its right end: on a terminal narrower than the keys, the last ones were drawn under the
palette key, cut mid-word, a letter of one showing past it (``^p palettee`` at 60 columns).
"""

from __future__ import annotations

from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Footer

HELP_ACTION = "help"
"""The action of the key kept whenever it fits at all: it lists the keys left out."""


def _cells(widget: Widget, container: Size, viewport: Size) -> int:
    """Cells ``widget`` takes in the footer's row: its content, padding, border, margin."""
    styles = widget.styles
    return widget.get_content_width(container, viewport) + styles.gutter.width + styles.margin.width


class FittingFooter(Footer):
    """A footer that leaves out, whole, the keys that do not fit (help, ``?``, first kept)."""

    async def recompose(self) -> None:
        await super().recompose()
        self.fit_keys()

    def on_resize(self) -> None:
        self.fit_keys()

    def fit_keys(self) -> None:
        """Show the keys from the left while they fit whole before the palette key; when
        the help key would be left out, the keys before it make room for it."""
        width = self.size.width
        if width <= 0:
            return
        container, viewport = self.size, self.app.size
        row = [child for child in self.children if not child.has_class("-command-palette")]
        room = width - sum(
            _cells(child, container, viewport) for child in self.query(".-command-palette")
        )
        cells = [_cells(child, container, viewport) for child in row]
        shown: list[int] = []
        used = 0
        for index, need in enumerate(cells):
            if used + need > room:
                break
            shown.append(index)
            used += need
        helps = [i for i, child in enumerate(row) if _action(child).endswith(HELP_ACTION)]
        if helps and helps[0] not in shown and cells[helps[0]] <= room:
            while shown and used + cells[helps[0]] > room:
                used -= cells[shown.pop()]
            shown.append(helps[0])
        kept = set(shown)
        for index, child in enumerate(row):
            child.display = index in kept


def _action(widget: Widget) -> str:
    """The action a footer key runs ("" for a label or a group)."""
    action = getattr(widget, "action", "")
    return action if isinstance(action, str) else ""
