"""The one error type clients turn into a one-line message (never a traceback)."""

from __future__ import annotations


class ArtlensError(Exception):
    """A problem the user can act on; ``str(exc)`` is the whole message, one line."""
