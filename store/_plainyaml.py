"""The loader behind ``store.yamlsafe.load_yaml``, in its own module so that PyYAML is
imported by the first YAML read, not by every command (10 ms of each start)."""

from __future__ import annotations

from typing import Any

import yaml

from store.yamlsafe import YamlError

_STD_PREFIX = "tag:yaml.org,2002:"

MAX_ALIAS_EXPANSION = 1_000_000
"""Values that aliases may add to a document beyond those it spells out.  Aliases share one
object, so a 400-byte "billion laughs" file (``b: &b [*a, *a, ...]``, nine levels) loads
instantly, but names 9**10 strings: whoever then calls ``str``, ``json.dumps`` or walks it
(a run's overrides, an MLflow ``meta.yaml`` field, a config diff) never returns and grows
its memory without end.  Such a document is malformed input: a ``YamlError``."""


class _PlainLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that maps unknown tags to lists, dicts and ``<tag>`` strings."""


def _short(tag: str) -> str:
    return tag[len(_STD_PREFIX) :] if tag.startswith(_STD_PREFIX) else tag


def _construct_unknown(loader: _PlainLoader, tag: str, node: yaml.Node) -> object:
    short = _short(tag)
    if isinstance(node, yaml.ScalarNode):
        value = str(loader.construct_scalar(node))
        return f"<{short}>" if not value else f"<{short} {value}>"
    if isinstance(node, yaml.SequenceNode):
        items = loader.construct_sequence(node, deep=True)
        if short in ("python/tuple", "python/list", "set") or not short.startswith("python/"):
            return list(items)
        if short.endswith(".OrderedDict") and len(items) == 1:
            pairs = _pairs_to_dict(items[0])
            if pairs is not None:
                return pairs
        return {"__tag__": short, "args": list(items)}
    if isinstance(node, yaml.MappingNode):
        mapping = loader.construct_mapping(node, deep=True)
        plain = {
            str(k) if not isinstance(k, (int, float, bool)) else k: v for k, v in mapping.items()
        }
        if short.startswith(("python/object/apply:", "python/object/new:")):
            # the pickle-protocol form: state/dictitems hold the useful data
            for field in ("state", "dictitems"):
                inner = plain.get(field)
                if isinstance(inner, dict):
                    return inner
            args = plain.get("args")
            if short.endswith(".OrderedDict") and isinstance(args, list) and len(args) == 1:
                pairs = _pairs_to_dict(args[0])
                if pairs is not None:
                    return pairs
            return {"__tag__": short, **plain}
        return plain
    return f"<{short}>"  # pragma: no cover - yaml has only three node kinds


def _pairs_to_dict(value: object) -> dict[str, object] | None:
    if not isinstance(value, list):
        return None
    out: dict[str, object] = {}
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            return None
        out[str(pair[0])] = pair[1]
    return out


_PlainLoader.add_multi_constructor("", _construct_unknown)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_aliases(root: yaml.Node) -> None:
    """Raise ``YamlError`` when the document's aliases expand it by more than
    ``MAX_ALIAS_EXPANSION`` values.  Each distinct node is sized once (its expanded size
    memoised), so the check costs what composing did; a recursive alias counts once."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in _children(node))
            continue
        if key in sizes or key in open_nodes:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] - len(sizes) > MAX_ALIAS_EXPANSION:
        raise YamlError(
            f"invalid YAML: its aliases expand it past {MAX_ALIAS_EXPANSION} values "
            "(an alias bomb?)"
        )


def load(text: str | bytes) -> Any:
    """``store.yamlsafe.load_yaml``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    loader = _PlainLoader(text)  # safe constructors only: never yaml's full Loader
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YamlError(f"invalid YAML{where}: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())[:200]
        raise YamlError(f"invalid YAML: {message or type(exc).__name__}") from None
    finally:
        loader.dispose()
