"""The JSON-lines files retention appends to (trash manifest, audit log), read back.

Both are written one line per event and may end in a torn line after a crash, or hold
anything another user of a shared root wrote; the reader reports such a line and goes on.
"""

from __future__ import annotations

from collections.abc import Iterator

from store.safeparse import load_json

TORN = object()
"""Stands for a line that is not JSON (a torn write, or not ours)."""


def json_lines(data: bytes) -> Iterator[tuple[int, object]]:
    """(line number, parsed value or ``TORN``) of each non-blank line.  Lone surrogates
    survive (a name in a record may hold bytes that are not UTF-8, written escaped)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            yield number, load_json(raw.decode("utf-8", "surrogatepass"))
        except ValueError:  # not UTF-8, not JSON, or nested too deeply
            yield number, TORN
