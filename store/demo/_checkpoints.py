"""Checkpoint contents shaped like what torch, Lightning and transformers save."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from store.demo import _formats as fmt


class StorageKeys:
    """Hands out storage keys ``"0"``, ``"1"``, ... within one torch zip file."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> str:
        self.next += 1
        return str(self.next - 1)


def state_dict(
    rng: random.Random,
    shapes: Sequence[tuple[str, tuple[int, ...]]],
    keys: StorageKeys,
    scale: float,
) -> fmt.OrderedDictOf:
    params: dict[str, object] = {}
    for name, shape in shapes:
        count = math.prod(shape)
        params[name] = fmt.TensorRef(
            keys(), fmt.Tensor.of(shape, [rng.gauss(0, scale) for _ in range(count)])
        )
    return fmt.OrderedDictOf(params)


MLP_SHAPES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("model.encoder.0.weight", (32, 16)),
    ("model.encoder.0.bias", (32,)),
    ("model.encoder.2.weight", (16, 32)),
    ("model.encoder.2.bias", (16,)),
    ("model.head.weight", (10, 16)),
    ("model.head.bias", (10,)),
)
"""The small classifier whose checkpoints the Lightning and Hydra runs save."""

LIGHTNING_HPARAMS = """\
lr: 0.001
batch_size: 64
hidden_dim: 32
dropout: 0.1
optimizer: adamw
betas: !!python/tuple
- 0.9
- 0.999
max_epochs: {epochs}
seed: {seed}
"""


def adam_state(
    rng: random.Random, shapes: Sequence[tuple[str, tuple[int, ...]]], keys: StorageKeys, step: int
) -> dict[str, object]:
    """An ``optimizer.state_dict()`` of Adam(W): per-parameter moments and one param group."""
    state: dict[object, object] = {}
    for index, (_name, shape) in enumerate(shapes):
        count = math.prod(shape)
        state[index] = {
            "step": fmt.TensorRef(keys(), fmt.Tensor((), fmt.Tensor.of((1,), [float(step)]).data)),
            "exp_avg": fmt.TensorRef(
                keys(), fmt.Tensor.of(shape, [rng.gauss(0, 1e-3) for _ in range(count)])
            ),
            "exp_avg_sq": fmt.TensorRef(
                keys(), fmt.Tensor.of(shape, [abs(rng.gauss(0, 1e-6)) for _ in range(count)])
            ),
        }
    group = {
        "lr": 0.001,
        "betas": (0.9, 0.999),
        "eps": 1e-08,
        "weight_decay": 0.01,
        "amsgrad": False,
        "foreach": None,
        "maximize": False,
        "capturable": False,
        "differentiable": False,
        "fused": None,
        "params": list(range(len(shapes))),
    }
    return {"state": state, "param_groups": [group]}


def lightning_checkpoint(
    rng: random.Random, *, epoch: int, step: int, val_loss: float, epochs: int, seed: int
) -> bytes:
    """A Lightning ``.ckpt``: torch zip of the dict ``Trainer.save_checkpoint`` builds."""
    keys = StorageKeys()
    weights = state_dict(rng, MLP_SHAPES, keys, 0.1)
    monitor = (
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0,"
        " 'every_n_epochs': 1, 'train_time_interval': None}"
    )
    checkpoint = {
        "epoch": epoch,
        "global_step": step,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": weights,
        "loops": {
            "fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"completed": epoch}}}
        },
        "callbacks": {
            monitor: {
                "monitor": "val_loss",
                "best_model_score": fmt.TensorRef(keys(), fmt.Tensor.of((), [val_loss])),
                "save_top_k": 2,
            }
        },
        "optimizer_states": [adam_state(rng, MLP_SHAPES[-2:], keys, step)],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {
            "lr": 0.001,
            "batch_size": 64,
            "hidden_dim": 32,
            "betas": (0.9, 0.999),
            "max_epochs": epochs,
            "seed": seed,
        },
    }
    return fmt.torch_zip(checkpoint, serialization_id=f"{rng.getrandbits(60):019d}")


BERT_CONFIG: dict[str, object] = {
    "_name_or_path": "prajjwal1/bert-tiny",
    "architectures": ["BertForSequenceClassification"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 8,
    "id2label": {"0": "negative", "1": "positive"},
    "initializer_range": 0.02,
    "intermediate_size": 16,
    "label2id": {"negative": 0, "positive": 1},
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 32,
    "model_type": "bert",
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "problem_type": "single_label_classification",
    "torch_dtype": "float32",
    "transformers_version": "4.45.2",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 64,
}


def bert_shapes() -> list[tuple[str, tuple[int, ...]]]:
    """Parameter names and shapes of ``BertForSequenceClassification`` for ``BERT_CONFIG``."""
    hidden, inter, vocab, positions = 8, 16, 64, 32
    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("bert.embeddings.LayerNorm.bias", (hidden,)),
        ("bert.embeddings.LayerNorm.weight", (hidden,)),
        ("bert.embeddings.position_embeddings.weight", (positions, hidden)),
        ("bert.embeddings.token_type_embeddings.weight", (2, hidden)),
        ("bert.embeddings.word_embeddings.weight", (vocab, hidden)),
    ]
    for layer in range(2):
        base = f"bert.encoder.layer.{layer}"
        for part in ("query", "key", "value"):
            shapes += [
                (f"{base}.attention.self.{part}.weight", (hidden, hidden)),
                (f"{base}.attention.self.{part}.bias", (hidden,)),
            ]
        shapes += [
            (f"{base}.attention.output.dense.weight", (hidden, hidden)),
            (f"{base}.attention.output.dense.bias", (hidden,)),
            (f"{base}.attention.output.LayerNorm.weight", (hidden,)),
            (f"{base}.attention.output.LayerNorm.bias", (hidden,)),
            (f"{base}.intermediate.dense.weight", (inter, hidden)),
            (f"{base}.intermediate.dense.bias", (inter,)),
            (f"{base}.output.dense.weight", (hidden, inter)),
            (f"{base}.output.dense.bias", (hidden,)),
            (f"{base}.output.LayerNorm.weight", (hidden,)),
            (f"{base}.output.LayerNorm.bias", (hidden,)),
        ]
    shapes += [
        ("bert.pooler.dense.weight", (hidden, hidden)),
        ("bert.pooler.dense.bias", (hidden,)),
        ("classifier.weight", (2, hidden)),
        ("classifier.bias", (2,)),
    ]
    return shapes


def bert_safetensors(rng: random.Random) -> bytes:
    tensors = {
        name: fmt.Tensor.of(shape, [rng.gauss(0, 0.02) for _ in range(math.prod(shape))])
        for name, shape in sorted(bert_shapes())
    }
    return fmt.safetensors(tensors, {"format": "pt"})


def training_args(output_dir: str, logging_dir: str) -> bytes:
    """``training_args.bin``: ``torch.save`` of a ``TrainingArguments``, pickled by reference."""
    state = {
        "output_dir": output_dir,
        "overwrite_output_dir": False,
        "do_train": True,
        "do_eval": True,
        "eval_strategy": "steps",
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 64,
        "learning_rate": 5e-05,
        "weight_decay": 0.01,
        "num_train_epochs": 3.0,
        "warmup_ratio": 0.06,
        "logging_dir": logging_dir,
        "logging_steps": 50,
        "save_steps": 500,
        "eval_steps": 500,
        "save_total_limit": 3,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_accuracy",
        "seed": 42,
        "report_to": ["tensorboard"],
    }
    value = fmt.NewObject(fmt.Global("transformers.training_args", "TrainingArguments"), state)
    return fmt.torch_zip(value, serialization_id="1000493762839173829")
