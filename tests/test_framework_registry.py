"""The framework contract: a toy framework declared here, and nothing else, is detected by
``artlens index``, checklisted by ``artlens check`` and its checkpoints kept or freed by a
retention plan; the built-in registry keeps its order and rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from store import kinds
from store.frameworks import FRAMEWORKS, _io, registry
from store.frameworks._context import DetectContext
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Checkpoints, Framework, NumberedName
from store.index import query
from store.index.db import open_db
from store.runs import is_marker
from store.watch import Watcher
from tests.test_checklist import settle_mtimes
from tests.test_watch import wait_for
from tui.cli import main

TOY_MARKER = "toy.json"


def _detect(ctx: DetectContext) -> list[RunSpec]:
    return [ctx.folder_run(rel, "toy") for rel in ctx.paths if TOY_MARKER in ctx.entry(rel).files]


def _load(root: _io.RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    data, _ = _io.read_bytes(root, _io.join(spec.path, TOY_MARKER), 1 << 16)
    record: dict[str, Any] = json.loads(data)
    out.params = dict(record["params"])
    out.finals["loss"] = (None, float(record["loss"]))
    out.status = "finished"
    return out


TOY = Framework(
    name="toy",
    display="Toy",
    priority=1450,
    detect=_detect,
    load=_load,
    owns_subtree=True,
    markers=frozenset({TOY_MARKER}),
    checklist=(TOY_MARKER, "round*.toyw"),
    kinds={".toyw": "checkpoint"},
    checkpoints=Checkpoints(numbered=(NumberedName(re.compile(r"^round(\d+)\.toyw$"), "step"),)),
)


@pytest.fixture
def toy(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    undo = registry.register(TOY)
    try:
        yield
    finally:
        undo()


def toy_root(tmp_path: Path) -> Path:
    """One toy run: its record and three checkpoints whose names sort 1, 10, 2."""
    run = tmp_path / "root" / "exp-a"
    run.mkdir(parents=True)
    (run / TOY_MARKER).write_text(json.dumps({"params": {"lr": 0.5}, "loss": 0.25}))
    for step in (1, 2, 10):
        (run / f"round{step}.toyw").write_bytes(bytes(100 * step))
    settle_mtimes(tmp_path / "root")
    return tmp_path / "root"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_toy_framework_is_detected_checklisted_and_retained(toy: None, tmp_path: Path) -> None:
    root, db = toy_root(tmp_path), tmp_path / "index.db"
    assert cli("index", str(root), "--db", str(db)).exit_code == 0
    runs = json.loads(cli("runs", "--json", "--db", str(db)).stdout)
    assert [(r["name"], r["framework"], r["params"]) for r in runs] == [
        ("exp-a", "toy", {"lr": 0.5})
    ]
    assert runs[0]["metrics"]["loss"]["last"] == 0.25

    result = cli("check", "--json", "--db", str(db))
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["framework"], row["passed"], row["total"]) == ("toy", 2, 2)
    config = tmp_path / "ci.toml"
    config.write_text('[checklist.framework.toy]\nrequired = ["model.card"]\n')
    result = cli("check", "--db", str(db), "--config", str(config))
    assert result.exit_code == 1
    assert result.stdout.rstrip().endswith("missing: model.card")

    plan = json.loads(
        cli("retention", "plan", str(root), "--keep-last", "1", "--json", "--db", str(db)).stdout
    )
    items = {i["path"]: (i["keep"], i["step"]) for i in plan["items"]}
    assert items == {
        "exp-a/round1.toyw": (False, 1),
        "exp-a/round2.toyw": (False, 2),
        "exp-a/round10.toyw": (True, 10),
    }
    assert plan["bytes_freed"] == 300


def test_the_watcher_detects_a_toy_run_when_its_marker_arrives(toy: None, tmp_path: Path) -> None:
    folder = tmp_path / "root" / "exp-b"
    folder.mkdir(parents=True)
    (folder / "round1.toyw").write_bytes(b"w")
    db_path = tmp_path / "cache" / "index.db"

    def frameworks() -> list[str]:
        db = open_db(db_path, readonly=True)
        try:
            return [run.framework for run in query.list_runs(db)]
        finally:
            db.close()

    watcher = Watcher(db_path, [tmp_path / "root"])
    watcher.start()
    try:
        assert frameworks() == []
        (folder / TOY_MARKER).write_text(json.dumps({"params": {}, "loss": 1.0}))
        wait_for(lambda: frameworks() == ["toy"], what="the toy run")
    finally:
        watcher.stop()


def test_register_is_undone_everywhere(toy: None, tmp_path: Path) -> None:
    undo = registry.register(Framework(name="toy-two", display="Toy 2", priority=1451, load=_load))
    assert registry.names()[-4:] == ("toy", "toy-two", "tensorboard", "generic")
    undo()
    assert "toy-two" not in registry.names()
    assert is_marker(TOY_MARKER.encode())
    assert kinds.classify("exp-a/round3.toyw") == "checkpoint"
    with pytest.raises(ValueError, match="already registered"):
        registry.register(TOY)
    with pytest.raises(ValueError, match="share priority"):
        registry.register(Framework(name="other", display="Other", priority=1450, load=_load))
    with pytest.raises(ValueError, match=r"'\.toyw' is model"):
        registry.register(
            Framework(
                name="other", display="Other", priority=1, load=_load, kinds={".toyw": "model"}
            )
        )
    assert "other" not in registry.names()


def test_after_undo_the_toy_is_unknown(isolated_cache: Path, tmp_path: Path) -> None:
    registry.register(TOY)()
    assert not is_marker(TOY_MARKER.encode())
    assert kinds.classify("exp-a/round3.toyw") == "other"
    root, db = toy_root(tmp_path), tmp_path / "index.db"
    config = tmp_path / "ci.toml"
    config.write_text('[checklist.framework.toy]\nrequired = ["model.card"]\n')
    assert cli("index", str(root), "--db", str(db)).exit_code == 0
    runs = json.loads(cli("runs", "--json", "--db", str(db)).stdout)
    assert [(r["name"], r["framework"]) for r in runs] == [("exp-a", "generic")]
    result = CliRunner().invoke(main, ["check", "--db", str(db), "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown framework 'toy'" in result.stderr


def test_built_in_order_and_rules() -> None:
    assert registry.names() == FRAMEWORKS
    assert FRAMEWORKS[0] == "mlflow" and FRAMEWORKS[-1] == "generic"
    subtree = {e.name for e in registry.entries() if e.owns_subtree}
    assert subtree == {
        "mlflow", "wandb", "lightning", "dvclive", "neptune", "ultralytics", "timm",
        "mmengine", "detectron2",
    }  # fmt: skip
    for name in FRAMEWORKS:
        entry = registry.get(name)
        assert entry is not None and entry.name == name and entry.display


def test_a_marker_pattern_is_one_whole_name_on_its_own(isolated_cache: Path) -> None:
    """Marker patterns are joined into one: a pattern that closes the shared group early
    (``x)|(.*``) would make every name a marker, and one with a global flag would break
    ``is_marker`` for every framework.  ``register`` refuses both, and a pattern matches the
    whole name only (not a name with a newline after it)."""
    for bad in (r"x)|(.*", r"(?i)toy\.bin", r"(unclosed"):
        with pytest.raises(ValueError, match="marker pattern"):
            registry.register(
                Framework(
                    name="bad", display="Bad", priority=1452, load=_load, marker_patterns=(bad,)
                )
            )
        assert "bad" not in registry.names()
        assert not is_marker(b"notes.txt")
    assert is_marker(b"model_0000001.pth")
    assert not is_marker(b"model_0000001.pth\n")


def test_a_numbered_checkpoint_name_must_capture_its_number(isolated_cache: Path) -> None:
    """Retention reads group 1 of a ``NumberedName`` as the number: a pattern without one
    would crash every plan of every root on the first such name."""
    for bad in (r"^round\d+\.toyw$", r"^round(?:\d+)\.toyw$"):
        numbered = (NumberedName(re.compile(bad), "step"),)
        with pytest.raises(ValueError, match="group 1"):
            registry.register(
                Framework(
                    name="bad",
                    display="Bad",
                    priority=1452,
                    load=_load,
                    checkpoints=Checkpoints(numbered=numbered),
                )
            )
        assert "bad" not in registry.names()


def test_a_reader_that_raises_leaves_its_run_unknown_not_empty(toy: None, tmp_path: Path) -> None:
    """A framework's reader that raises (here the toy's, on a record cut mid-write) left
    the run with no params and no metrics, said only in a warning: a diff against it
    called every param and metric of the other run removed.  Its params and metrics are
    read in part now, so the diff says it cannot compare them."""
    root, db = toy_root(tmp_path), tmp_path / "index.db"
    cut = root / "exp-b"
    cut.mkdir()
    (cut / TOY_MARKER).write_text('{"params": {"lr": 0.5}, "lo')
    assert cli("index", str(root), "--db", str(db)).exit_code == 0
    result = cli("diff", "exp-a", "exp-b", "--json", "--db", str(db))
    report = json.loads(result.stdout)
    assert not any(e.get("change") == "removed" for e in report["params"]), report["params"]
    assert not any(e.get("change") == "removed" for e in report["metrics"]), report["metrics"]
    said = " ".join(report["unknown"])
    assert "params of B could not all be read" in said, said
    assert "metrics of B could not all be read" in said, said
