"""``retention plan --json`` writes its items as text made ahead (``item_json_writer``):
the same JSON, to the byte, as encoding ``item_json``'s dicts, for names and values no
one would choose."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import time
from pathlib import Path

from test_retention_support import index_tree, new_db, write

from store.jsonstrict import finite
from store.retention.candidates import Candidate
from store.retention.plan import Plan, make_plan
from store.retention.policy import from_flags
from store.retention.service import item_json, item_json_writer, plan_json
from tui.cli.common import emit_json

HOSTILE = [
    "plain/epoch=1.ckpt",
    'quo"te\\back/[bold]x[/bold].ckpt',
    "ctl/\x00\x01\x1b[31mred\x7f\x85\u2028\u2029.pt",
    "bad/\udcff\udce9-utf8.pt",
    "wide/日本語/é/🙂.safetensors",
    "tab\tnew\nline/\r.ckpt",
    "",
]
NUMBERS = [None, 0, -1, 7, 10**30, -(10**19)]
FLOATS = [None, 0.0, -0.0, 0.1, 1e-300, 1e300, 123456789.125, math.nan, math.inf, -math.inf]
REASONS = [[], ["latest 3"], ["kept by no rule"], ['a link in "x\ny" points into it', "\x1b"]]
EXPIRES = [None, 0.0, 1.7e9 + 0.5, 1e20, -1e20, math.nan]


def _items(rng: random.Random, count: int) -> list[Candidate]:
    made = []
    for _ in range(count):
        item = Candidate(
            rng.choice(["/srv/runs", "/tmp/\udcffroot", "/é"]),
            rng.randint(1, 9),
            rng.choice(["", "exp/run1", "\x1b]0;title\x07", "run [x]"]),
            "lightning",
            rng.random() < 0.5,
            rng.choice(HOSTILE),
            rng.random() < 0.5,
            rng.choice([0, 1, 2**40, 2**63 - 1]),
            rng.randint(0, 2**62),
            1,
            "file",
            None,
            rng.choice(NUMBERS),
            rng.choice(NUMBERS),
            rng.random() < 0.5,
            rng.choice(FLOATS),
            rng.choice([None, "file name", 'trainer_state.json "log"\n']),
        )
        item.keep = rng.random() < 0.5
        item.reasons = list(rng.choice(REASONS))
        item.expires = rng.choice(EXPIRES)
        made.append(item)
    return made


def test_each_item_is_written_as_its_dict_encodes() -> None:
    rng = random.Random(5)
    write_item = item_json_writer()
    odd = _items(rng, 3)  # types an index someone else wrote could hand over
    odd[0].step, odd[0].metric, odd[0].size = "12", "0.5", 2.5  # type: ignore[assignment]
    odd[1].epoch, odd[1].metric_source = [1], None  # type: ignore[assignment]
    odd[2].is_dir, odd[2].keep, odd[2].step = 1, 0, True  # type: ignore[assignment]
    for item in _items(rng, 3000) + odd:
        expected = json.dumps(item_json(item), ensure_ascii=False, default=str)
        assert write_item(item) == expected


def _printed(value: object) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        emit_json(value)
    return out.getvalue()


def test_a_plan_prints_the_same_whichever_way_its_items_are_made(tmp_path: Path) -> None:
    """A real plan, large enough for one item a line and small enough for the indented
    form; both print what the dicts print, and parse back to the same values."""
    root = tmp_path / "root"
    for run in range(3):
        for step in range(60):
            name = f"epoch={step}-step={step * 10}-val_loss={1 / (step + 1):.3f}.ckpt"
            write(root / f"r{run}\x1b[1m" / "checkpoints" / name, b"c" * (step + 1))
        write(root / f"r{run}\x1b[1m/checkpoint-5/model.safetensors", b"m" * 9)
    db = new_db(tmp_path)
    index_tree(db, root, {f"r{run}\x1b[1m": ("lightning", "finished") for run in range(3)})
    now = time.time()
    policy = from_flags(keep_last=2, keep_best=1, metric="val_loss", older_than="1h")
    plan = make_plan(db, [root], policy, now)
    db.conn.close()
    assert len(plan.items) == 183
    small = Plan(plan.id, plan.created, plan.now, plan.items[:3], plan.runs, plan.roots)
    for whole in (plan, small):
        expected = _printed(plan_json(whole, {}))
        printed = _printed(plan_json(whole, {}, encoded=True))
        assert json.loads(printed) == json.loads(expected)
        if len(whole.items) > 100:  # one item a line either way: the same text
            assert printed == expected
        assert all(ord(c) >= 0x20 or c == "\n" for c in printed)


def test_every_list_item_goes_through_one_c_encoder_that_writes_what_json_does() -> None:
    from tui.cli import common

    assert common._encode_finite != common._ENCODER.encode  # CPython's C encoder is in use
    values = [
        {"a": [1, 2.5, math.nan, -math.inf, None, True, "\x00\u00e9\n\x7f"], "b": {}},
        {"path": Path("/x"), "n": 10**30, "s": "[b]\udcff"},
        "just text",
        [],
    ]
    for value in values:  # strict JSON: a non-finite float as its name (store.jsonstrict)
        assert common._encode_item(value) == common._ENCODER.encode(finite(value))
