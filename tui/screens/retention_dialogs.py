"""The retention view's two modals: confirm an apply, and pick an ad-hoc policy."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from store.retention.policy import Policy, PolicyError, from_flags


class ConfirmApply(ModalScreen[bool]):
    """States what an apply moves and how much; ``y`` confirms, ``n`` or escape cancels."""

    CSS_PATH = "retention.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Move to trash", id="retention.confirm"),
        Binding("n,escape", "answer(False)", "Cancel", id="retention.cancel"),
    ]

    def __init__(self, summary: Text) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            # A text taller than the screen (many roots) scrolls; the keys stay in sight.
            with VerticalScroll(id="confirm-scroll"):
                yield Static(self.summary, id="confirm-text", markup=False)
            yield Static(
                Text("y: move to the trash    n / escape: cancel", style="bold"),
                id="confirm-keys",
                markup=False,
            )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


FIELDS = (
    ("keep_last", "keep last N", "e.g. 3"),
    ("keep_best", "keep best K", "e.g. 1 (needs a metric)"),
    ("metric", "metric", "e.g. val_loss"),
    ("mode", "mode", "min or max (guessed from the metric)"),
    ("older_than", "keep younger than", "e.g. 7d"),
)


class PolicyPicker(ModalScreen[Policy | None]):
    """A quick ad-hoc policy (like the CLI flags); enter applies it, escape cancels."""

    CSS_PATH = "retention.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="retention.policy_cancel"),
    ]

    def __init__(self, current: Policy | None = None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        rules = self.current.rules if self.current is not None else None
        values = {
            "keep_last": rules.keep_last if rules else None,
            "keep_best": rules.keep_best if rules else None,
            "metric": rules.metric if rules else None,
            "mode": rules.mode if rules else None,
        }
        with Vertical(id="policy-box"):
            yield Static(
                Text("Ad-hoc policy for this view (enter: plan it, escape: cancel)", style="bold"),
                markup=False,
            )
            for name, label, hint in FIELDS:
                yield Label(label)
                value = values.get(name)
                box = Input(
                    value="" if value is None else str(value), placeholder=hint, id=f"pp-{name}"
                )
                box.cursor_blink = False
                yield box
            yield Static("", id="policy-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#pp-keep_last", Input).focus()

    @on(Input.Submitted)
    def _submit(self) -> None:
        raw = {name: self.query_one(f"#pp-{name}", Input).value.strip() for name, _, _ in FIELDS}
        error = self.query_one("#policy-error", Static)
        try:
            counts = {k: int(raw[k]) if raw[k] else None for k in ("keep_last", "keep_best")}
        except ValueError:
            error.update(Text("keep last and keep best take whole numbers", style="red"))
            return
        try:
            policy = from_flags(
                keep_last=counts["keep_last"],
                keep_best=counts["keep_best"],
                metric=raw["metric"] or None,
                mode=raw["mode"] or None,
                older_than=raw["older_than"] or None,
            )
        except PolicyError as exc:
            error.update(Text(" ".join(str(exc).split()), style="red"))
            return
        self.dismiss(policy if policy.removes_anything() else None)

    def action_cancel(self) -> None:
        self.dismiss(self.current)
