"""PyTorch 2 export archives (``torch.export.save``, MLflow 3's ``mlflow.pytorch.log_model``).

A ``.pt2`` is a zip: ``<root>/models/<name>.json`` (the graph), ``<root>/data/weights/*`` and
``data/constants/*`` (raw tensor bytes, or ``torch.save``/``pickle.dumps`` output for those
marked ``use_pickle``), ``<root>/data/sample_inputs/<name>.pt`` (a ``torch.save`` that
``torch.export.load`` reads with ``weights_only=False`` when the safe load fails), and
``data/aotinductor/`` (compiled shared libraries) for AOTInductor packages.  Torch 2.1-2.5
wrote ``serialized_exported_program.json`` beside ``serialized_*.pt`` instead.

The graph is not data either: ``torch.export.load`` hands every ``expr_str`` to
``sympy.sympify``, which ``eval``s it, and ``ExportedProgram.module()`` ``exec``s its
``guards_code``.  Neither can be proved harmless here, so an export is never ``safe``;
this module only spots the plain escapes in them, which make it ``dangerous``.
"""

from __future__ import annotations

import json
import re
import zipfile

from store.inspect.errors import InspectError

GRAPH_BUDGET = 8 * 1024 * 1024
"""Bytes of one graph JSON read to look for escapes (JSON costs ~15x its size in memory);
a bigger graph is left unread, which leaves the archive ``unknown`` as any export is."""
GRAPHS_READ = 4
"""Graphs of one archive read to look for escapes (an archive may bundle several models)."""

_MARKERS = re.compile(r"(^|/)(archive_format|serialized_exported_program\.json)$")
_GRAPH = re.compile(r"(^|/)(models/[^/]+\.json|serialized_exported_program\.json)$")
_DATA = re.compile(r"(^|/)data/(weights|constants|sample_inputs|aotinductor)/")
AOTI = re.compile(r"(^|/)data/aotinductor/")
SAMPLE_INPUTS = re.compile(r"(^|/)data/sample_inputs/[^/]+$")

_ESCAPE = re.compile(
    r"__\w+__|\bimport\b|\blambda\b"
    r"|\b(?:exec|eval|compile|open|getattr|setattr|delattr|globals|locals|vars|breakpoint"
    r"|input|system|popen|sympify|parse_expr|lambdify|preview|S)\s*\("
)
"""What an expression needs to leave sympy's namespace or reach builtins; real exports
write ``Symbol('s0', ...)``, ``Integer(2)``, ``Mul(...)`` and guards such as
``L['x'].size()[0] <= 1024``.  Quoted text is searched too: a guard is pasted into
generated code, inside a string a quote can close.  Missing an escape costs nothing: the
verdict stays unknown."""


def is_pt2(names: list[str]) -> bool:
    """Whether zip member ``names`` have a PyTorch 2 export's layout (whatever the file's
    name): its format marker, or a graph JSON beside export data folders."""
    if any(_MARKERS.search(n) for n in names):
        return True
    return any(_GRAPH.search(n) for n in names) and any(_DATA.search(n) for n in names)


def graph_members(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The members holding an export's graph."""
    return [i for i in infos if _GRAPH.search(i.filename)]


def graph_notes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> list[str]:
    """Reasons about one graph JSON: "dangerous: ..." for an expression or guard that
    reaches Python internals, "unknown: ..." when it could not be read."""
    name = info.filename
    if info.file_size > GRAPH_BUDGET:
        return [f"unknown: {name}: graph of {info.file_size} bytes not read for escapes"]
    try:
        with archive.open(info) as member:
            raw = member.read(GRAPH_BUDGET + 1)
        if len(raw) > GRAPH_BUDGET:
            return [f"unknown: {name}: graph over {GRAPH_BUDGET} bytes not read for escapes"]
        document = json.loads(raw)
    except (ValueError, RecursionError, OSError, EOFError, zipfile.BadZipFile) as exc:
        why = " ".join(str(exc).split())[:120] or type(exc).__name__
        return [f"unknown: {name}: graph not read ({why})"]
    except InspectError as exc:
        return [f"unknown: {name}: {exc}"]
    notes: list[str] = []
    for kind, text in _code_strings(document):
        probe = _ESCAPE.search(text)
        if probe is not None:
            shown = " ".join(text.split())[:120]
            runner = "torch.export.load" if kind == "expr_str" else "ExportedProgram.module()"
            notes.append(
                f"dangerous: {name}: {kind} reaches Python internals ({probe.group(0)!r} in "
                f"{shown!r}); {runner} runs it"
            )
            if len(notes) >= 5:
                break
    return notes


def _code_strings(document: object) -> list[tuple[str, str]]:
    """Every ``expr_str`` string and ``guards_code`` line in a parsed graph, wherever it
    sits (walked without recursion: the parser already bounded the nesting)."""
    found: list[tuple[str, str]] = []
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(v for v in node if isinstance(v, (dict, list)))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key == "expr_str" and isinstance(value, str):
                found.append((key, value))
            elif key == "guards_code" and isinstance(value, list):
                found.extend((key, line) for line in value if isinstance(line, str))
            elif isinstance(value, (dict, list)):
                pending.append(value)
    return found
