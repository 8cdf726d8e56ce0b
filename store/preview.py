"""Bounded, safe reading of one artifact for the preview pane.

``preview_file`` never follows a symlink, never opens anything ``lstat`` did not show to be a
regular file (FIFOs would hang), reads at most ``limit`` bytes (head and tail of big files),
never unpickles, and never raises for bad input: problems come back as ``notes``.  Text is
returned with control characters turned into visible escapes, so nothing read from disk can
drive the terminal.  Rendering (colours, tables, half-block pictures) is the UI's job.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from store.csvrows import csv_reader
from store.root import ChangedError, NotAFile, Reader, Root, RootError
from store.root.local import LocalReader
from store.safefile import NotRegularFileError, open_regular
from store.safeparse import NestingError, load_json_with, load_toml
from store.safetext import decode, visible

MAX_READ = 256 * 1024
"""Bytes a preview may read from a file (head plus tail when the file is bigger)."""
MAX_IMAGE_FILE = 4 * 1024 * 1024
"""PNG files above this size are described, not decoded (the whole stream is needed)."""
MAX_IMAGE_PIXELS = 1_500_000
"""Decoding is pure Python: bigger pictures would keep a worker busy for seconds."""
IMAGE_BOX = 160
"""Decoded pictures are shrunk to fit this many pixels a side: more than a terminal shows."""
TABLE_HEAD_ROWS = 40
TABLE_TAIL_ROWS = 10
HEX_BYTES = 256
LOG_SUFFIXES = frozenset({".log", ".out", ".err", ".jsonl"})
_LEXERS = {
    ".py": "python", ".pyi": "python", ".json": "json", ".jsonl": "json", ".yaml": "yaml",
    ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".sh": "bash",
    ".bash": "bash", ".md": "markdown", ".rst": "rst", ".txt": "text", ".log": "text",
    ".csv": "text", ".tsv": "text", ".xml": "xml", ".html": "html", ".js": "javascript",
    ".ts": "typescript", ".rs": "rust", ".go": "go", ".c": "c", ".h": "c", ".cpp": "cpp",
    ".java": "java", ".sql": "sql", ".r": "r", ".jl": "julia", ".ipynb": "json",
    ".dockerfile": "docker", ".proto": "protobuf", ".lua": "lua",
}  # fmt: skip
_NAMED_LEXERS = {"Dockerfile": "docker", "Makefile": "make", "MLmodel": "yaml", "meta.yaml": "yaml"}
_STRUCTURED = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ipynb": "json"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageData:
    """A decoded picture, already shrunk: ``rows`` hold ``width`` RGB triples each."""

    width: int
    height: int
    rows: tuple[bytes, ...]
    source_size: tuple[int, int]


@dataclass(frozen=True)
class Preview:
    """What the preview pane shows for one file.

    ``kind`` is one of: text, structured, table, image, model, binary, empty, special, error.
    """

    kind: str
    size: int = 0
    text: str = ""
    tail_text: str = ""
    """The end of a big file, shown after a "skipped" marker (empty when the head is all)."""
    lexer: str | None = None
    from_end: bool = False
    head_bytes: int = 0
    tail_bytes: int = 0
    skipped_bytes: int = 0
    rows: tuple[tuple[str, ...], ...] = ()
    header: tuple[str, ...] = ()
    rows_omitted: int | None = None
    """Rows between the head and tail rows shown (None when unknown: big file)."""
    tail_rows: tuple[tuple[str, ...], ...] = ()
    image: ImageData | None = None
    inspection: Any = None
    """A ``store.inspect.Inspection`` for model files."""
    hex_head: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """The ``notes`` that say what is shown may be wrong or left out (ragged rows, a parse
    that failed): a view that opens at the file's end keeps them in sight."""


def lexer_for(name: str) -> str:
    """A Pygments lexer name picked from the file name ("text" when unknown)."""
    if name in _NAMED_LEXERS:
        return _NAMED_LEXERS[name]
    return _LEXERS.get(os.path.splitext(name)[1].lower(), "text")


def _note_os(exc: OSError) -> str:
    reason = exc.strerror or str(exc).rpartition(": ")[2] or type(exc).__name__
    return f"cannot read: {visible(reason)}"


def _open_regular(path: bytes) -> Reader | str:
    """A pinned reader on a regular file opened without following links, or why not."""
    try:
        fd, st = open_regular(path)
    except NotRegularFileError as exc:
        return _describe_special(path, exc.mode)
    except OSError as exc:
        return _note_os(exc)
    return LocalReader(fd, st, os.fsdecode(path))


def _open_at(root: Root, rel: str) -> Reader | str:
    """A pinned reader on a file of a root (links inside it followed, as every reader of a
    root does), or why not."""
    try:
        return root.open(rel)
    except NotAFile as exc:
        return visible(str(exc).rpartition(": ")[2] or "not a regular file") + ": not read"
    except RootError as exc:
        return f"cannot read: {visible(str(exc).rpartition(': ')[2] or type(exc).__name__)}"


def _describe_special(path: bytes, mode: int) -> str:
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            return "symbolic link (target unreadable); not followed"
        return f"symbolic link to {visible(decode(target))}; not followed"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO): not read, reading could hang"
    if stat.S_ISSOCK(mode):
        return "a socket: not read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device: not read"
    return "not a regular file: not read"


def _pread(reader: Reader, size: int, offset: int) -> bytes:
    return reader.read_at(offset, size)


@dataclass
class _Read:
    head: bytes
    tail: bytes
    size: int

    @property
    def whole(self) -> bool:
        return not self.tail and len(self.head) >= self.size

    @property
    def skipped(self) -> int:
        return max(0, self.size - len(self.head) - len(self.tail))


def _read_bounded(fd: Reader, size: int, limit: int, *, tail_only: bool = False) -> _Read:
    if size <= limit:
        data = _pread(fd, limit + 1, 0)
        return _Read(data[:limit], b"", max(size, len(data)))
    if tail_only:
        return _Read(b"", _pread(fd, limit, size - limit), size)
    half = limit // 2
    return _Read(_pread(fd, half, 0), _pread(fd, half, size - half), size)


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    if not sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        if exc.start < len(sample) - 4:
            return True
    return False


def hex_dump(data: bytes, *, width: int = 16) -> str:
    """Offset, hex bytes and printable ASCII, one line per ``width`` bytes."""
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<{width * 3 - 1}}  {text}")
    return "\n".join(lines)


TEXT_PIECE = 32 * 1024
"""Characters escaped in one call: a regex over 256 KiB holds the GIL for milliseconds,
and the preview's worker shares it with the keys (between pieces the UI thread can run)."""


def _text_of(data: bytes, *, cut_start: bool = False) -> str:
    if cut_start:
        cut = data.find(b"\n")
        if 0 <= cut < 4096:
            data = data[cut + 1 :]
    text = decode(data)
    return "".join(
        visible(text[start : start + TEXT_PIECE], keep_newlines=True)
        for start in range(0, len(text), TEXT_PIECE)
    )


def _check_json(text: str) -> list[str]:
    """Raise ValueError when ``text`` is not JSON; otherwise what a reader should know
    about it: keys an object repeats (loaders differ on which value they keep), the
    non-standard constants ``NaN`` and ``Infinity``.  Numbers are checked, never converted:
    a 5,000-digit integer is valid JSON (``int()`` refuses it past 4,300 digits)."""
    repeated: dict[str, None] = {}
    constants: dict[str, None] = {}

    def pairs(items: list[tuple[str, Any]]) -> None:
        if len({key for key, _ in items}) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen and len(repeated) < 5:
                    repeated[key] = None
                seen.add(key)

    def constant(name: str) -> None:
        constants[name] = None

    def number(_text: str) -> None:
        return None

    load_json_with(
        text, object_pairs_hook=pairs, parse_int=number, parse_float=number,
        parse_constant=constant,
    )  # fmt: skip
    found: list[str] = []
    if repeated:
        keys = ", ".join(json.dumps(key, ensure_ascii=False)[:60] for key in repeated)
        found.append(
            f"repeated keys in one object: {keys}; loaders differ on which value they keep"
        )
    if constants:
        found.append(f"not standard JSON: {', '.join(constants)} (strict parsers refuse it)")
    return found


def _pretty(data: bytes, fmt: str) -> tuple[str, list[str]]:
    """Readable text of a JSON/YAML/TOML document and warnings about it; raises ValueError
    when it does not parse.

    JSON is re-indented (it is often written on one line) from its own text, never dumped
    from the parsed values: those would show ``1e400`` as ``Infinity``, ``1.00000000000000001``
    as ``1.0`` and a repeated key once.  YAML and TOML are shown as written, comments
    included, once they are known to parse.
    """
    text = data.decode("utf-8", "replace")
    if fmt == "json":
        found = _check_json(text)
        return reindent_json(text), found
    if fmt == "yaml":
        from store.yamlsafe import YamlError, YamlTooLarge, load_yaml

        try:
            load_yaml(text)
        except YamlTooLarge as exc:  # sound, maybe: past what is built of it here
            raise NestingError(str(exc).removeprefix("invalid YAML: ")) from exc
        except YamlError as exc:
            raise ValueError(str(exc)) from exc
        return text, []
    load_toml(text)
    return text, []


LONG_LINE = 2000
"""A JSON text with lines longer than this is re-indented for the preview."""
REINDENT_LINES = 3000
"""Lines of re-indented JSON made per section: the pane shows no more."""


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[{}\[\],:]', re.DOTALL)
"""A string (to step over whole, cut or not) or a character that shapes the layout."""


def reindent_json(text: str, *, indent: int = 2, max_lines: int | None = None) -> str:
    """A piece of JSON (the head or tail of a big file, so usually not a whole document)
    with one value per line, without parsing it: strings are stepped over whole by a regex
    (the characters between tokens are never visited in Python) while nesting is tracked.
    Cut pieces come out as readable as whole ones.  With ``max_lines`` it stops there, the
    last line an ellipsis, when there is more (it would not be shown: a loop in Python per
    value is slow, and a preview's worker shares the GIL with the keys)."""
    out: list[str] = []
    depth = 0
    start = 0
    pad = " " * indent
    room = len(text) + 1 if max_lines is None else max_lines - 2
    opened = False
    for match in _JSON_TOKEN.finditer(text):
        char = match.group()
        if char[0] == '"':
            continue
        i = match.start()
        if char != ":":
            room -= 1
            if room < 0:  # one line for the ellipsis
                return "".join(out) + text[start:i].strip() + "\n…"
        if char in "{[":
            out.append(text[start : i + 1].strip())
            depth += 1
            out.append("\n" + pad * depth)
        elif char in "}]":
            between = text[start:i].strip()
            if not between and opened:  # an empty container stays on its line: ``[]``
                out.pop()
            else:
                out.append(between)
                out.append("\n" + pad * max(0, depth - 1))
            depth = max(0, depth - 1)
            out.append(char)
        elif char == ",":
            out.append(text[start : i + 1].strip())
            out.append("\n" + pad * depth)
        else:  # ":"
            out.append(text[start:i].strip() + ": ")
        opened = char in "{["
        start = i + 1
    out.append(text[start:].strip())
    return "".join(out)


def _reindent_tail(text: str, lines: int = REINDENT_LINES) -> str:
    """The last ``lines`` lines of the tail of a big JSON, re-indented: only the end of
    the text is visited (a longer piece each time while it makes too few lines)."""
    size = 24 * lines  # a tokenizer's vocabulary: about 18 characters a line
    while True:
        piece = text[-size:]
        cut = piece.find(', "')  # the piece starts anywhere: begin at a key or string
        piece = piece[cut + 2 :] if 0 <= cut < 4096 else piece
        out = reindent_json(piece)
        if size >= len(text) or out.count("\n") >= lines:
            return "\n".join(out.split("\n")[-lines:]) if size < len(text) else out
        size *= 2


def _long_lines(text: str) -> bool:
    return any(len(line) > LONG_LINE for line in text.split("\n", 200)[:200])


UTF16_NOTE = "UTF-16 text, by its byte-order mark: shown as bytes (the preview reads UTF-8)"
TABLE_COLUMNS = 50
"""Columns a table preview shows; the rest are counted."""


def _table(read: _Read, delimiter: str) -> Preview:
    unparsed: list[str] = []
    widths: set[int] = set()

    def parse(data: bytes) -> list[list[str]]:
        text = data.decode("utf-8", "replace")
        try:
            rows = [row for row in csv_reader(text, delimiter) if row]
        except csv.Error as exc:  # a field past csv's size limit, say: split by hand, said
            unparsed.append(" ".join(str(exc).split())[:120])
            rows = [line.split(delimiter) for line in text.splitlines() if line]
        widths.update(len(row) for row in rows)
        return rows

    def clean(rows: list[list[str]]) -> list[tuple[str, ...]]:
        return [tuple(visible(cell)[:200] for cell in row[:TABLE_COLUMNS]) for row in rows]

    notes: list[str] = []
    if read.whole:
        rows = parse(read.head)
        if not rows:
            return Preview("empty", size=read.size, notes=("no rows",))
        header, body = clean(rows[:1])[0], clean(rows[1:])
        head = body[:TABLE_HEAD_ROWS]
        tail_start = max(TABLE_HEAD_ROWS, len(body) - TABLE_TAIL_ROWS)
        tail = body[tail_start:]
        omitted: int | None = max(0, tail_start - TABLE_HEAD_ROWS)
        notes.append(f"{len(body)} rows")
    else:
        head_rows = parse(read.head[: read.head.rfind(b"\n") + 1] or read.head)
        header_cells = clean(head_rows[:1])
        header = header_cells[0] if header_cells else ()
        head = clean(head_rows[1 : TABLE_HEAD_ROWS + 1])
        tail_text = read.tail[read.tail.find(b"\n") + 1 :]
        tail = clean(parse(tail_text)[-TABLE_TAIL_ROWS:])
        omitted = None
    warnings: list[str] = []
    if unparsed:
        warnings.append(
            f"not read as CSV ({unparsed[0]}): lines split at each delimiter, quotes not"
            " honoured, so rows and fields are approximate"
        )
    if len(widths) > 1:  # before any cut to TABLE_COLUMNS, which would hide it
        warnings.append("ragged rows: some rows have a different number of fields than the header")
    if max(widths, default=0) > TABLE_COLUMNS:
        notes.append(f"{max(widths)} columns: the first {TABLE_COLUMNS} shown")
    notes += warnings
    return Preview(
        "table",
        size=read.size,
        header=header,
        rows=tuple(head),
        tail_rows=tuple(tail),
        rows_omitted=omitted,
        head_bytes=len(read.head),
        tail_bytes=len(read.tail),
        skipped_bytes=read.skipped,
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


class ImageError(ValueError):
    """A picture that cannot be decoded; the message is one line."""


def png_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, None when ``head`` is not a PNG."""
    if len(head) < 24 or not head.startswith(_PNG_MAGIC) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def decode_png(data: bytes, *, box: int = IMAGE_BOX) -> ImageData:
    """Decode a non-interlaced PNG (any colour type, 1-16 bits) and shrink it to ``box``.

    Pure Python (zlib + the five row filters): Pillow is not a dependency.
    """
    if not data.startswith(_PNG_MAGIC):
        raise ImageError("not a PNG file")
    pos = 8
    ihdr: tuple[int, ...] | None = None
    palette = b""
    idat: list[bytes] = []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ImageError("truncated PNG (a chunk runs past the end of the file)")
        pos += 12 + length
        if ctype == b"IHDR":
            if length != 13:
                raise ImageError("bad PNG header")
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            palette = body
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if ihdr is None:
        raise ImageError("PNG without a header chunk")
    width, height, depth, colour, _comp, _filter, interlace = ihdr
    if width == 0 or height == 0:
        raise ImageError("PNG with no pixels")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"{width}x{height} is too large to decode for a preview")
    if interlace:
        raise ImageError("interlaced PNG: not decoded in the preview")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        raise ImageError("unsupported PNG colour type or bit depth")
    bits = channels * depth
    stride = (width * bits + 7) // 8
    bpp = max(1, bits // 8)
    expected = (stride + 1) * height
    decomp = zlib.decompressobj()
    try:
        raw = decomp.decompress(b"".join(idat), expected + 1)
    except zlib.error as exc:
        raise ImageError(f"corrupt PNG data: {exc}") from exc
    if len(raw) < expected:
        raise ImageError("truncated PNG data")
    step = max(1, -(-max(width, height) // box))
    out_w, out_h = -(-width // step), -(-height // step)
    prev = bytearray(stride)
    rows: list[bytes] = []
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(ftype, line, prev, bpp)
        if y % step == 0:
            rows.append(_to_rgb(line, width, step, depth, colour, channels, palette))
        prev = line
    return ImageData(out_w, out_h, tuple(rows[:out_h]), (width, height))


def _unfilter(ftype: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    n = len(line)
    if ftype == 0:
        return
    if ftype == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif ftype == 2:
        for i in range(n):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif ftype == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif ftype == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pred) & 0xFF
    else:
        raise ImageError(f"bad PNG row filter {ftype}")


def _to_rgb(
    line: bytearray, width: int, step: int, depth: int, colour: int, channels: int, palette: bytes
) -> bytes:
    out = bytearray()
    for x in range(0, width, step):
        if depth < 8:
            per_byte = 8 // depth
            byte = line[x // per_byte]
            shift = 8 - depth * (x % per_byte + 1)
            value = (byte >> shift) & ((1 << depth) - 1)
            if colour == 3:
                out += palette[value * 3 : value * 3 + 3].ljust(3, b"\0")
            else:
                grey = value * 255 // ((1 << depth) - 1)
                out += bytes((grey, grey, grey))
            continue
        width_bytes = depth // 8
        base = x * channels * width_bytes
        samples = [line[base + c * width_bytes] for c in range(channels)]
        if colour == 3:
            idx = samples[0]
            out += palette[idx * 3 : idx * 3 + 3].ljust(3, b"\0")
        elif colour in (0, 4):
            grey = samples[0] * samples[1] // 255 if colour == 4 else samples[0]
            out += bytes((grey, grey, grey))
        elif colour == 2:
            out += bytes(samples[:3])
        else:
            alpha = samples[3]
            out += bytes(s * alpha // 255 for s in samples[:3])
    return bytes(out)


def _image(fd: Reader, size: int, name: str) -> Preview:
    head = _pread(fd, 64, 0)
    dims = png_size(head)
    if dims is None:
        return Preview(
            "binary",
            size=size,
            hex_head=hex_dump(head[:HEX_BYTES]),
            notes=("picture format not decoded in the preview (PNG only)",),
        )
    if size > MAX_IMAGE_FILE:
        return Preview(
            "binary",
            size=size,
            hex_head=hex_dump(head),
            notes=(f"PNG {dims[0]}x{dims[1]}: file too large to decode for a preview",),
        )
    data = _pread(fd, size, 0)
    try:
        image = decode_png(data)
    except ImageError as exc:
        return Preview("binary", size=size, hex_head=hex_dump(head), notes=(str(exc),))
    return Preview("image", size=size, image=image, notes=(f"PNG {dims[0]}x{dims[1]}",))


def preview_file(path: str | bytes | os.PathLike[str], *, limit: int = MAX_READ) -> Preview:
    """Describe the file at ``path`` for the preview pane, reading at most about ``limit``."""
    raw = os.fsencode(path)

    def inspect() -> Any:
        from store.inspect import inspect_file

        return inspect_file(os.fsdecode(raw))

    name = os.fsdecode(os.path.basename(raw))
    return _preview(lambda: _open_regular(raw), name, limit, inspect)


def preview_at(root: Root, rel: str, *, limit: int = MAX_READ) -> Preview:
    """Describe the file ``rel`` of any file-layer root, as ``preview_file`` does a path."""

    def inspect() -> Any:
        from store.inspect import inspect_at

        return inspect_at(root, rel)

    return _preview(lambda: _open_at(root, rel), rel.rpartition("/")[2], limit, inspect)


_ATTEMPTS = 3
"""A file that changes under the preview (a log being written) is read again, this often."""


def _preview(
    opener: Callable[[], Reader | str], name: str, limit: int, inspect: Callable[[], Any]
) -> Preview:
    size = 0
    for _ in range(_ATTEMPTS):
        opened = opener()
        if isinstance(opened, str):
            kind = "error" if opened.startswith(("cannot", "changed")) else "special"
            return Preview(kind, notes=(opened,))
        size = opened.size
        try:
            return _preview_open(opened, size, name, limit, inspect)
        except ChangedError:
            continue
        except OSError as exc:
            return Preview("error", size=size, notes=(_note_os(exc),))
        except (ValueError, RecursionError, MemoryError) as exc:
            message = " ".join(str(exc).split())[:200]
            return Preview("error", size=size, notes=(f"cannot preview: {visible(message)}",))
        finally:
            opened.close()
    return Preview("error", size=size, notes=("changed while being read: try again",))


def _preview_open(
    fd: Reader, size: int, name: str, limit: int, inspect: Callable[[], Any]
) -> Preview:
    if size == 0:
        return Preview("empty", notes=("empty file",))
    suffix = os.path.splitext(name)[1].lower()
    from store.inspect import is_model_candidate

    if is_model_candidate(name):
        head = _pread(fd, HEX_BYTES, 0)
        inspection = inspect()
        return Preview("model", size=size, inspection=inspection, hex_head=hex_dump(head))
    if suffix in (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"):
        return _image(fd, size, name)
    from_end = suffix in LOG_SUFFIXES
    read = _read_bounded(fd, size, limit, tail_only=from_end)
    if _looks_binary(read.head or read.tail):
        head = read.head[:HEX_BYTES] if read.head else _pread(fd, HEX_BYTES, 0)
        said = (UTF16_NOTE,) if head.startswith((b"\xff\xfe", b"\xfe\xff")) else ()
        return Preview("binary", size=size, hex_head=hex_dump(head), notes=said)
    if suffix in (".csv", ".tsv"):
        return _table(read, "\t" if suffix == ".tsv" else ",")
    fmt = _STRUCTURED.get(suffix)
    if fmt is None and name in _NAMED_LEXERS and _NAMED_LEXERS[name] == "yaml":
        fmt = "yaml"
    notes: list[str] = []
    warnings: list[str] = []
    if fmt is not None and read.whole:
        try:
            pretty, found = _pretty(read.head, fmt)
        except (ValueError, RecursionError) as exc:
            message = " ".join(str(exc).split())[:160]
            if isinstance(exc, (NestingError, RecursionError)):  # sound, maybe: too deep here
                notes.append(f"{fmt.upper()} not shown parsed: {visible(message)}")
            else:
                if message.lower().startswith(f"invalid {fmt}"):
                    message = message[len(f"invalid {fmt}") :].lstrip(": ")
                warnings.append(f"invalid {fmt.upper()} (written mid-way?): {visible(message)}")
            notes += warnings
        else:
            found = [visible(warning) for warning in found]
            return Preview(
                "structured",
                size=size,
                text=visible(pretty, keep_newlines=True),
                lexer=fmt,
                head_bytes=len(read.head),
                notes=tuple(found),
                warnings=tuple(found),
            )
    head_text = _text_of(read.head)
    tail_text = _text_of(read.tail, cut_start=True) if read.tail else ""
    if fmt == "json" and not from_end and (_long_lines(head_text) or _long_lines(tail_text)):
        # One line of megabytes (a tokenizer, a dumped config): shown as values, one a line.
        head_text = reindent_json(head_text, max_lines=REINDENT_LINES)
        tail_text = _reindent_tail(tail_text)
        notes.append(
            "not parsed: shown re-indented, head and tail"
            if read.whole
            else "too large to parse for the preview: shown re-indented, head and tail"
        )
    if from_end:
        return Preview(
            "text",
            size=size,
            text=tail_text if read.tail else head_text,
            lexer=lexer_for(name),
            from_end=True,
            head_bytes=len(read.head),
            tail_bytes=len(read.tail),
            skipped_bytes=read.skipped,
            notes=tuple(notes),
            warnings=tuple(warnings),
        )
    return Preview(
        "text",
        size=size,
        text=head_text,
        tail_text=tail_text,
        lexer=lexer_for(name),
        head_bytes=len(read.head),
        tail_bytes=len(read.tail),
        skipped_bytes=read.skipped,
        notes=tuple(notes),
        warnings=tuple(warnings),
    )
