"""Read pickle opcodes the way CPython's ``_pickle`` does, without executing any.

``pickletools.genops`` is a linter: it rejects streams the real unpickler loads (``I0x1f``
ints, non-ASCII ``STRING`` bytes, ``L`` longs in any base, ...), and an attacker picks
exactly those to make a scanner give up.  ``read_ops`` accepts every opcode argument
``_pickle.c`` accepts (at least), reading each length-prefixed argument with the same
widths and signs, so it can never fall out of step with the loader.  It raises
``PickleTruncated`` when the stream ends mid-opcode and ``PickleInvalid`` when ``_pickle``
itself would refuse the opcode; anything else it yields.

Usage::

    for op, arg, pos in read_ops(stream):   # op is the opcode name, as in pickletools
        ...

``stream`` needs ``read(n)`` and ``readline(limit)``; the generator reads lazily, so the
caller may consume raw bytes from ``stream`` between two opcodes (joblib's array data).
Values are decoded leniently (bytes strings as latin-1), since only their shape matters to
a scanner; GLOBAL and INST yield ``(module, name)``, and byte or text arguments longer
than ``BIG_ARGUMENT`` are read past and yielded as ``Opaque``.  Shared by the safety scan
and any other static reader of pickles.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Iterator
from typing import Any, Protocol

MAX_LINE = 1 << 20
"""Longest text-opcode line read; a longer one raises ``PickleTooLong``."""
HIGHEST_PROTOCOL = 5


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...

    def tell(self) -> int: ...


BIG_ARGUMENT = 1 << 20
"""Byte/string arguments longer than this are read past, not kept (see ``Opaque``)."""


class Opaque:
    """A byte or text argument too long to keep: only its length is known."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"Opaque({self.size})"


class PickleParseError(ValueError):
    """The stream cannot be read as a pickle at this point."""


class PickleTruncated(PickleParseError):
    """The stream ends in the middle of an opcode: no loader can finish it."""


class PickleInvalid(PickleParseError):
    """``_pickle`` refuses this opcode or argument (unknown opcode, negative length, ...)."""


class PickleTooLong(PickleParseError):
    """A text argument is longer than ``MAX_LINE``; a loader would read on."""


def _exact(stream: Readable, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise PickleTruncated(f"{what}: pickle data was truncated")
    return data


def _line(stream: Readable, what: str) -> bytes:
    """One text argument without its newline (``_pickle`` drops the last byte either way)."""
    data = stream.readline(MAX_LINE + 1)
    if not data:
        raise PickleTruncated(f"{what}: pickle data was truncated")
    if not data.endswith(b"\n"):
        if len(data) > MAX_LINE:
            raise PickleTooLong(f"{what}: argument longer than {MAX_LINE} bytes")
        raise PickleTruncated(f"{what}: pickle data was truncated")
    return data[:-1]


def _c_strtol(text: bytes) -> int | None:
    """``strtol(s, &end, 0)`` that must end at the end of ``text``; None when it does not."""
    s = text.lstrip(b" \t\n\r\f\v")
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    base = 10
    if s[:2].lower() == b"0x" and len(s) > 2:
        base, s = 16, s[2:]
    elif s[:1] == b"0" and len(s) > 1:
        base, s = 8, s[1:]
    digits = "0123456789abcdef"[:base]
    if not s or any(chr(c).lower() not in digits for c in s):
        return None
    return sign * int(s.decode("ascii"), base)


def _c_string(text: bytes) -> bytes:
    """``text`` as the C string ``_pickle`` hands to ``strtol``/``PyLong_FromString``: it
    ends at the first NUL byte, so ``I1\x00anything\n`` is the int 1 to the loader."""
    return text.split(b"\x00", 1)[0]


def parse_int_line(text: bytes) -> int | bool:
    """The value ``_pickle``'s INT opcode reads from ``text`` (``strtol`` base 0, then
    ``PyLong_FromString`` base 0, both stopping at a NUL byte); raises ``PickleInvalid``
    where it would."""
    number = _c_string(text)
    value = _c_strtol(number)
    if value is not None and -(1 << 63) <= value < (1 << 63):
        if len(text) == 2 and value in (0, 1):  # the whole line's length, NULs and all
            return bool(value)
        return value
    try:
        return int(number.decode("ascii"), 0)
    except (ValueError, UnicodeDecodeError):
        raise PickleInvalid(f"invalid literal for int(): {text[:40]!r}") from None


def parse_long_line(text: bytes) -> int:
    """LONG's argument: an ``int(s, 0)`` literal with an optional trailing ``L`` (the last
    byte of the line, dropped first), read as a C string (up to a NUL byte)."""
    if text.endswith(b"L"):
        text = text[:-1]
    try:
        return int(_c_string(text).decode("ascii"), 0)
    except (ValueError, UnicodeDecodeError):
        raise PickleInvalid(f"invalid literal for long: {text[:40]!r}") from None


def parse_memo_line(text: bytes) -> int:
    """GET/PUT's argument: a base-10 ``int`` literal, read as a C string (up to a NUL)."""
    try:
        return int(_c_string(text).decode("ascii"), 10)
    except (ValueError, UnicodeDecodeError):
        raise PickleInvalid(f"invalid memo key {text[:40]!r}") from None


def parse_string_line(text: bytes) -> str:
    """STRING's argument: quoted, backslash escapes undone; bytes above 127 kept (latin-1),
    as a loader with ``encoding='latin1'`` or ``'bytes'`` keeps them."""
    if len(text) < 2 or text[:1] != text[-1:] or text[:1] not in (b"'", b'"'):
        raise PickleInvalid("the STRING opcode argument must be quoted")
    try:
        raw = codecs.escape_decode(text[1:-1])[0]
    except ValueError as exc:
        raise PickleInvalid(f"STRING escape: {exc}") from None
    return raw.decode("latin-1")


def _utf8_line(text: bytes, what: str) -> str:
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise PickleInvalid(f"{what} is not UTF-8") from None


def _signed4(stream: Readable, what: str) -> int:
    value: int = struct.unpack("<i", _exact(stream, 4, what))[0]
    return value


def _unsigned(stream: Readable, width: int, what: str) -> int:
    return int.from_bytes(_exact(stream, width, what), "little")


def _counted(stream: Readable, width: int, what: str, *, signed: bool = False) -> bytes:
    size = _signed4(stream, what) if signed else _unsigned(stream, width, what)
    if size < 0:
        raise PickleInvalid(f"{what} has a negative byte count")
    return _exact(stream, size, what)


def _counted_big(stream: Readable, width: int, what: str) -> bytes | Opaque:
    """A length-prefixed argument; past ``BIG_ARGUMENT`` it is read in chunks and dropped,
        so a multi-gigabyte BINBYTES8 costs no memory (``stream.skip(n)``, when it has one, seeks
    past instead)."""
    size = _unsigned(stream, width, what)
    if size <= BIG_ARGUMENT:
        return _exact(stream, size, what)
    skip = getattr(stream, "skip", None)
    if skip is not None:  # a reader that can seek past data without reading it
        if not skip(size):
            raise PickleTruncated(f"{what}: pickle data was truncated")
        return Opaque(size)
    left = size
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise PickleTruncated(f"{what}: pickle data was truncated")
        left -= len(chunk)
    return Opaque(size)


def _arg(code: int, stream: Readable) -> tuple[str, Any]:
    """(opcode name, decoded argument) of the opcode byte ``code``."""
    what = _NAMES.get(code)
    if what is None:
        raise PickleInvalid(f"invalid load key {bytes([code])!r}")
    if what in _NO_ARG:
        return what, None
    fixed = _FIXED.get(what)
    if fixed is not None:
        data = stream.read(fixed)
        if len(data) < fixed:
            raise PickleTruncated(f"{what}: pickle data was truncated")
        return what, int.from_bytes(data, "little")
    if what == "INT":
        return what, parse_int_line(_line(stream, what))
    if what == "BININT":
        return what, _signed4(stream, what)
    if what in ("BININT1", "BINGET", "BINPUT", "PROTO", "EXT1"):
        value = _unsigned(stream, 1, what)
        if what == "PROTO" and value > HIGHEST_PROTOCOL:
            raise PickleInvalid(f"unsupported pickle protocol: {value}")
        return what, value
    if what in ("BININT2", "EXT2"):
        return what, _unsigned(stream, 2, what)
    if what in ("LONG_BINGET", "LONG_BINPUT"):
        return what, _unsigned(stream, 4, what)
    if what == "EXT4":
        return what, _signed4(stream, what)
    if what == "LONG":
        return what, parse_long_line(_line(stream, what))
    if what == "LONG1":
        return what, int.from_bytes(_counted(stream, 1, what), "little", signed=True)
    if what == "LONG4":
        return what, int.from_bytes(_counted(stream, 4, what, signed=True), "little", signed=True)
    if what == "FLOAT":
        text = _line(stream, what)
        try:
            return what, float(text.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            return what, float("nan")  # strtod reads a prefix; the value does not matter here
    if what == "BINFLOAT":
        return what, struct.unpack(">d", _exact(stream, 8, what))[0]
    if what == "STRING":
        return what, parse_string_line(_line(stream, what))
    if what == "BINSTRING":
        return what, _counted(stream, 4, what, signed=True).decode("latin-1")
    if what == "SHORT_BINSTRING":
        return what, _counted(stream, 1, what).decode("latin-1")
    if what in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"):
        width = {"BINBYTES": 4, "SHORT_BINBYTES": 1}.get(what, 8)
        blob = _counted_big(stream, width, what)
        return what, bytearray(blob) if what == "BYTEARRAY8" and isinstance(blob, bytes) else blob
    if what in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"):
        width = {"BINUNICODE": 4, "SHORT_BINUNICODE": 1}.get(what, 8)
        raw = _counted_big(stream, width, what)
        if isinstance(raw, Opaque):
            return what, raw
        try:
            return what, raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise PickleInvalid(f"{what} argument is not UTF-8") from None
    if what == "UNICODE":
        try:
            return what, codecs.raw_unicode_escape_decode(_line(stream, what))[0]
        except UnicodeDecodeError:
            raise PickleInvalid("UNICODE argument has a bad escape") from None
    if what in ("GET", "PUT"):
        return what, parse_memo_line(_line(stream, what))
    if what in ("GLOBAL", "INST"):
        module = _utf8_line(_line(stream, what), f"{what} module")
        name = _utf8_line(_line(stream, what), f"{what} name")
        return what, (module, name)
    if what == "PERSID":
        return what, _line(stream, what).decode("latin-1")
    if what == "FRAME":
        return what, _unsigned(stream, 8, what)
    raise AssertionError(what)  # pragma: no cover - every name in _NAMES is handled


def read_ops(stream: Readable) -> Iterator[tuple[str, Any, int]]:
    """Yield ``(opcode name, argument, offset)`` up to and including STOP."""
    while True:
        pos = stream.tell()
        first = stream.read(1)
        if not first:
            raise PickleTruncated("pickle ended without STOP")
        name, arg = _arg(first[0], stream)
        yield name, arg, pos
        if name == "STOP":
            return


def _words(text: str) -> list[str]:
    """The words of ``text`` (long name lists read better as one string)."""
    return text.split()


_NAMES: dict[int, str] = {
    ord(code): name
    for code, name in [
        ("(", "MARK"), (".", "STOP"), ("0", "POP"), ("1", "POP_MARK"), ("2", "DUP"),
        ("F", "FLOAT"), ("I", "INT"), ("J", "BININT"), ("K", "BININT1"), ("L", "LONG"),
        ("M", "BININT2"), ("N", "NONE"), ("P", "PERSID"), ("Q", "BINPERSID"), ("R", "REDUCE"),
        ("S", "STRING"), ("T", "BINSTRING"), ("U", "SHORT_BINSTRING"), ("V", "UNICODE"),
        ("X", "BINUNICODE"), ("a", "APPEND"), ("b", "BUILD"), ("c", "GLOBAL"), ("d", "DICT"),
        ("}", "EMPTY_DICT"), ("e", "APPENDS"), ("g", "GET"), ("h", "BINGET"), ("i", "INST"),
        ("j", "LONG_BINGET"), ("l", "LIST"), ("]", "EMPTY_LIST"), ("o", "OBJ"), ("p", "PUT"),
        ("q", "BINPUT"), ("r", "LONG_BINPUT"), ("s", "SETITEM"), ("t", "TUPLE"),
        (")", "EMPTY_TUPLE"), ("u", "SETITEMS"), ("G", "BINFLOAT"), ("\x80", "PROTO"),
        ("\x81", "NEWOBJ"), ("\x82", "EXT1"), ("\x83", "EXT2"), ("\x84", "EXT4"),
        ("\x85", "TUPLE1"), ("\x86", "TUPLE2"), ("\x87", "TUPLE3"), ("\x88", "NEWTRUE"),
        ("\x89", "NEWFALSE"), ("\x8a", "LONG1"), ("\x8b", "LONG4"), ("B", "BINBYTES"),
        ("C", "SHORT_BINBYTES"), ("\x8c", "SHORT_BINUNICODE"), ("\x8d", "BINUNICODE8"),
        ("\x8e", "BINBYTES8"), ("\x8f", "EMPTY_SET"), ("\x90", "ADDITEMS"), ("\x91", "FROZENSET"),
        ("\x92", "NEWOBJ_EX"), ("\x93", "STACK_GLOBAL"), ("\x94", "MEMOIZE"), ("\x95", "FRAME"),
        ("\x96", "BYTEARRAY8"), ("\x97", "NEXT_BUFFER"), ("\x98", "READONLY_BUFFER"),
    ]
}  # fmt: skip
OPCODE_BYTES = frozenset(_NAMES)
"""Bytes a pickle can start with: the unpickler stops at once on any other."""
_FIXED = {"BININT1": 1, "BINGET": 1, "BINPUT": 1, "BININT2": 2, "LONG_BINGET": 4,
          "LONG_BINPUT": 4, "EXT1": 1, "EXT2": 2, "FRAME": 8}  # fmt: skip
"""Opcodes whose argument is an unsigned little-endian integer of this many bytes."""
_NO_ARG = frozenset(
    _words(
        "MARK STOP POP POP_MARK DUP NONE BINPERSID REDUCE APPEND BUILD DICT EMPTY_DICT APPENDS "
        "LIST EMPTY_LIST OBJ SETITEM TUPLE EMPTY_TUPLE SETITEMS NEWOBJ TUPLE1 TUPLE2 TUPLE3 "
        "NEWTRUE NEWFALSE EMPTY_SET ADDITEMS FROZENSET NEWOBJ_EX STACK_GLOBAL MEMOIZE "
        "NEXT_BUFFER READONLY_BUFFER"
    )
)
