"""A plain experiment folder and a downloaded one with the trouble real trees have."""

from __future__ import annotations

import os
import pickle  # only pickle.dumps of a plain dict: the demo writes pickles, never loads one
import random

from store.demo import _formats as fmt
from store.demo._checkpoints import bert_safetensors
from store.demo._tree import DANGEROUS_COMMAND, HOUR, Tree, curve


def _loss_plot(rng: random.Random) -> bytes:
    """A 96x64 PNG of a falling loss curve, so the image preview has something to show."""
    width, height = 96, 64
    levels = curve(rng, width, 1.0, 0.15, 0.02)
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            level = int((1 - levels[x]) * (height - 1))
            on_curve = abs(y - level) <= 1
            row.append(
                (220, 80, 60) if on_curve else (250, 250, 250) if y % 16 else (210, 210, 210)
            )
        rows.append(row)
    return fmt.png(width, height, rows)


def write_plain(tree: Tree) -> None:
    rel = "experiments/quick-test"
    tree.run(rel, "generic")
    age = 3 * HOUR
    model = {
        "coef": [round(v, 5) for v in tree.floats(16, 0.5)],
        "intercept": 0.12,
        "classes": [0, 1],
    }
    tree.write(f"{rel}/model.pkl", pickle.dumps(model, protocol=4), age)
    tree.json(f"{rel}/metrics.json", {"accuracy": 0.912, "f1": 0.897, "roc_auc": 0.954}, age)
    tree.write(
        f"{rel}/config.yaml",
        "model: logistic_regression\nC: 1.0\npenalty: l2\nmax_iter: 200\n",
        age + 60,
    )
    tree.write(f"{rel}/requirements.txt", "scikit-learn==1.5.2\npandas==2.2.3\n", age + 60)
    tree.write(f"{rel}/loss.png", _loss_plot(tree.rng), age)
    tree.write(
        f"{rel}/notes.md",
        "# quick test\n\nBaseline before the MLP sweep.\n`C=1.0` was best.\n",
        age - 300,
    )
    tree.write(
        f"{rel}/data/train.parquet",
        fmt.parquet_stub(bytes(tree.rng.getrandbits(8) for _ in range(256))),
        age + 600,
    )
    sample = ["text,label"] + [f'"sample sentence {i}",{i % 2}' for i in range(20)]
    tree.write(f"{rel}/data/sample.csv", "\n".join(sample) + "\n", age + 600)
    markup = f"{rel}/notes[bold]\x1b[31m.txt"
    tree.hazards["markup_name"] = tree.write(
        markup, "A file whose name carries markup and an escape code.\n", age
    )
    latin1 = os.fsdecode(b"caf\xe9.txt")
    tree.hazards["non_utf8_name"] = tree.write(
        f"{rel}/{latin1}", "Named in Latin-1, which is not valid UTF-8.\n", age
    )
    tree.hazards["outside_symlink"] = tree.symlink(f"{rel}/data/hostname", "/etc/hostname", age)

    bad = "experiments/untrusted"
    tree.run(bad, "generic")
    age = 2 * HOUR
    tree.hazards["dangerous_pickle"] = tree.write(
        f"{bad}/model.pkl", fmt.dangerous_pickle(DANGEROUS_COMMAND), age
    )
    whole = bert_safetensors(tree.rng)
    tree.hazards["truncated_safetensors"] = tree.write(
        f"{bad}/model.safetensors", whole[: len(whole) * 2 // 3], age
    )
    tree.write(
        f"{bad}/README.md", "Downloaded from a file-sharing link. Do not load model.pkl.\n", age
    )
