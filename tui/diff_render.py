"""Diff results as Rich ``Text``: shared by ``artlens diff`` and the diff screens.

Imports Rich and ``store`` only (no Textual), so the CLI stays fast.  Every string from
data goes through ``clean`` (control characters as visible escapes, tabs expanded) and
into ``Text`` objects; nothing is parsed as markup.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rich.text import Text

from store import paths
from store.diff import (
    BinaryDiff,
    DiffLine,
    FileDiff,
    ImageDiff,
    ModelDiff,
    RunDiff,
    StructuredDiff,
    TableDiff,
    TensorDiff,
    TextDiff,
)
from store.diff.configs import ConfigDiff
from store.diff.runs import nonfinite_name, same_nonfinite
from store.safetext import look_alike, spelled, visible
from tui.format import fit_apart, human_size, metric_value

MAX_VALUE = 120
"""Characters of one param or config value shown before an ellipsis."""
WHOLE_VALUE = 4096
"""Characters of a value ``shown_pair`` looks at to tell two apart."""
MAX_ROWS = 2000
"""Rows of cell or tensor changes listed; the rest are counted."""
LINE_STYLE = {"delete": "red", "insert": "green", "equal": ""}
MARK = {"delete": "-", "insert": "+", "equal": " "}
_TOKEN_STYLES = (
    ("Comment", "dim italic"),
    ("Keyword", "magenta"),
    ("Name.Tag", "blue"),
    ("Name.Attribute", "blue"),
    ("Name.Builtin", "cyan"),
    ("Name.Function", "cyan"),
    ("Name.Class", "cyan"),
    ("Literal.String", "yellow"),
    ("Literal.Number", "cyan"),
    ("Literal", "cyan"),
)


def clean(text: str) -> str:
    """One safe line: tabs as spaces, control characters and newlines as escapes."""
    return visible(text.replace("\t", "    "))


TWIN = "differs only in Unicode normalisation"
ALIKE = "differs only in characters that print alike"
"""Two strings that print the same but do not normalise alike: an invisible character
against none, a character shown as its escape (``\\u200b``) against that escape typed out."""


def twin_reason(a: object, b: object, shown: Callable[[str], str] = clean) -> str | None:
    """Why two different strings look the same on screen, once ``shown``: ``TWIN`` when
    they normalise alike (NFC ``é`` against NFD ``e`` + U+0301, ``ﬁ`` against ``fi``),
    ``ALIKE`` when only what prints of them is alike (``safetext.look_alike``: a zero-width
    space, printed as ``\\u200b``, against a name holding those six characters); None when
    they are the same string, or do not look alike."""
    if not isinstance(a, str) or not isinstance(b, str) or a == b:
        return None
    if unicodedata.normalize("NFKC", a) == unicodedata.normalize("NFKC", b):
        return TWIN
    return ALIKE if look_alike(shown(a)) == look_alike(shown(b)) else None


def value_twin(old: object, new: object) -> str | None:
    """``twin_reason`` of two values of a change, but for two that differ only in blanks at
    their ends: ``shown_pair`` shows those quoted (``"a " → "a"``)."""
    if isinstance(old, str) and isinstance(new, str) and old.strip() == new.strip():
        return None
    return twin_reason(old, new)


def twin_names(names: Iterable[str], shown: Callable[[str], str] = clean) -> dict[str, str]:
    """The names (added and removed keys, columns, paths) that look like another name of
    the set once ``shown``, each with why (``TWIN`` when all of its look-alikes normalise
    alike, else ``ALIKE``): to be spelled out (``spelled``) with that said."""
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(look_alike(shown(name)), set()).add(name)
    found: dict[str, str] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        forms = {unicodedata.normalize("NFKC", name) for name in group}
        for name in group:
            found[name] = TWIN if len(forms) == 1 else ALIKE
    return found


def short(value: object, limit: int = MAX_VALUE, *, spell: bool = False) -> str:
    """A param or config value as one short safe line (JSON for containers); ``spell``:
    a string with its non-ASCII characters as escapes (``spelled``)."""
    if isinstance(value, str):
        text = spelled(value) if spell else value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def typed(value: object, limit: int = MAX_VALUE) -> str:
    """``short`` that tells types apart: a string quoted (its blanks and escapes shown),
    a value JSON has no type for (a date) with its type, so ``"1" → 1`` and a YAML date
    against the same text never read ``1 → 1``."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif value is None or isinstance(value, (bool, int, float, list, dict)):
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = f"{value} ({type(value).__name__})"
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def shown_pair(kind: str, old: object, new: object, *, spell: bool = False) -> tuple[str, str]:
    """The old and new value of a change as text; typed (``typed``) where the plain
    spelling would not show what changed (a type change, or two values that print alike
    but for blanks at their ends).  Long values are cut so that two different ones still
    read differently (``fit_apart``): cut at ``MAX_VALUE`` characters, two command lines
    differing in their last flag both read the same on a row that says they changed."""
    pair = short(old, WHOLE_VALUE, spell=spell), short(new, WHOLE_VALUE, spell=spell)
    if kind == "type_changed" or (kind == "changed" and pair[0].strip() == pair[1].strip()):
        pair = typed(old, WHOLE_VALUE), typed(new, WHOLE_VALUE)
    if pair[0] != pair[1]:
        cut_old, cut_new = fit_apart(list(pair), MAX_VALUE)
        return cut_old, cut_new
    shown = _cut(pair[0]), _cut(pair[1])
    if kind in ("changed", "type_changed"):  # alike in as much as is compared here
        note = f"  (differs past {WHOLE_VALUE:,} characters)"
        return shown[0] + note, shown[1] + note
    return shown


@lru_cache(maxsize=64)
def _lexer(name: str) -> Any:
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        return get_lexer_for_filename(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def lexer_for(path: str | bytes) -> Any:
    """A Pygments lexer chosen by file name, or None for plain text and logs."""
    name = os.path.basename(paths.display(path))
    if name.endswith((".log", ".txt", ".out", ".err")):
        return None
    return _lexer(name)


def _token_style(token_type: Any) -> str:
    text = str(token_type).removeprefix("Token.")
    for prefix, style in _TOKEN_STYLES:
        if text == prefix or text.startswith(prefix + "."):
            return style
    return ""


def _clean_with_spans(
    raw: str, spans: Sequence[tuple[int, int]]
) -> tuple[str, list[tuple[int, int]]]:
    """Clean ``raw`` piece by piece so the changed ranges still point at the right text."""
    out: list[str] = []
    mapped: list[tuple[int, int]] = []
    at = 0
    length = 0
    for start, end in spans:
        start, end = max(start, at), min(end, len(raw))
        if start >= end:
            continue
        before = clean(raw[at:start])
        changed = clean(raw[start:end])
        out += [before, changed]
        length += len(before)
        mapped.append((length, length + len(changed)))
        length += len(changed)
        at = end
    out.append(clean(raw[at:]))
    return "".join(out), mapped


def diff_line_text(
    line: DiffLine, *, lexer: Any = None, dark: bool = True, tag: str | None = None
) -> Text:
    """The text of one diff line (no gutter): syntax colours, changed words highlighted."""
    tag = tag or line.tag
    body, spans = _clean_with_spans(line.text, line.spans)
    text = Text(body, no_wrap=True, end="")
    if lexer is not None and body:
        at = 0
        try:
            for token_type, value in lexer.get_tokens(body):
                style = _token_style(token_type)
                if style and value:
                    text.stylize(style, at, at + len(value))
                at += len(value)
        except Exception:  # a lexer bug must not break the diff
            pass
        if tag != "equal":
            text.stylize(_tint(tag, dark, strong=False))
    elif tag != "equal":
        text.stylize(LINE_STYLE[tag])
    for start, end in spans:
        text.stylize(_tint(tag, dark, strong=True), start, end)
    return text


def _tint(tag: str, dark: bool, *, strong: bool) -> str:
    if tag == "delete":
        if strong:
            return "bold on rgb(130,35,35)" if dark else "bold on rgb(255,170,170)"
        return "on rgb(55,18,18)" if dark else "on rgb(255,232,232)"
    if strong:
        return "bold on rgb(25,110,45)" if dark else "bold on rgb(160,240,170)"
    return "on rgb(15,50,22)" if dark else "on rgb(230,255,234)"


def unified_text(result: TextDiff, name_a: str, name_b: str, *, color: bool = True) -> list[Text]:
    """The whole unified diff as lines (``--- a``, ``+++ b``, hunks); for the CLI."""
    if not result.hunks:
        return []
    lines = [Text(f"--- {clean(name_a)}", style="bold"), Text(f"+++ {clean(name_b)}", style="bold")]
    for hunk in result.hunks:
        lines.append(Text(hunk.header(), style="cyan"))
        for line in hunk.lines:
            row = Text(MARK[line.tag], style=LINE_STYLE[line.tag], end="")
            row.append_text(diff_line_text(line) if color else Text(clean(line.text)))
            lines.append(row)
    return lines


def text_notes(result: TextDiff) -> list[str]:
    """What the engine says about caps and approximations, in words a person reads."""
    notes = list(result.notes)
    if result.truncated_at is not None:
        old, new = result.truncated_at
        notes.insert(0, f"capped at old line {old + 1}, new line {new + 1}: the rest is not shown")
    if result.approximate and not any("align" in n for n in notes):
        notes.append("approximate: some regions are shown as whole replaced blocks")
    alike = _twin_lines(result)
    if alike:
        (old_no, new_no, reason), count = alike[0], len(alike)
        more = f" and {count - 1} more pair(s)" if count > 1 else ""
        example = (
            "such as é as one character against e and an accent"
            if reason == TWIN
            else "such as a blank at an end, or an invisible character shown as its escape"
            " against that escape typed out"
        )
        notes.append(
            f"old line {old_no} and new line {new_no}{more} look alike but differ "
            f"{reason.removeprefix('differs ')} ({example})"
        )
    return notes


def _twin_lines(result: TextDiff) -> list[tuple[int, int, str]]:
    """(old, new) line numbers of a removed and an added line of one hunk that look alike
    (``twin_reason``), and why: shown as ``-café`` ``+café``, the change looks like none."""
    pairs: list[tuple[int, int, str]] = []
    for hunk in result.hunks:
        removed: dict[str, tuple[int, str]] = {}
        for line in hunk.lines:
            if line.tag == "equal":
                continue
            key = look_alike(clean(line.text))
            if line.tag == "delete" and line.old_no is not None:
                removed.setdefault(key, (line.old_no, line.text))
            elif line.tag == "insert" and line.new_no is not None and key in removed:
                old_no, text = removed.pop(key)
                reason = twin_reason(text, line.text)
                if reason is not None:  # the same line moved is no twin
                    pairs.append((old_no, line.new_no, reason))
    return pairs


# --- non-text file diffs ---------------------------------------------------------------


MARKS = {"added": ("+", "green"), "removed": ("-", "red"), "ambiguous": ("?", "magenta")}
AMBIGUOUS = "repeated key: equal or not depends on which value the loader keeps"


def _change_line(
    path: str, kind: str, old: object, new: object, *, twin_key: str | None = None
) -> Text:
    """One change; ``twin_key``: why the key looks like another added or removed one."""
    line = Text(no_wrap=True, end="")
    mark, style = MARKS.get(kind, ("~", "yellow"))
    line.append(f"{mark} ", style=style)
    line.append(clean(spelled(path) if twin_key else path) or "(root)", style="bold")
    reason = value_twin(old, new)
    spell = reason is not None
    if kind == "added":
        line.append(f": {short(new)}", style="green")
    elif kind == "removed":
        line.append(f": {short(old)}", style="red")
    else:
        old_text, new_text = shown_pair(kind, old, new, spell=spell)
        line.append(": ")
        line.append(old_text, style="red")
        line.append(" → ")
        line.append(new_text, style="green")
        if kind == "ambiguous":
            line.append(f"  ({AMBIGUOUS})", style="magenta")
        elif kind == "type_changed":
            line.append("  (type changed)", style="dim")
    if reason and kind != "ambiguous":
        line.append(f"  ({reason})", style="magenta")
    if twin_key:
        other = "a removed" if kind == "added" else "an added"
        line.append(f"  (key {twin_key} from {other} one)", style="magenta")
    return line


def _change_lines(changes: Sequence[Any], prefix: str = "") -> list[Text]:
    """``_change_line`` for each change, an added key and a removed one that look alike
    (``twin_names``) spelled out."""
    moved = twin_names(c.path for c in changes if c.kind in ("added", "removed"))
    return [
        _change_line(prefix + c.path, c.kind, c.old, c.new, twin_key=moved.get(c.path))
        for c in changes
    ]


def _structured(result: StructuredDiff) -> list[Text]:
    head = Text(f"{result.format}: ", style="bold")
    count = len(result.changes) + result.more  # all of them, listed or not
    head.append("equal after parsing" if result.equal else f"{count} change(s)")
    lines = [Text(f"warning: {clean(w)}", style="yellow") for w in result.warnings]
    return [head, *lines, *_change_lines(result.changes)]


def _number(value: float | None) -> str:
    return metric_value(value) if value is not None else "-"


_SERIES_FIELDS = {
    "best": "best",
    "best_step": "best at step",
    "last_step": "last at step",
    "n": "points",
}


def _series_note(field: str, old: float | int, new: float | int) -> str:
    shown = _number if field == "best" else str
    return f"{_SERIES_FIELDS.get(field, field)} {shown(old)} → {shown(new)}"


def _delta(delta: float | None, percent: float | None = None) -> str:
    if delta is None:
        return ""
    text = f"{delta:+.4g}"
    if percent is not None:
        text += f" ({percent:+.1f}%)"
    return text


def _table(result: TableDiff) -> list[Text]:
    lines: list[Text] = []
    head = Text("table: ", style="bold")
    head.append(f"{result.rows_old} → {result.rows_new} rows")
    if result.key_column:
        head.append(f", rows matched by {clean(result.key_column)!s}")
    lines.append(head)
    if result.equal and result.layout:  # never "equal" of different bytes without a word
        lines.append(Text(f"equal after parsing ({clean('; '.join(result.layout))})"))
    moved = twin_names([*result.columns_added, *result.columns_removed])
    for mark, names, style in (
        ("+", result.columns_added, "green"),
        ("-", result.columns_removed, "red"),
    ):
        for name in names:
            line = Text(f"{mark} column {clean(spelled(name) if name in moved else name)}", style)
            if name in moved:
                line.append(f"  (name {moved[name]} from another column)", style="magenta")
            lines.append(line)
    if result.rows_added:
        lines.append(Text(f"+ {len(result.rows_added)} row(s) added", style="green"))
    if result.rows_removed:
        lines.append(Text(f"- {len(result.rows_removed)} row(s) removed", style="red"))
    if result.last_values:
        lines.append(Text("last values", style="bold"))
        for value in result.last_values:
            line = Text(f"  {clean(value.column)}: ")
            line.append(f"{_number(value.old)} → {_number(value.new)}")
            if value.delta:
                line.append(f"  {_delta(value.delta, value.percent)}", style="yellow")
            lines.append(line)
    if result.cells:
        total = max(result.cells_changed, len(result.cells))
        lines.append(
            Text(f"{result.rows_changed} changed row(s), {total} changed cell(s)", style="bold")
        )
        for cell in result.cells[:MAX_ROWS]:
            line = Text(f"~ row {clean(cell.row)}, {clean(cell.column)}: ", style="yellow")
            reason = value_twin(cell.old, cell.new)
            line.append(short(cell.old, spell=reason is not None), style="red")
            line.append(" → ")
            line.append(short(cell.new, spell=reason is not None), style="green")
            if cell.delta is not None:
                line.append(f"  {_delta(cell.delta)}", style="dim")
            if reason:
                line.append(f"  ({reason})", style="magenta")
            lines.append(line)
        lines += _more(total - min(len(result.cells), MAX_ROWS), "changed cell(s)")
    lines += [Text(clean(w), style="italic dim") for w in result.warnings]
    return lines


def _tensors(result: TensorDiff) -> list[Text]:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts().items()))
    lines = [Text(f"{result.format}: {counts or 'no tensors'}", style="bold")]
    style = {"added": "green", "removed": "red", "unchanged": "dim"}
    changed = result.changed()
    width = min(60, max((len(clean(t.name)) for t in changed[:MAX_ROWS]), default=0))
    for tensor in changed[:MAX_ROWS]:
        line = Text(f"{tensor.status:<15}", style=style.get(tensor.status, "yellow"))
        line.append(clean(tensor.name).ljust(width), style="bold")
        if tensor.status == "dtype_changed":
            line.append(f"  {tensor.dtype_old} → {tensor.dtype_new}")
        elif tensor.status == "shape_changed":
            line.append(f"  {list(tensor.shape_old or ())} → {list(tensor.shape_new or ())}")
        elif tensor.status in ("added", "removed"):
            dtype = tensor.dtype_new or tensor.dtype_old
            line.append(f"  {dtype} {list(tensor.shape_new or tensor.shape_old or ())}", "dim")
        elif tensor.status == "values_changed":
            line.append(f"  {tensor.dtype_new} {list(tensor.shape_new or ())}", style="dim")
            if tensor.max_abs_diff is not None:
                line.append(f"  max |Δ| {tensor.max_abs_diff:.4g}")
            if tensor.rel_l2 is not None:
                line.append(f"  rel L2 {tensor.rel_l2:.3g}")
            if tensor.changed_elements is not None:
                line.append(f"  {tensor.changed_elements:,} element(s)")
        if tensor.note:
            line.append(f"  ({clean(tensor.note)})", style="italic dim")
        lines.append(line)
    lines += _more(len(changed) - MAX_ROWS, "changed tensors")
    label = "metadata." if result.format == "safetensors" else "value "
    lines += _change_lines(result.metadata[:MAX_ROWS], label)
    hidden = len(result.metadata) - min(len(result.metadata), MAX_ROWS) + result.metadata_more
    lines += _more(hidden, "metadata change(s)" if label == "metadata." else "value change(s)")
    return lines


def _more(count: int, what: str) -> list[Text]:
    """The line that says how many rows a listing left out (none when it left none)."""
    return [Text(f"… {count} more {what} not shown", style="dim")] if count > 0 else []


def _binary(result: BinaryDiff) -> list[Text]:
    line = Text("bytes: ", style="bold")
    line.append(f"{human_size(result.size_old)} → {human_size(result.size_new)}")
    if result.equal:
        line.append("  identical")
    elif result.unknown:
        line.append("  equal as far as read: not known equal", style="yellow")
    elif result.first_difference is not None:
        line.append(f"  first difference at byte {result.first_difference:,}", style="yellow")
    lines = [line]
    if result.hash_old or result.hash_new:
        lines.append(Text(f"xxh3 {result.hash_old or '-'} → {result.hash_new or '-'}", style="dim"))
    return lines


def _model(result: ModelDiff) -> list[Text]:
    head = Text("model: ", style="bold")
    head.append(f"{clean(result.format_old or '?')} → {clean(result.format_new or '?')}")
    head.append(f"   verdict {result.verdict_old or '?'} → {result.verdict_new or '?'}")
    lines = [head]
    if result.integrity_old or result.integrity_new:
        lines.append(
            Text(f"integrity {clean(result.integrity_old or '-')} → "
                 f"{clean(result.integrity_new or '-')}", style="dim")
        )  # fmt: skip
    lines += [Text(f"+ reason: {clean(r)}", style="bold red") for r in result.reasons_added]
    lines += [Text(f"- reason: {clean(r)}", style="green") for r in result.reasons_removed]
    lines += [Text(f"+ import: {clean(i)}", style="bold red") for i in result.imports_added]
    lines += [Text(f"- import: {clean(i)}", style="green") for i in result.imports_removed]
    lines += _change_lines(result.summary[:MAX_ROWS])
    lines += _more(len(result.summary) - MAX_ROWS, "summary change(s)")
    if result.binary is not None:
        lines += _binary(result.binary)
    return lines


def _image(result: ImageDiff) -> list[Text]:
    old, new = result.old, result.new
    line = Text("image: ", style="bold")
    line.append(f"{old.format} {old.width}x{old.height} {old.mode or ''} → ")
    line.append(f"{new.format} {new.width}x{new.height} {new.mode or ''}")
    lines = [line]
    if result.equal:
        lines.append(Text("identical bytes"))
    elif result.differing_pixels is not None:
        lines.append(Text(f"{result.differing_pixels:.1%} of pixels differ", style="yellow"))
    return lines


def file_summary(diff: FileDiff) -> list[Text]:
    """Lines describing a non-text file diff (and the notes of any diff)."""
    lines: list[Text] = []
    result = diff.result
    if diff.error:
        lines.append(Text(f"cannot diff: {clean(diff.error)}", style="bold red"))
    if isinstance(result, StructuredDiff):
        lines += _structured(result)
    elif isinstance(result, TableDiff):
        lines += _table(result)
    elif isinstance(result, TensorDiff):
        lines += _tensors(result)
    elif isinstance(result, ModelDiff):
        lines += _model(result)
    elif isinstance(result, ImageDiff):
        lines += _image(result)
    elif isinstance(result, BinaryDiff):
        lines += _binary(result)
    notes = list(diff.notes)
    if isinstance(result, TextDiff):
        notes += text_notes(result)
    elif result is not None:
        notes += list(getattr(result, "notes", []))
    lines += [Text(clean(note), style="italic dim") for note in notes]
    return lines


# --- run diffs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunDiffRow:
    """One row of a run diff: section, a stable key, five cells, and files to open."""

    section: str
    key: str
    cells: tuple[Text, Text, Text, Text, Text]
    files: tuple[str, str] | None = None
    """(path in run A, path in run B), relative to each run folder, for a file diff."""


RUN_COLUMNS = ("", "name", "A", "B", "change")
RUN_SECTIONS = ("params", "configs", "metrics", "env", "artifacts")
"""The run diff's sections, in the order the CLI and the screen show them."""
MAX_CONFIG_ROWS = 200
"""Changes listed per config file; the rest are counted."""


def _row(
    section: str, key: str, *cells: Text | str, files: tuple[str, str] | None = None
) -> RunDiffRow:
    texts = tuple(c if isinstance(c, Text) else Text(c) for c in cells)
    padded = (texts + (Text(""),) * 5)[:5]
    return RunDiffRow(section, key, padded, files)  # type: ignore[arg-type]


def run_rows(result: RunDiff) -> list[RunDiffRow]:
    """Params, metrics, env packages and artifacts that differ, as table rows."""
    rows: list[RunDiffRow] = []
    marks = {"added": ("+", "green"), "removed": ("-", "red")}
    moved = twin_names(c.path for c in result.params if c.kind in ("added", "removed"))
    for change in result.params:
        mark, style = MARKS.get(change.kind, ("~", "yellow"))
        old, new, what = _change_cells(change, moved.get(change.path))
        rows.append(
            _row(
                "params",
                f"param:{change.path}",
                Text(f"{mark} param", style=style),
                Text(clean(spelled(change.path) if change.path in moved else change.path), "bold"),
                old,
                new,
                what,
            )
        )
    for config in result.configs:
        rows.extend(_config_rows(config))
    for metric in result.metrics:
        if metric.ambiguous:
            rows.append(
                _row(
                    "metrics",
                    f"metric:{metric.name}",
                    Text("? metric", style="magenta"),
                    Text(clean(metric.name), style="bold"),
                    _number(metric.old),
                    _number(metric.new),
                    Text(AMBIGUOUS, style="magenta"),
                )
            )
            continue
        if metric.only is not None:  # logged by one run alone
            mark, style = MARKS["added" if metric.only == "new" else "removed"]
            rows.append(
                _row(
                    "metrics",
                    f"metric:{metric.name}",
                    Text(f"{mark} metric", style=style),
                    Text(clean(metric.name), style="bold"),
                    _number(metric.old),
                    _number(metric.new),
                    Text(f"only in {'B' if metric.only == 'new' else 'A'}", style=style),
                )
            )
            continue
        changed = metric.changed
        last_changed = changed and not (metric.series and metric.delta in (None, 0))
        note = Text(_delta(metric.delta, metric.percent) if last_changed else "")
        if metric.series and not last_changed:  # changed all the same: say how
            note.append("last same; ", style="dim")
            note.append(", ".join(_series_note(*change) for change in metric.series))
        nonfinite = same_nonfinite(metric.old, metric.new)
        if metric.better in ("old", "new"):
            note.append(f"  {'A' if metric.better == 'old' else 'B'} better", style="bold")
        elif nonfinite:
            note.append(f"{nonfinite_name(metric.old)} in both runs", style="yellow")
        elif not changed:
            note.append("same", style="dim")
        rows.append(
            _row(
                "metrics",
                f"metric:{metric.name}",
                Text("~ metric" if changed else "  metric", style="yellow" if changed else "dim"),
                Text(clean(metric.name), style="bold" if changed else "dim"),
                _number(metric.old),
                _number(metric.new),
                note,
            )
        )
    for package in result.env:
        mark, style = marks.get(package.kind, ("~", "yellow"))
        rows.append(
            _row(
                "env",
                f"env:{package.name}",
                Text(f"{mark} package", style=style),
                Text(clean(package.name), style="bold"),
                clean(package.old or ""),
                clean(package.new or ""),
                package.kind,
            )
        )
    art = result.artifacts
    for item in art.changed:
        rows.append(
            _row(
                "artifacts",
                f"file:{item.path}",
                Text("~ changed", style="yellow"),
                Text(paths.display(item.path), style="bold"),
                _size_hash(item.old_size, item.old_hash),
                _size_hash(item.new_size, item.new_hash),
                clean(item.tensors.line()) if item.tensors is not None else "differs",
                files=(item.path, item.path),
            )
        )
    for move in art.moved:
        # a name in NFC on one side and NFD on the other, or a zero-width space against
        # the six characters \u200b: spelled from the names themselves (their displays
        # are one)
        reason = twin_reason(move.old_path, move.new_path, paths.display)
        rows.append(
            _row(
                "artifacts",
                f"moved:{move.old_path}",
                Text("→ moved", style="cyan"),
                Text(_path_text(move.new_path, reason), style="bold"),
                _path_text(move.old_path, reason),
                human_size(move.size),
                Text(f"same content, name {reason}" if reason else "same content"),
            )
        )
    moved = twin_names((i.path for i in (*art.added, *art.removed)), paths.display)
    for item, mark, only in [(i, "+ added", "B") for i in art.added] + [
        (i, "- removed", "A") for i in art.removed
    ]:
        twin = moved.get(item.path)
        shown = _path_text(item.path, twin)
        added = mark.startswith("+")
        size = _size_hash(item.new_size, item.new_hash) if added else ""
        rows.append(
            _row(
                "artifacts",
                f"{'added' if added else 'removed'}:{item.path}",
                Text(mark, style="green" if added else "red"),
                Text(shown, style="bold"),
                "" if added else _size_hash(item.old_size, item.old_hash),
                size,
                f"only in {only}" + (f" (name {twin} from another)" if twin else ""),
            )
        )
    for path in art.unverified:
        rows.append(
            _row(
                "artifacts",
                f"unverified:{path}",
                Text("? unhashed", style="magenta"),
                Text(paths.display(path), style="bold"),
                "",
                "",
                "same size, no hash to compare",
                files=(path, path),
            )
        )
    return rows


def _path_text(path: str, twin: str | None) -> str:
    """A file's path as a row shows it: spelled (``spelled``) when ``twin`` says it looks
    like another; a name that cannot be told from another by its display is spelled from
    the name itself (an undecodable byte as ``\\xNN``), never from its display."""
    return spelled(path) if twin else paths.display(path)


def _change_cells(change: Any, twin_key: str | None) -> tuple[Text, Text, Text]:
    """The old, new and change cells of a param or config change row; ``twin_key``: why
    the key looks like another added or removed one."""
    reason = value_twin(change.old, change.new)
    spell = reason is not None
    old_text, new_text = shown_pair(change.kind, change.old, change.new, spell=spell)
    old = Text(old_text if change.kind != "added" else "", style="red")
    new = Text(new_text if change.kind != "removed" else "", style="green")
    if change.kind == "ambiguous":
        return old, new, Text(AMBIGUOUS, style="magenta")
    what = Text(change.kind.replace("_", " "))
    if reason:
        what.append(f" ({reason})", style="magenta")
    elif twin_key:
        what.append(f" (key {twin_key} from another)", style="magenta")
    return old, new, what


def _config_rows(config: ConfigDiff) -> list[RunDiffRow]:
    """One row per changed key of a config file (``enter`` opens the file diff)."""
    shown = paths.display(config.path)
    files = (config.path, config.path)
    if config.error is not None:
        return [
            _row(
                "configs",
                f"config:{config.path}",
                Text("~ config", style="yellow"),
                Text(shown, style="bold"),
                "",
                "",
                Text(clean(config.error), style="italic"),
                files=files,
            )
        ]
    rows = []
    changes = config.changes[:MAX_CONFIG_ROWS]
    moved = twin_names(c.path for c in changes if c.kind in ("added", "removed"))
    for change in changes:
        mark, style = MARKS.get(change.kind, ("~", "yellow"))
        name = Text(shown + ": ", style="dim")
        key = spelled(change.path) if change.path in moved else change.path
        name.append(clean(key or "(whole file)"), style="bold")
        old, new, what = _change_cells(change, moved.get(change.path))
        rows.append(
            _row(
                "configs",
                f"config:{config.path}:{change.path}",
                Text(f"{mark} config", style=style),
                name,
                old,
                new,
                what,
                files=files,
            )
        )
    more = len(config.changes) - min(len(config.changes), MAX_CONFIG_ROWS) + config.more
    if more > 0:
        rows.append(
            _row(
                "configs",
                f"config:{config.path}:…",
                Text("~ config", style="yellow"),
                Text(f"{shown}: … {more} more change(s)", style="dim italic"),
                files=files,
            )
        )
    return rows


def _size_hash(size: int | None, digest: str | None) -> str:
    if size is None:
        return ""
    text = human_size(size)
    if digest and not digest.startswith("symlink:"):
        text += f" {digest[:8]}"
    elif digest:
        text += f" → {clean(digest[8:])}"
    return text


def artifact_counts(result: RunDiff) -> str:
    art = result.artifacts
    parts = [
        f"{len(art.added)} added",
        f"{len(art.removed)} removed",
        f"{len(art.changed)} changed",
        f"{len(art.moved)} moved",
        f"{len(art.unchanged)} unchanged",
    ]
    if art.unverified:
        parts.append(f"{len(art.unverified)} not hashed yet")
    return " · ".join(parts)


def section_titles(result: RunDiff) -> dict[str, str]:
    """A heading per section with its counts."""
    changed = sum(1 for m in result.metrics if m.changed)  # another best or more steps too
    values = sum(len(c.changes) + c.more for c in result.configs)
    odd_params = sum(1 for c in result.params if c.kind == "ambiguous")
    odd_metrics = sum(1 for m in result.metrics if m.ambiguous)
    return {
        "params": f"params: {len(result.params) - odd_params} changed"
        + (f", {odd_params} ambiguous" if odd_params else ""),
        "configs": f"configs: {len(result.configs)} file(s) changed, {values} value(s)",
        "metrics": f"metrics: {changed} of {len(result.metrics)} changed"
        + (f", {odd_metrics} ambiguous" if odd_metrics else ""),
        "env": f"environment: {len(result.env)} package(s) differ",
        "artifacts": f"artifacts: {artifact_counts(result)}",
    }
