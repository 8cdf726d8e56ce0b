"""A note of a few lines that says when it is cut: its last line ends in ``…``.

A ``Static`` with a ``max-height`` drops the lines its text wraps to past that height
without a sign, so a warning or a legend ended mid-sentence and read as whole.  The CSS
``text-overflow`` rule only marks a line cut across, never lines cut off below.
"""

from __future__ import annotations

from typing import cast

from textual.app import RenderResult
from textual.content import Content
from textual.css.styles import RulesMap
from textual.geometry import Size
from textual.widgets import Static

ELLIPSIS = "…"


class ClampedStatic(Static):
    """A ``Static`` whose text, when it wraps to more lines than its ``max-height`` lets it
    show, shows the lines that fit with the last one ending in ``…`` (give it a tooltip or
    another place that says the whole text)."""

    def line_limit(self) -> int | None:
        """The lines of text the ``max-height`` lets this show; None without one."""
        max_height = self.styles.max_height
        if max_height is None:
            return None
        limit = max_height.resolve(self.container_size, self.app.size)
        lines = int(limit) - self.styles.gutter.height
        return max(1, lines)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """The whole text's height (``max-height`` bounds it), never the height of the text
        as cut at the width shown before a resize."""
        visual = self.visual
        if not width or not isinstance(visual, Content):
            return super().get_content_height(container, viewport, width)
        # the styles are read as a rules map, as Textual's own widgets pass them
        return visual.get_height(cast("RulesMap", self.styles), width)

    def render(self) -> RenderResult:
        visual = self.visual
        width = self.content_size.width
        limit = self.line_limit()
        if (
            limit is None
            or width < 2
            or not isinstance(visual, Content)
            or self.styles.text_wrap == "nowrap"  # one line each: text-overflow marks a cut
        ):
            return visual
        lines = visual.wrap(width)
        if len(lines) <= limit:
            return visual
        last = lines[limit - 1].rstrip()
        if last.cell_length > width - len(ELLIPSIS):
            last = last.truncate(width - len(ELLIPSIS))
        return Content("\n").join([*lines[: limit - 1], last + ELLIPSIS])
