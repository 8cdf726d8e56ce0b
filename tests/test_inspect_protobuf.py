"""Model formats that are bare protobuf messages (a TensorFlow SavedModel's ``.pb`` files,
ONNX) are recognised by name whatever their first bytes: never "not a model"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.inspect import inspect_file
from store.integrity import check_paths

# A TensorFlow SavedModel is a folder of bare protobuf messages: ``saved_model.pb`` (the
# graphs, whose ops read and write files) and, from tf.keras, ``keras_metadata.pb`` (the
# model's config, where a Lambda layer keeps its function as marshalled bytecode that
# tf.keras.models.load_model runs).  Protobuf has no magic and its fields come in any
# order, so a file named ``.pb`` or ``.onnx`` is what its loader parses, never "no model".


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _keras_metadata_with_lambda() -> bytes:
    """A ``SavedMetadata`` message: field 1, one ``SavedObject`` node whose field 3 is its
    Keras JSON, a Lambda layer with a (placeholder) marshalled function."""
    config = {
        "class_name": "Lambda",
        "config": {"function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda"},
    }
    node = _field(1, b"_tf_keras_layer") + _field(3, json.dumps(config).encode())
    return _field(1, node)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("saved_model.pb", b"\x08\x01" + _field(2, _field(1, b"serve"))),
        ("keras_metadata.pb", _keras_metadata_with_lambda()),
        # the same message opening with a field the reader does not expect first
        ("keras_metadata.pb", _field(1000, b"x") + _keras_metadata_with_lambda()),
        ("frozen_graph.pb", _field(1, _field(1, b"x") + _field(2, b"WriteFile"))),
        ("model.onnx", _field(25, b"f") + b"\x08\x07"),
    ],
    ids=["saved_model", "keras_metadata", "keras_metadata-late-field", "graph", "onnx-late"],
)
def test_a_protobuf_model_is_unknown_never_not_a_model(
    tmp_path: Path, name: str, data: bytes
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / name).write_bytes(data)
    found = inspect_file(folder / name)
    assert found.verdict == "unknown", found.reasons
    assert found.format == ("onnx" if name.endswith(".onnx") else "tensorflow")
    checks = check_paths([str(tmp_path)])
    assert [c.verdict for c in checks] == ["unknown"]
