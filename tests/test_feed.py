"""``artlens feed`` and ``artlens cat``: what a host serves to a remote client."""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store.index.db import open_db
from tests.test_checklist import copy_fixtures, index_tree
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


def feed(db: Path, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["feed", "--json", "--db", str(db), *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout_bytes.splitlines()]


def test_first_pull_is_a_snapshot_of_every_row(tmp_path: Path) -> None:
    root, db_path = copy_fixtures(tmp_path)
    lines = feed(db_path, "--after", "0")
    head, tail = lines[0], lines[-1]
    assert head["t"] == "header" and head["protocol"] == 1 and head["mode"] == "snapshot"
    assert tail == {"t": "trailer", "last_event": head["newest"], "newest": head["newest"]}
    db = open_db(db_path, readonly=True)
    n_art, n_runs = db.conn.execute(
        "SELECT (SELECT count(*) FROM artifacts), (SELECT count(*) FROM runs)"
    ).fetchone()
    hashed = db.conn.execute("SELECT count(*) FROM artifacts WHERE hash IS NOT NULL").fetchone()
    db.conn.close()
    arts = [x for x in lines if x["t"] == "artifact"]
    assert len(arts) == n_art and len([x for x in lines if x["t"] == "run"]) == n_runs
    assert len([a for a in arts if a["hash"]]) == hashed[0] > 0
    assert all(not a["path"].startswith("/") for a in arts)
    assert [x["path"] for x in lines if x["t"] == "root"] == [str(root)]


def test_changes_after_an_event_carry_the_rows_they_touch(tmp_path: Path) -> None:
    root, db_path = copy_fixtures(tmp_path)
    cursor = feed(db_path)[-1]["last_event"]
    new = os.fsencode(root / "wandb") + b"/caf\xe9.bin"
    with open(new, "wb") as f:
        f.write(b"x" * 10)
    os.utime(new, (1_767_225_600.0, 1_767_225_600.0))
    index_tree(root, db_path)
    lines = feed(db_path, "--after", str(cursor))
    assert lines[0]["mode"] == "changes"
    events = [x for x in lines if x["t"] == "event"]
    assert events and all(e["id"] > cursor for e in events)
    arts = [x for x in lines if x["t"] == "artifact" and x.get("path_b64")]
    assert [base64.b64decode(a["path_b64"]) for a in arts] == [b"wandb/caf\xe9.bin"]
    assert arts[0]["path"] == "wandb/caf\\xe9.bin" and arts[0]["size"] == 10
    # nothing new: header, roots, runs, trailer; the cursor stays
    again = feed(db_path, "--after", str(lines[-1]["last_event"]))
    assert {x["t"] for x in again} == {"header", "root", "run", "trailer"}
    assert again[-1]["last_event"] == lines[-1]["last_event"]


def test_a_cursor_from_the_future_gets_a_snapshot(tmp_path: Path) -> None:
    _, db_path = copy_fixtures(tmp_path)
    lines = feed(db_path, "--after", "999999999")
    assert lines[0]["mode"] == "snapshot"
    assert any(x["t"] == "artifact" for x in lines)


def cat(db: Path, path: Path | str, span: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(main, ["cat", "--range", span, "--db", str(db), str(path)])
    return result.exit_code, result.stdout_bytes, result.stderr


def test_cat_reads_a_range_inside_a_root_only(tmp_path: Path) -> None:
    root, db_path = copy_fixtures(tmp_path)
    target = next(p for p in sorted(root.rglob("*")) if p.is_file() and p.stat().st_size > 20)
    whole = target.read_bytes()
    assert cat(db_path, target, "5:10")[:2] == (0, whole[5:15])
    assert cat(db_path, target, f"{len(whole) - 3}:100")[1] == whole[-3:]
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "link-out").symlink_to(tmp_path)
    (root / "file-link").symlink_to(outside)
    for bad in (
        outside,
        f"{root}/link-out/secret.txt",
        f"{root}/file-link",
        f"{root}/../secret.txt",
        root,
    ):
        code, out, err = cat(db_path, bad, "0:100")
        assert code == 2 and out == b"" and len(err.strip().splitlines()) == 1, bad
    code, _, err = cat(db_path, target, "0:99999999999")
    assert code == 2 and "at most" in err


def test_digits_int_cannot_read_are_a_one_line_error(tmp_path: Path) -> None:
    """Digits int() refuses ("²" is one to isdigit, 5000 of them): a one-line error."""
    root, db_path = copy_fixtures(tmp_path)
    target = next(p for p in sorted(root.rglob("*")) if p.is_file())
    for span in ("\u00b2:3", "0:\u00b2", "1" * 5000 + ":1"):
        code, out, err = cat(db_path, target, span)
        assert (code, out) == (2, b"") and "--range wants OFFSET:LENGTH" in err, span
    for ranges in ("\u00b2-3", "1-" + "9" * 5000):
        result = CliRunner().invoke(
            main, ["feed", "--json", "--db", str(db_path), "--recheck", ranges]
        )
        assert result.exit_code == 2 and "bad id range" in result.stderr, ranges


def _refuse_constant(token: str) -> object:
    raise AssertionError(f"not strict JSON: {token}")


def test_the_feed_is_strict_json_and_a_mirror_keeps_the_numbers(tmp_path: Path) -> None:
    """A metric that went to inf is sent as "Infinity" (jq reads every line), and the
    mirror holds it as the number again, as the host's own index does."""
    import shlex
    import sqlite3
    import sys

    root = tmp_path / "host" / "root"
    for run, rows in (("runB", "0,1.0,nan\n1,-inf,inf\n"), ("runC", "0,nan,0.1\n")):
        (root / run).mkdir(parents=True)
        (root / run / "metrics.csv").write_text("step,val_loss,acc\n" + rows)
    db = tmp_path / "host" / "index.db"
    index_tree(root, db)
    text = CliRunner().invoke(main, ["feed", "--json", "--db", str(db)]).stdout
    lines = [json.loads(line, parse_constant=_refuse_constant) for line in text.splitlines()]
    metrics = {line["name"]: line["metrics"] for line in lines if line["t"] == "run"}
    assert metrics["runB"]["acc"]["last"] == "Infinity"
    assert metrics["runB"]["val_loss"]["last"] == "-Infinity"
    assert metrics["runC"]["val_loss"]["last"] == "NaN"

    command = f"env ARTLENS_DB={shlex.quote(str(db))} {shlex.quote(sys.executable)} -m tui.cli"
    runner = CliRunner()
    added = runner.invoke(main, ["remote", "add", "h", "--command", command])
    assert added.exit_code == 0, added.output
    pulled = runner.invoke(main, ["remote", "pull", "h"])
    assert pulled.exit_code == 0, pulled.output
    from store.remote import config

    conn = sqlite3.connect(config.get("h").mirror_path)
    try:
        stored = dict(conn.execute("SELECT name, metrics FROM runs").fetchall())
    finally:
        conn.close()
    runb = json.loads(stored["runB"])
    assert runb["acc"]["last"] == math.inf and runb["val_loss"]["best"] == -math.inf
    assert math.isnan(json.loads(stored["runC"])["val_loss"]["last"])
    shown = runner.invoke(main, ["runs", "--host", "h", "--json"])
    assert shown.exit_code == 0, shown.output
    hosts = json.loads(shown.stdout, parse_constant=_refuse_constant)
    assert {r["name"]: r["metrics"]["acc"]["last"] for r in hosts}["runB"] == "Infinity"
