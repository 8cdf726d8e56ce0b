"""Previews through the file layer: a Root's file previews as the same path does."""

from __future__ import annotations

import os
from pathlib import Path

from store.preview import preview_at, preview_file
from store.root.local import LocalRoot


def test_preview_at_a_root_matches_preview_file_and_refuses_what_it_must(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "logs").mkdir(parents=True)
    (top / "logs" / "train.log").write_bytes(b"step 1\n" * 100_000)
    (top / "cfg.json").write_bytes(b'{"lr": 0.1, "name": "\\u001b[31mred"}')
    os.mkfifo(top / "pipe.log")
    (tmp_path / "secret.txt").write_text("secret")
    (top / "away.txt").symlink_to(tmp_path / "secret.txt")
    (top / "inside.json").symlink_to("cfg.json")
    root = LocalRoot(top)
    for rel in ("logs/train.log", "cfg.json"):
        assert preview_at(root, rel) == preview_file(top / rel)
    log = preview_at(root, "logs/train.log")
    assert log.kind == "text" and log.from_end and log.skipped_bytes > 0
    assert "\x1b" not in preview_at(root, "cfg.json").text
    assert preview_at(root, "pipe.log").kind == "special"
    away = preview_at(root, "away.txt")
    assert away.kind == "special" and "out of the root" in away.notes[0]
    assert "secret" not in away.text
    assert preview_at(root, "inside.json").kind == "structured"
    assert preview_at(root, "missing.txt").kind == "error"
