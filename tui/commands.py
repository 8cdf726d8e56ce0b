"""The command palette: every action plus "run: <name>" jumps, built from current state.

Titles are namespaced (``view: …``, ``sort: …``, ``run: …``) so a few typed letters find
them.  Run names are data: they go through ``Text`` and the fuzzy matcher, never markup.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

from rich.text import Text
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

from tui.keys import PaletteEntry as PaletteEntry
from tui.keys import binding_entries, with_keys


def highlight(matcher: Matcher, title: str) -> Content:
    """Like ``Matcher.highlight`` but without parsing ``title`` as markup (run names are data)."""
    content = Content(title)
    _score, offsets = matcher.fuzzy_search.match(matcher.query, title)
    for offset in offsets:
        if not title[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


class HasPaletteEntries(Protocol):
    def palette_entries(self) -> list[PaletteEntry]: ...


class ExplorerCommands(Provider):
    """Entries come from the screen's ``palette_entries()`` each time the palette opens,
    plus one per binding of the screen that none of them runs, each with the key bound to
    its action (``tui.keys``)."""

    def _entries(self) -> list[PaletteEntry]:
        screens = [s for s in self.app.screen_stack if not isinstance(s, CommandPalette)]
        if not screens:
            return []
        screen = screens[-1]
        listed: list[PaletteEntry] = []
        for candidate in reversed(screens):  # a screen without entries shows those beneath
            source = getattr(candidate, "palette_entries", None)
            if source is not None:
                listed = list(source())
                break
        return with_keys(self.app, listed + binding_entries(self.app, screen, listed))

    async def discover(self) -> Hits:
        for title, callback, help_text in self._entries():
            if not title.startswith("run: "):
                yield DiscoveryHit(Text(title), callback, text=title, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    highlight(matcher, title),
                    partial(callback),
                    text=title,
                    help=help_text,
                )
