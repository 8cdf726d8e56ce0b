"""The preview pane and the rendering of a ``store.preview.Preview`` into Rich renderables.

``render_preview`` runs on a worker thread (highlighting 256 KiB of text is not free); the
pane only mounts the finished sections.  Everything from disk reaches the screen as
``Text``/``Syntax``/``Table`` built from already-escaped strings, never as markup.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from store import paths
from store.query import ArtifactRow, FolderEntry
from store.safetext import visible
from tui.format import human_age, human_size

if TYPE_CHECKING:
    from store.preview import ImageData, Preview

MAX_LINES = 3000
"""Lines of text shown per section: more is slow to lay out and nobody scrolls that far."""
VERDICT_STYLE = {
    "safe": "bold green",
    "unknown": "bold yellow",
    "dangerous": "bold white on red",
    "corrupt": "bold red",
    "n/a": "dim",
}


def _note(text: str) -> Text:
    return Text(text, style="italic dim")


def file_header(name: str, artifact: ArtifactRow | None, size: int, now: float) -> Text:
    """Name, then size, kind, age and hash of an indexed file."""
    header = Text(no_wrap=False)
    header.append(visible(name), style="bold")
    parts = [human_size(size)]
    if artifact is not None:
        parts += [artifact.kind, f"modified {human_age(artifact.mtime, now)} ago"]
        if artifact.hash:
            parts.append(f"xxh3 {artifact.hash[:16]}")
        elif artifact.hash_state != "done":
            parts.append(f"hash {artifact.hash_state}")
    header.append("\n" + " · ".join(parts), style="dim")
    if artifact is not None and artifact.verdict in ("dangerous", "corrupt"):
        header.append("\n! ", style="bold red")
        header.append(artifact.verdict.upper(), style=VERDICT_STYLE[artifact.verdict])
        if artifact.verdict_reason:
            header.append(" " + visible(artifact.verdict_reason))
    return header


def _limit_lines(text: str) -> tuple[str, int]:
    lines = text.split("\n")
    if len(lines) <= MAX_LINES:
        return text, 0
    return "\n".join(lines[:MAX_LINES]), len(lines) - MAX_LINES


def _code(text: str, lexer: str | None, dark: bool) -> RenderableType:
    if not lexer or lexer == "text":
        return Text(text, no_wrap=False)
    # Imported on first use: rich.syntax pulls in Pygments, which the first frame never needs.
    from rich.syntax import Syntax

    return Syntax(
        text,
        lexer,
        theme="ansi_dark" if dark else "ansi_light",
        background_color="default",
        word_wrap=True,
        code_width=None,
    )


def image_text(image: ImageData, width: int) -> Text:
    """The picture as half blocks: each cell is two pixels, top as foreground (``▀``)."""
    step = max(1, -(-image.width // max(1, width)))
    out = Text(no_wrap=True, overflow="crop")
    rows = image.rows
    for y in range(0, image.height, 2 * step):
        top = rows[y]
        bottom = rows[y + step] if y + step < image.height else None
        for x in range(0, image.width, step):
            t = top[3 * x : 3 * x + 3]
            style = f"rgb({t[0]},{t[1]},{t[2]})"
            if bottom is not None:
                b = bottom[3 * x : 3 * x + 3]
                style += f" on rgb({b[0]},{b[1]},{b[2]})"
            out.append("▀", style=style)
        out.append("\n")
    out.rstrip()
    return out


def _table(preview: Preview) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, show_lines=False, expand=False, header_style="bold", pad_edge=False
    )
    width = max([len(preview.header), *(len(r) for r in (*preview.rows, *preview.tail_rows))])
    header = list(preview.header) + [""] * (width - len(preview.header))
    for title in header:
        table.add_column(Text(title), no_wrap=True, overflow="ellipsis", max_width=24)
    for row in preview.rows:
        table.add_row(*(Text(c) for c in row))
    if preview.tail_rows:
        gap = (
            f"… {preview.rows_omitted} rows …"
            if preview.rows_omitted is not None
            else "… rows skipped …"
        )
        if preview.rows_omitted != 0:
            table.add_row(*([_note(gap)] + [Text("")] * (width - 1)))
        for row in preview.tail_rows:
            table.add_row(*(Text(c) for c in row))
    return table


def _summary_lines(summary: dict[str, object], limit: int = 40) -> Iterable[Text]:
    for key, value in list(summary.items())[:limit]:
        line = Text()
        line.append(visible(str(key)), style="bold")
        line.append(": ")
        if isinstance(value, list | tuple):
            line.append(f"{len(value)} item(s)")
            yield line
            for item in list(value)[:20]:
                yield Text("  " + visible(_short(item)))
            if len(value) > 20:
                yield _note(f"  … {len(value) - 20} more")
            continue
        if isinstance(value, dict):
            line.append(f"{len(value)} entries")
            yield line
            for sub_key, sub_value in list(value.items())[:20]:
                yield Text(f"  {visible(str(sub_key))}: {visible(_short(sub_value))}")
            if len(value) > 20:
                yield _note(f"  … {len(value) - 20} more")
            continue
        line.append(visible(_short(value)))
        yield line


def _short(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _model(inspection: Any) -> list[RenderableType]:
    head = Text()
    head.append("format ", style="dim")
    head.append(str(inspection.format), style="bold")
    head.append("   verdict ", style="dim")
    verdict = str(inspection.verdict)
    head.append(f" {verdict.upper()} ", style=VERDICT_STYLE.get(verdict, "bold"))
    if inspection.integrity:
        head.append(f"   integrity {visible(str(inspection.integrity))}", style="dim")
    sections: list[RenderableType] = [head]
    if inspection.reasons:
        reasons = Text()
        for reason in inspection.reasons:
            reasons.append("• " + visible(str(reason)) + "\n")
        reasons.rstrip()
        sections.append(reasons)
    if inspection.imports:
        imports = Text("imports: ", style="bold")
        imports.append(", ".join(visible(str(i)) for i in inspection.imports[:40]), style="")
        sections.append(imports)
    if inspection.summary:
        sections.append(Text("\n").join(_summary_lines(dict(inspection.summary))))
    return sections


def render_preview(
    preview: Preview,
    *,
    name: str,
    artifact: ArtifactRow | None,
    now: float,
    width: int,
    dark: bool,
) -> tuple[RenderableType, ...]:
    """Sections for the pane, top to bottom; safe to call on a worker thread."""
    size = preview.size or (artifact.size if artifact else 0)
    sections: list[RenderableType] = [file_header(name, artifact, size, now)]
    sections += [_note(n) for n in preview.notes]
    kind = preview.kind
    if kind in ("text", "structured"):
        if preview.from_end and preview.skipped_bytes:
            sections.append(
                _note(f"showing the last {human_size(preview.tail_bytes)}; "
                      f"{human_size(preview.skipped_bytes)} before it skipped")
            )  # fmt: skip
        text, cut = _limit_lines(preview.text)
        if preview.from_end and cut:
            lines = preview.text.split("\n")
            text, cut = "\n".join(lines[-MAX_LINES:]), 0
        sections.append(_code(text, preview.lexer, dark))
        if cut:
            sections.append(_note(f"… {cut} more lines not shown"))
        if preview.tail_text:
            sections.append(
                _note(f"… {human_size(preview.skipped_bytes)} skipped: showing the first "
                      f"{human_size(preview.head_bytes)} and the last "
                      f"{human_size(preview.tail_bytes)} …")
            )  # fmt: skip
            tail, _ = _limit_lines(preview.tail_text)
            sections.append(_code(tail, preview.lexer, dark))
    elif kind == "table":
        if preview.skipped_bytes:
            sections.append(_note(f"large file: {human_size(preview.skipped_bytes)} skipped"))
        sections.append(_table(preview))
    elif kind == "image" and preview.image is not None:
        sections.append(image_text(preview.image, max(8, width - 2)))
    elif kind == "model":
        sections += _model(preview.inspection)
        sections.append(_note("first bytes:"))
        sections.append(Text(preview.hex_head, style="dim"))
    elif kind == "binary":
        sections.append(_note("binary file: first bytes"))
        sections.append(Text(preview.hex_head))
    return tuple(sections)


def folder_sections(entry: FolderEntry | None, name: str, now: float) -> tuple[RenderableType, ...]:
    """What the pane shows for a folder: totals from the index (no disk access)."""
    text = Text()
    text.append(visible(name) + "/", style="bold")
    if entry is not None:
        text.append(
            f"\n{human_size(entry.size)} in {entry.count} files · "
            f"modified {human_age(entry.mtime, now)} ago",
            style="dim",
        )
    return (text,)


def problem_sections(problems: Iterable[str]) -> tuple[RenderableType, ...]:
    """Integrity problems (``store.integrity``) as one red block, or nothing."""
    block = Text()
    for problem in problems:
        block.append("! ", style="bold red")
        block.append(visible(problem) + "\n")
    block.rstrip()
    return (block,) if block else ()


def symlink_sections(artifact: ArtifactRow, name: str, now: float) -> tuple[RenderableType, ...]:
    target = paths.display(artifact.link_target or "?")
    return (
        file_header(name, artifact, artifact.size, now),
        Text(f"symbolic link to {target}; not followed", style="italic"),
    )


class PreviewPane(VerticalScroll):
    """A scrollable stack of sections; replaced whole when the selected file changes."""

    can_focus = True
    ALLOW_MAXIMIZE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False, id="preview.down"),
        Binding("k", "scroll_up", "Up", show=False, id="preview.up"),
        Binding("g", "scroll_home", "Top", show=False, id="preview.top"),
        Binding("G", "scroll_end", "Bottom", show=False, id="preview.bottom"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sections: tuple[RenderableType, ...] = ()
        """What the pane shows now (tests and screenshots read it)."""
        self.shown_key: bytes | None = None
        """The file or run the sections are about (None for messages and folders)."""

    def plain_text(self, width: int = 100) -> str:
        """The sections as plain text, the way a terminal without colour would show them."""
        from rich.console import Console

        console = Console(width=width, record=True, color_system=None, file=io.StringIO())
        for section in self.sections:
            console.print(section)
        return console.export_text()

    def show(
        self,
        sections: Iterable[RenderableType],
        *,
        scroll_end: bool = False,
        key: bytes | None = None,
    ) -> None:
        """Replace the sections.  The same ``key`` again is a live refresh of what is shown:
        the reader's place is kept, and a tail (``scroll_end``) is followed only from the end."""
        refresh = key is not None and key == self.shown_key
        at_end, place = self.scroll_y >= self.max_scroll_y, self.scroll_y
        self.shown_key = key
        self.sections = tuple(sections)
        with self.app.batch_update():
            self.remove_children()
            self.mount_all(Static(section, markup=False) for section in self.sections)
        if scroll_end and (at_end or not refresh):
            self.call_after_refresh(self.scroll_end, animate=False)
        elif refresh:
            self.call_after_refresh(self.scroll_to, y=place, animate=False)
        else:
            self.scroll_home(animate=False)

    def show_message(self, message: str) -> None:
        self.show([_note(message)])
