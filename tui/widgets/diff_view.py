"""A diff drawn with the Line API: only the visible rows are rendered, so a diff of a
20 MB log scrolls as fast as a small one.

Rows are built on a worker thread (``unified_rows``, ``side_rows``, ``summary_rows``) and
handed over whole; ``render_line`` turns one row into a ``Strip`` (cached) with line
numbers, syntax colours and the changed words highlighted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from store.diff import DiffLine, TextDiff, next_change, previous_change, side_by_side
from tui.diff_render import MARK, clean, diff_line_text

CACHE_ROWS = 400
"""Rendered rows kept; a screenful is far less."""


@dataclass(frozen=True, slots=True)
class Row:
    """One drawn row: a unified line, a side-by-side pair, or a prepared ``Text``."""

    kind: str
    """``line``, ``pair`` or ``text``."""
    left: DiffLine | None = None
    right: DiffLine | None = None
    text: Text | None = None


@dataclass(frozen=True)
class Rows:
    """Rows for one layout, where each block of changes starts, and the widest line."""

    rows: tuple[Row, ...]
    starts: tuple[int, ...]
    width: int


def _starts(rows: Sequence[Row]) -> tuple[int, ...]:
    starts: list[int] = []
    previous_changed = False
    for index, row in enumerate(rows):
        changed = _changed(row)
        if changed and not previous_changed:
            starts.append(index)
        previous_changed = changed
    return tuple(starts)


def _changed(row: Row) -> bool:
    if row.kind == "line" and row.left is not None:
        return row.left.tag != "equal"
    if row.kind == "pair":
        return any(side is not None and side.tag != "equal" for side in (row.left, row.right))
    if row.kind == "text" and row.text is not None:
        return row.text.plain[:1] in ("~", "+", "-", "?") or row.text.plain.startswith("values_")
    return False


def unified_rows(result: TextDiff) -> Rows:
    """Hunk headers and lines, as ``diff -u`` shows them."""
    rows: list[Row] = []
    width = 0
    for hunk in result.hunks:
        rows.append(Row("text", text=Text(hunk.header(), style="cyan", no_wrap=True)))
        for line in hunk.lines:
            rows.append(Row("line", left=line))
            width = max(width, len(line.text))
    return Rows(tuple(rows), _starts(rows), width)


def side_rows(result: TextDiff) -> Rows:
    """Old on the left, new on the right; replaced lines paired in order."""
    rows: list[Row] = []
    width = 0
    for hunk in result.hunks:
        rows.append(Row("text", text=Text(hunk.header(), style="cyan", no_wrap=True)))
        for left, right in side_by_side(hunk):
            rows.append(Row("pair", left=left, right=right))
            for side in (left, right):
                if side is not None:
                    width = max(width, len(side.text))
    return Rows(tuple(rows), _starts(rows), width)


def summary_rows(lines: Sequence[Text]) -> Rows:
    """Prepared lines (structured, table, tensor, model and binary diffs)."""
    rows = tuple(Row("text", text=line) for line in lines)
    return Rows(rows, _starts(rows), max((line.cell_len for line in lines), default=0))


class DiffView(ScrollView, can_focus=True):
    """Scrollable rows of a diff; ``n``/``N`` jump between blocks of changes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False, id="diff.down"),
        Binding("k", "scroll_up", "Up", show=False, id="diff.up"),
        Binding("g", "scroll_home", "Top", show=False, id="diff.top"),
        Binding("G", "scroll_end", "Bottom", show=False, id="diff.bottom"),
        Binding("h,left", "pan(-8)", "Left", show=False, id="diff.left"),
        Binding("l,right", "pan(8)", "Right", show=False, id="diff.right"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = Rows((), (), 0)
        self.side = False
        self.lexer: Any = None
        self.dark = True
        self.position = -1
        """The row of the change ``n``/``N`` last moved to (-1 before the first)."""
        self._number_width = 4
        self._cache: dict[tuple[int, int, int], Strip] = {}
        """(row, width, pan) -> the drawn row"""

    def show(self, data: Rows, *, side: bool, lexer: Any = None, dark: bool = True) -> None:
        """Replace the rows (the position resets to the top)."""
        self.data = data
        self.side = side
        self.lexer = lexer
        self.dark = dark
        self.position = -1
        self._cache.clear()
        highest = 1
        for row in data.rows[-200:]:
            for line in (row.left, row.right):
                if line is not None:
                    highest = max(highest, line.old_no or 0, line.new_no or 0)
        self._number_width = max(3, len(str(highest)))
        self._resize_virtual()
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def _resize_virtual(self) -> None:
        if self.side:
            # both halves pan together: scroll_x is how far their lines are shifted
            width = self.size.width + max(0, self.data.width - self._half_room())
        else:
            width = self.data.width + 2 * self._number_width + 4
        self.virtual_size = Size(max(width, 1), len(self.data.rows))

    def _half_room(self) -> int:
        """Cells a side-by-side half has for the text of a line (after its number)."""
        half = max(8, (self.size.width - 1) // 2)
        return max(1, half - self._number_width - 1)

    def action_pan(self, cells: int) -> None:
        self.scroll_to(x=max(0, self.scroll_x + cells), animate=False)

    def on_resize(self) -> None:
        self._cache.clear()
        self._resize_virtual()

    @property
    def change_count(self) -> int:
        return len(self.data.starts)

    def go_change(self, forward: bool) -> int | None:
        """Move to the next (or previous) block of changes; returns its row or None."""
        base = self.position
        if base < 0 and not forward:
            base = len(self.data.rows)
        found = (
            next_change(self.data.starts, base)
            if forward
            else previous_change(self.data.starts, base)
        )
        if found is None:
            return None
        self.position = found
        self._cache.clear()
        self.scroll_to(y=max(0, found - 3), animate=False)
        self.refresh()
        return found

    # -- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        style = self.rich_style
        if index >= len(self.data.rows):
            return Strip.blank(width, style)
        pan = scroll_x if self.side else 0
        key = (index, width, pan)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(index, width, pan)
            if len(self._cache) > CACHE_ROWS:
                self._cache.clear()
            self._cache[key] = strip
        if self.side:
            return strip.crop_extend(0, width, style)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, index)

    def _render_row(self, index: int, width: int, pan: int) -> Strip:
        row = self.data.rows[index]
        console = self.app.console
        current = index == self.position
        if row.kind == "text" and row.text is not None:
            text = row.text.copy()
            text.no_wrap = True
            text.end = ""
            if current:
                text.stylize("reverse", 0, 1)
            return Strip(text.render(console))
        if row.kind == "line" and row.left is not None:
            text = self._gutter(row.left, current)
            text.append_text(diff_line_text(row.left, lexer=self.lexer, dark=self.dark))
            return Strip(text.render(console))
        half = max(8, (width - 1) // 2)
        left = self._half(row.left, half, current, pan)
        right = self._half(row.right, width - half - 1, False, pan)
        line = Text(no_wrap=True, end="")
        line.append_text(left)
        line.append("│", style="dim")
        line.append_text(right)
        return Strip(line.render(console))

    def _gutter(self, line: DiffLine, current: bool) -> Text:
        w = self._number_width
        old = str(line.old_no) if line.old_no is not None else ""
        new = str(line.new_no) if line.new_no is not None else ""
        text = Text(no_wrap=True, end="")
        text.append(f"{old:>{w}} {new:>{w}} ", style="reverse dim" if current else "dim")
        colour = {"delete": "red", "insert": "green"}.get(line.tag, "dim")
        text.append(f"{MARK[line.tag]} ", style=f"bold {colour}")
        return text

    def _half(self, line: DiffLine | None, width: int, current: bool, pan: int) -> Text:
        w = self._number_width
        text = Text(no_wrap=True, end="", overflow="crop")
        if line is None:
            text.append(" " * width)
            return text
        number = line.old_no if line.tag == "delete" else line.new_no
        if line.tag == "equal" and number is None:
            number = line.old_no
        text.append(f"{number or '':>{w}} ", style="reverse dim" if current else "dim")
        body = diff_line_text(line, lexer=self.lexer, dark=self.dark)
        room = max(1, width - w - 1)
        if pan and body.cell_len:
            shifted = Text("…", style="dim") if body.cell_len > pan else Text()
            shifted.append_text(body[pan + 1 :])
            body = shifted
        if body.cell_len > room:
            body.truncate(room - 1)
            body.append("…", style="dim")
        text.append_text(body)
        text.pad_right(max(0, width - text.cell_len))
        text.truncate(width)
        return text

    def plain_rows(self, start: int = 0, count: int | None = None) -> list[str]:
        """Rows as plain text (tests and screenshots read them)."""
        end = len(self.data.rows) if count is None else start + count
        out: list[str] = []
        for row in self.data.rows[start:end]:
            if row.text is not None:
                out.append(row.text.plain)
            else:
                parts = [
                    MARK[side.tag] + clean(side.text) if side is not None else ""
                    for side in (row.left, row.right)
                ]
                out.append(" | ".join(parts) if row.kind == "pair" else parts[0])
        return out
