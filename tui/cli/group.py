"""The ``artlens`` command group: how the command line reaches a subcommand."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from click_default_group import DefaultGroup


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


class ArtlensGroup(DefaultGroup):  # type: ignore[misc]
    """The top-level group: ``artlens ROOT`` runs ``open``; a closed pipe ends quietly."""

    def make_context(
        self,
        info_name: str | None,
        args: Sequence[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with quiet_broken_pipe():  # --help and --version print while parsing
            context: click.Context = super().make_context(info_name, list(args), parent, **extra)
            return context

    def invoke(self, ctx: click.Context) -> Any:
        with quiet_broken_pipe():
            return super().invoke(ctx)
