"""``artlens remote``: other machines' indexes, mirrored here read-only."""

from __future__ import annotations

COMMANDS: list[object] = []
