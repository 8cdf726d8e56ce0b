"""One guess of which way is better, shared by summaries, diffs and retention."""

from __future__ import annotations

import pytest

from store.diff import metric_direction
from store.frameworks import direction_of as framework_direction
from store.metric_direction import direction_of
from store.retention.policy import metric_mode


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("val_loss", "min"),
        ("train/loss_epoch", "min"),
        ("eval_accuracy", "max"),
        ("val/acc", "max"),
        ("map50", "max"),
        ("test.top1", "max"),
        ("exact_match", "max"),
        ("perplexity", "min"),
        ("learning_rate", None),
        ("epoch", None),
        # Detectron2 / MMDetection's COCO results
        ("bbox/AP", "max"),
        ("segm/AP50", "max"),
        ("bbox/APs", "max"),
        ("coco/bbox_mAP_50", "max"),
        ("AR100", "max"),
        ("apple_count", None),
        # Keras' loss-named metrics
        ("val_binary_crossentropy", "min"),
        ("sparse_categorical_crossentropy", "min"),
        ("squared_hinge", "min"),
        ("kl_divergence", "min"),
        ("logcosh", "min"),
        ("cosine_similarity", "max"),
    ],
)
def test_every_part_of_the_store_agrees(name: str, want: str | None) -> None:
    assert direction_of(name) == want
    assert framework_direction(name) == want
    assert metric_direction(name) == want
    assert metric_mode(name) == want
