"""``artlens diff A B``: two runs (from the index, checked against the disk) or two files
(from disk).

Exit status follows diff(1): 0 when equal, 1 when different (or not known equal), 2 on error.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from store import paths
from store.diff import (
    FetchBudget,
    FetchPlan,
    FileDiff,
    FileRef,
    TextDiff,
    diff_files,
    diff_files_text,
)
from store.errors import ArtlensError
from tui.cli.common import (
    EXIT_ERROR,
    db_option,
    emit_json,
    is_terminal,
    json_option,
    reader,
)

if TYPE_CHECKING:  # a file diff needs neither the index nor Rich: imported where used
    from rich.text import Text

    from store.diff import RunDiff
    from store.index.query import RunRow

EXIT_EQUAL = 0
EXIT_DIFFERENT = 1


def _regular_file(path: str) -> str | None:
    """``path`` (symlinks the user typed resolved) when it is a regular file, else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        path = os.path.realpath(path)
        try:
            st = os.lstat(path)
        except OSError:
            return None
    return path if stat.S_ISREG(st.st_mode) else None


@click.command("diff")
@click.argument("a")
@click.argument("b")
@click.option(
    "--context",
    "-U",
    type=click.IntRange(0, 10_000),
    default=3,
    show_default=True,
    help="Lines of context around each change in text diffs.",
)
@click.option(
    "--max-fetch",
    metavar="SIZE",
    default="1G",
    show_default=True,
    help="Bytes of tensors a diff may fetch from a bucket (both sides; 'none': no bound).",
)
@db_option
@json_option
def diff_cmd(
    a: str, b: str, context: int, max_fetch: str, db_path: Path | None, as_json: bool
) -> None:
    """Compare two runs (name, id or path) or two files.

    A side may be an s3:// URL: an object, or a prefix that is a run (read through ranged
    GETs).

    Exit status: 0 when equal, 1 when different, 2 on error.
    """
    from store.root import is_url

    if is_url(a) or is_url(b):
        from tui.cli.urldiff import diff_urls

        sys.exit(diff_urls(a, b, context, as_json, _fetch_bound(max_fetch)))
    from tui.cli.remote import diff_across_hosts

    across = diff_across_hosts(a, b, db_path, as_json, context)
    if across is not None:
        sys.exit(across)
    file_a, file_b = _regular_file(a), _regular_file(b)
    if file_a is not None and file_b is not None:
        sys.exit(_diff_files(file_a, file_b, a, b, context, as_json))
    if (file_a is None) != (file_b is None):
        single = a if file_a is not None else b
        raise ArtlensError(
            f"{paths.display(single)!r} is a file but the other is not: give two files or two runs"
        )
    sys.exit(_diff_runs(a, b, db_path, as_json))


def _fetch_bound(text: str) -> int | None:
    """``--max-fetch``: a size (``500M``, ``2G``, ``1.5GiB``), or ``none``."""
    from store.retention.policy import parse_size

    if text.strip().lower() in ("none", "unlimited", "inf"):
        return None
    try:
        return parse_size(text.strip())
    except ValueError as exc:
        raise ArtlensError(f"--max-fetch: {exc}") from None


def _diff_files(
    path_a: FileRef,
    path_b: FileRef,
    name_a: str,
    name_b: str,
    context: int,
    as_json: bool,
    max_fetch: int | None = None,
) -> int:
    """Diff two files; a tensor diff with a side on a bucket says first (on stderr) what it
    will fetch, and refuses over ``max_fetch``."""

    def said(plan: FetchPlan) -> None:
        click.echo(f"artlens: {plan.line()}", err=True)

    budget = FetchBudget(max_fetch, said)
    result = diff_files(path_a, path_b, budget=budget)
    if result.kind == "text" and context != 3 and result.error is None:
        try:
            text = diff_files_text(path_a, path_b, context=context)
        except Exception as exc:  # diff_files already read both files; this is a rerun
            raise ArtlensError(str(exc)) from None
        result = FileDiff(
            "text",
            text.equal,
            result.size_old,
            result.size_new,
            text,
            None,
            result.notes,
            text.unknown,
        )
    if as_json:
        emit_json(
            {
                "kind": "files",
                "a": paths.display(name_a),
                "b": paths.display(name_b),
                "equal": result.equal,
                "unknown": result.unknown,
                "engine": result.kind,
                "size_a": result.size_old,
                "size_b": result.size_new,
                "error": result.error,
                "notes": result.notes,
                "fetch": None
                if budget.plan is None
                else {**budget.plan.to_json(), "max": max_fetch},
                "result": result.result.to_json() if result.result is not None else None,
            }
        )
    else:
        _print_file_diff(result, name_a, name_b)
    if result.error is not None:
        if not as_json:
            click.echo(f"artlens: error: {' '.join(result.error.split())}", err=True)
        return EXIT_ERROR
    return EXIT_EQUAL if result.equal else EXIT_DIFFERENT


def _print_file_diff(result: FileDiff, name_a: str, name_b: str) -> None:
    from rich.console import Console
    from rich.text import Text

    from tui.diff_render import file_summary, text_notes, unified_text

    colour = is_terminal()
    console = Console(highlight=False) if colour else None
    lines: list[Text] = []
    if isinstance(result.result, TextDiff):
        lines += unified_text(result.result, name_a, name_b, color=colour)
        lines += [Text(note, style="italic dim") for note in text_notes(result.result)]
        lines += [Text(note, style="italic dim") for note in result.notes]
    else:
        lines += file_summary(result)
    if result.equal and not lines:
        lines.append(Text("files are equal", style="dim"))
    for line in lines:
        if console is not None:
            console.print(line, soft_wrap=True)
        else:
            click.echo(line.plain)


def _diff_runs(a: str, b: str, db_path: Path | None, as_json: bool) -> int:
    from store.index.query import resolve_run
    from store.rundiff import diff_run_rows

    warnings: list[str] = []
    with reader(db_path) as db:
        run_a, run_b = resolve_run(db, a), resolve_run(db, b)
        result = diff_run_rows(db, run_a, run_b, warnings)
    return print_run_diff(run_a, run_b, result, warnings, as_json)


def print_run_diff(
    run_a: RunRow,
    run_b: RunRow,
    result: RunDiff,
    warnings: list[str],
    as_json: bool,
    hosts: tuple[str, str] | None = None,
) -> int:
    """Show a run diff (``hosts`` names each run's host when they come from several)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from store.rundiff import VERDICT_LINES, run_diff_json, run_verdict, stale_line
    from tui.diff_render import RUN_COLUMNS, RUN_SECTIONS, run_rows, section_titles

    if as_json:
        data = run_diff_json(run_a, run_b, result, warnings)
        if hosts is not None:
            data["a"]["host"], data["b"]["host"] = hosts
        emit_json(data)
        return EXIT_EQUAL if result.equal else EXIT_DIFFERENT
    host_a, host_b = (f"{h}:" for h in hosts) if hosts else ("", "")
    rows = run_rows(result)
    titles = section_titles(result)
    header = Text()
    header.append("A ", style="bold")
    header.append(f"{host_a}{paths.display(run_a.name)} (#{run_a.id}, {run_a.display_path})")
    header.append("\nB ", style="bold")
    header.append(f"{host_b}{paths.display(run_b.name)} (#{run_b.id}, {run_b.display_path})")
    header.append("\n" + VERDICT_LINES[run_verdict(result)], style="bold")
    stale = stale_line(run_a, run_b, result.stale)
    if stale is not None:  # said once, under the verdict it qualifies, not among the notes
        header.append(f"\nwarning: {paths.display(stale)}", style="yellow")
        warnings = [w for w in warnings if w != stale]
    if is_terminal():
        console = Console(highlight=False)
        console.print(header)
        for section in RUN_SECTIONS:
            section_rows = [row for row in rows if row.section == section]
            console.print(Text("\n" + titles[section], style="bold underline"))
            if not section_rows:
                continue
            table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
            for column in RUN_COLUMNS:
                table.add_column(column, overflow="fold")
            for row in section_rows:
                table.add_row(*row.cells)
            console.print(table)
        for warning in warnings:
            console.print(Text(f"note: {paths.display(warning)}", style="italic dim"))
    else:
        click.echo(header.plain)
        for section in RUN_SECTIONS:
            click.echo(titles[section])
            for row in rows:
                if row.section == section:
                    click.echo("\t".join(cell.plain for cell in row.cells).rstrip())
        for warning in warnings:
            click.echo(f"note: {paths.display(warning)}")
    return EXIT_EQUAL if result.equal else EXIT_DIFFERENT


COMMANDS = [diff_cmd]
