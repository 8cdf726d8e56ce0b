"""Make untrusted text safe to show.

File names, file contents, metric names and params can hold escape sequences
(``\\x1b[2J``, OSC 52 clipboard writes) and other control characters.  ``visible`` turns
every one of them into a printable escape, so nothing read from disk drives the terminal.
Markup is a separate concern: the UI renders these strings as plain ``Text``.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = r"\u061c\u180e\u200b\u200e\u200f\u2060-\u2064\ufeff"
"""Characters that draw nothing (zero-width space, word joiner, byte order mark, direction
marks): ``model.pt`` and ``mod\\u200bel.pt`` would look alike.  The zero-width (non-)joiners
stay: scripts such as Persian need them to draw words right."""
_CONTROL = re.compile(
    rf"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069{_INVISIBLE}]"
)
_CONTROL_OR_NEWLINE = re.compile(
    rf"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069{_INVISIBLE}]"
)
_SURROGATE = re.compile("[\udc80-\udcff]")
"""Lone surrogates: the bytes ``surrogateescape`` could not decode."""
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)) - 0xDC00:02x}"


_ANY_SURROGATE = re.compile("[\ud800-\udfff]")


def printable_surrogate(code: int) -> str:
    """The printable text of a lone surrogate: ``\\xNN`` for an undecodable byte (as
    ``visible`` writes it), ``\\uXXXX`` for any other."""
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def printable_surrogates(text: str) -> str:
    """``text`` with every lone surrogate as printable text, the rest as it is: for text
    bound for JSON or SQLite, where a surrogate is no character and fails to encode."""
    if text.isascii() or _ANY_SURROGATE.search(text) is None:
        return text
    return _ANY_SURROGATE.sub(lambda m: printable_surrogate(ord(m.group(0))), text)


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with control characters (and newlines unless kept) as visible escapes.

    Lone surrogates (from undecodable bytes) become ``\\xNN`` as well.
    """
    if not text.isprintable() or "\x1b" in text:
        pattern = _CONTROL if keep_newlines else _CONTROL_OR_NEWLINE
        text = pattern.sub(_escape, text)
        if _SURROGATE.search(text) is not None:  # a regex: a per-character loop costs
            text = _SURROGATE.sub(_escape_surrogate, text)  # 40 ms on a 256 KiB preview
    return text


def decode(data: bytes) -> str:
    """Decode bytes read from an artifact: UTF-8, invalid bytes as ``\\xNN``."""
    return data.decode("utf-8", "backslashreplace")


_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
"""Unicode's default-ignorable code points: drawn as nothing (or nothing of their own), so
``model.pt`` with a soft hyphen, a variation selector or a zero-width joiner in it looks
like ``model.pt``.  ``visible`` escapes some of them always; the others (the joiners,
variation selectors and tags that emoji and scripts need) only tell names apart here."""


def look_alike(shown: str) -> str:
    """What ``shown`` (a name as ``visible`` or ``paths.display`` prints it) looks like:
    two names with the same answer can print the same on a terminal.  Compatibility forms
    as their plain letters (NFKC: ``e`` + U+0301 as ``é``, ``ﬁ`` as ``fi``, a no-break
    space as a space), default-ignorable characters dropped, blanks at the ends dropped."""
    if shown.isascii():
        return shown.strip()
    return unicodedata.normalize("NFKC", _IGNORABLE.sub("", shown)).strip()


def spelled(text: str) -> str:
    """``text`` in printable ASCII that tells any two strings apart: each character outside
    printable ASCII as its ``\\uXXXX`` (``\\UXXXXXXXX``) escape, an undecodable byte (a lone
    surrogate of ``surrogateescape``) as ``\\xNN``, a backslash doubled, a blank at either
    end as ``\\u0020``: how two names (or values) that look alike differ."""
    if text.isascii() and text.isprintable() and "\\" not in text and text.strip(" ") == text:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    start = len(text) - len(text.lstrip(" "))
    end = len(text.rstrip(" "))
    if end <= start:
        return "\\u0020" * len(text) if text else text
    return "\\u0020" * start + "".join(out[start:end]) + "\\u0020" * (len(text) - end)
