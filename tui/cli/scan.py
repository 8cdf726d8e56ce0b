"""``artlens scan``: the safety verdict of every model file under some paths, for CI.

It needs no index: files are inspected statically (``store.integrity.check_paths``), never
unpickled.  Exit status 1 when anything is dangerous (with ``--fail-on unknown``, also
unknown or corrupt, which includes whatever could not be read), 2 on error, else 0.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click

from store.errors import ArtlensError
from store.integrity import FileCheck, check_paths
from store.paths import display
from tui.cli.common import Seconds, emit_json, is_terminal, json_option, no_empty

EXIT_DANGEROUS = 1
VERDICT_ORDER = ("dangerous", "corrupt", "unknown", "safe", "n/a", "skipped")
SEVERITY = {"skipped": 0, "n/a": 0, "safe": 0, "unknown": 1, "corrupt": 1, "dangerous": 2}
"""What each verdict weighs against ``--fail-on`` (safe < unknown < dangerous); a verdict
not listed here weighs as unknown, so nothing unforeseen passes a strict gate."""
FAIL_ON = {"dangerous": 2, "unknown": 1}
"""The weight from which each ``--fail-on`` level fails the scan."""
VERDICT_STYLE = {
    "safe": "green",
    "unknown": "yellow",
    "dangerous": "bold white on red",
    "corrupt": "bold red",
    "n/a": "dim",
    "skipped": "dim",
}


def _reason(check: FileCheck) -> str:
    """The one reason worth a line: the integrity problem, else the first reason."""
    if check.verdict == "corrupt" and check.integrity:
        return check.integrity
    if check.verdict == "dangerous":
        flagged = [r for r in check.reasons if "dangerous" in r]
        if flagged:
            return flagged[0]
    return check.reasons[0] if check.reasons else ""


def _counts(checks: list[FileCheck]) -> dict[str, int]:
    found = Counter(c.verdict if c.verdict in SEVERITY else "unknown" for c in checks)
    return {verdict: found.get(verdict, 0) for verdict in VERDICT_ORDER}


def _fails(checks: list[FileCheck], fail_on: str) -> bool:
    """Whether any check weighs at least what ``fail_on`` fails from."""
    return any(SEVERITY.get(c.verdict, SEVERITY["unknown"]) >= FAIL_ON[fail_on] for c in checks)


def _summary(counts: dict[str, int]) -> str:
    inspected = sum(n for v, n in counts.items() if v != "skipped")
    parts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return f"{inspected} model file(s) inspected" + (f": {parts}" if parts else "")


def _print_table(checks: list[FileCheck]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("format", no_wrap=True)
    table.add_column("path", overflow="fold")
    table.add_column("why", overflow="fold")
    for check in checks:
        table.add_row(
            Text(check.verdict, style=VERDICT_STYLE.get(check.verdict, "")),
            Text(check.format),
            Text(check.path),
            Text(_reason(check), style="dim" if check.verdict in ("safe", "n/a") else ""),
        )
    Console().print(table)


@click.command("scan")
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--fail-on",
    type=click.Choice(list(FAIL_ON)),
    default="dangerous",
    show_default=True,
    help=(
        "Exit 1 on dangerous files only, or also on unknown and corrupt ones and on anything "
        "that could not be read (a strict CI gate)."
    ),
)
@click.option(
    "--max-time",
    type=Seconds(),
    default=600.0,
    show_default=True,
    help="Time budget of the whole scan, in seconds: files reached after it are unknown.",
)
@json_option
def scan_cmd(targets: tuple[str, ...], fail_on: str, max_time: float, as_json: bool) -> None:
    """Say whether loading each model file under TARGETS would run code (exit 1 if so).

    Pickles, torch checkpoints and exports (.pt2), joblib, NumPy, safetensors and GGUF
    files are inspected statically and never loaded; a symlinked file is read through its
    target, symlinked folders are never followed.  An s3://bucket/prefix is read through
    ranged reads, never downloaded.  Needs no index.
    """
    from store.root import is_url

    no_empty(targets, "TARGET", "name a file or folder; . for the current one")
    folders = [Path(t) for t in targets if not is_url(t)]
    for target in folders:
        if not target.exists() and not target.is_symlink():
            raise ArtlensError(f"no such file or folder: {display(str(target))}")
    checks = list(check_paths(folders, max_seconds=max_time)) if folders else []
    for url in (t for t in targets if is_url(t)):
        from store.objscan import check_objects
        from store.root import open_root
        from store.root.objstore import ObjectRoot

        root = open_root(url)
        assert isinstance(root, ObjectRoot)
        checks += check_objects(root, max_seconds=max_time)
    counts = _counts(checks)
    if as_json:
        emit_json({"files": [c.to_json() for c in checks], "counts": counts})
    elif is_terminal():
        if checks:
            _print_table(checks)
        click.echo(_summary(counts))
    else:
        for check in checks:
            click.echo("\t".join([check.verdict, check.format, check.path, _reason(check)]))
        click.echo(_summary(counts), err=True)
    if _fails(checks, fail_on):
        sys.exit(EXIT_DANGEROUS)


COMMANDS = [scan_cmd]
