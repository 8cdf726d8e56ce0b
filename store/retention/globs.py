"""Globs over root-relative POSIX paths, with ``**`` crossing folders.

``fnmatch`` lets ``*`` cross ``/`` and has no ``**``; pins like ``**/final/**`` and
``runs/baseline-*`` need both behaviours, so globs compile to one regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


def glob_to_regex(pattern: str) -> str:
    """The regular expression (without anchors) a glob stands for."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(ch))
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
                    out.append(re.escape(ch))
                    i += 1
                    continue
                out.append(f"[{cls}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


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
    """Several globs as one compiled expression."""

    patterns: tuple[str, ...]
    regex: re.Pattern[str]
    needles: tuple[str, ...] | None = None
    """One literal each glob needs in a matching path (``glob_literal``), or None when some
    glob has none: a path holding none of them cannot match, so the regex is not run."""

    def matches(self, relpath: str) -> bool:
        needles = self.needles
        if needles is not None and not any(n in relpath for n in needles):
            return False
        return self.regex.fullmatch(relpath) is not None

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
    kept = tuple(p.strip("/") for p in patterns if p.strip("/"))
    if not kept:
        return None
    regex = re.compile("|".join(f"(?:{glob_to_regex(p)})" for p in kept), re.DOTALL)
    needles = tuple(glob_literal(p) for p in kept)
    return GlobSet(kept, regex, None if "" in needles else needles)
