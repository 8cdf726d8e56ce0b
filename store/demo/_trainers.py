"""Trainers' output folders: Lightning versions, a Hugging Face Trainer output dir, Hydra runs."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from store.demo import _formats as fmt
from store.demo._checkpoints import (
    BERT_CONFIG,
    LIGHTNING_HPARAMS,
    MLP_SHAPES,
    StorageKeys,
    adam_state,
    bert_safetensors,
    bert_shapes,
    lightning_checkpoint,
    state_dict,
    training_args,
)
from store.demo._tree import DAY, HOST, HOUR, PID, USER, Tree, accuracy, curve, stamp

MODEL_CARD = """\
---
library_name: transformers
base_model: prajjwal1/bert-tiny
tags:
- generated_from_trainer
metrics:
- accuracy
---

# bert-tiny-sst2

This model is a fine-tuned version of prajjwal1/bert-tiny on the sst2 dataset.
"""
"""The model card ``Trainer.create_model_card`` writes, trimmed."""


def _lightning_version(
    tree: Tree, version: int, age: float, *, epochs: int, crashed: bool, with_tb: bool
) -> None:
    rel = f"lightning_logs/version_{version}"
    tree.run(rel, "lightning")
    tree.write(f"{rel}/hparams.yaml", LIGHTNING_HPARAMS.format(epochs=20, seed=version), age)
    steps_per_epoch = 50
    log_every = 10
    train = curve(tree.rng, epochs * steps_per_epoch // log_every, 2.2, 0.35 + version * 0.03, 0.05)
    val = curve(tree.rng, epochs, 2.0, 0.42 + version * 0.03, 0.02)
    acc = accuracy(tree.rng, epochs, 0.88 - version * 0.02)
    rows = ["epoch,step,train_loss,val_acc,val_loss"]
    tb_rows: list[tuple[float, int, dict[str, float]]] = []
    start = tree.at(age)
    seconds_per_step = 0.9
    for index, value in enumerate(train):
        step = (index + 1) * log_every - 1
        epoch = step // steps_per_epoch
        rows.append(f"{epoch},{step},{value},,")
        tb_rows.append((start + step * seconds_per_step, step, {"train_loss": value}))
        if (step + 1) % steps_per_epoch == 0:
            rows.append(f"{epoch},{step},,{acc[epoch]},{val[epoch]}")
            tb_rows.append(
                (
                    start + step * seconds_per_step + 3,
                    step,
                    {"val_loss": val[epoch], "val_acc": acc[epoch]},
                )
            )
    duration = epochs * steps_per_epoch * seconds_per_step
    end_age = age - duration
    tree.write(f"{rel}/metrics.csv", "\n".join(rows) + "\n", end_age)
    if with_tb:
        name = f"events.out.tfevents.{int(start)}.{HOST}.{PID}.0"
        tree.write(f"{rel}/{name}", fmt.event_file(start, tb_rows), end_age)
    best = sorted(range(epochs), key=lambda e: val[e])[:2]
    for epoch in best:
        step = (epoch + 1) * steps_per_epoch - 1
        ckpt_age = age - (epoch + 1) * steps_per_epoch * seconds_per_step
        data = lightning_checkpoint(
            tree.rng, epoch=epoch, step=step + 1, val_loss=val[epoch], epochs=20, seed=version
        )
        tree.write(f"{rel}/checkpoints/epoch={epoch}-step={step + 1}.ckpt", data, ckpt_age)
    last_step = epochs * steps_per_epoch
    if crashed:
        # save_last="link" points last.ckpt at a checkpoint that the crash never finished writing
        target = f"epoch={epochs}-step={last_step + steps_per_epoch}.ckpt"
        tree.symlink(f"{rel}/checkpoints/last.ckpt", target, end_age)
        tree.hazards["dangling_symlink"] = tree.root / rel / "checkpoints/last.ckpt"
    else:
        data = lightning_checkpoint(
            tree.rng, epoch=epochs - 1, step=last_step, val_loss=val[-1], epochs=20, seed=version
        )
        tree.write(f"{rel}/checkpoints/last.ckpt", data, end_age)


def write_lightning(tree: Tree) -> None:
    _lightning_version(tree, 0, 3 * DAY, epochs=20, crashed=False, with_tb=False)
    _lightning_version(tree, 1, 2 * DAY + 5 * HOUR, epochs=6, crashed=True, with_tb=False)
    _lightning_version(tree, 2, 1 * DAY + 2 * HOUR, epochs=20, crashed=False, with_tb=True)


def write_hf(tree: Tree) -> None:
    out = "hf/bert-tiny-sst2"
    tree.run(out, "hf-trainer")
    age = 20 * HOUR
    start = tree.at(age)
    total_steps = 1500
    seconds_per_step = 0.6
    loss = curve(tree.rng, total_steps // 50, 0.69, 0.22, 0.03)
    evals = {500: (0.4312, 0.8314), 1000: (0.3528, 0.8670), 1500: (0.3611, 0.8635)}
    history: list[dict[str, object]] = []
    tb_rows: list[tuple[float, int, dict[str, float]]] = []
    for index, value in enumerate(loss):
        step = (index + 1) * 50
        epoch = round(step / 500, 4)
        lr = round(5e-05 * (1 - step / total_steps), 10)
        grad_norm = round(abs(tree.rng.gauss(2.0, 0.6)), 4)
        history.append(
            {
                "epoch": epoch,
                "grad_norm": grad_norm,
                "learning_rate": lr,
                "loss": value,
                "step": step,
            }
        )
        tb_rows.append(
            (
                start + step * seconds_per_step,
                step,
                {"train/loss": value, "train/learning_rate": lr, "train/grad_norm": grad_norm},
            )
        )
        if step in evals:
            eval_loss, eval_acc = evals[step]
            history.append(
                {
                    "epoch": epoch,
                    "eval_accuracy": eval_acc,
                    "eval_loss": eval_loss,
                    "eval_runtime": 2.7031,
                    "eval_samples_per_second": 322.59,
                    "eval_steps_per_second": 5.179,
                    "step": step,
                }
            )
            tb_rows.append(
                (
                    start + step * seconds_per_step + 3,
                    step,
                    {"eval/loss": eval_loss, "eval/accuracy": eval_acc},
                )
            )
    train_summary: dict[str, object] = {
        "epoch": 3.0,
        "step": total_steps,
        "total_flos": 1.29e12,
        "train_loss": round(sum(loss) / len(loss), 4),
        "train_runtime": 905.12,
        "train_samples_per_second": 53.03,
        "train_steps_per_second": 1.657,
    }
    runs_dir = f"runs/{stamp(start, '%b%d_%H-%M-%S')}_{HOST}"
    output_dir = out

    def trainer_state(upto: int) -> dict[str, object]:
        seen = {s: evals[s] for s in evals if s <= upto}
        best_step = max(seen, key=lambda s: seen[s][1])
        entries = [h for h in history if int(str(h["step"])) <= upto]
        if upto == total_steps:
            entries.append(train_summary)
        return {
            "best_metric": seen[best_step][1],
            "best_model_checkpoint": f"{output_dir}/checkpoint-{best_step}",
            "epoch": round(upto / 500, 1),
            "eval_steps": 500,
            "global_step": upto,
            "is_hyper_param_search": False,
            "is_local_process_zero": True,
            "is_world_process_zero": True,
            "log_history": entries,
            "logging_steps": 50,
            "max_steps": total_steps,
            "num_input_tokens_seen": 0,
            "num_train_epochs": 3,
            "save_steps": 500,
            "stateful_callbacks": {
                "TrainerControl": {
                    "args": {
                        "should_epoch_stop": False,
                        "should_evaluate": False,
                        "should_log": False,
                        "should_save": True,
                        "should_training_stop": upto == total_steps,
                    },
                    "attributes": {},
                }
            },
            "total_flos": round(1.29e12 * upto / total_steps),
            "train_batch_size": 32,
            "trial_name": None,
            "trial_params": None,
        }

    args = training_args(output_dir, f"{output_dir}/{runs_dir}")
    shapes = bert_shapes()
    for step in (500, 1000, 1500):
        ckpt = f"{out}/checkpoint-{step}"
        ckpt_age = age - step * seconds_per_step
        tree.json(f"{ckpt}/config.json", BERT_CONFIG, ckpt_age)
        tree.write(f"{ckpt}/model.safetensors", bert_safetensors(tree.rng), ckpt_age)
        tree.json(f"{ckpt}/trainer_state.json", trainer_state(step), ckpt_age)
        tree.write(f"{ckpt}/training_args.bin", args, ckpt_age)
        optimizer = adam_state(tree.rng, shapes, StorageKeys(), step)
        tree.write(
            f"{ckpt}/optimizer.pt",
            fmt.torch_zip(optimizer, serialization_id=f"{tree.rng.getrandbits(60):019d}"),
            ckpt_age,
        )
        keys = StorageKeys()
        scheduler = {
            "base_lrs": [5e-05],
            "last_epoch": step,
            "verbose": False,
            "_step_count": step + 1,
            "_get_lr_called_within_step": False,
            "_last_lr": [5e-05 * (1 - step / total_steps)],
            "lr_lambdas": [None],
        }
        tree.write(
            f"{ckpt}/scheduler.pt",
            fmt.torch_zip(scheduler, serialization_id=f"{tree.rng.getrandbits(60):019d}"),
            ckpt_age,
        )
        rng_state = {
            "python": (3, tuple(range(8)), None),
            "cpu": fmt.TensorRef(keys(), fmt.Tensor.of((4,), [0.0, 1.0, 2.0, 3.0])),
        }
        tree.write(
            f"{ckpt}/rng_state.pth",
            fmt.torch_zip(rng_state, serialization_id=f"{tree.rng.getrandbits(60):019d}"),
            ckpt_age,
        )
    end_age = age - total_steps * seconds_per_step - 30
    tree.json(f"{out}/config.json", BERT_CONFIG, end_age)
    tree.write(f"{out}/model.safetensors", bert_safetensors(tree.rng), end_age)
    tree.json(f"{out}/trainer_state.json", trainer_state(total_steps), end_age)
    tree.write(f"{out}/training_args.bin", args, end_age)
    eval_results = {
        "epoch": 3.0,
        "eval_accuracy": 0.867,
        "eval_loss": 0.3528,
        "eval_runtime": 2.6915,
        "eval_samples_per_second": 323.98,
        "eval_steps_per_second": 5.202,
    }
    tree.json(f"{out}/eval_results.json", eval_results, end_age, indent=4)
    train_results = {k: v for k, v in train_summary.items() if k != "step"}
    tree.json(f"{out}/train_results.json", train_results, end_age, indent=4)
    tree.json(f"{out}/all_results.json", {**eval_results, **train_results}, end_age, indent=4)
    tree.json(
        f"{out}/special_tokens_map.json",
        {
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
            "pad_token": "[PAD]",
            "sep_token": "[SEP]",
            "unk_token": "[UNK]",
        },
        end_age,
    )
    tree.json(
        f"{out}/tokenizer_config.json",
        {"do_lower_case": True, "model_max_length": 32, "tokenizer_class": "BertTokenizer"},
        end_age,
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"tok{i}" for i in range(59)]
    tree.write(f"{out}/vocab.txt", "\n".join(vocab) + "\n", end_age)
    tree.write(
        f"{out}/README.md",
        MODEL_CARD,
        end_age,
    )
    name = f"events.out.tfevents.{int(start)}.{HOST}.{PID}.0"
    tree.write(f"{out}/{runs_dir}/{name}", fmt.event_file(start, tb_rows), end_age)


def _hydra_yaml(
    mode: str,
    run_dir: str,
    sweep_dir: str,
    overrides: Sequence[str],
    job_num: int | None,
    cwd: str,
    output_dir: str,
) -> dict[str, object]:
    job: dict[str, object] = {
        "name": "main",
        "chdir": None,
        "override_dirname": ",".join(overrides),
        "id": "???" if job_num is None else f"{job_num}",
        "num": "???" if job_num is None else job_num,
        "config_name": "config",
        "env_set": {},
        "env_copy": [],
        "config": {"override_dirname": {"kv_sep": "=", "item_sep": ",", "exclude_keys": []}},
    }
    return {
        "hydra": {
            "run": {"dir": "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}"},
            "sweep": {
                "dir": "multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}",
                "subdir": "${hydra.job.num}",
            },
            "launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
            "sweeper": {
                "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "max_batch_size": None,
                "params": None,
            },
            "help": {"app_name": "${hydra.job.name}"},
            "output_subdir": ".hydra",
            "overrides": {"hydra": [f"hydra.mode={mode}"], "task": list(overrides)},
            "job": job,
            "runtime": {
                "version": "1.3.2",
                "version_base": "1.3",
                "cwd": cwd,
                "config_sources": [
                    {"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
                    {"path": f"{cwd}/conf", "schema": "file", "provider": "main"},
                ],
                "output_dir": output_dir,
                "choices": {"model": "mlp", "hydra/launcher": "basic", "hydra/sweeper": "basic"},
            },
            "verbose": False,
            "mode": mode,
        }
    }


def _hydra_job(
    tree: Tree,
    rel: str,
    age: float,
    overrides: Sequence[str],
    *,
    mode: str,
    job_num: int | None,
    sweep_dir: str,
) -> None:
    tree.run(rel, "hydra")
    params = {"lr": 0.001, "epochs": 10, "batch_size": 64}
    for item in overrides:
        key, _, value = item.partition("=")
        params[key] = yaml.safe_load(value)
    config = {
        "model": {"name": "mlp", "hidden_dim": 32, "dropout": 0.1},
        "train": params,
        "data": {"path": "data/cifar10", "num_workers": 4},
        "seed": 0,
    }
    cwd = f"/home/{USER}/cifar"
    tree.yaml(f"{rel}/.hydra/config.yaml", config, age)
    tree.yaml(
        f"{rel}/.hydra/hydra.yaml",
        _hydra_yaml(mode, rel, sweep_dir, overrides, job_num, cwd, str(tree.root / rel)),
        age,
    )
    tree.yaml(f"{rel}/.hydra/overrides.yaml", list(overrides), age)
    start = tree.at(age)
    epochs = int(params["epochs"])
    loss = curve(tree.rng, epochs, 2.1, 0.5, 0.03)
    lines = [
        f"[{stamp(start + i * 40, '%Y-%m-%d %H:%M:%S')},{i * 37 % 1000:03d}][__main__][INFO]"
        f" - epoch {i} loss {value:.4f}"
        for i, value in enumerate(loss)
    ]
    end_age = age - epochs * 40
    tree.write(f"{rel}/main.log", "\n".join(lines) + "\n", end_age)
    keys = StorageKeys()
    tree.write(
        f"{rel}/checkpoints/best.pt",
        fmt.torch_zip(
            state_dict(tree.rng, MLP_SHAPES, keys, 0.1),
            serialization_id=f"{tree.rng.getrandbits(60):019d}",
        ),
        end_age,
    )


def write_hydra(tree: Tree) -> None:
    for age, overrides in ((30 * HOUR, ["lr=0.001"]), (26 * HOUR, ["lr=0.01", "epochs=15"])):
        start = tree.at(age)
        rel = f"outputs/{stamp(start, '%Y-%m-%d')}/{stamp(start, '%H-%M-%S')}"
        _hydra_job(tree, rel, age, overrides, mode="RUN", job_num=None, sweep_dir="")
    age = 12 * HOUR
    start = tree.at(age)
    sweep = f"multirun/{stamp(start, '%Y-%m-%d')}/{stamp(start, '%H-%M-%S')}"
    for num, lr in enumerate(("0.001", "0.003")):
        _hydra_job(
            tree,
            f"{sweep}/{num}",
            age - num * 500,
            [f"lr={lr}"],
            mode="MULTIRUN",
            job_num=num,
            sweep_dir=sweep,
        )
    tree.yaml(
        f"{sweep}/multirun.yaml",
        _hydra_yaml(
            "MULTIRUN",
            sweep,
            sweep,
            ["lr=0.001,0.003"],
            None,
            f"/home/{USER}/cifar",
            str(tree.root / sweep),
        ),
        age,
    )
