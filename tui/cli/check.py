"""``artlens check``: which runs fall short of their checklist (for CI).

Exit status: 0 when every run passes, 1 when any falls short or cannot be confirmed (an
item not found that may lie in a folder the last scan could not read is ``unknown``,
neither met nor missing, as is an ``@params`` or ``@metrics`` whose files could not be read
whole; a folder outside every run that could not be read may hold runs never checked:
named on stderr), 2 on an error (an invalid checklist config names its file and
line).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from store import paths
from store.checklist import ChecklistResult, evaluate_runs, unchecked_places
from store.index.query import RunRow, UnreadableRow, list_runs, roots, unreadable_places
from store.paths import json_path
from store.safetext import visible
from tui.cli.common import db_option, emit_json, given_file, json_option, reader

EXIT_SHORT = 1


def _row(run: RunRow, result: ChecklistResult) -> dict[str, object]:
    path, path_b64 = json_path(run.abs_path)
    return {
        "id": run.id,
        "name": run.name,
        "path": path,
        "path_b64": path_b64,
        "framework": run.framework,
        "complete": result.complete,
        "passed": result.passed,
        "total": result.total,
        "missing": list(result.missing),
        "unknown": [{"item": item, "reason": why} for item, why in result.unknown],
    }


def _shortfall(result: ChecklistResult) -> str:
    """``\tmissing: a, b`` and ``\tunknown: c: folder out could not be read (...)``."""
    out = f"\tmissing: {visible(', '.join(result.missing))}" if result.missing else ""
    if result.unknown:
        out += "\tunknown: " + "; ".join(visible(f"{i}: {why}") for i, why in result.unknown)
    return out


@click.command("check")
@db_option
@json_option
@click.option(
    "--config",
    "user_config",
    type=click.Path(path_type=Path),
    help="Checklist config to use when a root has no .artlens.toml [checklist].",
)
def check_cmd(db_path: Path | None, as_json: bool, user_config: Path | None) -> None:
    """List runs missing required files (exit 1 when any does).

    An item not found that may lie in a folder the last scan could not read is unknown,
    neither met nor missing, and so is an @params or @metrics the run's reader could not
    read whole: it fails the check too (exit 1), as does a folder outside every run that
    could not be read (runs in it were never checked; named on stderr)."""
    user_config = given_file(user_config, "--config")
    with reader(db_path) as db:
        runs = list_runs(db)
        results, _ = evaluate_runs(db, runs, user_config=user_config, strict=True)
        places = unreadable_places(db.conn)
        root_paths = {rid: path for rid, path, _ in roots(db)}
    if places is None:
        click.echo(
            "artlens: warning: this index does not record the folders its scans could not"
            " read (`artlens index ROOT` records them): an item in one counts as missing",
            err=True,
        )
    unchecked = unchecked_places(runs, places or {})
    for root_id, rows in sorted(unchecked.items()):
        click.echo(_unchecked_line(root_paths.get(root_id, b"?"), rows), err=True)
    short = [r for r in runs if not results[r.id].complete]
    found = " found" if unchecked else ""
    if as_json:
        emit_json([_row(r, results[r.id]) for r in runs])
    elif not runs:
        click.echo("no runs found")
    elif not short:
        click.echo(f"all {len(runs)} runs{found} have every checklist item")
    else:
        for run in short:
            result = results[run.id]
            head = f"{result.label()}\t{visible(run.name)}\t{run.framework}\t{run.display_path}"
            click.echo(head + _shortfall(result))
        unsure = sum(1 for r in short if results[r.id].unknown)
        note = f" ({unsure} with unknown items, neither met nor missing)" if unsure else ""
        click.echo(f"{len(short)} of {len(runs)} runs fall short{note}", err=True)
    if short or unchecked:
        sys.exit(EXIT_SHORT)


def _unchecked_line(root: bytes, rows: list[UnreadableRow]) -> str:
    """``artlens: warning: ROOT: 2 places could not be read, runs in them are not checked:
    secret (permission denied), ...``: the first three."""
    named = ", ".join(visible(r.describe()) for r in rows[:3])
    more = f" (+{len(rows) - 3} more)" if len(rows) > 3 else ""
    count, them = ("1 place", "it") if len(rows) == 1 else (f"{len(rows)} places", "them")
    return (
        f"artlens: warning: {paths.display(root)}: {count} could not be read, and runs in"
        f" {them} are not checked: {named}{more}"
    )


COMMANDS = [check_cmd]
