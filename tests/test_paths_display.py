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
    "mod\u200bel.pt",
    "\ufeffbom\u2060joined\u200eltr",
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


def test_characters_that_draw_nothing_are_shown() -> None:
    """Two names that differ only by a zero-width character must not look alike."""
    assert display("mod\u200bel.pt") == "mod\\u200bel.pt"
    assert display("\ufeffa\u2060b\u200fc") == "\\ufeffa\\u2060b\\u200fc"
    assert (
        display("\u0645\u06cc\u200c\u062e\u0648\u0627\u0645")
        == "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645"
    )
