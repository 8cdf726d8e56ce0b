"""Strict JSON: what artlens prints parses in every JSON parser, and means one thing.

Python's ``json`` writes a non-finite float as ``NaN``, ``Infinity`` or ``-Infinity``,
which JSON has no word for: jq and strict parsers refuse the whole output.  A metric that
went to infinity is a real signal, and ``null`` would say "no value", so those floats are
written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` instead.

A lone surrogate (a byte ``surrogateescape`` could not decode) is legal JSON text but no
real character: parsers replace it, refuse it, or hand it on to crash a later encoder.
The printers show it as ``store.safetext`` does (``\\xNN``).
"""

from __future__ import annotations

import math
import re

from store.safetext import printable_surrogate

NON_FINITE_NAMES = ("NaN", "Infinity", "-Infinity")
"""The strings that stand for the non-finite floats (``float()`` reads each back)."""


def finite_name(value: float) -> str:
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


def finite(value: object) -> object:
    """``value`` with every non-finite float (in values and keys) as its name: what a JSON
    encoder with ``allow_nan=False`` accepts.  Tuples become lists, as JSON writes them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else finite_name(value)
    if isinstance(value, dict):
        return {_finite_key(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _finite_key(key: object) -> object:
    if isinstance(key, float) and not math.isfinite(key):
        return finite_name(key)
    return key


_STRING_OR_NON_FINITE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?Infinity|NaN)', re.DOTALL)
"""A JSON string (skipped whole, so a name like "NaN-run" is left alone), or a bare
non-finite token outside any string."""

_ESCAPED_SURROGATE = re.compile(
    r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u(d[89a-f][0-9a-f]{2})",
    re.IGNORECASE,
)
"""An escaped backslash (consumed whole, so ``\\\\udcff`` is text, not an escape), a
surrogate pair (one real character, kept), or a lone surrogate escape."""


def _fix_token(match: re.Match[str]) -> str:
    token = match.group(1)
    return match.group(0) if token is None else f'"{token}"'


def _fix_escape(match: re.Match[str]) -> str:
    lone = match.group(3)
    if lone is None:
        return match.group(0)
    return "\\" + printable_surrogate(int(lone, 16))  # JSON's escape of the backslash


def _has_token(text: str) -> bool:
    # a one-character search is a memchr, ten times faster than a word's: it goes first
    return ("N" in text and "NaN" in text) or ("I" in text and "Infinity" in text)


def _has_escape(text: str) -> bool:
    return "\\" in text and ("\\ud" in text or "\\uD" in text)


def needs_strict(text: str) -> bool:
    """Whether ``strict_text`` may change ``text``: a bare token or a surrogate escape."""
    return _has_token(text) or _has_escape(text)


def strict_text(text: str) -> str:
    """JSON ``text`` made by another writer (stored in the index, written ahead) with bare
    ``NaN``/``Infinity`` tokens as strings and escaped lone surrogates as printable text.
    Cheap when there is nothing to fix: a few substring searches."""
    if _has_token(text):
        text = _STRING_OR_NON_FINITE.sub(_fix_token, text)
    if _has_escape(text):
        text = _ESCAPED_SURROGATE.sub(_fix_escape, text)
    return text
