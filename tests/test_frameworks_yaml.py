"""store.yamlsafe, store.frameworks.flatten and metric directions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from store.frameworks import direction_of, flatten
from store.frameworks._metrics import summarize
from store.yamlsafe import YamlError, load_yaml

LIGHTNING_HPARAMS = """\
betas: !!python/tuple
- 0.9
- 0.999
dtype: !!python/name:torch.float32 ''
sched: !!python/object/apply:collections.OrderedDict
- - - gamma
    - 0.5
  - - step
    - 10
ns: !!python/object:argparse.Namespace
  depth: 3
custom: !Foo bar
custom_seq: !Bar [1, 2]
lr: 0.001
"""


def test_python_tags_become_plain_data() -> None:
    data = load_yaml(LIGHTNING_HPARAMS)
    assert data["betas"] == [0.9, 0.999]
    assert data["dtype"] == "<python/name:torch.float32>"
    assert data["sched"] == {"gamma": 0.5, "step": 10}
    assert data["ns"] == {"depth": 3}
    assert data["custom"] == "<!Foo bar>"
    assert data["custom_seq"] == [1, 2]
    assert data["lr"] == 0.001
    json.dumps(flatten(data))  # everything is JSON-able


def test_apply_tags_never_execute(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'x: !!python/object/apply:os.system ["touch {marker}"]\n'
    data = load_yaml(text)
    assert not marker.exists()
    assert data["x"]["__tag__"] == "python/object/apply:os.system"


@pytest.mark.parametrize(
    "text",
    ["a: [1, 2", "a: b: c", "- x\ny: 1", "? [a, b]\n: 1", "[" * 5000, "--- a\n--- b\n"],
    ids=["unclosed", "nested-colon", "mixed", "unhashable-key", "deep", "two-docs"],
)
def test_malformed_yaml_raises_own_error(text: str) -> None:
    with pytest.raises(YamlError) as info:
        load_yaml(text)
    assert "\n" not in str(info.value)


def test_invalid_utf8_bytes_load() -> None:
    assert load_yaml(b"name: caf\xff\n")["name"] == "caf\ufffd"


def test_flatten_dotted_keys_lists_and_values() -> None:
    flat = flatten(
        {
            "optimizer": {"lr": 0.001, "betas": (0.9, 0.99), "extra": {}},
            "nan": float("nan"),
            "blob": b"\xffab",
            3: "int key",
        }
    )
    assert flat["optimizer.lr"] == 0.001
    assert flat["optimizer.betas"] == [0.9, 0.99]
    assert flat["optimizer.extra"] == {}
    # a float still: not the text "nan" a param may hold
    assert isinstance(flat["nan"], float) and math.isnan(flat["nan"])
    assert flat["blob"] == "\\xffab"
    assert flat["3"] == "int key"


def alias_bomb(levels: int, width: int = 10, *, listed: bool = False) -> str:
    """``levels`` lines of YAML naming ``width ** levels`` strings through aliases: keys
    ``a0`` to ``a<levels-1>`` of a mapping, or the items of a list."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    if listed:
        lines = ["- " + line.split(": ", 1)[1] for line in lines]
    return "\n".join(lines) + "\n"


def test_flatten_survives_alias_bomb_and_cycles() -> None:
    """Shared lists as a bomb's aliases build them (load_yaml refuses the file itself)."""
    data: dict[str, object] = {"a0": ["x"] * 10}
    for i in range(1, 12):
        data[f"a{i}"] = [data[f"a{i - 1}"]] * 10
    flat = flatten(data)
    assert len(json.dumps(flat)) < 5_000_000
    cyclic: dict[str, object] = {"k": 1}
    cyclic["self"] = cyclic
    assert flatten(cyclic)["self"] == "<cycle>"


def test_an_alias_bomb_is_malformed_yaml_in_one_line() -> None:
    """A few hundred bytes naming 10**12 values: a reader that stringifies one of them
    (Hydra overrides, an MLflow meta.yaml field) would never return, so load_yaml refuses
    the document, at once; aliases used as configs use them still load."""
    with pytest.raises(YamlError, match="alias bomb") as raised:
        load_yaml(alias_bomb(12))
    assert "\n" not in str(raised.value)
    shared = load_yaml(alias_bomb(5) + "base: &base {lr: 0.1, wd: [1, 2]}\nx: *base\ny: *base\n")
    assert shared["x"] == shared["y"] == {"lr": 0.1, "wd": [1, 2]}
    assert len(shared["a4"]) == 10
    looped = load_yaml("a: &a [1, *a]\n")
    assert looped["a"][1] is looped["a"]


def test_indexing_runs_whose_yaml_is_an_alias_bomb_ends_with_a_warning(tmp_path: Path) -> None:
    """Hydra's overrides.yaml and hydra.yaml and an MLflow run's meta.yaml are read into
    run metadata with ``str``: as bombs they hung ``artlens index`` (and any watcher) for
    good.  Now each run is indexed with the file named in its warnings."""
    import os
    import subprocess
    import sys

    root = tmp_path / "out"
    bomb = alias_bomb(12)
    listed = alias_bomb(12, listed=True)
    for name, file, text in (
        ("over", "overrides.yaml", listed),
        ("hyd", "hydra.yaml", bomb + "hydra:\n  job:\n    name: *a11\n"),
    ):
        hydra = root / "outputs" / "2026-01-01" / name / ".hydra"
        hydra.mkdir(parents=True)
        (hydra / "config.yaml").write_text("lr: 0.1\n")
        (hydra / file).write_text(text)
    experiment = root / "mlruns" / "0"
    (experiment / "run1" / "params").mkdir(parents=True)
    (experiment / "meta.yaml").write_text("experiment_id: '0'\nname: Default\n")
    (experiment / "run1" / "meta.yaml").write_text(bomb + "run_id: run1\nuser_id: *a11\n")
    (experiment / "run1" / "params" / "lr").write_text("0.1")
    db = tmp_path / "index.db"
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", "index", str(root), "--no-hash", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,  # a hang sits in C (str of a list) holding the GIL: no timeout lands
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "ARTLENS_CACHE": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "tui.cli", "runs", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "ARTLENS_CACHE": str(tmp_path / "cache")},
    )
    warned = {w for run in json.loads(listing.stdout) for w in run["warnings"]}
    for file in ("over/.hydra/overrides.yaml", "hyd/.hydra/hydra.yaml", "run1/meta.yaml"):
        assert any(file in w and "alias bomb" in w for w in warned), (file, warned)


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("val_loss", "min"),
        ("train/loss_epoch", "min"),
        ("eval_perplexity", "min"),
        ("word_error", "min"),
        ("val_acc", "max"),
        ("eval/accuracy", "max"),
        ("f1_macro", "max"),
        ("mAP50", "max"),
        ("val_iou", "max"),
        ("episode_reward", "max"),
        ("bleu", "max"),
        ("learning_rate", None),
        ("epoch", None),
    ],
)
def test_direction(name: str, direction: str | None) -> None:
    assert direction_of(name) == direction


def test_summary_best_and_last() -> None:
    loss = summarize("loss", [(0, 1.0), (1, 0.4), (2, float("nan")), (3, 0.6)])
    assert (loss.last, loss.last_step, loss.best, loss.best_step, loss.n) == (0.6, 3, 0.4, 1, 4)
    acc = summarize("acc", [(0, 0.1), (5, 0.9), (9, 0.7)])
    assert (acc.best, acc.best_step) == (0.9, 5)
    lr = summarize("lr", [(0, 0.1)])
    assert lr.best is None and lr.direction is None
    empty = summarize("x", [])
    assert empty.n == 0 and empty.last is None
    assert math.isnan(summarize("loss", [(0, float("nan"))]).last or 0.0)
