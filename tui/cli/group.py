"""The ``artlens`` command group: how the command line reaches a subcommand.

Commands are listed here, statically, and their modules imported only when one runs
(click's lazy group pattern), so ``artlens --help`` and ``artlens runs --json`` start
without importing the diff engines, the inspectors, Rich tables or Textual.  ``open`` is
the default command: ``artlens ROOT`` means ``artlens open ROOT``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from click.shell_completion import CompletionItem


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives, and its one-line help (so listing it imports nothing)."""

    module: str
    attribute: str
    summary: str


DEFAULT_COMMAND = "open"
"""What ``artlens`` runs when the first word is not a command (``artlens ROOT``)."""

COMMANDS: dict[str, LazyCommand] = {
    "open": LazyCommand(
        "tui.cli.open_app",
        "open_cmd",
        "Open the explorer on ROOTS (indexing them first when new), or on the last index.",
    ),
    "demo": LazyCommand(
        "tui.cli.open_app",
        "demo_cmd",
        "Write a realistic demo tree to DEST (default: the cache folder) and open it.",
    ),
    "index": LazyCommand(
        "tui.cli.index",
        "index_cmd",
        "Scan ROOTS into the index (incremental: unchanged files cost no work).",
    ),
    "runs": LazyCommand(
        "tui.cli.index",
        "runs_cmd",
        "List the runs in the index (with --all-hosts or --host, with a host column).",
    ),
    "ls": LazyCommand(
        "tui.cli.index",
        "ls_cmd",
        "List the artifacts of RUN (name, id or path), or every artifact.",
    ),
    "watch": LazyCommand(
        "tui.cli.watch",
        "watch_cmd",
        "Keep the index of ROOTS current while files change, until Ctrl-C or SIGTERM.",
    ),
    "diff": LazyCommand(
        "tui.cli.diff", "diff_cmd", "Compare two runs (name, id or path) or two files."
    ),
    "scan": LazyCommand(
        "tui.cli.scan",
        "scan_cmd",
        "Say whether loading each model file under TARGETS would run code (exit 1 if so).",
    ),
    "check": LazyCommand(
        "tui.cli.check", "check_cmd", "List runs missing required files (exit 1 when any does)."
    ),
    "retention": LazyCommand(
        "tui.cli.retention",
        "retention_group",
        "Plan and apply retention policies (keep last N, best K by a metric, budgets, pins).",
    ),
    "trash": LazyCommand(
        "tui.cli.retention",
        "trash_group",
        "What retention moved aside: list it, restore it, or purge it for good.",
    ),
    "du": LazyCommand(
        "tui.cli.retention",
        "du_cmd",
        "Disk usage per root, experiment and run (largest first), and duplicate files.",
    ),
    "feed": LazyCommand(
        "tui.cli.feed",
        "feed_cmd",
        "Stream the index's changes after event AFTER as JSON lines (for `artlens remote`).",
    ),
    "cat": LazyCommand(
        "tui.cli.feed",
        "cat_cmd",
        "Write LENGTH bytes of PATH from OFFSET (a file inside an indexed root) to stdout.",
    ),
    "remote": LazyCommand(
        "tui.cli.remote",
        "remote_group",
        "Hosts whose indexes are mirrored here (pulled over ssh or a command).",
    ),
    "bucket": LazyCommand(
        "tui.cli.objstore",
        "bucket_group",
        "Retention on a bucket prefix: trash objects (dry run first), restore, purge; dups.",
    ),
}
"""Every subcommand (a test checks this against each module's ``COMMANDS``)."""


@contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    """Exit 0 without a word when the reader of stdout went away (``artlens ls | head``).

    Unix tools stop quietly on SIGPIPE; Python raises BrokenPipeError instead.  Stdout is
    pointed at /dev/null first, so the interpreter's last flush cannot raise again.
    """
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
        sys.exit(0)


class ArtlensGroup(click.Group):
    """The top-level group: lazy commands, ``open`` by default, quiet on a closed pipe."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        assert isinstance(command, click.Command)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Put ``open`` in front of arguments that are not a command.

        Not while completing (``resilient_parsing``): there the first word is a command
        name being typed.  An option neither the group nor ``open`` knows stays where it
        is, so click names it as unknown to ``artlens`` itself.
        """
        if not ctx.resilient_parsing and self._wants_default(ctx, args):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def _wants_default(self, ctx: click.Context, args: list[str]) -> bool:
        if not args:
            return True
        first = args[0]
        if first in COMMANDS:
            return False
        if not first.startswith("-") or first == "-":
            return True
        name = first.split("=", 1)[0]
        if any(name in p.opts or name in p.secondary_opts for p in self.get_params(ctx)):
            return False
        default = self.get_command(ctx, DEFAULT_COMMAND)
        assert default is not None
        return any(name in p.opts or name in p.secondary_opts for p in default.get_params(ctx))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the static summaries, importing no command module."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [
            (name + ("*" if name == DEFAULT_COMMAND else ""), _short(COMMANDS[name], limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (from the static list) and the group's own options."""
        results = [
            CompletionItem(name, help=_short(COMMANDS[name], 45))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
        if incomplete.startswith("-"):
            results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

    def make_context(
        self,
        info_name: str | None,
        args: Sequence[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with quiet_broken_pipe():  # --help and --version print while parsing
            return super().make_context(info_name, list(args), parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command: a closed pipe exits quietly, every expected error is one line."""
        from tui.cli.common import one_line_errors

        with quiet_broken_pipe(), one_line_errors():
            return super().invoke(ctx)


def _short(entry: LazyCommand, limit: int) -> str:
    """The summary cut at a word to fit ``limit`` columns, as click shortens help."""
    text = entry.summary
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 2)
    return text[: cut if cut > 0 else limit - 3].rstrip(" ,;:") + "..."
