"""What every CLI command shares: the --db option, opening the index, one-line errors."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from store import paths
from store.errors import ArtlensError
from store.jsontext import EncodedItems
from store.locate import ENV_DB, resolve_db

if TYPE_CHECKING:
    import sqlite_utils

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 2


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=ENV_DB,
        help=f"Index database (default: per-user cache, keyed by the roots; env {ENV_DB}).",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def fail(message: str) -> None:
    """Print one line to stderr and exit with status 2."""
    click.echo(f"artlens: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:500]


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Expected failures as one line on stderr and exit code 2, never a traceback.

    The one place the CLI maps errors: the command group runs every command inside it.
    Every ``ArtlensError`` (the whole family, see ``store.errors``) is the user's message.
    """
    try:
        yield
    except ArtlensError as exc:
        fail(one_line(exc))
    except sqlite3.DatabaseError as exc:
        fail(f"index database: {one_line(exc)}")
    except BrokenPipeError:
        raise  # the reader of stdout went away: the group exits quietly
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        fail(f"{exc.strerror or one_line(exc)}{where}")
    except KeyboardInterrupt:
        click.echo("artlens: interrupted", err=True)
        sys.exit(130)


def given_file(path: Path | None, flag: str) -> Path | None:
    """``path`` (links resolved) when it names a regular file, else a one-line error.

    Defaults (a root's .artlens.toml, the user config) may be absent; a file given on the
    command line must exist, or the command would quietly run with other rules.
    """
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError as exc:
        reason = "no such file" if exc.errno == errno.ENOENT else exc.strerror or "cannot read"
        raise ArtlensError(f"{flag} {paths.display(str(path))}: {reason}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ArtlensError(f"{flag} {paths.display(str(path))}: not a regular file")
    return Path(os.path.realpath(path))  # the user typed it: a link to a file is that file


def need_db(db_path: Path | None, roots: Sequence[Path] = ()) -> Path:
    path = resolve_db(db_path, roots)
    if path is None or not path.exists():
        raise ArtlensError(
            "no index yet: run `artlens index ROOT` (or `artlens demo` to try it out)"
            if path is None
            else f"no index at {path}: run `artlens index ROOT --db {path}`"
        )
    return path


@contextmanager
def reader(db_path: Path | None, roots: Sequence[Path] = ()) -> Iterator[sqlite_utils.Database]:
    """A read-only connection to the index, closed afterwards."""
    from store.index.db import open_db

    db = open_db(need_db(db_path, roots), readonly=True)
    try:
        yield db
    finally:
        db.close()


_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""What ``json.dumps(ensure_ascii=False)`` leaves raw but a terminal (or a reader) must not
see: DEL, C1 controls (CSI, OSC), line separators, bidi overrides, lone surrogates."""


@contextmanager
def plain_reader(db_path: Path | None) -> Iterator[sqlite3.Connection]:
    """A read-only ``sqlite3`` connection to the index (no sqlite-utils: a faster start)."""
    from store.readonly import connect_readonly

    conn = connect_readonly(need_db(db_path))
    try:
        yield conn
    finally:
        conn.close()


_ENDS_AT_ONCE = False


def may_end_at_once() -> None:
    """Say that this command has closed everything it opened and written all it will: the
    console script may then end the process without Python's teardown (``tui.launch``):
    unloading some 300 modules and freeing what they hold took 40-80 ms of ``artlens
    index``; the kernel frees it all at once."""
    global _ENDS_AT_ONCE
    _ENDS_AT_ONCE = True


def ends_at_once() -> bool:
    return _ENDS_AT_ONCE


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
"""``json.dumps(item, ensure_ascii=False, default=str)`` without a new encoder per item."""


def _item_encoder() -> Callable[[object], str]:
    """``_ENCODER.encode`` through one C encoder made once.  ``encode`` makes a new one for
    every call: a third of the time of a plan's 500,000 items.  Where the C encoder is
    missing, or writes a sample otherwise than ``encode`` does, ``encode`` it is."""
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    try:
        # no circular check (``markers`` None): what is printed is made of fresh lists
        once = make(None, str, encoder.encode_basestring, None, ": ", ", ", False, False, True)

        def encode(value: object) -> str:
            return "".join(once(value, 0))

        sample: dict[str, object] = {
            "a": [1, 2.5, math.nan, -math.inf, None, True, "\x00\u00e9\n"],
            "b": {},
            "c": Path("/"),
        }
        if encode(sample) != _ENCODER.encode(sample):
            return _ENCODER.encode
    except (TypeError, ValueError):
        return _ENCODER.encode
    return encode


_encode_item = _item_encoder()


def emit_json(value: object) -> None:
    """Print ``value`` as JSON whose text holds no control character.

    Strings keep their real value (a parser gets the name back exactly); control characters
    are written as ``\\uXXXX`` escapes, so the output is safe on a terminal too.
    """
    if isinstance(value, list):
        emit_json_lines(map(_encode_item, value))
        return
    if isinstance(value, dict) and any(
        isinstance(v, EncodedItems) or (isinstance(v, list) and len(v) > 100)
        for v in value.values()
    ):
        _echo_json(_object_with_long_lists(value))
        return
    _echo_json(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _object_with_long_lists(value: dict[str, object]) -> str:
    """An object one key per line, a list's items one per line: the indenting encoder is
    Python, and ten times slower than the C one on a plan of 500,000 items."""

    encode = _encode_item
    fields = []
    for key, item in value.items():
        if isinstance(item, EncodedItems):
            body = "[\n    " + ",\n    ".join(item.texts) + "\n  ]" if item.texts else "[]"
        elif isinstance(item, list) and item:
            body = "[\n    " + ",\n    ".join(map(encode, item)) + "\n  ]"
        else:
            body = encode(item)
        fields.append(f"  {encode(str(key))}: {body}")
    return "{\n" + ",\n".join(fields) + "\n}" if fields else "{}"


def emit_json_lines(items: Iterable[str]) -> None:
    """Print a JSON list of already encoded items, one per line.

    One record per line is as easy to read and grep as an indented list, and lets the C
    encoder work: the indenting one is ten times slower on 10,000 runs.
    """
    lines = ",\n  ".join(items)
    _echo_json(f"[\n  {lines}\n]" if lines else "[]")


def _echo_json(text: str) -> None:
    if not text.isascii() or "\x7f" in text:  # the check is fast; the escaping is not
        text = _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
    click.echo(text)


def is_terminal() -> bool:
    return sys.stdout.isatty()
