"""The preview pane and the rendering of a ``store.preview.Preview`` into Rich renderables.

The pane owns its workers: ``show_file`` and ``show_run_detail`` read, render and lay out
on a thread, and only the newest request's result is shown.  ``render_preview`` and
``layout`` run on that worker thread: highlighting and wrapping 256 KiB
of text takes a second, and on the UI thread that second is a frozen screen.  The pane
only holds the finished lines and draws the few that are visible.  Everything from disk
reaches the screen as ``Text``/``Syntax``/``Table`` built from already-escaped strings,
never as markup.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from rich import box
from rich.console import Group, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.scrollbar import ScrollTo, ScrollUp
from textual.strip import Strip
from textual.widget import Widget
from textual.worker import Worker, get_current_worker

from store import paths
from store.index.query import ArtifactRow, FolderEntry, RunRow
from store.safetext import visible
from tui.format import DANGER, human_age, human_size
from tui.messages import PreviewReady
from tui.workers import SaysWorkerFailures

if TYPE_CHECKING:
    from store.index.views import ReaderPool
    from store.preview import ImageData, Preview
    from tui.hosts import Hosts

MAX_LINES = 3000
"""Lines of text shown per section: more is slow to lay out and nobody scrolls that far."""
QUICK_LINES = 60
"""Lines per section of the first, fast view of a big file (a tall screenful; the whole
view follows)."""
LINE_CHARS = 160
"""Characters allowed per shown line on average (a budget: short lines lend to long ones)."""
CHUNK_LINES = 40
"""Lines highlighted in one piece (see ``_code``)."""
YIELD_EVERY = 32
"""Lines a worker lays out before it lets the UI thread take the GIL."""
Line = list[Segment]
"""One laid-out line.  Not a ``Strip``: a strip carries seven caches, and the thousands a
preview laid out this way used to make were what set off the full garbage collections
(100 ms of held GIL each on a busy machine); the pane makes strips of the visible lines."""
YIELD_SECONDS = 0.002
"""Work a worker does between two pauses at most (a piece of text may be few lines)."""
QUICK_CHARS = 16_000
"""Text above this many characters gets a quick first view (a few screens of it)."""
REST_SECONDS = 0.25
"""The whole view of a big text is laid out once the cursor rests on it this long: its
seconds of work would compete with every key of someone moving through the files."""
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
        header.append("\n")
        header.append("!", style=DANGER)
        header.append(" ")
        header.append(artifact.verdict.upper(), style=VERDICT_STYLE[artifact.verdict])
        if artifact.verdict_reason:
            header.append(" " + visible(artifact.verdict_reason))
    return header


def _limit_lines(text: str, limit: int = MAX_LINES) -> tuple[str, int]:
    """At most ``limit`` lines of ``text`` and about ``LINE_CHARS`` characters a line (a
    megabyte on one line would wrap to thousands of rows); the count of lines left out."""
    lines = text.split("\n", limit)
    rest = 0
    if len(lines) > limit:
        rest = lines.pop().count("\n") + 1
    budget = limit * LINE_CHARS
    kept: list[str] = []
    for index, line in enumerate(lines):
        if len(line) >= budget:
            kept.append(line[:budget] + " …")
            rest += len(lines) - index - 1
            break
        kept.append(line)
        budget -= len(line) + 1
    return "\n".join(kept), rest


def preview_weight(preview: Preview) -> int:
    """Characters of text the preview lays out: above a few screens, show a quick view first."""
    return len(preview.text) + len(preview.tail_text)


PAUSE = 0.0005
"""Seconds a worker sleeps between two pieces of work when nobody else wants the GIL."""
MAX_PAUSE = 0.016
"""The longest sleep of a worker giving way to a busy UI thread (about a frame)."""


def give_way() -> None:
    """Let the UI thread take the GIL: a short sleep, longer while another thread keeps the
    interpreter busy (the GIL came back late).  Pausing every few milliseconds is not
    enough on its own: each handover can cost the UI thread a switch interval (5 ms), and a
    key takes a dozen of them (every turn of the event loop gives the GIL up)."""
    pause = PAUSE
    while True:
        start = time.perf_counter()
        time.sleep(pause)
        if time.perf_counter() - start - pause < 0.001 or pause >= MAX_PAUSE:
            return
        pause *= 2


def layout(
    sections: Sequence[RenderableType], width: int, *, share_gil: bool = False
) -> tuple[Line, ...]:
    """The sections as lines of ``width`` cells, a blank line after each.

    Safe on a worker thread (a private console); ``share_gil`` sleeps a moment every
    ``YIELD_EVERY`` lines so the UI thread is never kept waiting for the GIL, and stops
    early when the worker was cancelled (a newer preview was asked for)."""
    from rich.console import Console

    console = Console(
        width=max(1, width),
        file=io.StringIO(),
        color_system="truecolor",
        force_terminal=True,
        legacy_windows=False,
        no_color=False,
    )
    options = console.options.update_width(max(1, width))
    worker = get_current_worker() if share_gil else None
    strips: list[Line] = []
    began = time.perf_counter()
    for section in sections:
        pieces = section.renderables if isinstance(section, Group) else [section]
        for piece in pieces:
            for segments in console.render_lines(piece, options, pad=False):
                strips.append(segments)
                if worker is not None and len(strips) % YIELD_EVERY == 0:
                    if worker.is_cancelled:
                        return tuple(strips)
                    give_way()
                    began = time.perf_counter()
            if worker is not None and time.perf_counter() - began > YIELD_SECONDS:
                if worker.is_cancelled:
                    return tuple(strips)
                give_way()
                began = time.perf_counter()
        strips.append([])
    return tuple(strips)


def _code(text: str, lexer: str | None, dark: bool) -> RenderableType:
    """Highlighted text, in pieces of ``CHUNK_LINES`` lines: ``layout`` lets the UI thread
    run between pieces, where one highlight of 3,000 lines would hold the GIL throughout."""
    lines = text.split("\n")
    if len(lines) > CHUNK_LINES:
        return Group(
            *(
                _code_piece("\n".join(lines[start : start + CHUNK_LINES]), lexer, dark)
                for start in range(0, len(lines), CHUNK_LINES)
            )
        )
    return _code_piece(text, lexer, dark)


def _code_piece(text: str, lexer: str | None, dark: bool) -> RenderableType:
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
    max_lines: int = MAX_LINES,
) -> tuple[RenderableType, ...]:
    """Sections for the pane, top to bottom; safe to call on a worker thread.

    ``max_lines`` caps each text section (a quick first view passes ``QUICK_LINES``)."""
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
        text, cut = _limit_lines(preview.text, max_lines)
        if preview.from_end and cut:
            lines = preview.text.split("\n")
            text = "\n".join(lines[-max_lines:])[-max_lines * LINE_CHARS :]
            cut = 0
        sections.append(_code(text, preview.lexer, dark))
        if cut:
            sections.append(_note(f"… {cut} more lines not shown"))
        if preview.tail_text:
            sections.append(
                _note(f"… {human_size(preview.skipped_bytes)} skipped: showing the first "
                      f"{human_size(preview.head_bytes)} and the last "
                      f"{human_size(preview.tail_bytes)} …")
            )  # fmt: skip
            tail = "\n".join(preview.tail_text.split("\n")[-max_lines:])
            tail = tail[-max_lines * LINE_CHARS :]
            sections.append(_code(tail, preview.lexer, dark))
    elif kind == "table":
        if preview.skipped_bytes:
            sections.append(
                _note(f"large file: the middle {human_size(preview.skipped_bytes)} is not read; "
                      f"showing the first {len(preview.rows)} and the last "
                      f"{len(preview.tail_rows)} rows")
            )  # fmt: skip
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
        block.append("!", style=DANGER)
        block.append(" ")
        block.append(visible(problem) + "\n")
    block.rstrip()
    return (block,) if block else ()


def symlink_sections(artifact: ArtifactRow, name: str, now: float) -> tuple[RenderableType, ...]:
    target = paths.display(artifact.link_target or "?")
    return (
        file_header(name, artifact, artifact.size, now),
        Text(f"symbolic link to {target}; not followed", style="italic"),
    )


@dataclass(frozen=True)
class PreviewSource:
    """Where the pane's workers read: the index's readers, the followed hosts, the clock."""

    pool: ReaderPool
    hosts: Hosts
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class _FileRequest:
    """One file preview asked for (see ``PreviewPane.show_file``)."""

    token: int
    root_id: int
    root: bytes
    artifact: ArtifactRow
    name: str
    problem: str | None
    pinned: bool
    note: str | None
    reread: bool
    width: int
    dark: bool


def _rested(worker: Worker[None]) -> bool:
    """Wait ``REST_SECONDS`` on a worker; False when it was cancelled meanwhile."""
    deadline = time.monotonic() + REST_SECONDS
    while time.monotonic() < deadline:
        if worker.is_cancelled:
            return False
        time.sleep(0.01)
    return not worker.is_cancelled


class PreviewLines(Widget):
    """Lines laid out beforehand (``layout``): drawing is per visible line, so a preview of
    thousands of lines costs the UI thread no more than one screenful."""

    def __init__(self, strips: tuple[Line, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strips = strips

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.strips)

    def render_line(self, y: int) -> Strip:
        style = self.rich_style
        width = self.size.width
        if y >= len(self.strips):
            return Strip.blank(width, style)
        return Strip(self.strips[y]).apply_style(style).crop_extend(0, width, style)


class PreviewPane(SaysWorkerFailures, VerticalScroll):
    """A scrollable stack of sections; replaced whole when the selected file changes."""

    can_focus = True
    ALLOW_MAXIMIZE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "line(1)", "Down", show=False, id="preview.down"),
        Binding("k", "line(-1)", "Up", show=False, id="preview.up"),
        Binding("g", "top", "Top", show=False, id="preview.top"),
        Binding("G", "bottom", "Bottom", show=False, id="preview.bottom"),
        Binding("F,end", "follow", "Follow", show=False, id="preview.follow"),
    ]

    def __init__(self, source: PreviewSource | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        """What the workers read from (``show_file``, ``show_run_detail`` need it)."""
        self._token = 0
        """Numbers the requests: only the newest one's result is shown."""
        self.sections: tuple[RenderableType, ...] = ()
        """What the pane shows now (tests and screenshots read it)."""
        self.shown_key: bytes | None = None
        """The file or run the sections are about (None for messages and folders)."""
        self._laid_width: int | None = None
        self.followable = False
        """The shown file grows at its end (a log, a metrics CSV): it can be followed."""
        self.following = False
        """Following: each refresh shows the newest lines.  Scrolling up pauses; F or
        End resumes (like ``tail -f`` in a pager)."""
        self.warnings: tuple[str, ...] = ()
        """What the shown file's preview warns of (ragged rows, a parse that failed),
        written at the top of its text and kept in the border: a view that follows the
        end, or was scrolled down, would hide the top."""

    def plain_text(self, width: int = 100) -> str:
        """The sections as plain text, the way a terminal without colour would show them."""
        from rich.console import Console

        console = Console(width=width, record=True, color_system=None, file=io.StringIO())
        for section in self.sections:
            console.print(section)
        return console.export_text()

    @property
    def line_width(self) -> int:
        """Cells a laid-out line may use (the scrollbar's gutter is always kept)."""
        return max(8, self.scrollable_content_region.width or (self.size.width - 2) or 60)

    def show(
        self,
        sections: Iterable[RenderableType],
        *,
        scroll_end: bool = False,
        key: bytes | None = None,
        lines: tuple[Line, ...] | None = None,
        width: int | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        """Replace the sections (a preview still being built is dropped).  The same
        ``key`` again is a live refresh of what is shown: the reader's place is kept, and a
        tail (``scroll_end``) is followed only from the end.

        ``lines`` are the sections already laid out at ``width``; without them the sections
        are laid out here (callers pass only small ones)."""
        self._supersede()
        self._show(
            sections, scroll_end=scroll_end, key=key, lines=lines, width=width, warnings=warnings
        )

    def _show(
        self,
        sections: Iterable[RenderableType],
        *,
        scroll_end: bool = False,
        key: bytes | None = None,
        lines: tuple[Line, ...] | None = None,
        width: int | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        refresh = key is not None and key == self.shown_key
        at_end, place = self.scroll_y >= self.max_scroll_y, self.scroll_y
        self.shown_key = key
        self.sections = tuple(sections)
        self.warnings = warnings
        if lines is None or width != self.line_width:
            if lines is not None:
                self._reflow()
            lines = layout(self.sections if lines is None else self.sections[:2], self.line_width)
        self._laid_width = self.line_width
        self._set_lines(lines)
        if not refresh:
            self.followable = self.following = scroll_end
        elif scroll_end and not self.followable:  # it just started to grow: follow it
            self.followable = self.following = True
        # Following pauses only on the reader's own scrolling (keys, wheel, scrollbar), never
        # on where the view is: a refresh can land before the last one's scroll to the end.
        follow = scroll_end and self.following
        stay_at_end = refresh and at_end and place > 0  # read to the end: stay there
        self._follow_subtitle()
        if follow or stay_at_end:
            self.call_after_refresh(self.scroll_end, animate=False)
        elif refresh:
            self.call_after_refresh(self.scroll_to, y=place, animate=False)
        else:
            self.scroll_home(animate=False)

    def _set_lines(self, lines: tuple[Line, ...]) -> None:
        """Show ``lines``: in the widget already mounted when there is one (a new widget
        per preview costs the UI thread a removal, a mount and their styling each time)."""
        shown = self.children[0] if len(self.children) == 1 else None
        if isinstance(shown, PreviewLines):
            shown.strips = lines
            shown.refresh(layout=True)
            return
        with self.app.batch_update():
            self.remove_children()
            self.mount(PreviewLines(lines))

    def show_message(self, message: str) -> None:
        self.show([_note(message)])

    # -- previews and run details, built on workers --------------------------------------

    def _supersede(self) -> int:
        """A new request: what older ones still build is dropped (their workers stop)."""
        self._token += 1
        self.workers.cancel_group(self, "preview")
        return self._token

    def show_file(
        self,
        root_id: int,
        root: bytes,
        artifact: ArtifactRow,
        name: str,
        *,
        problem: str | None = None,
        pinned: bool = False,
        note: str | None = None,
        reread: bool = False,
    ) -> None:
        """Preview one file of the root ``root`` (its index id ``root_id``): read, rendered
        and laid out on a worker, with ``problem`` (integrity), the pin and the note.
        ``reread`` takes the file's row from the index again (it changed on disk).

        The worker starts once the screen shows what asked for it (a moved cursor): its
        work competes with the UI thread for the GIL, and the key comes first."""
        if self.source is None:
            return
        token = self._supersede()
        request = _FileRequest(
            token, root_id, root, artifact, name, problem, pinned, note, reread,
            self.line_width, self.app.current_theme.dark,
        )  # fmt: skip
        self.call_after_refresh(self._start_file, request)

    def _start_file(self, request: _FileRequest) -> None:
        if request.token == self._token:  # not superseded while the screen was drawn
            self._file_worker(request)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _file_worker(self, request: _FileRequest) -> None:
        """Read, render and lay out off the UI thread.  A big text shows a quick view of
        its first and last lines at once; the whole view replaces it when the cursor rests."""
        from store.index.views import artifact_at
        from store.preview import preview_at, preview_file
        from store.root import is_url
        from store.root.shared import shared_root
        from store.runs import LIVE_SECONDS

        assert self.source is not None
        pool, hosts = self.source.pool, self.source.hosts
        worker = get_current_worker()
        artifact, root, root_id = request.artifact, request.root, request.root_id
        remote = hosts.remote_of(root_id)
        if remote is not None:  # a mirrored file: its bytes come from its host
            if request.reread:
                with remote[1].connection() as db:
                    artifact = artifact_at(db, remote[2], artifact.path) or artifact
            with hosts.fetching:
                if worker.is_cancelled:
                    return
                result = hosts.preview(remote[0], root, artifact)
        else:
            if request.reread:
                with pool.connection() as db:
                    artifact = artifact_at(db, root_id, artifact.path) or artifact
            url = os.fsdecode(root)
            if is_url(url):  # a bucket: head and tail range reads, never the whole object
                result = preview_at(shared_root(url), paths.unkey(artifact.path))
            else:
                result = preview_file(os.path.join(root, artifact.path))
        if worker.is_cancelled:  # the cursor moved on: leave the GIL to the keys
            return
        extras = self._artifact_extras(request, artifact)
        now = self.source.clock()
        problem = problem_sections([request.problem] if request.problem else [])
        # A metrics table being written: its newest rows matter (an old one opens at the top).
        growing_metrics = (
            result.kind == "table"
            and artifact.kind == "metrics"
            and artifact.mtime is not None
            and now - artifact.mtime < LIVE_SECONDS
        )
        stages = [MAX_LINES]
        if preview_weight(result) > QUICK_CHARS:
            stages.insert(0, QUICK_LINES)
        for stage in stages:
            if stage != stages[0] and not _rested(worker):
                return
            if worker.is_cancelled:
                return
            sections = render_preview(
                result,
                name=request.name,
                artifact=artifact,
                now=now,
                width=request.width,
                dark=request.dark,
                max_lines=stage,
            )
            sections = sections[:1] + problem + sections[1:] + extras
            lines = layout(sections, request.width, share_gil=True)
            if worker.is_cancelled:
                return
            self.post_message(
                PreviewReady(
                    request.token,
                    artifact.path,
                    sections,
                    artifact,
                    scroll_end=result.from_end or growing_metrics,
                    lines=lines,
                    width=request.width,
                    final=stage == stages[-1],
                    warnings=result.warnings,
                )
            )

    def _artifact_extras(
        self, request: _FileRequest, artifact: ArtifactRow
    ) -> tuple[RenderableType, ...]:
        """Pin, note and identical copies of one file (called on the preview worker)."""
        from store.lineage import copies_of
        from tui.hosts import same_bytes_sections
        from tui.widgets.run_detail import copies_sections

        assert self.source is not None
        pool, hosts = self.source.pool, self.source.hosts
        extras: list[RenderableType] = []
        elsewhere = same_bytes_sections(hosts.same_bytes_elsewhere(pool, request.root_id, artifact))
        remote = hosts.remote_of(request.root_id)
        if remote is not None:  # copies within its host's mirror; no local pins or notes
            if artifact.run_id is not None:
                with remote[1].connection() as db:
                    extras += copies_sections(copies_of(db, artifact))
            return tuple(extras) + elsewhere
        if request.pinned:
            extras.append(Text("◆ pinned: retention keeps it", style="bold yellow"))
        if request.note:
            extras.append(Text("✎ " + visible(request.note), style="italic"))
        if artifact.run_id is not None:
            with pool.connection() as db:
                extras += copies_sections(copies_of(db, artifact))
        return tuple(extras) + elsewhere

    def show_run_detail(
        self,
        run: RunRow,
        shown: tuple[RenderableType, ...],
        *,
        note: str | None = None,
        pinned: bool = False,
        checklist: bool = True,
    ) -> None:
        """Show the run's detail (params, metrics, checklist unless ``checklist`` is False,
        copies) below ``shown``, read and laid out on a worker."""
        if self.source is None:
            return
        token = self._supersede()
        self._run_detail_worker(token, run, shown, note, pinned, checklist, self.line_width)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _run_detail_worker(
        self,
        token: int,
        run: RunRow,
        shown: tuple[RenderableType, ...],
        note: str | None,
        pinned: bool,
        checklist: bool,
        width: int,
    ) -> None:
        from tui.widgets.run_detail import load_run_detail, run_detail_sections

        assert self.source is not None
        hosts = self.source.hosts
        remote = hosts.remote_of(run.id)
        if remote is not None:
            from tui.hosts import remote_run_detail

            with remote[1].connection() as db:
                detail = remote_run_detail(db, hosts.own_run(run), remote[0].name)
            detail = replace(detail, run=run)
        else:
            with self.source.pool.connection() as db:
                detail = load_run_detail(db, run, note=note, pinned=pinned, checklist=checklist)
        sections = shown + run_detail_sections(detail, self.source.clock())
        lines = layout(sections, width, share_gil=True)
        if get_current_worker().is_cancelled:
            return
        self.post_message(PreviewReady(token, run.path, sections, lines=lines, width=width))

    def on_preview_ready(self, message: PreviewReady) -> None:
        message.stop()
        if message.token == self._token:
            self._show(
                message.sections,
                scroll_end=message.scroll_end,
                key=message.key,
                lines=message.lines,
                width=message.width,
                warnings=message.warnings,
            )

    # Without animation: a key moves the text at once, and the next key starts from there.
    def action_line(self, step: int) -> None:
        if step < 0:
            self._pause()
        self.scroll_to(y=self.scroll_y + step, animate=False)

    def action_top(self) -> None:
        self._pause()
        self.scroll_home(animate=False)

    def action_follow(self) -> None:
        """Back to the newest lines, and keep showing them as the file grows."""
        self.following = self.followable
        self._follow_subtitle()
        self.scroll_end(animate=False)

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._pause()
        super()._on_mouse_scroll_up(event)

    def _on_scroll_up(self, event: ScrollUp) -> None:  # a click above the scrollbar's thumb
        self._pause()
        super()._on_scroll_up(event)

    def _on_scroll_to(self, message: ScrollTo) -> None:  # the scrollbar's thumb dragged
        if message.y is not None and message.y < self.max_scroll_y:
            self._pause()
        super()._on_scroll_to(message)

    def _pause(self) -> None:
        if self.following:
            self.following = False
            self._follow_subtitle()

    def _follow_subtitle(self) -> None:
        """The border's line: the file's warnings (their full text is at the top), then
        whether the view follows the file's end."""
        subtitle = Text()
        if self.warnings:
            first = self.warnings[0].split(":", 1)[0][:40]
            subtitle.append(f"! {first}", style="bold yellow")
            if len(self.warnings) > 1:
                subtitle.append(f" +{len(self.warnings) - 1}", style="bold yellow")
            subtitle.append(" ↑", style="yellow")
        if self.followable:
            if subtitle:
                subtitle.append(" · ")
            subtitle.append("following ▼" if self.following else "paused · F follows")
        self.border_subtitle = subtitle or None

    def action_bottom(self) -> None:
        self.scroll_end(animate=False)

    def on_resize(self) -> None:
        if self.sections and self._laid_width != self.line_width:
            self._reflow()

    def _reflow(self) -> None:
        """Lay the shown sections out again at the new width, on a worker."""
        sections, width = self.sections, self.line_width
        self._laid_width = width

        def work() -> None:
            lines = layout(sections, width, share_gil=True)
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self._reflowed, sections, width, lines)

        self.run_worker(work, thread=True, group="reflow", exclusive=True, exit_on_error=False)

    def _reflowed(
        self, sections: tuple[RenderableType, ...], width: int, lines: tuple[Line, ...]
    ) -> None:
        if sections is not self.sections or width != self.line_width:
            return
        place = self.scroll_y
        self._set_lines(lines)
        self.call_after_refresh(self.scroll_to, y=place, animate=False)
