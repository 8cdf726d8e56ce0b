"""``artlens runs --all-hosts`` / ``--host``: run names that print alike (``café`` in NFC on
one host, in NFD on another) are spelled apart, as ``artlens runs`` does for one index;
``--json`` keeps them exact.  The mirror is pulled through the real ``artlens feed``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_checklist import index_tree, settle_mtimes
from tests.test_remote import add, cli, host_command, isolated  # noqa: F401 (fixture)

NFC = "caf\u00e9"
NFD = "cafe\u0301"


def host_tree(tmp_path: Path, host: str, run: str) -> Path:
    """One run folder named ``run`` under ``host``'s root, indexed: the index's path."""
    root = tmp_path / host / "outputs"
    (root / run).mkdir(parents=True)
    (root / run / "config.yaml").write_text("lr: 0.1\n")
    (root / run / "metrics.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    settle_mtimes(root)
    db = tmp_path / host / "index.db"
    index_tree(root, db)
    return db


def two_hosts(tmp_path: Path) -> Path:
    """The local index holds run café (NFC), the mirror of gpu1 run café (NFD)."""
    local = host_tree(tmp_path, "here", NFC)
    add("gpu1", host_command(host_tree(tmp_path, "gpu1", NFD)))
    code, out, err = cli("remote", "pull")
    assert code == 0 and "gpu1: snapshot" in out, err
    return local


def test_host_listing_spells_look_alike_names_apart(tmp_path: Path) -> None:
    local = two_hosts(tmp_path)
    code, out, err = cli("runs", "--all-hosts", "--db", str(local))
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert sorted((r[0], r[2]) for r in rows) == [("gpu1", "cafe\\u0301"), ("local", NFC)]
    code, out, err = cli("runs", "--all-hosts", "--json", "--db", str(local))
    assert code == 0, err
    assert {(r["host"], r["name"]) for r in json.loads(out)} == {("local", NFC), ("gpu1", NFD)}


def test_host_table_on_a_terminal_spells_look_alike_names_apart(tmp_path: Path) -> None:
    local = two_hosts(tmp_path)
    primary, secondary = os.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "xterm-256color", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "runs", "--all-hosts", "--db", str(local)],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    out = b"".join(chunks).decode()
    assert proc.returncode == 0, proc.stderr
    assert "host" in out and "gpu1" in out and "local" in out
    assert "cafe\\u0301" in out and NFC in out
    assert NFD not in out
