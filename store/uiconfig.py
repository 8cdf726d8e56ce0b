"""The explorer's own settings: key changes from ``[keys]`` in the user config, and the
theme last chosen (saved beside the user state, never in the config the user edits).

Both files are user input: reads are bounded, anything malformed is a one-line warning
and the default stays.  No UI here: the app validates the binding ids it knows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

import platformdirs

from store.safefile import NotRegularFileError, read_capped, users_own
from store.safeparse import load_json, load_toml

MAX_CONFIG_BYTES = 1 << 20
MAX_SETTINGS_BYTES = 64 << 10
MAX_KEYS = 500
"""Entries of ``[keys]`` read at most (the app has far fewer bindings)."""
_KEY = re.compile(r"^(?:[A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*|[!-~])$")
"""One key as Textual names it (``ctrl+r``, ``question_mark``, ``f1``, ``S``) or one
printable character (``?``, ``/``)."""
_THEME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def user_config_path() -> Path:
    """The user config (``config.toml``), shared with checklists and retention."""
    return Path(platformdirs.user_config_dir("artlens")) / "config.toml"


def settings_path() -> Path:
    """Where the theme is saved: beside the user state (``ARTLENS_STATE`` moves both)."""
    state = os.environ.get("ARTLENS_STATE")
    if state:
        return Path(state).with_name("ui.json")
    return Path(platformdirs.user_data_dir("artlens")) / "ui.json"


def _read(path: Path, cap: int) -> bytes | None:
    """The file's bytes, None when it does not exist; OSError when it cannot be read."""
    try:
        data, more = read_capped(path, cap)
    except FileNotFoundError:
        return None
    except NotRegularFileError:
        raise OSError(0, "not a regular file") from None
    if more:
        raise OSError(0, f"larger than {cap} bytes")
    return data


def parse_keys(value: str) -> list[str] | None:
    """The keys of one ``[keys]`` value (``"ctrl+f,/"``), None when one is not a key."""
    keys = [part.strip() for part in value.split(",")]
    if not keys or any(not _KEY.match(key) for key in keys):
        return None
    return keys


def load_keymap(path: Path) -> tuple[dict[str, str], list[str]]:
    """``{binding id: "key,key"}`` from the ``[keys]`` table of ``path``, and one warning
    line per thing skipped (an unreadable file, a value that is no key)."""
    shown = os.fsdecode(path).encode("unicode_escape").decode("ascii")
    try:
        data = _read(Path(users_own(path)), MAX_CONFIG_BYTES)
        if data is None:
            return {}, []
        table = load_toml(data.decode("utf-8")).get("keys", {})
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not TOML, nested too deeply
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return {}, [f"{shown}: [keys] not read: {' '.join(reason.split())[:200]}"]
    if not isinstance(table, dict):
        return {}, [f"{shown}: [keys] is not a table"]
    keymap: dict[str, str] = {}
    warnings: list[str] = []
    for index, (binding_id, value) in enumerate(table.items()):
        name = binding_id.encode("unicode_escape").decode("ascii")[:80]
        if index >= MAX_KEYS:
            warnings.append(f"{shown}: [keys] has more than {MAX_KEYS} entries; the rest skipped")
            break
        keys = parse_keys(value) if isinstance(value, str) else None
        if keys is None:
            text = repr(value)[:40].encode("unicode_escape").decode("ascii")
            warnings.append(f"{shown}: [keys] {name}: not a key: {text}")
            continue
        keymap[binding_id] = ",".join(keys)
    return keymap, warnings


def load_theme(path: Path) -> str | None:
    """The theme name saved last, None when there is none (or it is unreadable)."""
    try:
        data = _read(path, MAX_SETTINGS_BYTES)
        value = load_json(data) if data is not None else None
    except (OSError, ValueError):
        return None
    theme = value.get("theme") if isinstance(value, dict) else None
    return theme if isinstance(theme, str) and _THEME.match(theme) else None


def save_theme(path: Path, theme: str) -> None:
    """Save the theme name (atomically: a reader never sees half a file); OSError if not."""
    if not _THEME.match(theme):
        raise ValueError(f"not a theme name: {theme!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ui-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"theme": theme}, out)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
