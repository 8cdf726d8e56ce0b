"""``[keys]`` and the saved theme are user input: bounded, and malformed means a warning."""

from __future__ import annotations

import os
from pathlib import Path

from store.uiconfig import MAX_CONFIG_BYTES, load_keymap, load_theme, save_theme


def test_keys_are_read_and_bad_values_skipped(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[keys]\n"runs.filter" = "ctrl+f, slash"\n"app.help" = "?"\n'
        '"runs.sort" = "a b"\n"runs.mark" = ["x"]\n"x\\u001b[31m" = ""\n'
    )
    keymap, warnings = load_keymap(config)
    assert keymap == {"runs.filter": "ctrl+f,slash", "app.help": "?"}
    assert len(warnings) == 3 and all("\n" not in w and "\x1b" not in w for w in warnings)


def test_missing_broken_huge_or_special_config_is_at_most_one_warning(tmp_path: Path) -> None:
    assert load_keymap(tmp_path / "none.toml") == ({}, [])
    broken = tmp_path / "broken.toml"
    broken.write_text("[keys\n")
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    table = tmp_path / "table.toml"
    table.write_text('keys = "ctrl+f"\n')
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # a read would block forever
    deep = tmp_path / "deep.toml"
    deep.write_text("[keys]\na = " + "[" * 100_000 + "]" * 100_000 + "\n")
    for path in (broken, huge, table, fifo, deep):
        keymap, warnings = load_keymap(path)
        assert keymap == {} and len(warnings) == 1 and "\n" not in warnings[0], path


def test_theme_round_trips_and_garbage_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ui.json"
    assert load_theme(path) is None
    save_theme(path, "nord")
    assert load_theme(path) == "nord"
    for text in ("{", "[]", '{"theme": 3}', '{"theme": "[bold]x"}', "[" * 30_000 + "]" * 30_000):
        path.write_text(text)
        assert load_theme(path) is None, text
