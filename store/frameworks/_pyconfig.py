"""Python config files (MMEngine's dumped ``<cfg>.py``, nanoGPT's ``config/*.py``) read as
data: the file is parsed with ``ast`` and only literal assignments are kept
(``lr = 0.1``, ``optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02))``).  Nothing is
imported or executed; anything that is not a literal is left out."""

from __future__ import annotations

import ast

MAX_NODES = 200_000


class _Opaque(Exception):
    pass


def _literal(node: ast.AST, depth: int) -> object:
    if depth > 30:
        raise _Opaque
    if isinstance(node, ast.Constant) and isinstance(
        node.value, (str, int, float, bool, type(None))
    ):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, depth + 1)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        raise _Opaque
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(e, depth + 1) for e in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[str, object] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise _Opaque
            name = _literal(key, depth + 1)
            out[str(name)] = _literal(value, depth + 1)
        return out
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
    ):
        return {kw.arg: _literal(kw.value, depth + 1) for kw in node.keywords if kw.arg is not None}
    raise _Opaque


def parse_py_config(text: str) -> dict[str, object]:
    """Top-level ``name = <literal>`` assignments of a Python config; raises ``ValueError``
    (one line) when the text is not Python."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise ValueError(f"not Python ({type(exc).__name__})") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ValueError("too large a config")
    out: dict[str, object] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if not isinstance(target, ast.Name) or target.id.startswith("_"):
            continue
        try:
            out[target.id] = _literal(value, 0)
        except (_Opaque, RecursionError):
            continue
    return out
