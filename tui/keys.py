"""Bindings are the one source of keys: the footer (Textual's), the help screen and the
palette all read them here, through the keymap the user set in ``[keys]``.

A screen adds a key by adding a ``Binding`` with an ``id``; its help row, its footer entry
and the key shown beside its palette entry follow, and ``[keys]`` can change it by that id.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from textual.actions import parse
from textual.app import App
from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Input

PaletteEntry = tuple[str, Callable[[], object], str]
"""(title, callback, help text)."""

KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "full_stop": ".",
    "comma": ",",
    "minus": "-",
    "plus": "+",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
}
"""Textual's long key names shown as the character they type."""

HelpRow = tuple[str, str, str]
"""(keys as shown, description, binding id)."""

TITLES: dict[str, tuple[str, str]] = {}
"""Binding id -> (palette title, help), declared beside the binding with ``titled``."""


def titled(binding: Binding, title: str, help_text: str = "") -> Binding:
    """``binding``, giving its palette entry ``title`` (a binding without one still gets
    an entry from ``binding_entries``, titled from its id and description)."""
    if binding.id is None:
        raise ValueError(f"a titled binding needs an id: {binding.key}")
    TITLES[binding.id] = (title, help_text or binding.tooltip or binding.description)
    return binding


def shown(keys: str) -> str:
    """``"question_mark,f1"`` as a person reads it: ``"?,f1"``."""
    return ",".join(KEY_NAMES.get(key.strip(), key.strip()) for key in keys.split(","))


def keymap_of(app: App[Any]) -> Mapping[str, str]:
    """The keys the user changed (``[keys]``), by binding id."""
    keymap = getattr(app, "keymap", None)
    return keymap if isinstance(keymap, Mapping) else {}


def _grouped(bindings: BindingsMap, keymap: Mapping[str, str]) -> Iterable[tuple[str, Binding]]:
    """(keys, binding) per binding (a compound key like ``j,down`` joined, keymap applied)."""
    groups: dict[object, tuple[list[str], Binding]] = {}
    for key, binding in bindings:
        group = binding.id or (binding.action, binding.description)
        keys, _ = groups.setdefault(group, ([], binding))
        keys.append(key)
    for keys, binding in groups.values():
        changed = keymap.get(binding.id) if binding.id else None
        yield shown(changed or ",".join(keys)), binding


def _group_of(binding: Binding) -> object:
    """What ``_grouped`` joins the keys of: a binding's id, else its action and words."""
    return binding.id or (binding.action, binding.description)


def _raw_groups(bindings: BindingsMap) -> list[tuple[list[str], Binding]]:
    """(keys, binding) per binding of ``bindings``, the keys as Textual names them."""
    groups: dict[object, tuple[list[str], Binding]] = {}
    for key, binding in bindings:
        keys, _ = groups.setdefault(_group_of(binding), ([], binding))
        keys.append(key)
    return list(groups.values())


def help_rows(app: App[Any], screen: Screen[Any]) -> list[HelpRow]:
    """Every described binding of the app, ``screen`` and the widgets on it, each with the
    keys that run it now.  A key bound twice runs what Textual finds first (its
    ``active_bindings``, the footer's source too): a priority binding, else the focused
    widget's, then its containers', then the screen's, then the app's (the metrics view's
    ``q`` goes back; the app's ``q`` quits only where nothing nearer binds it).  A widget
    without the focus lists its own keys (its binding ids tell the panes apart): they are
    its own once it has the focus."""
    focused = screen.focused
    chain: list[DOMNode] = list(focused.ancestors_with_self) if focused else [screen, app]
    in_chain = {id(node) for node in chain}
    won: dict[tuple[int, object], tuple[Binding, list[str]]] = {}
    for key, active in screen.active_bindings.items():
        _, keys = won.setdefault((id(active.node), _group_of(active.binding)), (active.binding, []))
        keys.append(key)
    nodes: list[DOMNode] = [app, screen]
    seen_types: set[type[DOMNode]] = set()
    for widget in screen.walk_children(with_self=False):
        if isinstance(widget, Input) and not widget.has_focus:
            continue  # a text box's editing keys (cursor, cut, paste) only while typing
        if id(widget) in in_chain or type(widget) not in seen_types:
            seen_types.add(type(widget))
            nodes.append(widget)
    rows: list[HelpRow] = []
    taken = set(screen.active_bindings)
    first = {key for key, active in screen.active_bindings.items() if active.binding.priority}
    keymap = getattr(app, "_keymap", None) or {}  # as Textual applies ``[keys]`` (normalised)
    for node in nodes:
        if id(node) in in_chain:
            for (owner, _), (binding, keys) in won.items():
                if owner == id(node) and binding.description:
                    rows.append((shown(",".join(keys)), binding.description, binding.id or ""))
            continue
        bindings = node._bindings.copy()
        if keymap:
            bindings.apply_keymap(keymap)
        for keys, binding in _raw_groups(bindings):
            # once the widget has the focus its own keys come first (but for priority
            # ones); Textual's unnamed ones (cursor keys) are listed once, not per widget
            own = [k for k in keys if k not in first and (binding.id or k not in taken)]
            if binding.description and own:
                taken.update(own)
                rows.append((shown(",".join(own)), binding.description, binding.id or ""))
    return rows


def class_rows(app: App[Any], node_class: type[DOMNode]) -> list[HelpRow]:
    """The described bindings of a screen or widget class (one that is not showing)."""
    merged = node_class._merged_bindings
    if merged is None:
        return []
    return [
        (keys, binding.description, binding.id or "")
        for keys, binding in _grouped(merged, keymap_of(app))
        if binding.description
    ]


def palette_key(app: App[Any], callback: Callable[[], object]) -> str | None:
    """The keys bound to the action ``callback`` runs (``node.action_x`` or a ``partial``
    of one with the binding's arguments), as the user set them; None when no key is."""
    func: Any = callback.func if isinstance(callback, partial) else callback
    owner = getattr(func, "__self__", None)
    action = _action_of(callback)
    if action is None or not isinstance(owner, DOMNode):
        return None
    _, name, args = action
    for keys, binding in _grouped(owner._bindings, keymap_of(app)):
        _, bound, params = parse(binding.action)
        if bound == name and tuple(params) == args:
            return keys
    return None


def _action_of(callback: Callable[[], object]) -> tuple[int, str, tuple[object, ...]] | None:
    """(owner id, action name, arguments) when ``callback`` is a node's ``action_*``."""
    func: Any = callback
    args: tuple[object, ...] = ()
    if isinstance(func, partial):
        args, func = tuple(func.args), func.func
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", "")
    if not isinstance(owner, DOMNode) or not name.startswith("action_"):
        return None
    return id(owner), name.removeprefix("action_"), args


def binding_entries(
    app: App[Any], screen: Screen[Any], listed: Iterable[PaletteEntry]
) -> list[PaletteEntry]:
    """A palette entry for every described binding of ``screen`` that no listed entry runs
    (titled ``<id prefix>: <description>``), so no key is missing from the palette."""
    covered = {action for _, callback, _ in listed if (action := _action_of(callback))}
    entries: list[PaletteEntry] = []
    for keys, binding in _grouped(screen._bindings, keymap_of(app)):
        if not binding.description or not binding.id:
            continue
        namespace, name, params = parse(binding.action)
        if namespace or (id(screen), name, tuple(params)) in covered:
            continue
        words = binding.tooltip or binding.description
        title = f"{binding.id.split('.')[0]}: {words[:1].lower()}{words[1:]}"
        run = partial(screen.run_action, binding.action)
        entries.append((title, run, f"{binding.description} · key {keys}"))
    return entries


def titled_entries(nodes: Iterable[DOMNode]) -> list[PaletteEntry]:
    """A palette entry for every binding of ``nodes`` declared with ``titled``, running the
    node's own ``action_*`` (so ``with_keys`` finds its key); the first node wins an id."""
    entries: list[PaletteEntry] = []
    seen: set[str] = set()
    for node in nodes:
        for _, binding in _grouped(node._bindings, {}):
            if binding.id is None or binding.id in seen or binding.id not in TITLES:
                continue
            namespace, name, params = parse(binding.action)
            method = getattr(node, f"action_{name}", None)
            if namespace or method is None:
                continue
            seen.add(binding.id)
            title, text = TITLES[binding.id]
            entries.append((title, partial(method, *params) if params else method, text))
    return entries


def with_keys(app: App[Any], entries: Iterable[PaletteEntry]) -> list[PaletteEntry]:
    """Palette entries whose help ends with the key that does the same (the palette
    teaches keys), read from the bindings, so a changed key shows changed."""
    keyed: list[PaletteEntry] = []
    for title, callback, text in entries:
        key = palette_key(app, callback)
        keyed.append((title, callback, f"{text} · key {key}" if key else text))
    return keyed


def node_classes() -> list[type[DOMNode]]:
    """Every screen, pane and widget class of artlens (their modules imported once)."""
    import tui.app  # the app's own bindings
    import tui.panes
    import tui.screens
    import tui.widgets

    for package in (tui.screens, tui.panes, tui.widgets):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    found: list[type[DOMNode]] = []
    pending: list[type[DOMNode]] = [DOMNode]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("tui.") and sub not in found:
                found.append(sub)
    return found


def known_ids() -> set[str]:
    """Every binding id artlens declares (what ``[keys]`` may name)."""
    ids: set[str] = set()
    for cls in node_classes():
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return ids


def checked_keymap(keymap: Mapping[str, str], known: set[str]) -> tuple[dict[str, str], list[str]]:
    """The entries of ``keymap`` naming a binding artlens has, and one warning per other."""
    valid: dict[str, str] = {}
    warnings: list[str] = []
    for binding_id, keys in keymap.items():
        if binding_id in known:
            valid[binding_id] = keys
        else:
            name = binding_id.encode("unicode_escape").decode("ascii")[:80]
            warnings.append(f"[keys] {name}: no such binding id (help, ?, lists them)")
    return valid, warnings
