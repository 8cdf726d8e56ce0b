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
    assert flat["nan"] == "nan"
    assert flat["blob"] == "\\xffab"
    assert flat["3"] == "int key"
    json.dumps(flat, allow_nan=False)


def test_flatten_survives_alias_bomb_and_cycles() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    data = load_yaml("\n".join(lines))
    flat = flatten(data)
    assert len(json.dumps(flat)) < 5_000_000
    cyclic: dict[str, object] = {"k": 1}
    cyclic["self"] = cyclic
    assert flatten(cyclic)["self"] == "<cycle>"


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
