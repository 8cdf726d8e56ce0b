"""A GGUF file may hold several chat templates: the default ``tokenizer.chat_template`` and
named ones, ``tokenizer.chat_template.<name>`` (tool use, RAG), which llama-cpp-python
offers as ``chat_template.<name>`` and renders with the same unsandboxed Jinja.  Each is
read for escapes, whatever its key, its type (a string or an array of strings) or how
often it is repeated.  Nothing is rendered."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from store.inspect import inspect_file

_ESCAPE = "{{ cycler.__init__.__globals__.os.popen('touch x').read() }}"
_BUILT = "{{ lipsum['_'*2~'glo'~'bals'~'_'*2] }}"
_PLAIN = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<Q", len(raw)) + raw


def _string(key: str, value: str) -> bytes:
    return _text(key) + struct.pack("<I", 8) + _text(value)


def _strings(key: str, values: list[str]) -> bytes:
    items = b"".join(_text(v) for v in values)
    return _text(key) + struct.pack("<IIQ", 9, 8, len(values)) + items


def _gguf(*pairs: bytes) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + b"".join(pairs)


@pytest.mark.parametrize(
    ("pairs", "verdict"),
    [
        ([_string("tokenizer.chat_template.tool_use", _ESCAPE)], "dangerous"),
        (
            [
                _string("tokenizer.chat_template", _PLAIN),
                _string("tokenizer.chat_template.rag", _ESCAPE),
            ],
            "dangerous",
        ),
        ([_string("tokenizer.chat_template.tool_use", _BUILT)], "unknown"),
        # a repeated key: a reader that keeps the first one renders the escape
        (
            [
                _string("tokenizer.chat_template", _ESCAPE),
                _string("tokenizer.chat_template", _PLAIN),
            ],
            "dangerous",
        ),
        ([_strings("tokenizer.chat_template", [_ESCAPE])], "dangerous"),
        ([_strings("tokenizer.chat_template", [_PLAIN])], "unknown"),
    ],
    ids=["named", "named-beside-default", "named-built", "repeated", "array", "plain-array"],
)
def test_every_chat_template_is_read(tmp_path: Path, pairs: list[bytes], verdict: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(_gguf(*pairs))
    found = inspect_file(path)
    assert found.verdict == verdict, found.reasons


def test_plain_templates_under_any_key_stay_safe(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(
        _gguf(
            _string("tokenizer.chat_template", _PLAIN),
            _string("tokenizer.chat_template.tool_use", _PLAIN),
            _strings("tokenizer.chat_templates", ["tool_use"]),
        )
    )
    found = inspect_file(path)
    assert found.verdict == "safe", found.reasons
    assert any("chat_template" in r for r in found.reasons)
