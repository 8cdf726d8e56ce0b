"""The ``artlens`` command: a thin client of ``store``.

``artlens [ROOT...]`` opens the explorer; every other subcommand is headless.  Commands are
registered statically in ``tui.cli.group`` and their modules imported only when one runs,
so the CLI starts fast on a server and imports neither Textual nor the app.
"""

from __future__ import annotations

import click

from store import __version__
from tui.cli.group import ArtlensGroup


@click.group(
    cls=ArtlensGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="artlens")
def main() -> None:
    """artlens: explore, compare and clean up machine-learning artifacts from the terminal.

    Run `artlens demo` to try it on a generated tree, or `artlens ROOT` on your outputs
    (the same as `artlens open ROOT`: open is the default command, marked *).
    """
