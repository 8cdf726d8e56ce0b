"""The `?` screen: every binding of the screen beneath and of the diff screens, read from
the bindings themselves (``tui.keys``) with the keys ``[keys]`` changed."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keys import class_rows

INTRO = (
    "Panes: Runs (top), Files (left), Preview (right).  tab / shift+tab move between them.\n"
    "In the file tree, type the start of a name to jump to it (f first if it starts with a key).\n"
    "Metrics view (m, for the marked runs): space plots the metric under the cursor (up to 3\n"
    "side by side), c clears the plots, escape goes back.  n writes a note on the run or file."
)


KEYS_HINT = (
    'Change a key in the user config (config.toml): a [keys] table of binding id = "keys",\n'
    'e.g. [keys] runs.filter = "ctrl+f,slash".  Each key\'s id is shown dim after it.'
)


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

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("artlens keys\n\n", style="bold")
        text.append(INTRO + "\n", style="dim")
        text.append(KEYS_HINT + "\n\n", style="dim")
        width = max((len(k) for k, _, _ in self.rows), default=4) + 2
        sections = [("", self.rows), *diff_screen_rows(self.app)]
        for title, rows in sections:
            if title:
                text.append(f"\n{title}\n", style="bold")
            for key, description, binding_id in rows:
                text.append(key.ljust(width), style="bold")
                text.append(description)
                text.append(f"  {binding_id}\n" if binding_id else "\n", style="dim")
        text.append("\nj/k scroll, g/G top and end; escape, q or ? closes.", style="dim")
        with VerticalScroll(id="help-body"):
            yield Static(text, markup=False)

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
