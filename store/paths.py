"""Lossless path keys.

Python code passes relative paths around as ``str`` decoded with ``surrogateescape``
(what ``os.fsdecode`` gives), so names that are not valid UTF-8 survive.  A surrogate
cannot be stored in a SQLite TEXT column, so the index keys paths as BLOBs of the raw
bytes.  ``key``/``unkey`` convert between the two; ``display`` makes a name safe to show.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from store.safetext import look_alike, spelled, visible

ROOT_KEY = b""
"""The key of a root's own folder."""


def key(rel: str | bytes) -> bytes:
    """The BLOB key of a root-relative POSIX path ('' for the root itself)."""
    if isinstance(rel, bytes):
        return rel
    return os.fsencode(rel)


def unkey(blob: bytes | str) -> str:
    """The ``surrogateescape`` str of a key, usable with ``os`` functions."""
    if isinstance(blob, str):
        return blob
    return os.fsdecode(bytes(blob))


def parent_key(k: bytes) -> bytes:
    """The key of the folder holding ``k`` (b'' for top-level entries)."""
    cut = k.rfind(b"/")
    return b"" if cut < 0 else k[:cut]


def name_of(k: bytes) -> bytes:
    """The last component of a key."""
    return k[k.rfind(b"/") + 1 :]


def join_key(parent: bytes, name: bytes) -> bytes:
    return name if not parent else parent + b"/" + name


def under(k: bytes, folder: bytes) -> bool:
    """True when ``k`` is ``folder`` itself or lies below it."""
    return not folder or k == folder or k.startswith(folder + b"/")


ROOT_HI = b"\xff" * 4096
"""Above every key: a file name holds at most 255 bytes (NAME_MAX; 4,032 on the most lenient
filesystems), so a key's first 4,096 bytes cannot all be 0xff before a '/' (0x2f) or its
end; object keys are UTF-8, which holds no 0xff at all."""


def prefix_range(folder: bytes) -> tuple[bytes, bytes]:
    """BLOB bounds (lo, hi) such that every key strictly below ``folder`` has lo <= key < hi.

    Lets SQLite answer "everything under this folder" with an index range scan.  Below the
    root the bound is ``ROOT_HI``: a name of nine 0xff bytes passed the old one.
    """
    if not folder:
        return b"", ROOT_HI
    return folder + b"/", folder + b"0"  # '0' is the byte after '/'


def at_and_below(
    select: str, where: str, args: list[object], start: bytes
) -> tuple[str, list[object]]:
    """``select`` (``SELECT ... FROM t``) of the rows meeting ``where`` whose ``path`` is
    ``start`` or below it, and the arguments: two searches of the path key joined by
    ``UNION ALL``.  ``(path >= lo AND path < hi) OR path = start`` reads the same rows, but
    SQLite answers that OR by walking every row of the root (120 ms on 1M files)."""
    lo, hi = prefix_range(start)
    sql = (
        f"{select} WHERE {where} AND path >= ? AND path < ? "
        f"UNION ALL {select} WHERE {where} AND path = ?"
    )
    return sql, [*args, lo, hi, *args, start]


def display(name: str | bytes) -> str:
    """A printable, single-line rendering of a file name or path.

    Invalid UTF-8 bytes become ``\\xNN`` and control characters become visible escapes,
    so the result never drives a terminal.  Markup escaping is the UI's job.
    """
    if isinstance(name, bytes):
        if name.isascii():
            text = name.decode("ascii")
            return text if text.isprintable() else visible(text)
        text = name.decode("utf-8", "backslashreplace")
    elif name.isascii():  # the usual name: no round trip through bytes
        return name if name.isprintable() else visible(name)
    else:
        text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return visible(text)


def shown_names(names: Iterable[str | bytes]) -> list[str]:
    """``display`` of each name of one listing (a folder's children, a table's column),
    but names that would print like another name of the listing are spelled
    (``safetext.spelled``) so that they differ on screen: ``café`` saved once in NFC and once
    in NFD, a name with a zero-width joiner or a soft hyphen, ``a\\x01`` typed with a
    backslash against a name holding byte 0x01.  Of such look-alikes, the one in plain form
    (NFKC, no invisible character, nothing escaped, no backslash) stays as it is; every
    other name of the listing, Korean in NFD from macOS included, stays readable."""
    names = list(names)
    plain = _plain_listing(names)
    if plain is not None:
        return plain  # each displays as itself, and none looks like another
    apart = spelled_apart(names)
    return [apart.get(i) or display(name) for i, name in enumerate(names)]


def _plain_listing(names: list[str | bytes]) -> list[str] | None:
    """``names`` when each is text in printable ASCII without a backslash, and none starts
    or ends with a blank: ``display`` leaves each as it is and ``spelled_apart`` finds
    nothing to spell, so a listing of half a million names (a plan's) is shown without a
    call each.  None otherwise."""
    try:
        joined = "/".join(names)  # type: ignore[arg-type]  # a bytes name: TypeError
    except TypeError:
        return None
    return names if _plain_joined(joined) else None  # type: ignore[return-value]  # text only


def _plain_joined(joined: str) -> bool:
    """Whether names joined by ``/`` are printable ASCII without a backslash and none has
    a blank at an end: each displays as itself, and no two look alike."""
    return (
        joined.isascii()
        and joined.isprintable()
        and "\\" not in joined
        and " /" not in joined
        and "/ " not in joined
        and joined.strip(" ") == joined
    )


def spelled_apart(names: Sequence[str | bytes]) -> dict[int, str]:
    """``shown_names`` of the names that need spelling only, by their place in ``names``
    (usually none: one pass, and no normalisation of a plain ASCII name)."""
    raw = [unkey(name) if isinstance(name, bytes) else name for name in names]
    if _plain_joined("/".join(raw)):
        return {}
    alike: list[str] = []
    first: dict[str, str] = {}
    clashes: set[str] = set()
    for name in raw:
        plain = name.isascii() and name.isprintable() and "\\" not in name
        look = name.strip() if plain else look_alike(display(name))
        alike.append(look)
        if first.setdefault(look, name) != name:
            clashes.add(look)
    if not clashes:
        return {}
    apart = {
        i: spelled(name)
        for i, (name, look) in enumerate(zip(raw, alike, strict=True))
        if look in clashes and not (name == look and "\\" not in name and display(name) == name)
    }
    # A spelling is printable ASCII: a name that holds a backslash (``cafe\\u0301`` typed
    # out) can read like it, and is spelled too (its backslash doubled), until none does.
    while True:
        taken = set(apart.values())
        more = {
            i: spelled(name)
            for i, name in enumerate(raw)
            if i not in apart and "\\" in name and display(name) in taken
        }
        if not more:
            return apart
        apart.update(more)


def json_path(name: str | bytes) -> tuple[str, str | None]:
    """``(path, path_b64)`` for ``--json`` output: what a script can use.

    ``path`` is the real path when its bytes are valid UTF-8 (control characters included:
    the JSON writer escapes them as ``\\uXXXX``), and ``path_b64`` is None.  Otherwise
    ``path`` is the printable form of ``display`` and ``path_b64`` the raw bytes, base64.
    """
    raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        import base64

        return display(raw), base64.b64encode(raw).decode("ascii")


def json_text(name: str | bytes) -> str:
    """The ``path`` half of ``json_path``: a path field without its raw twin."""
    return json_path(name)[0]
