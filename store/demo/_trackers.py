"""Experiment trackers' folders: MLflow's file store, W&B run folders, DVCLive, TensorBoard."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import yaml

from store.demo import _formats as fmt
from store.demo._checkpoints import MLP_SHAPES, StorageKeys, state_dict
from store.demo._tree import (
    DAY,
    GIT_COMMIT,
    HOST,
    HOUR,
    PID,
    USER,
    Tree,
    accuracy,
    curve,
    iso,
    stamp,
)

MLFLOW_STATUS = {"RUNNING": 1, "FINISHED": 3, "FAILED": 4, "KILLED": 5}
"""The file store keeps run status as these integers in ``meta.yaml``."""

MLMODEL = """\
artifact_path: {artifact_path}
flavors:
  python_function:
    data: data
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.pytorch
    pickle_module_name: mlflow.pytorch.pickle_module
    python_version: 3.11.9
  pytorch:
    code: null
    model_data: data
    pytorch_version: 2.4.1
mlflow_version: {mlflow_version}
{model_id}model_size_bytes: {size}
model_uuid: {model_uuid}
run_id: {run_id}
utc_time_created: '{created}'
"""


def _mlflow_model_files(
    tree: Tree,
    rel: str,
    *,
    artifact_path: str,
    run_id: str,
    model_id: str | None,
    mlflow_version: str,
    age: float,
) -> None:
    keys = StorageKeys()
    weights = fmt.torch_zip(
        state_dict(tree.rng, MLP_SHAPES, keys, 0.1),
        serialization_id=f"{tree.rng.getrandbits(60):019d}",
    )
    tree.write(f"{rel}/data/model.pth", weights, age)
    tree.write(f"{rel}/data/pickle_module_info.txt", "mlflow.pytorch.pickle_module", age)
    tree.write(
        f"{rel}/MLmodel",
        MLMODEL.format(
            artifact_path=artifact_path,
            mlflow_version=mlflow_version,
            model_id=f"model_id: {model_id}\n" if model_id else "",
            size=len(weights),
            model_uuid=model_id or tree.id_hex(32),
            run_id=run_id,
            created=stamp(tree.at(age), "%Y-%m-%d %H:%M:%S.000000"),
        ),
        age,
    )
    tree.write(
        f"{rel}/conda.yaml",
        CONDA_YAML.format(mlflow_version=mlflow_version),
        age,
    )
    tree.write(
        f"{rel}/python_env.yaml",
        PYTHON_ENV_YAML,
        age,
    )
    tree.write(f"{rel}/requirements.txt", f"mlflow=={mlflow_version}\ntorch==2.4.1\n", age)


def write_mlflow(tree: Tree) -> None:
    root = "mlruns"
    uri = (tree.root / root).as_uri()
    created = tree.at(9 * DAY)
    tree.mkdir(f"{root}/.trash", 9 * DAY)
    tree.yaml(
        f"{root}/0/meta.yaml",
        {
            "artifact_location": f"{uri}/0",
            "creation_time": int(created * 1000),
            "experiment_id": "0",
            "last_update_time": int(created * 1000),
            "lifecycle_stage": "active",
            "name": "Default",
        },
        9 * DAY,
    )
    exp_id = str(tree.rng.randrange(10**17, 10**18))
    tree.yaml(
        f"{root}/{exp_id}/meta.yaml",
        {
            "artifact_location": f"{uri}/{exp_id}",
            "creation_time": int(created * 1000) + 5000,
            "experiment_id": exp_id,
            "last_update_time": int(created * 1000) + 5000,
            "lifecycle_stage": "active",
            "name": "cifar10-mlp",
        },
        9 * DAY - 5,
    )
    tree.write(
        f"{root}/{exp_id}/tags/mlflow.note.content",
        "Sweep over learning rate for the small MLP.",
        9 * DAY - 5,
    )
    runs = [
        ("gentle-finch-412", "FINISHED", 8 * DAY, 0.001, 20),
        ("brave-otter-77", "FINISHED", 7 * DAY, 0.003, 20),
        ("noisy-heron-903", "FAILED", 6 * DAY, 0.03, 7),
    ]
    for index, (name, status, age, lr, epochs) in enumerate(runs):
        run_id = tree.id_hex(32)
        rel = f"{root}/{exp_id}/{run_id}"
        tree.run(rel, "mlflow")
        duration = epochs * 95.0
        start = tree.at(age)
        end_age = age - duration
        tree.yaml(
            f"{rel}/meta.yaml",
            {
                "artifact_uri": f"{uri}/{exp_id}/{run_id}/artifacts",
                "end_time": int((start + duration) * 1000),
                "entry_point_name": "",
                "experiment_id": exp_id,
                "lifecycle_stage": "active",
                "run_id": run_id,
                "run_name": name,
                "run_uuid": run_id,
                "source_name": "",
                "source_type": 4,
                "source_version": "",
                "start_time": int(start * 1000),
                "status": MLFLOW_STATUS[status],
                "tags": [],
                "user_id": USER,
            },
            end_age,
        )
        params = {
            "lr": lr,
            "batch_size": 128,
            "epochs": 20,
            "hidden_dim": 32,
            "optimizer": "adamw",
            "weight_decay": 0.01,
            "dropout": 0.1,
            "scheduler": "cosine",
            "warmup_epochs": 1,
            "seed": index,
        }
        for key, value in params.items():
            tree.write(f"{rel}/params/{key}", str(value), age - 1)
        tags = {
            "mlflow.runName": name,
            "mlflow.user": USER,
            "mlflow.source.name": "train.py",
            "mlflow.source.type": "LOCAL",
            "mlflow.source.git.commit": GIT_COMMIT,
        }
        for key, value in tags.items():
            tree.write(f"{rel}/tags/{key}", value, age - 1)
        steps = epochs
        diverged = status == "FAILED"
        train = curve(tree.rng, steps, 2.3, 0.4 + index * 0.05, 0.03)
        if diverged:
            train = [round(v * (1 + 0.6 * i), 4) for i, v in enumerate(train)]
        val = [round(v * 1.08 + 0.02, 4) for v in train]
        acc = accuracy(tree.rng, steps, 0.86 - index * 0.04)
        series = {"train_loss": train, "val_loss": val, "val_accuracy": acc}
        for key, values in series.items():
            lines = "".join(
                f"{int((start + (i + 1) * 95.0) * 1000)} {value} {i}\n"
                for i, value in enumerate(values)
            )
            tree.write(f"{rel}/metrics/{key}", lines, end_age)
        gpu = "".join(
            f"{int((start + i * 10.0) * 1000)} {round(60 + tree.rng.uniform(0, 35), 1)} {i}\n"
            for i in range(int(duration // 10.0))
        )
        tree.write(f"{rel}/metrics/system/gpu_0_utilization_percentage", gpu, end_age)
        if index == 0:
            _mlflow_model_files(
                tree,
                f"{rel}/artifacts/model",
                artifact_path="model",
                run_id=run_id,
                model_id=None,
                mlflow_version="2.16.2",
                age=end_age,
            )
        if index == 1:
            model_id = f"m-{tree.id_hex(32)}"
            mrel = f"{root}/{exp_id}/models/{model_id}"
            tree.yaml(
                f"{mrel}/meta.yaml",
                {
                    "artifact_location": f"{uri}/{exp_id}/models/{model_id}/artifacts",
                    "creation_timestamp": int((start + duration) * 1000),
                    "experiment_id": exp_id,
                    "last_updated_timestamp": int((start + duration) * 1000),
                    "model_id": model_id,
                    "model_type": "",
                    "name": "model",
                    "source_run_id": run_id,
                    "status": "READY",
                    "status_message": None,
                },
                end_age,
            )
            tree.write(f"{mrel}/tags/mlflow.user", USER, end_age)
            tree.write(f"{mrel}/tags/mlflow.source.git.commit", GIT_COMMIT, end_age)
            tree.write(f"{mrel}/params/lr", str(lr), end_age)
            tree.write(
                f"{mrel}/metrics/val_accuracy",
                f"{int((start + duration) * 1000)} {acc[-1]} {steps - 1} {run_id}\n",
                end_age,
            )
            _mlflow_model_files(
                tree,
                f"{mrel}/artifacts",
                artifact_path=f"{uri}/{exp_id}/models/{model_id}/artifacts",
                run_id=run_id,
                model_id=model_id,
                mlflow_version="3.1.4",
                age=end_age,
            )
            tree.run(mrel, "mlflow")
        if status == "FAILED":
            tree.write(
                f"{rel}/artifacts/stderr.txt",
                "RuntimeError: Function 'AddmmBackward0' returned nan values in its 0th output.\n",
                end_age,
            )


CONDA_YAML = """\
channels:
- conda-forge
dependencies:
- python=3.11.9
- pip<=24.2
- pip:
  - mlflow=={mlflow_version}
  - torch==2.4.1
name: mlflow-env
"""

PYTHON_ENV_YAML = """\
python: 3.11.9
build_dependencies:
- pip==24.2
- setuptools
- wheel
dependencies:
- -r requirements.txt
"""

DIFF_PATCH = """\
diff --git a/train.py b/train.py
--- a/train.py
+++ b/train.py
@@ -12,7 +12,7 @@ def main():
-    lr = 1e-3
+    lr = {lr}
     model = timm.create_model("vit_tiny_patch16_224", num_classes=10)
"""
"""The uncommitted change W&B saves next to a run as ``diff.patch``."""

WANDB_VERSION = "0.18.3"


def _wandb_config(params: Mapping[str, object], start: float) -> str:
    """``files/config.yaml``: ``wandb_version`` first, then each key as ``{desc, value}``."""
    config: dict[str, object] = {}
    config["_wandb"] = {
        "desc": None,
        "value": {
            "cli_version": WANDB_VERSION,
            "framework": "torch",
            "is_jupyter_run": False,
            "is_kaggle_kernel": False,
            "python_version": "3.11.9",
            "start_time": int(start),
            "t": {
                1: [1, 5, 41, 49, 53, 55],
                2: [1, 5, 41, 49, 53, 55],
                3: [13, 16, 23, 55],
                4: "3.11.9",
                5: WANDB_VERSION,
                8: [5],
                13: "linux-x86_64",
            },
        },
    }
    for key, value in params.items():
        config[key] = {"desc": None, "value": value}
    body: str = yaml.safe_dump(config, default_flow_style=False)
    return "wandb_version: 1\n\n" + body


def _wandb_debug_log(start: float, run_id: str, run_dir: str) -> str:
    when = stamp(start, "%Y-%m-%d %H:%M:%S")
    thread = f"MainThread:{PID}"
    entries = [
        ("101", "wandb_setup.py:_flush():79", f"Current SDK version is {WANDB_VERSION}"),
        ("102", "wandb_setup.py:_flush():79", f"Configure stats pid to {PID}"),
        ("110", "wandb_init.py:_log_setup():532", f"Logging user logs to {run_dir}/logs/debug.log"),
        ("111", "wandb_init.py:init():616", "calling init triggers"),
        ("930", "wandb_init.py:init():829", "starting run threads in backend"),
        ("990", "wandb_run.py:_on_init():2444", f"run {run_id} started"),
    ]
    return "".join(
        f"{when},{ms} INFO    {thread} [{where}] {text}\n" for ms, where, text in entries
    )


def write_wandb(tree: Tree) -> None:
    runs = [
        ("run", 5 * DAY, "finished", 3e-4, True, True),
        ("run", 4 * DAY, "finished", 1e-3, True, True),
        ("run", 3 * DAY, "crashed", 3e-3, True, False),
        ("offline-run", 2 * DAY, "finished", 1e-4, False, True),
    ]
    latest = ""
    for prefix, age, state, lr, with_requirements, whole_summary in runs:
        run_id = tree.id_wandb()
        start = tree.at(age)
        name = f"{prefix}-{stamp(start, '%Y%m%d_%H%M%S')}-{run_id}"
        rel = f"wandb/{name}"
        latest = name
        tree.run(rel, "wandb")
        steps = 300 if state == "finished" else 140
        duration = steps * 4.0
        end_age = age - duration
        params = {
            "lr": lr,
            "batch_size": 32,
            "model": "vit-tiny",
            "epochs": 10,
            "warmup_steps": 100,
            "dataset": "imagenette-160",
        }
        tree.write(f"{rel}/files/config.yaml", _wandb_config(params, start), age - 2)
        loss = curve(tree.rng, steps, 2.3, 0.5, 0.04)
        summary: dict[str, object] = {
            "train/loss": loss[-1],
            "train/lr": lr,
            "eval/accuracy": round(0.9 - abs(math.log10(lr) + 3.5) * 0.05, 4),
            "_step": steps - 1,
            "_runtime": round(duration, 3),
            "_timestamp": round(start + duration, 3),
            "_wandb": {"runtime": int(duration)},
        }
        text = json.dumps(summary)
        if not whole_summary:
            text = text[: len(text) // 2]
            tree.hazards["truncated_json"] = tree.root / rel / "files/wandb-summary.json"
        tree.write(f"{rel}/files/wandb-summary.json", text, end_age)
        tree.json(
            f"{rel}/files/wandb-metadata.json",
            {
                "os": "Linux-6.8.0-45-generic-x86_64-with-glibc2.39",
                "python": "3.11.9",
                "startedAt": iso(start),
                "args": ["--lr", str(lr)],
                "program": f"/home/{USER}/vision/train.py",
                "codePath": "train.py",
                "git": {"remote": "git@github.com:ada/vision.git", "commit": GIT_COMMIT},
                "email": None,
                "root": f"/home/{USER}/vision",
                "host": HOST,
                "username": USER,
                "executable": f"/home/{USER}/.venv/bin/python",
                "cpu_count": 16,
                "cpu_count_logical": 32,
                "gpu": "NVIDIA A100-SXM4-40GB",
                "gpu_count": 1,
                "disk": {"/": {"total": 1967317618688, "used": 811729448960}},
                "memory": {"total": 270355738624},
            },
            age - 2,
        )
        log = [f"Epoch 1/10: starting, lr={lr}"]
        log += [f"step {i:>5}  loss {value:.4f}" for i, value in enumerate(loss) if i % 25 == 0]
        if state == "crashed":
            log += [
                "Traceback (most recent call last):",
                '  File "train.py", line 212, in <module>',
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            ]
        tree.write(f"{rel}/files/output.log", "\n".join(log) + "\n", end_age)
        for epoch in (1, 10):
            tree.write(
                f"{rel}/files/media/images/predictions_{epoch * 30}_{tree.id_hex(20)}.png",
                fmt.png(4, 4, [[(epoch * 20, 90, 200 - epoch * 10)] * 4] * 4),
                age - epoch * 60,
            )
        tree.write(f"{rel}/files/diff.patch", DIFF_PATCH.format(lr=lr), age - 2)
        if with_requirements:
            tree.write(
                f"{rel}/files/requirements.txt",
                f"numpy==2.1.2\ntorch==2.4.1\ntimm==1.0.9\nwandb=={WANDB_VERSION}\n",
                age - 2,
            )
        else:
            tree.hazards["missing_requirements"] = tree.root / rel
        tree.write(
            f"{rel}/logs/debug.log", _wandb_debug_log(start, run_id, str(tree.root / rel)), end_age
        )
        tree.write(
            f"{rel}/logs/debug-internal.log",
            f"{iso(start)} INFO    HandlerThread:{PID} [handler.py:handle_run_start()] started\n",
            end_age,
        )
        for _ in range(512):  # drawn as before, so the rest of the demo stays the same
            tree.rng.getrandbits(8)
        tree.write(
            f"{rel}/run-{run_id}.wandb",
            fmt.WANDB_HEADER + bytes(512),  # a log with no record yet: zero padding
            end_age,
        )
    tree.symlink("wandb/latest-run", latest, 2 * DAY)


def write_dvclive(tree: Tree) -> None:
    rel = "exp-dvc/dvclive"
    tree.run("exp-dvc", "dvclive")
    age = 10 * HOUR
    start = tree.at(age)
    steps = 30
    loss = curve(tree.rng, steps, 1.9, 0.3, 0.03)
    acc = accuracy(tree.rng, steps, 0.91)
    for name, values in (("train/loss", loss), ("eval/acc", acc)):
        column = name.rsplit("/", 1)[-1]
        rows = [f"timestamp\tstep\t{column}"]
        rows += [f"{int((start + i * 20) * 1000)}\t{i}\t{value}" for i, value in enumerate(values)]
        tree.write(f"{rel}/plots/metrics/{name}.tsv", "\n".join(rows) + "\n", age - steps * 20)
    tree.json(
        f"{rel}/metrics.json",
        {"train": {"loss": loss[-1]}, "eval": {"acc": acc[-1]}, "step": steps - 1},
        age - steps * 20,
        indent=4,
    )
    tree.yaml(
        f"{rel}/params.yaml", {"lr": 0.002, "epochs": 30, "model": "resnet18", "augment": True}, age
    )
    tree.yaml(
        f"{rel}/dvc.yaml",
        {
            "params": ["params.yaml"],
            "metrics": ["metrics.json"],
            "plots": [{"plots/metrics": {"x": "step"}}],
            "artifacts": {"classifier": {"path": "../model.pt", "type": "model"}},
        },
        age,
    )
    keys = StorageKeys()
    tree.write(
        "exp-dvc/model.pt",
        fmt.torch_zip(
            state_dict(tree.rng, MLP_SHAPES, keys, 0.1),
            serialization_id=f"{tree.rng.getrandbits(60):019d}",
        ),
        age - steps * 20,
    )
    tree.write(
        "exp-dvc/params.yaml", "lr: 0.002\nepochs: 30\nmodel: resnet18\naugment: true\n", age
    )


def write_tensorboard(tree: Tree) -> None:
    rel = "tb_runs/resnet-baseline"
    tree.run(rel, "tensorboard")
    age = 6 * HOUR
    start = tree.at(age)
    loss = curve(tree.rng, 60, 2.3, 0.6, 0.04)
    acc = accuracy(tree.rng, 60, 0.79)
    rows = [
        (start + i * 30.0, i * 100, {"Loss/train": loss[i], "Accuracy/test": acc[i]})
        for i in range(60)
    ]
    name = f"events.out.tfevents.{int(start)}.{HOST}.{PID + 7}.0"
    tree.write(f"{rel}/{name}", fmt.event_file(start, rows), age - 60 * 30)
