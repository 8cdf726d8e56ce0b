"""Checklists: what a finished run must leave behind (an environment, a config, metrics, a model).

Each item is a ``|``-alternation of globs matched against the run's files in the index,
relative to the run's folder.  A glob without ``/`` matches a file name at any depth
(``requirements.txt`` finds ``files/requirements.txt``); a glob with ``/`` matches the whole
relative path (``**`` crosses folders; ``.`` and empty segments dropped, ``..`` refused); a
glob ending in ``/`` asks for any file below a folder.  ``@params`` and ``@metrics`` are met
when the framework's reader found params or metrics (MLflow's SQLite backend keeps them in
``mlflow.db``, not in the run's folder).

Rules come from ``[checklist]`` in the root's ``.artlens.toml``, else in the user config
(``platformdirs.user_config_dir('artlens')/config.toml``), else each framework's defaults
(the ``checklist`` of its registry entry).  A config may name any registered framework::

    [checklist]
    required = ["requirements.txt|conda.yaml|environment.yml", "*.yaml|config.json"]

    [checklist.framework.lightning]
    required = ["hparams.yaml", "checkpoints/*.ckpt"]

A framework's own list wins over ``required``, which wins over the built-in defaults.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import platformdirs
import sqlite_utils

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from store import paths
from store.errors import ArtlensError
from store.frameworks import generic, registry
from store.index.query import RunRow, UnreadableIndex, UnreadableRow, unreadable_places
from store.retention.globs import GlobSet, compile_globs
from store.safefile import NotRegularFileError, absent, read_capped, users_own
from store.safeparse import NestingError, load_toml

CONFIG_FILE = ".artlens.toml"
MAX_CONFIG_BYTES = 1 << 20
MAX_FILES = 200_000
"""Files of one run looked at; in a run with more, an item none of them meets is unknown
(it may be among the rest), never missing."""
MAX_LINKS = 1_000
"""Links met below links to folders of the root, looked at for one run; what the rest lead
to is unknown."""

ENV = generic.ENV


class _Defaults(Mapping[str, tuple[str, ...]]):
    """Built-in items per framework: each registered framework's ``checklist``."""

    def __getitem__(self, name: str) -> tuple[str, ...]:
        entry = registry.get(name)
        if entry is None:
            raise KeyError(name)
        return entry.checklist

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.entries())


DEFAULTS: Mapping[str, tuple[str, ...]] = _Defaults()
"""Built-in items per framework: what each library writes for a complete run."""

_TOP_KEYS = frozenset({"required", "framework"})
_FRAMEWORK_KEYS = frozenset({"required"})
_PSEUDO = frozenset({"@params", "@metrics"})


class ChecklistError(ArtlensError):
    """A checklist config that cannot be used; one line naming the file and the line."""


@dataclass(frozen=True)
class Checklist:
    """The checklist rules for one root."""

    required: tuple[str, ...] | None = None
    """Items for every framework without its own list; None = the built-in defaults."""
    frameworks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "defaults"

    def items_for(self, framework: str) -> tuple[str, ...]:
        if framework in self.frameworks:
            return self.frameworks[framework]
        if self.required is not None:
            return self.required
        return DEFAULTS.get(framework, DEFAULTS["generic"])


@dataclass(frozen=True)
class ChecklistResult:
    """How many items a run meets, and the ones it misses (as written in the rules)."""

    passed: int
    total: int
    missing: list[str]
    unknown: tuple[tuple[str, str], ...] = ()
    """(item, why) of items not found that may lie where the last scan could not read:
    neither met nor missing."""

    @property
    def complete(self) -> bool:
        return self.passed == self.total

    def label(self) -> str:
        """``4/5`` for the runs table (``3/5?`` when some are unknown); ``-`` when there is
        nothing to check."""
        if not self.total:
            return "-"
        return f"{self.passed}/{self.total}{'?' if self.unknown else ''}"

    def short_items(self) -> list[str]:
        """The items not met: the missing ones, then the unknown ones with why."""
        return [*self.missing, *(f"{item} (unknown: {why})" for item, why in self.unknown)]


# -- loading -------------------------------------------------------------------------------


def _read_capped(path: Path) -> str:
    try:
        data, cut = read_capped(path, MAX_CONFIG_BYTES)
    except NotRegularFileError:
        raise OSError(0, "not a regular file") from None
    if cut:
        raise OSError(0, f"larger than {MAX_CONFIG_BYTES} bytes")
    return data.decode("utf-8")


def _line_of(text: str, key: str, table: str) -> int | None:
    """The line that sets ``key`` inside ``[table]``, or the table header; None if unseen."""
    header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
    current = ""
    header_line = None
    for number, line in enumerate(text.splitlines(), 1):
        match = header.match(line)
        if match:
            current = re.sub(r"[\s\"']", "", match.group(1))
            if current == (f"{table}.{key}" if table else key):
                return number
            if current == table:
                header_line = number
            continue
        if current == table and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[=.]", line):
            return number
        if not table and current == "" and re.match(rf"^\s*{re.escape(key)}\s*[=.]", line):
            return number
    return header_line


def parse_checklist(text: str, source: str, *, root_file: bool = False) -> Checklist | None:
    """The ``[checklist]`` table of a TOML text; None when it has none.  ``root_file``: a
    root's ``.artlens.toml``, whose top-level keys are known (``ROOT_FILE_KEYS``): a
    ``[checklst]`` typo would otherwise mean the defaults without a word."""
    try:
        data = load_toml(text)
    except NestingError as exc:
        raise ChecklistError(f"{source}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        message = " ".join(str(exc).split())
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        end = re.search(r"\s*\(at end of document\)$", message)
        if where:
            message = f"{where.group(1)}: {message[: where.start()]} (column {where.group(2)})"
        elif end:
            last = max(1, len(text.rstrip("\n").splitlines()) + 1)
            message = f"{last}: {message[: end.start()]} (at end of file)"
        else:
            message = f" {message}"
        raise ChecklistError(f"{source}:{message}") from None

    def fail(key: str, where: str, message: str) -> ChecklistError:
        line = _line_of(text, key, where)
        return ChecklistError(f"{source}:{line if line is not None else '?'}: {message}")

    if root_file:
        from store.retention.policy import ROOT_FILE_KEYS

        for name in data:
            if name not in ROOT_FILE_KEYS:
                shown = repr(name[:80]) + ("..." if len(name) > 80 else "")
                known = ", ".join(sorted(ROOT_FILE_KEYS))
                raise fail(name, "", f"unknown key {shown} at the top of the file (known: {known})")
    table = data.get("checklist")
    if table is None:
        return None

    if not isinstance(table, dict):
        raise fail("checklist", "", "checklist must be a table: [checklist]")
    for name in table:
        if name not in _TOP_KEYS:
            raise fail(
                name,
                "checklist",
                f"unknown key {name!r} in [checklist] (known: framework, required)",
            )
    required = None
    if "required" in table:
        required = _items(table["required"], partial(fail, "required", "checklist"))
    frameworks: dict[str, tuple[str, ...]] = {}
    per = table.get("framework", {})
    if not isinstance(per, dict):
        raise fail("framework", "checklist", "[checklist.framework] must be a table")
    for name, section in per.items():
        table_name = f"checklist.framework.{name}"
        if name not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise fail(name, "checklist.framework", f"unknown framework {name!r} (known: {known})")
        if isinstance(section, list):
            frameworks[name] = _items(section, partial(fail, name, "checklist.framework"))
            continue
        if not isinstance(section, dict):
            raise fail(name, "checklist.framework", f"[{table_name}] must be a table or a list")
        for key in section:
            if key not in _FRAMEWORK_KEYS:
                raise fail(
                    key, table_name, f"unknown key {key!r} in [{table_name}] (known: required)"
                )
        if "required" in section:
            frameworks[name] = _items(section["required"], partial(fail, "required", table_name))
    return Checklist(required, frameworks, source)


def _items(value: Any, fail: Callable[[str], ChecklistError]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail('required must be a list of strings like "requirements.txt|conda.yaml"')
    items = []
    for item in value:
        alternatives = [a.strip() for a in item.split("|")]
        if not item.strip() or any(not a for a in alternatives):
            raise fail(f"empty alternative in checklist item {item!r}")
        bad = [a for a in alternatives if a.startswith("@") and a not in _PSEUDO]
        if bad:
            raise fail(f"unknown item {bad[0]!r} (known: @metrics, @params)")
        for alternative in alternatives:
            if alternative in _PSEUDO:
                continue
            if ".." in alternative.split("/"):
                raise fail(f"{alternative!r} in checklist item {item!r} leaves the run's folder")
            if not _shape(alternative)[1]:
                raise fail(f"{alternative!r} in checklist item {item!r} names no file")
        items.append("|".join(alternatives))
    return tuple(items)


def load_file(path: Path, *, root_file: bool = False) -> Checklist | None:
    """The checklist in one TOML file; None when it has no ``[checklist]`` table."""
    try:
        text = _read_capped(path)
    except UnicodeDecodeError as exc:
        raise ChecklistError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ChecklistError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_checklist(text, str(path), root_file=root_file)


def _load_from_bucket(url: str) -> Checklist | None:
    """The ``[checklist]`` of ``URL/.artlens.toml`` in one ranged GET; None when absent."""
    from store.root.base import NotFound, RootError
    from store.root.shared import shared_root

    source = f"{url.rstrip('/')}/{CONFIG_FILE}"
    try:
        data, cut = shared_root(url).read_capped(CONFIG_FILE, MAX_CONFIG_BYTES)
    except NotFound:
        return None
    except (RootError, OSError) as exc:
        raise ChecklistError(
            f"{source}: cannot read ({' '.join(str(exc).split())[:200]})"
        ) from None
    if cut:
        raise ChecklistError(f"{source}: cannot read (larger than {MAX_CONFIG_BYTES} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChecklistError(f"{source}: not UTF-8 text ({exc.reason})") from None
    return parse_checklist(text, source, root_file=True)


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir("artlens")) / "config.toml"


def load_checklist(root: Path | str | bytes, *, user_config: Path | None = None) -> Checklist:
    """The rules for ``root``: its ``.artlens.toml``, else the user config, else defaults."""
    from store.root import is_url

    text = os.fsdecode(root)
    local: tuple[Path, ...] = (Path(text) / CONFIG_FILE,)
    if is_url(text):  # a bucket's config is read through its root, never as a local path
        found = _load_from_bucket(text)
        if found is not None:
            return found
        local = ()
    for path in (*local, Path(users_own(user_config or user_config_path()))):
        if not absent(path):  # a FIFO or a link there is an error, not the defaults
            found = load_file(path, root_file=path in local)
            if found is not None:
                return found
    return Checklist()


# -- matching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    text: str
    name_globs: GlobSet | None
    path_globs: GlobSet | None
    pseudo: frozenset[str]


def _shape(alternative: str) -> tuple[str, str]:
    """What one alternative asks for, and its glob: ``("pseudo", "@params")``, a file name at
    any depth (``("name", "*.yaml")``), a path from the run's folder (``("path",
    "checkpoints/*.ckpt")``) or any file below a folder (``("below", "plots/metrics")``).
    A path's ``.`` and empty segments are dropped, as the paths it is matched against have
    none: ``./requirements.txt`` is ``requirements.txt`` at the top of the run's folder,
    ``files//config.yaml`` is ``files/config.yaml`` (the glob is "" when nothing is left)."""
    alternative = alternative.strip()
    if alternative in _PSEUDO:
        return "pseudo", alternative
    if "/" not in alternative:
        return "name", "" if alternative == "." else alternative
    glob = "/".join(part for part in alternative.split("/") if part not in ("", "."))
    return ("below" if alternative.endswith("/") else "path"), glob


@lru_cache(maxsize=512)
def _compile(item: str) -> _Item:
    """One checklist item as glob sets (bounded, whatever the globs: a config anyone can
    write must not hang ``check``); cached: ``check`` asks the same few for every run."""
    names, full, pseudo = [], [], set()
    for alternative in item.split("|"):
        kind, glob = _shape(alternative)
        if kind == "pseudo":
            pseudo.add(glob)
        elif not glob:
            continue  # names no file (refused in a config): met by none
        elif kind == "below":
            # any file below the folder ("/**" after a folder glob: one folder or more)
            full.append(glob + "/**")
        elif kind == "path":
            full.append(glob)
        else:
            names.append(glob)
    return _Item(item, compile_globs(names), compile_globs(full), frozenset(pseudo))


def evaluate_files(
    relpaths: Iterable[str],
    items: Iterable[str],
    *,
    has_params: bool = False,
    has_metrics: bool = False,
    unread: Iterable[Unread] = (),
    files_left: int = 0,
    parts_unread: Iterable[str] = (),
    corrupt: Mapping[str, str] | None = None,
) -> ChecklistResult:
    """Which ``items`` the files (paths relative to the run folder) meet.  An item not met
    that could lie in one of the places ``unread`` could not be read is unknown, not
    missing; so is every item not met when ``files_left`` files were not looked at, and an
    ``@params`` (``@metrics``) not met when ``parts_unread`` holds ``params``
    (``metrics``): the reader found none in what it could read, and the rest may hold
    them.  ``corrupt`` (relative path -> why) are files the index found cut off or
    unparsable (a checkpoint cut off mid-write): they meet no item, and an item only they
    match is unknown with the reason, neither met nor missing."""
    compiled = [_compile(item) for item in items]
    met = [False] * len(compiled)
    for index, item in enumerate(compiled):
        if ("@params" in item.pseudo and has_params) or ("@metrics" in item.pseudo and has_metrics):
            met[index] = True
    for rel in relpaths:
        for index, item in enumerate(compiled):
            if not met[index] and _matches(item, rel):
                met[index] = True
        if all(met):
            break
    short = [item.text for item, ok in zip(compiled, met, strict=True) if not ok]
    places = list(unread)
    unknown: list[tuple[str, str]] = []
    for text in short:
        if files_left:
            unknown.append((text, f"the run holds more files than the {MAX_FILES:,} looked at"))
            continue
        hiding = [p for p in places if any(_could_hide(a, p) for a in text.split("|"))]
        if hiding:
            more = f" (+{len(hiding) - 1} more)" if len(hiding) > 1 else ""
            unknown.append((text, hiding[0].why + more))
            continue
        item = _compile(text)
        broken = [(rel, why) for rel, why in (corrupt or {}).items() if _matches(item, rel)]
        if broken:
            more = f" (+{len(broken) - 1} more)" if len(broken) > 1 else ""
            rel, why = min(broken)
            unknown.append((text, f"{paths.display(rel)} is corrupt ({why}){more}"))
    partial = {f"@{part}" for part in parts_unread}
    for text in short:
        if any(text == t for t, _ in unknown):
            continue
        read_in_part = [a for a in text.split("|") if a.strip() in partial]
        if read_in_part:
            part = read_in_part[0].strip()[1:]
            unknown.append((text, f"its {part} could not be read whole (its warnings say why)"))
    unsure = {text for text, _ in unknown}
    missing = [text for text in short if text not in unsure]
    passed = len(compiled) - len(short)
    return ChecklistResult(passed, len(compiled), missing, tuple(unknown))


def _matches(item: _Item, rel: str) -> bool:
    """Whether the file at ``rel`` (relative to the run's folder) meets ``item``."""
    if item.name_globs is not None and item.name_globs.matches(rel.rsplit("/", 1)[-1]):
        return True
    return item.path_globs is not None and item.path_globs.matches(rel)


@dataclass(frozen=True)
class Unread:
    """A place in a run that the last scan could not read, for ``evaluate_files``."""

    rel: str
    """Relative to the run's folder ('' when the whole folder was not read)."""
    entry: bool
    """True for an entry that could not be examined (it may be a file itself), False for a
    folder that could not be listed."""
    why: str
    """``folder out could not be read (permission denied)``."""
    loop: bool = False
    """A link that resolves nowhere (a loop, or too many links in a row): it may be meant as
    the file an item names, or as the folder a path names, but no folder lies behind it
    that a name at any depth could be in."""


def _could_hide(alternative: str, place: Unread) -> bool:
    """True when a file that ``alternative`` matches could lie at ``place`` or below it."""
    kind, glob = _shape(alternative)
    if kind == "pseudo" or not glob:
        return False
    if place.loop and place.rel:
        return _loop_hides(kind, glob, place.rel)
    if not place.rel or kind == "name":  # a name at any depth: any folder may hold it
        return True
    below = kind == "below"
    segments = glob.split("/")
    parts = place.rel.split("/")
    for index, segment in enumerate(segments):
        if "**" in segment or index == len(parts):
            return True  # the glob reaches below the place
        if not _segment_matches(segment, parts[index]):
            return False
    # every segment matched the place or a folder above it
    return below or (len(segments) == len(parts) and place.entry)


def _loop_hides(kind: str, glob: str, rel: str) -> bool:
    """Whether a link loop at ``rel`` may be what a ``kind`` glob asks for: the file itself
    (its name, or its whole path), a file below the folder a ``below`` glob names, or the
    folder a path glob names on the way to its file, segment by segment (a ``**`` before
    the loop is reached is a name at any depth, not a path through the loop)."""
    parts = rel.split("/")
    if kind == "name":
        return _segment_matches(glob, parts[-1])
    whole = _segment_globs(glob)
    if kind == "path" and whole is not None and whole.matches(rel):
        return True
    segments = glob.split("/")
    for index, part in enumerate(parts):
        if index == len(segments):
            return kind == "below"  # the loop lies inside the folder the glob asks for
        segment = segments[index]
        if "**" in segment or not _segment_matches(segment, part):
            return False
    return len(segments) > len(parts) or kind == "below"


@lru_cache(maxsize=512)
def _segment_globs(segment: str) -> GlobSet | None:
    return compile_globs([segment])


def _segment_matches(segment: str, name: str) -> bool:
    """Whether one folder name matches one segment of a glob (no ``/`` in either)."""
    globs = _segment_globs(segment)
    return globs.matches(name) if globs is not None else name == segment


def _bases(run: RunRow) -> list[bytes]:
    """The run's folder, then the extra folders it owns."""
    extra = run.meta.get("extra_paths")
    return [run.path] + [
        paths.key(str(p)) for p in (extra if isinstance(extra, list) else []) if isinstance(p, str)
    ]


def run_files(db: sqlite_utils.Database, run: RunRow, *, limit: int = MAX_FILES) -> list[str]:
    """The run's files relative to its folder (or to an extra folder it owns): ``limit``
    of them, and one more when it holds more (a caller can tell it was cut)."""
    return _run_entries(db, run, limit)[0]


def _run_entries(
    db: sqlite_utils.Database, run: RunRow, limit: int
) -> tuple[list[str], dict[str, tuple[bytes, str]], dict[str, str]]:
    """``run_files``, the symlinks among them (relative path -> path in the root and its
    printable target), and the files the index judged corrupt (relative path -> its reason,
    printable)."""
    bases = _bases(run)
    out = []
    links: dict[str, tuple[bytes, str]] = {}
    corrupt: dict[str, str] = {}
    for blob, ftype, verdict, reason, target in db.conn.execute(
        "SELECT path, ftype, verdict, verdict_reason, link_target FROM artifacts"
        " WHERE run_id = ? LIMIT ?",
        [run.id, limit + 1],
    ):
        key = bytes(blob)
        rel = key
        for base in bases:
            if not base:
                break
            if key.startswith(base + b"/"):
                rel = key[len(base) + 1 :]
                break
            if key == base:  # the run is a single file (a Comet archive)
                rel = paths.name_of(key)
                break
        out.append(paths.unkey(rel))
        if ftype == "symlink":
            links[out[-1]] = (key, _printable(target))
        elif verdict == "corrupt":
            corrupt[out[-1]] = _printable(reason or "corrupt")
    return out, links, corrupt


def _printable(text: object) -> str:
    return " ".join(paths.display(str(text or "")).split())[:200]


def _look_at_link(root: bytes, root_real: bytes, key: bytes) -> tuple[str, bytes, str]:
    """What the link at ``key`` leads to, resolved by the kernel's rules but never listed or
    read: ``("file", ...)`` (a regular file, in the root or out of it), ``("none", ...)``
    (nothing, or no file nor folder: a FIFO, a device), ``("folder", target)`` (a folder of
    the root, by its key), ``("outside", ...)`` (a folder out of the root), ``("loop",
    ..., why)`` or ``("unsure", ..., why)`` (its target cannot be looked at)."""
    try:
        real = os.path.realpath(root + b"/" + key)
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        return "none", b"", ""
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        return ("loop" if exc.errno == errno.ELOOP else "unsure"), b"", why
    if stat.S_ISREG(st.st_mode):
        return "file", b"", ""
    if not stat.S_ISDIR(st.st_mode):
        return "none", b"", ""
    if real == root_real:
        return "folder", b"", ""
    inside = root_real.rstrip(b"/") + b"/"
    if real.startswith(inside):
        return "folder", real[len(inside) :], ""
    return "outside", b"", ""


@dataclass
class _Reached:
    """What a run's links lead to, for ``evaluate_files``."""

    not_files: set[str] = field(default_factory=set)
    """The run's own links that are no file: leading nowhere, to a folder, or unresolvable."""
    files: list[str] = field(default_factory=list)
    """Files below the run's links to folders of the root, relative to the run's folder."""
    corrupt: dict[str, str] = field(default_factory=dict)
    unread: list[Unread] = field(default_factory=list)


def _follow_links(
    db: sqlite_utils.Database,
    run: RunRow,
    links: dict[str, tuple[bytes, str]],
    places: UnreadableIndex,
    budget: int,
) -> _Reached:
    """Where the run's links lead.  A link to a file meets an item as the file (one leading
    nowhere, or to no regular file, meets none).  A link to a folder out of the root is
    never followed: an item that could lie below it is unknown.  A link to a folder of the
    root reads the index's files of that folder as if they lay below the link (links among
    them likewise, up to ``MAX_LINKS``, the files up to ``budget``): the run holds what a
    program opening ``run/checkpoints/x.ckpt`` gets.  A link to a folder the walk is already
    in (the run's folder, one above it, or the folder a link led to) is a cycle: it adds
    nothing.  A link that resolves nowhere (a loop) is unknown only for the items that name
    it or a path through it.  A bucket root has no links; a remote root is looked at on its
    host."""
    out = _Reached()
    root = run.root
    if not links or paths.display(root).startswith(("s3://", "gs://", "az://")):
        return out
    root_real = os.path.realpath(root)
    bases = tuple(_bases(run))
    pending = [(rel, key, shown, True, bases) for rel, (key, shown) in links.items()]
    pending.reverse()
    followed = 0
    while pending:
        rel, key, shown, own, chain = pending.pop()
        if not own:
            followed += 1
            if followed > MAX_LINKS:
                why = f"behind link {paths.display(rel)}: past the {MAX_LINKS:,} links looked at"
                out.unread.append(Unread(rel, True, why))
                continue
        kind, target, why = _look_at_link(root, root_real, key)
        if kind == "file":
            if not own:
                out.files.append(rel)
            continue
        if own:
            out.not_files.add(rel)
        shown_rel = paths.display(rel)
        if kind == "loop":
            why = f"link {shown_rel}: its target cannot be looked at ({why})"
            out.unread.append(Unread(rel, True, why, loop=True))
        elif kind == "unsure":
            why = f"link {shown_rel}: its target cannot be looked at ({why})"
            out.unread.append(Unread(rel, True, why))
        elif kind == "outside":
            why = f"behind a link out of the root: {shown_rel} -> {shown}"
            out.unread.append(Unread(rel, False, why))
        elif kind == "folder" and not any(paths.under(folder, target) for folder in chain):
            budget = _read_linked(db, run, rel, target, places, budget, out, pending, chain)
    return out


def _read_linked(
    db: sqlite_utils.Database,
    run: RunRow,
    rel: str,
    target: bytes,
    places: UnreadableIndex,
    budget: int,
    out: _Reached,
    pending: list[tuple[str, bytes, str, bool, tuple[bytes, ...]]],
    chain: tuple[bytes, ...],
) -> int:
    """Add the index's files below ``target`` (a folder of the root) to ``out`` as lying
    below the link ``rel``, and the links among them to ``pending``; the budget left."""
    shown_rel = paths.display(rel)
    found = db.conn.execute(
        "SELECT 1 FROM dirs WHERE root_id = ? AND path = ?", [run.root_id, target]
    ).fetchone()
    hidden = places.touching([target])
    for place in hidden:
        why = f"{place.sentence()}, behind link {shown_rel}"
        if paths.under(target, place.path):  # the folder itself, or one above it
            out.unread.append(Unread(rel, False, why))
        else:
            below = paths.unkey(place.path[len(target) + 1 :])
            out.unread.append(Unread(f"{rel}/{below}", place.kind != "folder", why))
    if found is None:
        if not any(paths.under(target, p.path) for p in hidden):
            why = f"behind link {shown_rel}: the index holds no listing of the folder it leads to"
            out.unread.append(Unread(rel, False, why))
        return budget
    lo, hi = paths.prefix_range(target)
    rows = db.conn.execute(
        "SELECT path, ftype, verdict, verdict_reason, link_target FROM artifacts"
        " WHERE root_id = ? AND path >= ? AND path < ? LIMIT ?",
        [run.root_id, lo, hi, budget + 1],
    ).fetchall()
    if len(rows) > budget:
        why = f"behind link {shown_rel}: past the {MAX_FILES:,} files looked at"
        out.unread.append(Unread(rel, False, why))
        return 0
    for blob, ftype, verdict, reason, link_target in rows:
        key = bytes(blob)
        below = f"{rel}/{paths.unkey(key[len(target) + 1 :])}"
        if ftype == "symlink":
            pending.append((below, key, _printable(link_target), False, (*chain, target)))
        elif verdict == "corrupt":
            out.corrupt[below] = _printable(reason or "corrupt")
        else:
            out.files.append(below)
    return budget - len(rows)


def evaluate(
    db: sqlite_utils.Database,
    run: RunRow,
    checklist: Checklist | None = None,
    places: list[UnreadableRow] | UnreadableIndex | None = None,
) -> ChecklistResult:
    """How complete ``run`` is against the rules of its root (loaded when not given).
    ``places``: what the root's scans could not read (read from the index when not given)."""
    rules = checklist if checklist is not None else load_checklist(run.root)
    if places is None:
        places = (unreadable_places(db.conn, run.root_id) or {}).get(run.root_id, [])
    index = places if isinstance(places, UnreadableIndex) else UnreadableIndex(places)
    files, links, corrupt = _run_entries(db, run, MAX_FILES)
    reached = _follow_links(db, run, links, index, max(0, MAX_FILES - len(files)))
    own = [f for f in files[:MAX_FILES] if f not in reached.not_files and f not in corrupt]
    return evaluate_files(
        own + reached.files,
        rules.items_for(run.framework),
        has_params=bool(run.params),
        has_metrics=bool(run.metrics),
        unread=[*run_unread(run, index), *reached.unread],
        files_left=max(0, len(files) - MAX_FILES),
        parts_unread=run.unread_parts,
        corrupt={**corrupt, **reached.corrupt},
    )


def run_unread(run: RunRow, places: list[UnreadableRow] | UnreadableIndex) -> list[Unread]:
    """The places of a root that could hide files of ``run``, relative to its folders."""
    bases = _bases(run)
    found = []
    index = places if isinstance(places, UnreadableIndex) else UnreadableIndex(places)
    for place in index.touching(bases):
        rel = ""
        for base in bases:
            if place.path != base and paths.under(place.path, base):
                rel = paths.unkey(place.path[len(base) + 1 :] if base else place.path)
                break
        found.append(Unread(rel, place.kind != "folder", place.sentence(run.path)))
    return found


def evaluate_runs(
    db: sqlite_utils.Database,
    runs: Iterable[RunRow],
    *,
    user_config: Path | None = None,
    strict: bool = True,
) -> tuple[dict[int, ChecklistResult], list[str]]:
    """Results by run id, and the config errors met (raised instead when ``strict``).

    Each root's rules are loaded once; a root whose config is invalid falls back to the
    defaults when not ``strict``.
    """
    rules: dict[bytes, Checklist] = {}
    errors: list[str] = []
    results: dict[int, ChecklistResult] = {}
    unread = {rid: UnreadableIndex(p) for rid, p in (unreadable_places(db.conn) or {}).items()}
    for run in runs:
        checklist = rules.get(run.root)
        if checklist is None:
            try:
                checklist = load_checklist(run.root, user_config=user_config)
            except ChecklistError as exc:
                if strict:
                    raise
                errors.append(str(exc))
                checklist = Checklist()
            rules[run.root] = checklist
        results[run.id] = evaluate(db, run, checklist, unread.get(run.root_id) or [])
    return results, errors


def unchecked_places(
    runs: Iterable[RunRow], places: Mapping[int, list[UnreadableRow]]
) -> dict[int, list[UnreadableRow]]:
    """root id -> the places its last scan could not read that lie in no run's folder (the
    root itself, a folder above the runs or beside them): runs may lie in them, whose
    checklists nobody has seen, so "every run passes" cannot be said.  A place inside a
    run is that run's (its items it may hide are unknown, ``run_unread``)."""
    bases: dict[int, set[bytes]] = {}
    for run in runs:
        bases.setdefault(run.root_id, set()).update(_bases(run))
    found: dict[int, list[UnreadableRow]] = {}
    for root_id, rows in places.items():
        owned = bases.get(root_id, set())
        for place in rows:
            up = place.path
            while up and up not in owned:
                up = paths.parent_key(up)
            if not up and b"" not in owned:  # no run's folder holds it
                found.setdefault(root_id, []).append(place)
    return found
