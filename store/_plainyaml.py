"""The loader behind ``store.yamlsafe.load_yaml``, in its own module so that PyYAML is
imported by the first YAML read, not by every command (10 ms of each start)."""

from __future__ import annotations

from typing import Any

import yaml

from store.safeparse import MAX_REPEATS, Index, Repeat
from store.yamlsafe import YamlError, YamlTooLarge

_STD_PREFIX = "tag:yaml.org,2002:"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"

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


class _TaggedLoader(_PlainLoader):
    """``_PlainLoader`` that keeps what a tag says, for a diff: values the plain loader
    makes alike (``!!python/object:a.MSELoss {reduction: mean}`` and ``...:a.L1Loss`` with
    the same state, ``!foo [1]`` and ``!bar [1]``) stay apart by their ``__tag__``."""


_UNTAGGED = ("python/tuple", "python/list", "set")
"""Tags whose values are the plain sequence they spell (a tuple is a list to a config)."""


def _construct_tagged(loader: _PlainLoader, tag: str, node: yaml.Node) -> object:
    short = _short(tag)
    if isinstance(node, yaml.ScalarNode) or short in _UNTAGGED or short.endswith(".OrderedDict"):
        return _construct_unknown(loader, tag, node)  # the tag is in the text, or says nothing
    if isinstance(node, yaml.SequenceNode):
        return {"__tag__": short, "args": list(loader.construct_sequence(node, deep=True))}
    if isinstance(node, yaml.MappingNode):
        mapping = loader.construct_mapping(node, deep=True)
        plain = {
            str(k) if not isinstance(k, (int, float, bool)) else k: v for k, v in mapping.items()
        }
        return {"__tag__": short, **plain}  # every field: args, state, dictitems...
    return f"<{short}>"  # pragma: no cover - yaml has only three node kinds


_TaggedLoader.add_multi_constructor("", _construct_tagged)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_aliases(root: yaml.Node) -> dict[int, int]:
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
        raise YamlTooLarge(
            f"invalid YAML: its aliases expand it past {MAX_ALIAS_EXPANSION} values "
            "(an alias bomb?)"
        )
    return sizes


_UNHASHABLE = object()


def _key(loader: _PlainLoader, node: yaml.Node) -> object:
    """A mapping key as the loader makes it (``1``, ``1.0`` and ``true`` are then one key,
    as they are in the dict it builds); ``_UNHASHABLE`` for a key that is a list or map."""
    if not isinstance(node, yaml.ScalarNode):
        return _UNHASHABLE
    if node.tag == _STR:
        return node.value  # the constructor's own answer for a plain string, cheaply
    key = loader.construct_object(node, deep=True)
    try:
        hash(key)
    except TypeError:
        return _UNHASHABLE
    return key


def _may_repeat(root: yaml.Node) -> bool:
    """False when no mapping of the document can repeat a key: every key of every mapping
    is a plain string (no merge, no other type that loads equal to another spelling) and
    no two are the same.  The cheap test of the common case, before ``_find_repeats``."""
    seen: set[int] = set()
    stack = [root]
    mapping, scalar, string = yaml.MappingNode, yaml.ScalarNode, _STR
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, mapping):
            keys = set()
            for key_node, value_node in node.value:
                if key_node.__class__ is not scalar or key_node.tag != string:
                    return True
                keys.add(key_node.value)
                if not isinstance(value_node, scalar):
                    stack.append(value_node)
            if len(keys) != len(node.value):
                return True
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(child for child in node.value if not isinstance(child, scalar))
    return False


MAX_REPEAT_STEPS = 1_000_000
"""Mappings ``_find_repeats`` visits (by path: an aliased mapping once per place it sits);
past this the rest of its repeats are not examined, so not known."""


def _own_repeats(
    loader: _PlainLoader, node: yaml.MappingNode
) -> tuple[dict[object, list[yaml.Node]], list[yaml.Node]]:
    """A mapping's own keys (merges left out) with their value nodes, and its merged
    mappings in the order they take precedence (the first of ``<<: [*a, *b]`` wins)."""
    values: dict[object, list[yaml.Node]] = {}
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            many = isinstance(value_node, yaml.SequenceNode)
            parts = value_node.value if many else [value_node]
            merged += [m for m in parts if isinstance(m, yaml.MappingNode)]
            continue
        key = _key(loader, key_node)
        if key is not _UNHASHABLE:
            values.setdefault(key, []).append(value_node)
    return values, merged


def _holds_repeat(loader: _PlainLoader, node: yaml.Node) -> bool:
    """Whether a mapping at or below ``node`` repeats a key (each node once)."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, yaml.MappingNode):
            values, merged = _own_repeats(loader, item)
            if any(len(nodes) > 1 for nodes in values.values()):
                return True
            stack += [n for nodes in values.values() for n in nodes] + merged
        elif isinstance(item, yaml.SequenceNode):
            stack += item.value
    return False


def _find_repeats(
    loader: _PlainLoader, root: yaml.Node
) -> tuple[list[tuple[tuple[object, ...], object, list[yaml.Node]]], bool]:
    """Keys a mapping of the composed document repeats, as ``(path, key, value nodes)``,
    in document order, and whether some were left unexamined (past ``MAX_REPEAT_STEPS``
    or ``MAX_REPEATS``).  A merge (``<<: *base``) is not a repeat: keys the mapping sets
    itself override merged ones by the YAML spec; a key a merged mapping repeats is one of
    the merging mapping, unless it sets that key itself.  A mapping an alias names again
    (``model: *defaults``) repeats its keys in each place it sits: a loader keeping the
    first value reads it there too.  Only a key's last value (the one loaded) is walked
    into, and only where a repeat lies below."""
    # pass 1: each node once; which hold a repeat (their own, or below them)
    own: dict[int, tuple[dict[object, list[yaml.Node]], list[yaml.Node]]] = {}
    hot: dict[int, bool] = {}
    open_nodes: set[int] = set()
    stack1: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack1:
        node, finished = stack1.pop()
        key_id = id(node)
        if isinstance(node, yaml.MappingNode):
            if key_id not in own:
                own[key_id] = _own_repeats(loader, node)
            values, merged = own[key_id]
            below = [nodes[-1] for nodes in values.values()] + merged
            repeats_here = any(len(nodes) > 1 for nodes in values.values())
        elif isinstance(node, yaml.SequenceNode):
            below, repeats_here = list(node.value), False
        else:
            hot[key_id] = False
            continue
        if finished:
            open_nodes.discard(key_id)
            hot[key_id] = repeats_here or any(hot.get(id(c), False) for c in below)
            continue
        if key_id in hot or key_id in open_nodes:
            continue
        open_nodes.add(key_id)
        stack1.append((node, True))
        stack1.extend((c, False) for c in below if id(c) not in hot)
    # pass 2: every place a node holding a repeat sits, by path
    found: list[tuple[tuple[object, ...], object, list[yaml.Node]]] = []
    steps = 0
    Item = tuple[yaml.Node, tuple[object, ...], frozenset[object]]
    stack: list[Item] = [(root, (), frozenset())]
    while stack:
        node, path, shadow = stack.pop()
        if not hot.get(id(node)):
            continue
        steps += 1
        if steps > MAX_REPEAT_STEPS or len(found) > MAX_REPEATS:
            return found, True
        children: list[Item] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(c, (*path, Index(i)), frozenset()) for i, c in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            values, merged = own[id(node)]
            taken = set(shadow) | set(values)
            for merged_node in merged:
                children.append((merged_node, path, frozenset(taken)))
                taken |= set(own[id(merged_node)][0]) if id(merged_node) in own else set()
            for key, nodes in values.items():
                if key in shadow:
                    continue  # the merging mapping (or a merge before) sets it
                if len(nodes) > 1:
                    found.append((path, key, nodes))
                children.append((nodes[-1], (*path, key), frozenset()))
        stack.extend(reversed(children))
    return found, False


def load(text: str | bytes) -> Any:
    """``store.yamlsafe.load_yaml``."""
    return _load(text, None)


def load_with_repeats(text: str | bytes, *, tags: bool = False) -> tuple[Any, list[Repeat], int]:
    """``store.yamlsafe.load_yaml_repeats``."""
    repeats: list[Repeat] = []
    unexamined: list[int] = []
    data = _load(text, repeats, unexamined, tags=tags)
    more = max(0, len(repeats) - MAX_REPEATS) + sum(unexamined)
    return data, repeats[:MAX_REPEATS], more


def _load(
    text: str | bytes,
    repeats: list[Repeat] | None,
    unexamined: list[int] | None = None,
    *,
    tags: bool = False,
) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # safe constructors only: never yaml's full Loader
    loader = _TaggedLoader(text) if tags else _PlainLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes = _check_aliases(node)
        if repeats is None:
            return loader.construct_document(node)
        if not _may_repeat(node):
            return loader.construct_document(node)
        found, cut = _find_repeats(loader, node)
        data = loader.construct_document(node)
        budget = MAX_ALIAS_EXPANSION  # each value is built again: bounded like the document
        for path, key, nodes in found:
            cost = sizes.get(id(nodes[0]), 1) + sizes.get(id(nodes[-1]), 1)
            if len(repeats) >= MAX_REPEATS or cost > budget:
                repeats.append(Repeat(path, key, len(nodes), None, None, read=False))
                continue
            budget -= cost
            if _holds_repeat(loader, nodes[0]):  # built last-wins inside: not its first
                repeats.append(Repeat(path, key, len(nodes), None, None, read=False))
                continue
            first = loader.construct_document(nodes[0])
            last = loader.construct_document(nodes[-1])
            repeats.append(Repeat(path, key, len(nodes), first, last))
        if cut and unexamined is not None:  # past the walk's budget: repeats not known
            unexamined.append(1)
        return data
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
