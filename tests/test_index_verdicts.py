"""The index gives a file the verdict ``artlens scan`` gives it: pickles are found by
content under any name and kind, and judged by the same inspection."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def settled(path: Path) -> None:
    """An mtime in the past, so the indexer hashes the file now instead of waiting."""
    past = time.time() - 60
    os.utime(path, (past, past))


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        # protocol 0 (no 0x80 header), the marker only ever touched if something loaded it
        ("notes.txt", b"cposix\nsystem\n(S'touch {marker}'\ntR."),
        ("diagram.png", b"cos\nsystem\n(S'touch {marker}'\ntR."),
        ("old_weights", b"\x80\x01cposix\nsystem\nq\x00(U\x05touchq\x01tR."),
        # a first string longer than the sniffed kilobyte, imports after it
        ("cache.dat", b"S'" + b"x" * 2000 + b"'\n0cposix\nsystem\n(S'touch {marker}'\ntR."),
        ("blob", b"X\xd0\x07\x00\x00" + b"x" * 2000 + b"0cposix\nsystem\n(S'touch {marker}'\ntR."),
    ],
    ids=[
        "protocol-0-txt",
        "protocol-0-png",
        "protocol-1-no-extension",
        "protocol-0-long-string",
        "protocol-1-long-string",
    ],
)
def test_index_and_scan_agree_on_a_pickle_under_any_name(
    tmp_path: Path, name: str, payload: bytes
) -> None:
    marker = tmp_path / "MARKER"
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    evil = root / "run" / name
    evil.write_bytes(payload.replace(b"{marker}", str(marker).encode()))
    settled(evil)
    (root / "run" / "readme.txt").write_text("just some notes\n" * 100)
    settled(root / "run" / "readme.txt")
    db = tmp_path / "i.db"
    runner = CliRunner()
    indexed = runner.invoke(main, ["index", str(root), "--db", str(db)])
    assert indexed.exit_code == 0, indexed.output
    listed = runner.invoke(main, ["ls", "--json", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    by_name = {Path(a["relpath"]).name: a for a in json.loads(listed.output)}
    scanned = runner.invoke(main, ["scan", "--json", str(root)])
    report = json.loads(scanned.stdout)
    by_scan = {Path(str(f["path"])).name: f["verdict"] for f in report["files"]}
    assert by_scan == {name: "dangerous"}
    assert by_name[name]["verdict"] == "dangerous"
    assert by_name["readme.txt"]["verdict"] is None  # plain text is not inspected
    assert not marker.exists()
