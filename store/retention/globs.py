"""Globs over root-relative POSIX paths, with ``**`` crossing folders.

``fnmatch`` lets ``*`` cross ``/`` and has no ``**``; pins like ``**/final/**`` and
``runs/baseline-*`` need both behaviours, so globs compile to one regular expression; a
glob with more wildcards than a backtracking regex can take on any path (``**/**/**/...``,
``*a*a*a*a*b``) is matched by a bounded automaton instead (``MAX_REGEX_STARS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LIT, _ONE, _CLASS, _STAR, _ANY, _DIRS = range(6)
"""Glob tokens: a plain character, ``?``, ``[...]``, ``*`` (within a folder), ``**``
(across folders) and ``**/`` (any folders, or none)."""
_STARS = (_STAR, _ANY, _DIRS)
_FRAGMENT = {_ONE: "[^/]", _STAR: "[^/]*", _ANY: ".*", _DIRS: "(?:.*/)?"}


def _tokens(pattern: str) -> list[tuple[int, str]]:
    """The glob as (kind, regex fragment) tokens: the one reading of a glob, for the regex
    and for the bounded matcher alike."""
    out: list[tuple[int, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    out.append((_DIRS, _FRAGMENT[_DIRS]))
                    i += 1
                else:
                    out.append((_ANY, _FRAGMENT[_ANY]))
                continue
            out.append((_STAR, _FRAGMENT[_STAR]))
        elif ch == "?":
            out.append((_ONE, _FRAGMENT[_ONE]))
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append((_LIT, ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("!")
                # Characters that mean something else inside a regex class (a nested set,
                # the set operations Python warns about) stand for themselves in a glob.
                cls = "".join(
                    "\\" + c if c in "\\[&~|" else c for c in (body[1:] if negate else body)
                )
                cls = ("^" if negate else "") + cls
                try:
                    re.compile(f"[{cls}]")
                except re.error:  # a reversed range ("[z-a]"): the "[" is a plain character
                    out.append((_LIT, ch))
                    i += 1
                    continue
                out.append((_CLASS, f"[{cls}]"))
                i = end
        else:
            out.append((_LIT, ch))
        i += 1
    return out


def glob_to_regex(pattern: str) -> str:
    """The regular expression (without anchors) a glob stands for."""
    return "".join(re.escape(f) if k == _LIT else f for k, f in _tokens(pattern))


MAX_REGEX_STARS = 2
"""Globs with more wildcards than this are matched by ``_Bounded``, never by ``re``: a
backtracking regex of k stars costs up to n**k steps on a path of n characters (and
``**/**/**/...`` doubles per star), so a pin or checklist glob in a file anyone can write
would hang a plan on one crafted path."""


class _Bounded:
    """One glob matched by following every reading at once (a Thompson NFA): at most
    (tokens x characters) steps, whatever the glob and the path."""

    def __init__(self, tokens: list[tuple[int, str]]) -> None:
        self.kinds = [k for k, _ in tokens]
        self.items = [
            re.compile(f, re.DOTALL) if k == _CLASS else f if k == _LIT else None for k, f in tokens
        ]
        self.end = len(tokens)

    def _closure(self, states: set[int]) -> set[int]:
        """``states`` with every token a star may skip skipped."""
        todo = [s for s in states if s >= 0]
        while todo:
            state = todo.pop()
            if state < self.end and self.kinds[state] in _STARS and state + 1 not in states:
                states.add(state + 1)
                todo.append(state + 1)
        return states

    def fullmatch(self, text: str) -> bool:
        kinds, items, end = self.kinds, self.items, self.end
        # a state i >= 0 is "before token i"; ~i is "inside the folders of a **/ at i"
        states = self._closure({0})
        for ch in text:
            slash = ch == "/"
            after: set[int] = set()
            for state in states:
                if state < 0:
                    after.add(state)
                    if slash:
                        after.add(~state + 1)
                    continue
                if state == end:
                    continue
                kind = kinds[state]
                if kind == _LIT:
                    if items[state] == ch:
                        after.add(state + 1)
                elif kind == _ONE:
                    if not slash:
                        after.add(state + 1)
                elif kind == _CLASS:
                    item = items[state]
                    if isinstance(item, re.Pattern) and item.fullmatch(ch):
                        after.add(state + 1)
                elif kind == _STAR:
                    if not slash:
                        after.add(state)
                elif kind == _ANY:
                    after.add(state)
                else:  # _DIRS
                    after.add(~state)
                    if slash:
                        after.add(state + 1)
            if not after:
                return False
            states = self._closure(after)
        return end in states


def glob_literal(pattern: str) -> str:
    """The longest run of plain characters every path the glob matches must contain, read
    exactly as ``glob_to_regex`` reads the glob ("" when it has none)."""
    runs: list[str] = []
    run: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        wild = ch in "*?"
        if ch == "*" and pattern.startswith("**", i):
            i += 3 if pattern.startswith("**/", i) else 2  # "**/" may match nothing at all
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            wild = end >= 0
            i = end + 1 if wild else i + 1
        else:
            i += 1
        if wild:
            runs.append("".join(run))
            run = []
        else:
            run.append(ch)
    runs.append("".join(run))
    return max(runs, key=len)


@dataclass(frozen=True)
class GlobSet:
    """Several globs as one compiled expression (and a bounded matcher each for the globs
    with too many wildcards for a regex)."""

    patterns: tuple[str, ...]
    regex: re.Pattern[str]
    """The globs with at most ``MAX_REGEX_STARS`` wildcards; never matches when none has."""
    needles: tuple[str, ...] | None = None
    """One literal each glob needs in a matching path (``glob_literal``), or None when some
    glob has none: a path holding none of them cannot match, so the regex is not run."""
    bounded: tuple[tuple[str, _Bounded], ...] = ()
    """(literal, matcher) of each glob with more wildcards; run when the path holds its
    literal."""

    def matches(self, relpath: str) -> bool:
        needles = self.needles
        if (needles is None or any(n in relpath for n in needles)) and self.regex.fullmatch(
            relpath
        ) is not None:
            return True
        return any(n in relpath and m.fullmatch(relpath) for n, m in self.bounded)

    def matches_path_or_parent(self, relpath: str) -> bool:
        """True when the path or any folder holding it matches (a pinned run pins its files)."""
        if self.matches(relpath):
            return True
        cut = relpath.rfind("/")
        while cut > 0:
            relpath = relpath[:cut]
            if self.matches(relpath):
                return True
            cut = relpath.rfind("/")
        return False


def compile_globs(patterns: Iterable[str]) -> GlobSet | None:
    """One matcher for all ``patterns``, or None when there are none."""
    kept = tuple(dict.fromkeys(p.strip("/") for p in patterns if p.strip("/")))
    if not kept:
        return None
    fast: list[str] = []
    bounded: list[tuple[str, _Bounded]] = []
    for pattern in kept:
        tokens = _tokens(pattern)
        if sum(k in _STARS for k, _ in tokens) > MAX_REGEX_STARS:
            bounded.append((glob_literal(pattern), _Bounded(tokens)))
        else:
            fast.append(pattern)
    regex = re.compile(
        "|".join(f"(?:{glob_to_regex(p)})" for p in fast) if fast else "(?!)", re.DOTALL
    )
    needles = tuple(glob_literal(p) for p in fast)
    return GlobSet(kept, regex, None if "" in needles else needles, tuple(bounded))
