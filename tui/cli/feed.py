"""What a host serves to another machine's ``artlens remote pull``: ``feed`` and ``cat``.

Both only read: the index (read-only connection) and, for ``cat``, one file inside an
indexed root.  They write their answer to stdout, which ssh (or any pipe) carries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from store.errors import ArtlensError
from tui.cli.common import count_type, db_option, reader


@click.command("feed")
@click.option("--after", type=count_type(0), default=0, show_default=True,
              help="Last event id the client applied (0: a full snapshot).")  # fmt: skip
@click.option("--recheck", default="", help="Artifact id ranges (a-b,c-d) the client holds "
              "unhashed: sent again once hashed.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON lines (the only format).")
@db_option
def feed_cmd(after: int, recheck: str, as_json: bool, db_path: Path | None) -> None:
    """Stream the index's changes after event AFTER as JSON lines (for `artlens remote`)."""
    from store.feed import Feed, encode, parse_ranges

    if not as_json:
        raise ArtlensError("feed speaks JSON lines only: add --json")
    try:
        ranges = parse_ranges(recheck)
    except ValueError as exc:
        raise ArtlensError(f"--recheck: {exc}") from None
    out = sys.stdout.buffer
    with reader(db_path) as db:
        buffer: list[bytes] = []
        size = 0
        try:
            for line in Feed(db, after, recheck=ranges).lines():
                data = encode(line)
                buffer.append(data)
                size += len(data)
                if size >= 1 << 16:
                    out.write(b"".join(buffer))
                    buffer, size = [], 0
            out.write(b"".join(buffer))
            out.flush()
        except BrokenPipeError:
            _quiet_exit()


def _quiet_exit() -> None:
    """The client hung up: nothing to report, and no second error at interpreter exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)


def _range(text: str) -> tuple[int, int]:
    start, sep, length = text.partition(":")
    counts = (start, length)  # ASCII and short: "²".isdigit() is true and int() refuses it
    if not sep or not all(t.isascii() and t.isdigit() and len(t) <= 18 for t in counts):
        raise ArtlensError("--range wants OFFSET:LENGTH (bytes)")
    return int(start), int(length)


@click.command("cat")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--range", "span", required=True, help="OFFSET:LENGTH in bytes (at most 64 MiB).")
@db_option
def cat_cmd(path: Path, span: str, db_path: Path | None) -> None:
    """Write LENGTH bytes of PATH from OFFSET (a file inside an indexed root) to stdout."""
    from store.feed import MAX_RANGE, locate, open_inside

    offset, length = _range(span)
    if length > MAX_RANGE:
        raise ArtlensError(f"--range: at most {MAX_RANGE} bytes per call")
    raw = os.fsencode(path)
    if not raw.startswith(b"/"):
        raise ArtlensError("cat wants an absolute path")
    with reader(db_path) as db:
        try:
            root, rel = locate(db, raw)
            fd, _size = open_inside(root, rel)
        except ValueError as exc:
            raise ArtlensError(f"cat: {exc}") from None
    out = sys.stdout.buffer
    try:
        left, pos = length, offset
        while left > 0:
            chunk = os.pread(fd, min(left, 1 << 20), pos)
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
            pos += len(chunk)
        out.flush()
    except BrokenPipeError:
        _quiet_exit()
    finally:
        os.close(fd)


COMMANDS = [feed_cmd, cat_cmd]
