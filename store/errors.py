"""The one error family clients turn into a one-line message (never a traceback).

Every error a user can act on derives from ``ArtlensError``: the policy, plan, trash,
user-state, lock, checklist, diff, inspect, demo, watch and remote errors.  The CLI maps the
whole family to one line on stderr and exit status 2 in one place (``tui.cli.common``,
called by the command group); the TUI shows ``str(exc)`` in a notification.
"""

from __future__ import annotations


class ArtlensError(Exception):
    """A problem the user can act on; ``str(exc)`` is the whole message, one line."""
