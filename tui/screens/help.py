"""The `?` screen: every binding of the screen beneath and of the diff screens, read from
the bindings themselves (``tui.keys``) with the keys ``[keys]`` changed."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keys import class_rows

INTRO = (
    "Panes: Runs (top), Files (left), Preview (right).  tab / shift+tab move between them.",
    "In the file tree, type the start of a name to jump to it (f first if it starts with a key).",
    "Metrics view (m, for the marked runs): space plots the metric under the cursor (up to 3 "
    "side by side), c clears the plots, escape goes back.  n writes a note on the run or file.",
)
"""Paragraphs, each one line of source text: the screen wraps them to its width (a line
broken by hand broke again mid-sentence wherever the terminal was narrower)."""

KEYS_HINT = (
    'Change a key in the user config (config.toml): a [keys] table of binding id = "keys", '
    'e.g. [keys] runs.filter = "ctrl+f,slash".  Each key\'s id is shown dim after it.',
)

KEY_CELLS = 16
"""Most cells the key column takes; a longer list of keys folds inside it, so the
descriptions keep a column of their own on a narrow terminal."""


def keys_table(rows: list[tuple[str, str, str]]) -> Table:
    """(key, description, id) rows in two columns: a description (and its id) that does not
    fit wraps under itself, never back under the keys."""
    width = min(max((cell_len(key) for key, _, _ in rows), default=4), KEY_CELLS)
    table = Table.grid(padding=(0, 2, 0, 0), expand=True)
    table.add_column(width=width, max_width=KEY_CELLS, overflow="fold")
    table.add_column(ratio=1, overflow="fold")
    for key, description, binding_id in rows:
        what = Text(description)
        if binding_id:
            what.append(f"  {binding_id}", style="dim")
        table.add_row(Text(key, style="bold"), what)
    return table


def diff_screen_rows(app: App[Any]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(title, [(key, description, id)]) for the run diff, file diff and versions screens."""
    from tui.screens.file_diff import FileDiffScreen
    from tui.screens.run_diff import RunDiffScreen
    from tui.screens.versions import VersionsScreen
    from tui.widgets.diff_view import DiffView

    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    for title, screen in (
        ("Run diff (d with two runs marked)", RunDiffScreen),
        ("File diff (enter on a changed file, or d with two files marked)", FileDiffScreen),
        ("Versions (v on a file)", VersionsScreen),
    ):
        rows = class_rows(app, screen)
        if screen is FileDiffScreen:
            rows += class_rows(app, DiffView)  # its scrolling and panning
        sections.append((title, rows))
    return sections


class HelpScreen(ModalScreen[None]):
    """Lists (key, what it does, binding id) for the screen underneath."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
        Binding("j,down", "line(1)", "Down", show=False, id="help.down"),
        Binding("k,up", "line(-1)", "Up", show=False, id="help.up"),
        Binding("g,home", "top", "Top", show=False, id="help.top"),
        Binding("G,end", "bottom", "Bottom", show=False, id="help.bottom"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows
        self.sections: list[tuple[str, list[tuple[str, str, str]]]] = []
        """(title, rows) as shown: this screen's rows untitled, then the diff screens'."""

    def compose(self) -> ComposeResult:
        intro = Text("artlens keys\n\n", style="bold")
        intro.append("\n".join((*INTRO, *KEYS_HINT)) + "\n", style="dim")
        self.sections = sections = [("", self.rows), *diff_screen_rows(self.app)]
        with VerticalScroll(id="help-body"):
            yield Static(intro, markup=False)
            for title, rows in sections:
                if title:
                    yield Static(Text(title, style="bold"), markup=False, classes="help-title")
                yield Static(keys_table(rows), markup=False)
            yield Static(
                Text("j/k scroll, g/G top and end; escape, q or ? closes.", style="dim"),
                markup=False,
                classes="help-title",
            )

    def shown_text(self) -> str:
        """What the screen shows, as plain text: a line per paragraph, title and key."""
        lines = ["artlens keys", *INTRO, *KEYS_HINT]
        for title, rows in self.sections:
            lines += [title] if title else []
            lines += [f"{key}  {what}  {binding_id}".rstrip() for key, what, binding_id in rows]
        return "\n".join(lines)

    @property
    def body(self) -> VerticalScroll:
        return self.query_one("#help-body", VerticalScroll)

    def action_line(self, step: int) -> None:
        """One line per key, at once (no animation to wait for before the next key)."""
        self.body.scroll_to(y=self.body.scroll_y + step, animate=False)

    def action_top(self) -> None:
        self.body.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.body.scroll_end(animate=False)
