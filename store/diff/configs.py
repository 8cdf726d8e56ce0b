"""Config files of a run compared by value: YAML, JSON, TOML, INI-style ``.cfg`` files,
command-line argument files (``*.args``, ``args.txt``) and Python configs (``config.py``,
MMEngine's dumped ``<cfg>.py``: literal assignments only, never executed).

A run diff uses this for every config file whose bytes changed between two runs, so a
change is shown key by key even when the framework reader took the run's params from
somewhere else.  Parsing is bounded and never runs code (YAML through ``store.yamlsafe``).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from store.diff._io import DiffError, read_capped
from store.diff.structured import (
    Change,
    Parsed,
    StructuredDiff,
    decode_config,
    diff_structured_whole,
    lines_note,
    parse_structured_repeats,
    settle_repeats,
    structured_format,
)
from store.safeparse import Repeat, repeats_of

MAX_CONFIG_BYTES = 4 << 20
"""A config file bigger than this is not parsed (it is reported as too large)."""
MAX_LINES = 100_000
"""Lines of an INI file (arguments of an argument file) compared by value; past this the
file is not compared by value (an error), never compared on its first lines alone."""
_ARGS_NAMES = frozenset({"args.txt", "cmd.txt", "command.txt", "cmdline.txt"})
_INI_SUFFIXES = frozenset({".cfg", ".ini", ".conf"})
_SECTION = re.compile(r"^\[([^\]]*)\]\s*$")


@dataclass
class ConfigDiff:
    """What changed inside one config file that both runs hold."""

    path: str
    """Relative to each run folder."""
    format: str
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    """Why the two versions could not be compared value by value."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Keys a version repeats (loaders disagree on which value counts), by file and path."""
    more: int = 0
    """Changes found past those listed in ``changes``: counted, not listed."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def config_format(path: str, python_configs: frozenset[str] = frozenset()) -> str | None:
    """``json``, ``yaml``, ``toml``, ``ini``, ``args`` or ``py`` from the file name (``py``
    for ``config.py`` and the paths in ``python_configs``), else None."""
    fmt = structured_format(path)
    if fmt is not None:
        return fmt
    name = os.path.basename(path).lower()
    if name == "config.py" or path in python_configs:
        return "py"
    if name.endswith(".args") or name in _ARGS_NAMES:
        return "args"
    if os.path.splitext(name)[1] in _INI_SUFFIXES:
        return "ini"
    return None


_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _value(text: str) -> object:
    """A flag's or INI value's text as the number or boolean it spells; a number spelled
    otherwise (``007``, ``1_000``, ``01.5``, ``nan``) stays text: the program gets the
    string, and ``007`` against ``7`` is a change to it."""
    stripped = text.strip()
    lower = stripped.lower()
    if lower in ("true", "false"):
        return lower == "true"
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped):
        number = float(stripped)
        return number if abs(number) != float("inf") else stripped
    return stripped


def parse_args(text: str, repeats: list[Repeat] | None = None) -> dict[str, object]:
    """``--lr 0.1 --amp --name=x pos`` as ``{"lr": 0.1, "amp": True, "name": "x",
    "_positional": ["pos"]}``; one argument per line works the same.  A flag given twice
    keeps its last value (argparse's ``store``), and is added to ``repeats`` (``append``
    would keep both)."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        tokens = text.split()
    pairs: list[tuple[str, object]] = []
    positional: list[object] = []
    if len(tokens) > MAX_LINES:
        raise DiffError(f"more than {MAX_LINES} arguments, not compared by value")
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.startswith("-") and len(token) > 1 and not _is_number(token):
            key = token.lstrip("-")
            if "=" in key:
                key, _, raw = key.partition("=")
                pairs.append((key, _value(raw)))
            elif index < len(tokens) and not (
                tokens[index].startswith("-") and not _is_number(tokens[index])
            ):
                pairs.append((key, _value(tokens[index])))
                index += 1
            else:
                pairs.append((key, True))
        else:
            positional.append(_value(token))
    out: dict[str, object] = dict(pairs)
    if repeats is not None and len(out) != len(pairs):
        repeats += repeats_of((), pairs)
    if positional:
        out["_positional"] = positional
    return out


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_ini(text: str, repeats: list[Repeat] | None = None) -> dict[str, object]:
    """``[section]`` headers and ``key = value`` / ``key: value`` lines.  A repeated section
    (Darknet's ``[convolutional]``) gets ``#2``, ``#3``... so every block is compared.  A
    key a section repeats keeps its last value and is added to ``repeats``: configparser
    refuses such a file, Darknet reads the first.  A line indented deeper than the key
    line before it continues that key's value, as configparser (setup.cfg, tox.ini) reads
    it: ``install_requires =`` then ``    numpy`` is one value, ``"\nnumpy"``."""
    out: dict[str, object] = {}
    current: dict[str, object] = out
    sections: list[tuple[tuple[object, ...], list[tuple[str, object]]]] = [((), [])]
    key_indent = -1
    """Indentation of the key line a deeper line continues; -1 when none may."""
    value_lines: list[str] = []
    blanks = 0

    def finish() -> None:
        """The key before: its value with the lines that continued it, one text."""
        if len(value_lines) > 1:
            name = sections[-1][1][-1][0]
            joined = "\n".join(value_lines)
            current[name] = joined
            sections[-1][1][-1] = (name, joined)
        value_lines.clear()

    for number, line in enumerate(text.splitlines()):
        if number >= MAX_LINES:
            raise DiffError(f"more than {MAX_LINES} lines, not compared by value")
        stripped = line.strip()
        if not stripped:
            blanks += 1
            continue
        if stripped.startswith(("#", ";")):
            continue
        indent = len(line) - len(line.lstrip())
        if key_indent >= 0 and indent > key_indent:
            value_lines.extend([""] * blanks)
            value_lines.append(stripped)
            blanks = 0
            continue
        finish()
        blanks = 0
        key_indent = -1
        header = _SECTION.match(stripped)
        if header:
            name = header.group(1).strip()
            key, count = name, 1
            while key in out:  # a name a section, a key or an earlier #N already took
                count += 1
                key = f"{name}#{count}"
            current = {}
            out[key] = current
            sections.append(((key,), []))
            continue
        cut = min((i for i in (stripped.find("="), stripped.find(":")) if i > 0), default=-1)
        value: object = True
        name = stripped
        if cut >= 0:
            raw = stripped[cut + 1 :].strip()
            name, value = stripped[:cut].strip(), _value(raw)
            key_indent = indent
            value_lines.append(raw)
        current[name] = value
        sections[-1][1].append((name, value))
    finish()
    if repeats is not None:
        for path, pairs in sections:
            names = {name for name, _ in pairs}
            if len(names) != len(pairs):
                repeats += repeats_of(path, pairs)
            if len({name.lower() for name in names}) != len(names):
                repeats += _case_repeats(path, pairs)
    return out


def _case_repeats(path: tuple[object, ...], pairs: list[tuple[str, object]]) -> list[Repeat]:
    """Keys of one section spelled alike but for case (``LR``, ``lr``): configparser folds
    them into one key, the last kept, where a case-keeping reader has two."""
    groups: dict[str, list[tuple[str, object]]] = {}
    for name, value in pairs:
        groups.setdefault(name.lower(), []).append((name, value))
    return [
        Repeat(path, group[-1][0], len(group), group[0][1], group[-1][1])
        for group in groups.values()
        if len({name for name, _ in group}) > 1
    ]


def parse_config(data: bytes, fmt: str) -> object:
    """The values of one config file; raises ``DiffError`` (one line) when it is malformed."""
    return parse_config_repeats(data, fmt).value


def parse_config_repeats(data: bytes, fmt: str) -> Parsed:
    """``parse_config``, with the keys the file repeats (a Python config's second
    assignment is no repeat: Python runs both, the last wins)."""
    if fmt in ("json", "yaml", "toml"):
        return parse_structured_repeats(data, fmt)
    text = decode_config(data, fmt)
    repeats: list[Repeat] = []
    if fmt == "args":
        return Parsed(parse_args(text, repeats), repeats)
    if fmt == "ini":
        return Parsed(parse_ini(text, repeats), repeats)
    if fmt == "py":
        from store.frameworks._pyconfig import parse_py_config

        try:
            return Parsed(parse_py_config(text))
        except ValueError as exc:
            raise DiffError(f"invalid Python config: {exc}") from None
    raise DiffError(f"unknown config format {fmt!r}")


Reader = Callable[[str, int], tuple[bytes, bool]]
"""Reads at most N bytes of a file and says whether it holds more (a local or remote side)."""


def _load(path: str, fmt: str, read: Reader) -> Parsed:
    data, capped = read(path, MAX_CONFIG_BYTES)
    if capped:
        raise DiffError(f"larger than {MAX_CONFIG_BYTES} bytes, not compared by value")
    return parse_config_repeats(data, fmt)


def diff_config_files(
    path_a: str,
    path_b: str,
    fmt: str,
    read_a: Reader = read_capped,
    read_b: Reader = read_capped,
    names: tuple[str, str] | None = None,
) -> StructuredDiff:
    """Key-path changes between two versions of a config, each read by its side's reader
    (the local disk, or another host); raises ``DiffError``.  A key a version repeats is
    warned of by ``names`` (default: the paths), and is ``ambiguous`` where the value
    kept decides whether it changed."""
    parsed_a, parsed_b = _load(path_a, fmt, read_a), _load(path_b, fmt, read_b)
    changes, more = diff_structured_whole(parsed_a.value, parsed_b.value)
    name_a, name_b = names or (path_a, path_b)
    changes, warnings = settle_repeats(changes, parsed_a, parsed_b, name_a, name_b)
    notes = [f"{more} more change(s) not listed: only the first {len(changes)} are"] if more else []
    notes += lines_note(parsed_a, parsed_b)
    return StructuredDiff(fmt, changes, not changes, notes, warnings, more)
