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
from store.jsonstrict import finite, needs_strict, strict_text
from store.jsontext import EncodedItems
from store.locate import ENV_DB, resolve_db
from store.safetext import printable_surrogate, printable_surrogates, visible

if TYPE_CHECKING:
    import sqlite_utils

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 2
EXIT_INTERNAL = 70
"""A bug of artlens, not of the input (``EX_SOFTWARE`` of sysexits.h)."""
ENV_DEBUG = "ARTLENS_DEBUG"
"""Set to 1 for the traceback of an internal error instead of its one line."""


SQLITE_INT_MAX = (1 << 63) - 1
"""The largest integer SQLite stores: a count or id option past it cannot be bound."""


def count_type(minimum: int = 0) -> click.IntRange:
    """An integer option's type, from ``minimum`` up to what SQLite can hold: a bigger one
    would end in an OverflowError wherever it meets SQL."""
    return click.IntRange(minimum, SQLITE_INT_MAX)


class Seconds(click.FloatRange):
    """A time in seconds: a finite number above ``minimum`` (``click.FloatRange`` alone lets
    ``nan`` through, as every comparison with it is false)."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0) -> None:
        super().__init__(min=minimum, min_open=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


class NonEmptyPath(click.Path):
    """``click.Path`` refusing ``""``, which ``Path`` reads as the current folder."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "":
            self.fail("is empty (name a folder; . for the current one)", param, ctx)
        return super().convert(value, param, ctx)


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
    """Print one line to stderr and exit with status 2 (escaped: a message may quote a
    name or a line of a file)."""
    click.echo(f"artlens: error: {_printable(message)}", err=True)
    sys.exit(EXIT_ERROR)


def one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:500]


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Expected failures as one line on stderr and exit code 2, never a traceback.

    The one place the CLI maps errors: the command group runs every command inside it.
    Every ``ArtlensError`` (the whole family, see ``store.errors``) is the user's message.
    Any other exception is a bug: one line naming it and exit 70, or its traceback with
    ``ARTLENS_DEBUG=1`` (the tests set it, so a bug still fails them loudly).
    """
    _INDEXES_USED.clear()  # this command's, not an earlier one's in the same process
    try:
        yield
    except ArtlensError as exc:
        fail(one_line(exc))
    except sqlite3.DatabaseError as exc:
        fail(f"index database: {one_line(exc)}")
    except BrokenPipeError:
        raise  # the reader of stdout went away: the group exits quietly
    except OSError as exc:
        name = exc.filename
        where = f" ({os.fsdecode(name) if isinstance(name, bytes) else name})" if name else ""
        fail(f"{exc.strerror or one_line(exc)}{where}")
    except KeyboardInterrupt:
        click.echo("artlens: interrupted", err=True)
        sys.exit(130)
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise  # click's own: usage errors, ctx.exit(), a declined prompt
    except Exception as exc:
        if os.environ.get(ENV_DEBUG, "") not in ("", "0"):
            raise
        damage = _damaged_index()
        if damage is not None:
            fail(damage)
        click.echo(
            f"artlens: internal error: {type(exc).__name__}: {_printable(one_line(exc))}"
            f" (set {ENV_DEBUG}=1 for the traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


_INDEXES_USED: list[Path] = []
"""The indexes this command opened: where to look for damage when it fails."""


def index_used(path: Path) -> Path:
    """Note that this command reads or writes the index at ``path``; returns it."""
    _INDEXES_USED.append(path)
    return path


def _damaged_index() -> str | None:
    """The one-line message for a failure on an index whose path columns hold something
    artlens never writes there (another tool edited it), or None: the failure is a bug."""
    from store.index.query import damaged_path_column, damaged_row_message
    from store.readonly import connect_readonly

    for path in _INDEXES_USED:
        try:
            conn = connect_readonly(path)
        except (OSError, sqlite3.Error):
            continue
        try:
            what = damaged_path_column(conn)
        except sqlite3.Error:
            continue
        finally:
            conn.close()
        if what is not None:
            return damaged_row_message(what)
    return None


def _printable(text: str) -> str:
    """Any text, of any origin, as one printable line (``paths.display`` refuses a
    surrogate that is not an undecodable byte)."""
    return visible(printable_surrogates(text))


def no_empty(values: Iterable[str | None], name: str, hint: str) -> None:
    """Refuse an empty argument: ``Path("")`` is the current folder, and ``""`` would be
    read as no argument at all, so ``index ""`` indexed the folder it was run in."""
    if any(value == "" for value in values):
        raise ArtlensError(f"{name} is empty ({hint})")


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
    return index_used(path)


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
see: DEL, C1 controls (CSI, OSC), line separators, bidi overrides (as ``\\uXXXX``), lone
surrogates (as their printable text: no parser can give a surrogate back)."""


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


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str, allow_nan=False)
"""``json.dumps(item, ensure_ascii=False, default=str, allow_nan=False)`` without a new
encoder per item.  ``allow_nan=False`` is the guard: a non-finite float raises, and
``store.jsonstrict.finite`` names it, instead of a bare ``NaN`` no parser takes."""


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
        once = make(None, str, encoder.encode_basestring, None, ": ", ", ", False, False, False)

        def encode(value: object) -> str:
            return "".join(once(value, 0))

        sample: dict[str, object] = {
            "a": [1, 2.5, -1e300, None, True, "\x00\u00e9\n"],
            "b": {},
            "c": Path("/"),
        }
        if encode(sample) != _ENCODER.encode(sample):
            return _ENCODER.encode
    except (TypeError, ValueError):
        return _ENCODER.encode
    return encode


_encode_finite = _item_encoder()


def _encode_item(value: object) -> str:
    """One item as strict JSON: non-finite floats named (the rare case pays the copy)."""
    try:
        return _encode_finite(value)
    except ValueError:
        return _encode_finite(finite(value))


def _dumps_indented(value: object) -> str:
    def dumps(v: object) -> str:
        return json.dumps(v, indent=2, ensure_ascii=False, default=str, allow_nan=False)

    try:
        return dumps(value)
    except ValueError:
        return dumps(finite(value))


def emit_json(value: object) -> None:
    """Print ``value`` as JSON whose text holds no control character.

    Strings keep their real value (a parser gets the name back exactly); control characters
    are written as ``\\uXXXX`` escapes, so the output is safe on a terminal too.  Strict
    JSON (``store.jsonstrict``): a non-finite float is the string ``"NaN"``, ``"Infinity"``
    or ``"-Infinity"``, and a lone surrogate the printable ``\\xNN``.
    """
    if isinstance(value, list):
        emit_json_lines(map(_encode_item, value))
        return
    if isinstance(value, dict) and any(
        isinstance(v, EncodedItems) or (isinstance(v, list) and len(v) > 100)
        for v in value.values()
    ):
        _write_json(_object_with_long_lists(value))
        return
    _write_json([_dumps_indented(value)])


def _object_with_long_lists(value: dict[str, object]) -> list[str]:
    """An object one key per line, a list's items one per line: the indenting encoder is
    Python, and ten times slower than the C one on a plan of 500,000 items.  The text in
    parts, written one after the other: joined, a plan's 170 MB were copied four times."""

    encode = _encode_item
    if not value:
        return ["{}"]
    parts = []
    opening = "{\n"
    for key, item in value.items():
        parts.append(f"{opening}  {encode(str(key))}: ")
        opening = ",\n"
        if isinstance(item, EncodedItems):
            if item.texts:  # written ahead, maybe with NaN
                parts += ["[\n    ", _strict_join(",\n    ", item.texts), "\n  ]"]
            else:
                parts.append("[]")
        elif isinstance(item, list) and item:
            parts += ["[\n    ", ",\n    ".join(map(encode, item)), "\n  ]"]
        else:
            parts.append(encode(item))
    parts.append("\n}")
    return parts


def _strict_join(separator: str, texts: list[str]) -> str:
    """JSON texts of another writer joined, made strict (``store.jsonstrict``): the joined
    text is checked once, and only when something needs it is each text looked at."""
    joined = separator.join(texts)
    if needs_strict(joined):
        joined = separator.join(map(strict_text, texts))
    return joined


def emit_json_lines(items: Iterable[str]) -> None:
    """Print a JSON list of already encoded items, one per line.

    One record per line is as easy to read and grep as an indented list, and lets the C
    encoder work: the indenting one is ten times slower on 10,000 runs.  Items made by
    another writer (the index's stored params and metrics) are made strict here.
    """
    lines = _strict_join(",\n  ", list(items))
    _write_json(["[\n  ", lines, "\n]"] if lines else ["[]"])


def _escape_unsafe(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if 0xD800 <= code <= 0xDFFF:  # no character: its printable text, backslash escaped
        return "\\" + printable_surrogate(code)
    return f"\\u{code:04x}"


def _write_json(parts: list[str]) -> None:
    """Echo the parts of a JSON text one after the other, then a newline: no text of them
    all is made (each copy of a plan's 170 MB cost a tenth of a second, and page faults).
    ``color=True`` only spares click a search for ANSI codes through it all: a JSON text
    has its control characters escaped, so there is none to keep or strip."""
    for part in parts:
        if not part.isascii() or "\x7f" in part:  # the check is fast; the escaping is not
            part = _UNSAFE_IN_JSON.sub(_escape_unsafe, part)
        click.echo(part, nl=False, color=True)
    click.echo()


def is_terminal() -> bool:
    return sys.stdout.isatty()
