"""The file diff screen: two files compared by the engine their kind calls for.

The diff runs in a thread worker (a 20 MB log never freezes the screen); the rows for
both layouts come back in one message and ``s`` switches between them at no cost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import get_current_worker

from store import paths
from store.diff import FetchBudget, FetchPlan, FileDiff, FileRef, TextDiff, diff_files
from tui.commands import PaletteEntry
from tui.diff_render import clean, file_summary, lexer_for, text_notes
from tui.format import human_size
from tui.hosts import PREVIEW_FETCH as FETCH_NOTE
from tui.hosts import RemoteFile, fetch_for_diff
from tui.widgets.clamped import ClampedStatic
from tui.widgets.diff_view import DiffView, Rows, side_rows, summary_rows, unified_rows
from tui.widgets.footer import FittingFooter
from tui.workers import SaysWorkerFailures


def _file_ref(path: bytes) -> FileRef:
    """A local path, or ``(bucket root, rel)`` for an indexed object's ``s3://`` path."""
    from store.root import is_url, open_root
    from store.root.objstore import parse_url

    text = os.fsdecode(path)
    if not is_url(text):
        return text
    scheme, bucket, rel = parse_url(text)
    return open_root(f"{scheme}://{bucket}"), rel


def _worker_cancelled() -> bool:
    """On a worker: whether it was cancelled (the screen closed), so the diff stops reading."""
    return get_current_worker().is_cancelled


@dataclass
class FileDiffReady(Message):
    """The finished diff and its rows in both layouts (``side`` is None for non-text)."""

    token: int
    diff: FileDiff
    unified: Rows
    side: Rows | None


class FileDiffScreen(SaysWorkerFailures, Screen[None]):
    """Two files, side by side or unified; ``n``/``N`` walk the changes."""

    CSS_PATH = "diff.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="diff.back", tooltip="Return to the previous screen"),
        Binding(
            "s", "toggle_side", "Side by side", id="diff.side", tooltip="Unified or two columns"
        ),
        Binding("n", "next_change", "Next change", id="diff.next"),
        Binding("N", "previous_change", "Previous", id="diff.previous"),
    ]

    def __init__(
        self,
        path_a: bytes,
        path_b: bytes,
        *,
        label_a: str = "",
        label_b: str = "",
        remote_a: RemoteFile | None = None,
        remote_b: RemoteFile | None = None,
    ) -> None:
        super().__init__()
        self.path_a = path_a
        self.path_b = path_b
        self.remotes = (remote_a, remote_b)
        """Sides that live on a remote host: fetched (bounded) before the diff."""
        self.label_a = label_a or (remote_a.label if remote_a else paths.display(path_a))
        self.label_b = label_b or (remote_b.label if remote_b else paths.display(path_b))
        self.diff: FileDiff | None = None
        self.side = False
        self._rows: dict[bool, Rows] = {}
        self._token = 0

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="file-diff-title", markup=False)
        # four lines at most: what does not fit ends in "…" (the tooltip says it whole)
        yield ClampedStatic(self._fetch_note(), id="file-diff-notes", markup=False)
        yield DiffView(id="file-diff-view")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one(DiffView).focus()
        self._token += 1
        self._compute(self._token, self.path_a, self.path_b)

    @property
    def view(self) -> DiffView:
        return self.query_one(DiffView)

    def _title(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("A ", style="bold red")
        text.append(clean(self.label_a))
        text.append("\nB ", style="bold green")
        text.append(clean(self.label_b))
        return text

    def _fetch_note(self) -> Text:
        """ "diffing…", and first what is fetched from which host when that is large."""
        text = Text("diffing…", style="italic dim")
        for side in self.remotes:
            if side is not None and side.size > FETCH_NOTE:
                text.append(f"\nfetching {human_size(side.size)} of {clean(side.label)}")
        return text

    @work(thread=True, exclusive=True, group="file-diff", exit_on_error=False)
    def _compute(self, token: int, path_a: bytes, path_b: bytes) -> None:
        if any(self.remotes):
            import tempfile

            from store.errors import ArtlensError

            with tempfile.TemporaryDirectory(prefix="artlens-diff-") as tmp:
                try:
                    local = [
                        fetch_for_diff(side, tmp, tag) if side is not None else path
                        for side, path, tag in zip(
                            self.remotes, (path_a, path_b), "ab", strict=True
                        )
                    ]
                except ArtlensError as exc:
                    result = FileDiff("binary", False, None, None, None, error=str(exc))
                else:
                    result = diff_files(
                        os.fsdecode(local[0]), os.fsdecode(local[1]), cancelled=_worker_cancelled
                    )
        else:
            result = self._diff_in_place(path_a, path_b)
        side: Rows | None = None
        if isinstance(result.result, TextDiff):
            unified = unified_rows(result.result)
            side = side_rows(result.result)
        else:
            unified = summary_rows(file_summary(result))
        if get_current_worker().is_cancelled:
            return
        self.post_message(FileDiffReady(token, result, unified, side))

    def _diff_in_place(self, path_a: bytes, path_b: bytes) -> FileDiff:
        """On the worker: local files, or objects of a bucket read in ranges, where a
        tensor diff says what it fetches before it starts (and keeps to the default bound)."""
        from store.errors import ArtlensError

        def said(plan: FetchPlan) -> None:
            self.app.call_from_thread(self._say_fetch, plan.line())

        try:
            ref_a, ref_b = _file_ref(path_a), _file_ref(path_b)
        except ArtlensError as exc:
            return FileDiff("binary", False, None, None, None, error=str(exc))
        return diff_files(
            ref_a, ref_b, budget=FetchBudget(on_plan=said), cancelled=_worker_cancelled
        )

    def _say_fetch(self, line: str) -> None:
        """What the tensor diff under way fetches, before it does."""
        if self.diff is None:
            self.query_one("#file-diff-notes", Static).update(Text(f"{line} …", style="italic dim"))

    def on_file_diff_ready(self, message: FileDiffReady) -> None:
        if message.token != self._token:
            return
        self.diff = message.diff
        self._rows = {False: message.unified}
        if message.side is not None:
            self._rows[True] = message.side
        else:
            self.side = False
        notes = self.query_one("#file-diff-notes", Static)
        said = self._notes(message.diff)
        notes.update(said)
        notes.tooltip = said.plain
        self._show()
        self.refresh_bindings()  # side by side, for a text diff only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Side by side is offered (in the footer) only where there is one: a text diff."""
        if action == "toggle_side" and self.diff is not None and True not in self._rows:
            return None
        return True

    def _notes(self, diff: FileDiff) -> Text:
        text = Text(no_wrap=False)
        fetched = [n for n in diff.notes[:1] if n.startswith("fetching ")]
        if diff.error:
            text.append(f"cannot diff: {clean(diff.error)}", style="bold red")
            for note in fetched:
                text.append("\n" + clean(note), style="italic dim")
            return text
        verdict = "equal" if diff.equal else "not known equal" if diff.unknown else "different"
        text.append(f"{diff.kind} diff · {verdict}", style="bold")
        text.append(f" · {human_size(diff.size_old)} → {human_size(diff.size_new)}", style="dim")
        for note in fetched if not isinstance(diff.result, TextDiff) else []:
            text.append("\n" + clean(note), style="italic dim")
        result = diff.result
        if isinstance(result, TextDiff):
            text.append(f" · +{result.added} -{result.removed} lines", style="dim")
            notes = text_notes(result) + list(diff.notes)
            for note in notes:
                text.append("\n" + clean(note), style="italic yellow")
        return text

    def _show(self) -> None:
        rows = self._rows.get(self.side)
        if rows is None:
            return
        if self.diff is not None and isinstance(self.diff.result, TextDiff) and not rows.rows:
            rows = summary_rows([Text("no differences", style="dim")])
        lexer = (
            lexer_for(self.path_b) if self.diff is not None and self.diff.kind == "text" else None
        )
        self.view.show(rows, side=self.side, lexer=lexer, dark=self.app.current_theme.dark)
        self.view.go_change(True)

    # -- actions -------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_toggle_side(self) -> None:
        if True not in self._rows:
            self.notify("side by side is for text diffs", markup=False, timeout=3)
            return
        self.side = not self.side
        self._show()

    def action_next_change(self) -> None:
        if self.view.go_change(True) is None:
            self.notify("no more changes below", markup=False, timeout=2)

    def action_previous_change(self) -> None:
        if self.view.go_change(False) is None:
            self.notify("no more changes above", markup=False, timeout=2)

    def palette_entries(self) -> list[PaletteEntry]:
        return [
            ("diff: toggle side by side", self.action_toggle_side, "Unified or two columns"),
            ("diff: next change", self.action_next_change, "Jump to the next block of changes"),
            ("diff: previous change", self.action_previous_change, ""),
            ("diff: back", self.action_back, "Close the diff"),
            ("view: help", partial(self.app.action_help), "List every key"),  # type: ignore[attr-defined]
        ]
