"""A printable name, whether the name came as text or as the bytes on disk."""

from __future__ import annotations

import os

import pytest

from store.paths import display
from store.safetext import visible

NAMES = [
    "plain.ckpt",
    "a b/c.txt",
    "tab\there",
    "esc\x1b[31mred",
    "new\nline",
    "del\x7f",
    "[bold]x[/bold]",
    "café",
    "bad\udce9byte",
    "\u202eevil",
    "nul\x00",
    "",
]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_displays_the_same_from_text_or_bytes(name: str) -> None:
    shown = display(name)
    assert shown == display(os.fsencode(name))
    slow = visible(name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
    assert shown == slow
    assert shown.isprintable() or shown == ""
