"""The ``artlens`` command: a thin client of ``store``.

``artlens [ROOT...]`` opens the explorer; every other subcommand is headless and imports
neither Textual nor the app, so it starts fast on a server.
"""

from __future__ import annotations

import click
from click_default_group import DefaultGroup

from store import __version__


@click.group(
    cls=DefaultGroup,
    default="open",
    default_if_no_args=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="artlens")
def main() -> None:
    """artlens: explore, compare and clean up machine-learning artifacts from the terminal.

    Run `artlens demo` to try it on a generated tree, or `artlens ROOT` on your outputs.
    """


COMMAND_MODULES = (
    "index",
    "open_app",
    "watch",
    "diff",
    "scan",
    "check",
    "retention",
    "feed",
    "remote",
)
"""Modules of tui.cli whose COMMANDS join the group (one per line, in help order)."""


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tui.cli.{name}")
        for command in module.COMMANDS:
            main.add_command(command)


_register()
