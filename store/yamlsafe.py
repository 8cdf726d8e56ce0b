"""YAML loading that never runs code and never chokes on Python tags.

Training tools dump configs with ``yaml.dump`` (Lightning ``hparams.yaml``, Hydra, W&B), so
real files carry ``!!python/tuple``, ``!!python/object/apply:...`` and ``!!python/name:...``
tags that ``yaml.safe_load`` rejects.  ``load_yaml`` keeps the safe constructor for every
standard tag and turns any other tag into plain data, so a config is readable without
importing (let alone executing) what it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.safeparse import Repeat


class YamlError(ValueError):
    """Malformed YAML; the message is one line."""


class YamlTooLarge(YamlError):
    """YAML that may well be sound but is past what is built of it (an alias bomb): not
    read, rather than called malformed where that matters (a preview)."""


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML document into plain data (dict, list, str, numbers, ...).

    Raises ``YamlError`` with a one-line message on malformed input.
    """
    from store._plainyaml import load  # PyYAML is imported by the first read

    return load(text)


def load_yaml_repeats(text: str | bytes, *, tags: bool = False) -> tuple[Any, list[Repeat], int]:
    """``load_yaml``, and the keys a mapping repeats (at most ``safeparse.MAX_REPEATS``
    with their values, then the number past those): PyYAML keeps a repeated key's last
    value without a word, where ruamel and OmegaConf refuse the file.  ``tags``: a value
    under a tag that names a class or is not YAML's own keeps the tag as its
    ``__tag__`` key (for a diff, where two classes given one state are not equal)."""
    from store._plainyaml import load_with_repeats

    return load_with_repeats(text, tags=tags)
