"""A small modal to write the note of a run or a file (``n`` in the explorer).

Dismissed with the new text (an empty text removes the note) or None when cancelled.  The
caller stores it in ``store.userstate.UserState``, so it survives an index rebuild.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

MAX_NOTE = 2000
"""Characters a note may hold: a line or two about a run, not a lab notebook."""


class NoteScreen(ModalScreen[str | None]):
    """Edit one note: enter saves, escape cancels."""

    CSS_PATH = "note.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="note.cancel"),
    ]

    def __init__(self, target: str, text: str = "") -> None:
        super().__init__()
        self.target = target
        """What the note is about (a run name or a path), shown as plain text."""
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box"):
            title = Text("Note on ", style="bold")
            title.append(self.target, style="bold italic")
            yield Static(title, id="note-title", markup=False)
            box = Input(
                value=self.text, max_length=MAX_NOTE, select_on_focus=False, id="note-input"
            )
            box.cursor_blink = False
            yield box
            yield Static(
                Text("enter saves · an empty note removes it · escape cancels", style="dim"),
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#note-input", Input).focus()

    @on(Input.Submitted, "#note-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(" ".join(event.value.split("\n")).strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
