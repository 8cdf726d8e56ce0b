"""The run detail shown in the preview pane when a run's own folder is selected, and the
"same content as" lines shown under a file's preview.

``load_run_detail`` runs on a worker thread (it reads the index and, for the commit, a few
bytes of ``.git``); the ``*_sections`` functions turn results into ``Text`` built from
escaped strings, never markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from rich.console import RenderableType
from rich.text import Text

from store.checklist import ChecklistError, ChecklistResult, evaluate, load_checklist
from store.index.query import RunRow
from store.jsonstrict import finite_name
from store.lineage import MAX_COPIES, Copy, Duplicates, Provenance, duplicates, provenance
from store.safetext import visible
from tui.format import UNREAD_MARK, human_age, human_size, metric_value

PIN_MARK = "◆"
NOTE_MARK = "✎"


@dataclass(frozen=True)
class RunDetail:
    """Everything the run detail shows, read off the UI thread."""

    run: RunRow
    checklist: ChecklistResult | None
    checklist_error: str | None
    provenance: Provenance
    duplicates: Duplicates
    note: str | None = None
    pinned: bool = False
    checklist_pending: bool = False
    """Not evaluated: a new root's first scan is still writing the run (its summaries come
    last), so what it misses so far is not what it misses."""


def load_run_detail(
    db: sqlite_utils.Database,
    run: RunRow,
    *,
    note: str | None,
    pinned: bool,
    checklist: bool = True,
) -> RunDetail:
    """Checklist (unless ``checklist`` is False: see ``RunDetail.checklist_pending``), code
    and environment, and duplicated files of one run."""
    error = None
    result: ChecklistResult | None = None
    if checklist:
        try:
            result = evaluate(db, run, load_checklist(run.root))
        except ChecklistError as exc:
            error = str(exc)
    return RunDetail(
        run,
        result,
        error,
        provenance(db, run),
        duplicates(db, run),
        note,
        pinned,
        checklist_pending=not checklist,
    )


KEY_PARAMS = 8
"""Params and metrics the run detail lists (the run diff and metrics view show them all)."""


def _flat(params: dict[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flat(value, name + ".")
        else:
            items.append((name, value))
    return items


REPEATED = "  ? repeated key (see warnings)"
"""After a param or metric whose file repeats a key it is read from (the warnings say more)."""


def _repeated(run: RunRow, part: str) -> frozenset[str]:
    """Names of ``part`` (params, metrics) that depend on which value of a repeated key
    counts (``store.frameworks.model.REPEATED_KEYS``)."""
    found = run.meta.get("repeated_keys")
    names = found.get(part) if isinstance(found, dict) else None
    return frozenset(str(n) for n in names) if isinstance(names, dict) else frozenset()


READ_IN_PART = " ? read in part"
"""After the title of params or metrics a file was not read whole for (the line under the
run's name says where the warnings are that say why)."""


def read_in_part(run: RunRow) -> Text | None:
    """One line naming the parts of the run its files were not read whole for, and where
    the warnings that say why are: the values below may leave some out."""
    parts = run.unread_parts
    if not parts:
        return None
    warnings = run.meta.get("warnings")
    count = len(warnings) if isinstance(warnings, list) else 0
    text = Text()
    text.append(f"{UNREAD_MARK} {' and '.join(parts)} read in part", style="bold yellow")
    if count:
        text.append(f" (why: {count} warning{'s' if count > 1 else ''} below)", style="yellow")
    return text


def param_text(value: object) -> str:
    """A param's value as one line: a non-finite float by the name ``--json`` gives it
    (``NaN``), never ``nan``, the text a param may hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return finite_name(value)
    return str(value)


def params_and_metrics(run: RunRow) -> list[RenderableType]:
    """The run's first params (flattened ``a.b``) and its metrics' last values."""
    sections: list[RenderableType] = []
    params = _flat(run.params) if isinstance(run.params, dict) else []
    repeated = _repeated(run, "params")
    unread = run.unread_parts
    if params or "params" in unread:
        text = Text()
        text.append(f"params ({len(params)})", style="bold")
        if "params" in unread:
            text.append(READ_IN_PART, style="bold yellow")
        for name, value in params[:KEY_PARAMS]:
            shown = visible(param_text(value))
            text.append(f"\n  {visible(name)}: ", style="dim")
            text.append(shown if len(shown) <= 60 else shown[:59] + "…")
            if name in repeated:
                text.append(REPEATED, style="magenta")
        if len(params) > KEY_PARAMS:
            text.append(f"\n  … {len(params) - KEY_PARAMS} more (d diffs two runs)", style="dim")
        sections.append(text)
    last = [
        (name, metric.get("last"))
        for name, metric in run.metrics.items()
        if isinstance(metric, dict) and metric.get("last") is not None
    ]
    if last or "metrics" in unread:
        text = Text()
        text.append(f"last metrics ({len(last)})", style="bold")
        if "metrics" in unread:
            text.append(READ_IN_PART, style="bold yellow")
        repeated = _repeated(run, "metrics")
        for name, value in last[:KEY_PARAMS]:
            text.append(f"\n  {visible(name)}: ", style="dim")
            text.append(metric_value(value))
            if name in repeated:
                text.append(REPEATED, style="magenta")
        if len(last) > KEY_PARAMS:
            text.append(f"\n  … {len(last) - KEY_PARAMS} more (m: metrics view)", style="dim")
        sections.append(text)
    return sections


def checklist_text(result: ChecklistResult) -> Text:
    """``checklist 3/4 · missing: a, b`` (red when short), ``checklist 4/4 ✓`` otherwise."""
    text = Text()
    text.append("checklist ", style="bold")
    if result.complete:
        text.append(f"{result.label()} ✓", style="green")
        return text
    text.append(result.label(), style="bold red")
    text.append(" · missing: ", style="red")
    text.append(", ".join(visible(item) for item in result.short_items()), style="red")
    return text


def run_detail_sections(detail: RunDetail, now: float) -> tuple[RenderableType, ...]:
    run = detail.run
    head = Text()
    if detail.pinned:
        head.append(f"{PIN_MARK} pinned  ", style="bold yellow")
    head.append(visible(run.name), style="bold")
    head.append(f"\n{run.framework} · {run.status} · {run.display_path}", style="dim")
    if run.started is not None:
        head.append(f"\nstarted {human_age(run.started, now)} ago", style="dim")
    partial = read_in_part(run)
    if partial is not None:
        head.append("\n")
        head.append_text(partial)
    sections: list[RenderableType] = [head]
    sections += params_and_metrics(run)
    if detail.note:
        note = Text(f"{NOTE_MARK} ", style="bold")
        note.append(visible(detail.note), style="italic")
        sections.append(note)
    if detail.checklist is not None and detail.checklist.total:
        sections.append(checklist_text(detail.checklist))
    elif detail.checklist_error:
        sections.append(Text(visible(detail.checklist_error), style="red"))
    elif detail.checklist_pending:
        sections.append(Text("checklist after the first scan", style="dim"))
    warnings = run.meta.get("warnings")
    if isinstance(warnings, list) and warnings:
        shown = Text()
        shown.append("warnings", style="bold yellow")
        for warning in warnings[:10]:
            shown.append("\n  " + visible(str(warning)), style="yellow")
        if len(warnings) > 10:
            shown.append(f"\n  … {len(warnings) - 10} more", style="dim italic")
        sections.append(shown)
    sections.append(_provenance_text(detail.provenance))
    if detail.duplicates.files:
        dup = Text()
        dup.append("duplicates ", style="bold")
        dup.append(
            f"{detail.duplicates.files} file(s), {human_size(detail.duplicates.bytes)}"
            " also stored elsewhere",
        )
        for copy in detail.duplicates.copies:
            dup.append("\n  " + visible(copy.describe()), style="dim")
        if detail.duplicates.files > len(detail.duplicates.copies):
            more = detail.duplicates.files - len(detail.duplicates.copies)
            dup.append(f"\n  … {more} more", style="dim italic")
        sections.append(dup)
    return tuple(sections)


def _provenance_text(found: Provenance) -> Text:
    text = Text()
    text.append("code ", style="bold")
    if found.git_commit:
        text.append(f"git {found.git_commit[:12]}")
        if found.git_branch:
            text.append(f" ({found.git_branch})")
        if found.git_source:
            text.append(f" · from {found.git_source}", style="dim")
        if found.git_remote:
            text.append(f"\n     {found.git_remote}", style="dim")
    else:
        text.append("no commit recorded", style="dim")
    text.append("\nenvironment ", style="bold")
    if found.env_files:
        text.append(", ".join(found.env_files))
    else:
        text.append("no environment file", style="dim")
    for label, value in found.details:
        text.append(f"\n{label} ", style="bold")
        text.append(value)
    return text


def copies_sections(copies: list[Copy]) -> tuple[RenderableType, ...]:
    """ "same as run X/checkpoint-500" lines for one file, or nothing."""
    if not copies:
        return ()
    text = Text()
    text.append("same content ", style="bold")
    text.append(f"in {len(copies)}{'+' if len(copies) >= MAX_COPIES else ''} other place(s)")
    for copy in copies:
        where = copy.describe().split(": ", 1)[-1]
        text.append("\n  " + visible(where), style="dim")
    return (text,)
