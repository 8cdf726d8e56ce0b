"""The one error type the inspectors raise, so callers catch one thing."""

from __future__ import annotations

from store.errors import ArtlensError


class InspectError(ArtlensError):
    """A model file could not be read as the format it claims; the message is one line.

    ``truncated`` is True when the evidence says the file was cut short (half-written or
    partially copied) rather than malformed.
    """

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(" ".join(message.split()))
        self.truncated = truncated


class OverBudgetError(InspectError):
    """The file may well be sound, but reading it would take more than the inspection
    allows: what it holds went unread (unknown, not corrupt)."""


class MissingError(InspectError):
    """Nothing is at the path: there is no file to judge (or to load)."""


class NotRegularError(InspectError):
    """The path is a FIFO, socket, device or folder (``symlink`` False), or a symlink that
    was not followed (``symlink`` True): nothing was read from it."""

    def __init__(self, *, symlink: bool) -> None:
        super().__init__("a symlink, not followed" if symlink else "not a regular file")
        self.symlink = symlink
