"""JSON and TOML from files and pipes someone else wrote: too deep is malformed, not a crash.

``json`` and ``tomllib`` recurse once per nesting level, so ``[[[[...`` a few thousand
levels deep raises ``RecursionError``, and a huge document may raise ``MemoryError``.
Neither is a ``ValueError``, which is what every reader takes as "malformed", so both
escaped as a traceback (or hid a run where a broad ``except`` swallowed them).  These
loaders raise ``NestingError``, a ``ValueError``, instead: the reader's own handling of a
torn or invalid document then covers a nesting bomb too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class NestingError(ValueError):
    """A document nested too deeply, or too large, to parse; ``str()`` is one line."""


def _parsed(loads: Callable[[str], T], text: Any) -> T:
    try:
        return loads(text)
    except RecursionError:
        raise NestingError("nested too deeply") from None
    except MemoryError:
        raise NestingError("too large to parse") from None


def load_json(text: str | bytes) -> Any:
    """``json.loads``; any malformed input, a nesting bomb included, raises ``ValueError``."""
    return _parsed(json.loads, text)


def load_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``; raises ``TOMLDecodeError`` or ``NestingError`` (both ``ValueError``)."""
    if sys.version_info >= (3, 11):
        import tomllib  # imported by the first TOML read, not by every command
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    return _parsed(tomllib.loads, text)
