"""Artifact kinds from names, and from magic bytes where names lie."""

from __future__ import annotations

import pytest

from store.kinds import classify, refine


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("run/requirements.txt", "env"),
        ("run/requirements-dev.txt", "env"),
        ("run/conda.yaml", "env"),
        ("lightning_logs/version_0/checkpoints/epoch=3-step=400.ckpt", "checkpoint"),
        ("hf/checkpoint-500/model.safetensors", "checkpoint"),
        ("hf/checkpoint-500/pytorch_model.bin", "checkpoint"),
        ("hf/model.safetensors", "model"),
        ("exp/model.pkl", "model"),
        ("mlruns/1/abc/metrics/loss", "metrics"),
        ("mlruns/1/abc/metrics/train/loss", "metrics"),
        ("mlruns/1/abc/params/lr", "config"),
        ("lightning_logs/version_0/metrics.csv", "metrics"),
        ("dvclive/plots/metrics/loss.tsv", "metrics"),
        ("data/train.csv", "data"),
        ("tb/events.out.tfevents.1700000000.gpu-node.h", "metrics"),
        ("x/config.json", "config"),
        ("x/eval_results.json", "metrics"),
        ("samples/step_100.png", "image"),
        ("train.py", "code"),
        ("wandb/run-1/files/output.log", "log"),
        ("notes.md", "doc"),
        ("blob", "other"),
    ],
)
def test_classify_by_name(path: str, kind: str) -> None:
    assert classify(path) == kind


@pytest.mark.parametrize(
    ("path", "head", "kind"),
    [
        ("plot.dat", b"\x89PNG\r\n\x1a\n....", "image"),
        ("weights.dat", b"\x80\x04\x95....", "model"),
        ("checkpoints/weights.dat", b"PK\x03\x04archive/data.pkl", "checkpoint"),
        ("notes.txt", b"hello", "doc"),
        ("model.gguf.part", b"GGUF\x03\x00\x00\x00", "model"),
    ],
)
def test_refine_by_magic(path: str, head: bytes, kind: str) -> None:
    assert refine(classify(path), path, head) == kind


_STEMS = (
    "model",
    "epoch=3-step=40",
    "checkpoint",
    "metrics",
    "results_x",
    "config",
    "hparams",
    "data",
    "best",
    "pytorch_model",
    "events.out.tfevents.1.host",
    "requirements",
    "requirements-dev",
    "[red]x[/red]",
    "caf\udce9",
    "x.pth",
)
_FOLDERS = (
    "",
    "run",
    "run/checkpoints",
    "hf/checkpoint-500",
    "a/ckpt",
    "metrics",
    "mlruns/0/r/metrics",
    "x/plots/y",
    "mlruns/0/r/params",
    "mlruns/0/r/tags",
    "Checkpoints",
    "logs",
)


def _names() -> list[str]:
    from store import kinds

    names = set(kinds._BY_NAME) | {"README", "noext", "METRICS", ".bin", "weird.", "a.pt.tar"}
    for ext in kinds._BY_EXT:
        names.update(stem + ext for stem in _STEMS)
        names.update((stem + ext).upper() for stem in _STEMS)
    return sorted(names)


def test_a_kind_by_name_alone_is_the_kind_in_every_folder() -> None:
    """The scan keeps a name's kind for every file of that name: only right if no folder
    could change it."""
    from store.kinds import kind_by_name

    left_to_folder = 0
    for name in _names():
        alone = kind_by_name(name)
        in_folders = {classify(f"{folder}/{name}" if folder else name) for folder in _FOLDERS}
        if alone is not None:
            assert in_folders == {alone}, name
        else:
            left_to_folder += 1
    assert left_to_folder > 50  # weights, CSVs and JSON files, files without an extension
