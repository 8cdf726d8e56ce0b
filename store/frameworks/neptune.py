"""Neptune 1.x offline runs: ``.neptune/offline/<container folder>/``.

The client queues operations on disk as JSON lines in ``data-<n>.log`` files:
``{"obj": {"type": "AssignFloat", "path": ["parameters", "lr"], "value": 0.1}, "version": 7,
"at": <unix time>}`` and, for series, ``{"type": "LogFloats", "path": [...], "values":
[{"value", "step", "ts"}]}``.  Replaying the Assign*/Log* operations gives params and
metrics.  The client writes ``sys/*`` (name, tags, hostname, failed), ``source_code/*``
(entrypoint) and ``monitoring/<process hash>/*`` (hostname, pid, tid, stdout) itself: the
first two go to meta, the monitoring values are dropped (its float series stay metrics),
so params are only what the user assigned.  ``sys/failed`` true (an uncaught exception)
marks the run failed; a clean stop leaves no mark on disk, so that status stays unknown.
"""

from __future__ import annotations

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks._metrics import add_point
from store.frameworks.flatten import numbered
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Framework

FRAMEWORK = "neptune"
_META_SPACES = ("sys", "source_code")


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        parts = rel.split("/")
        if len(parts) < 3 or parts[-3] != ".neptune" or parts[-2] != "offline":
            continue
        files = ctx.entry(rel).files
        if not any(f.startswith("data-") and f.endswith(".log") for f in files):
            continue
        folder = parts[-1]
        container = folder.split("__")[1] if folder.count("__") >= 1 else folder
        specs.append(
            RunSpec(
                path=rel,
                framework=FRAMEWORK,
                name=_io.display_name(container),
                experiment=None,
                run_key=_io.display_name(container),
            )
        )
    return specs


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    out.meta["run_id"] = spec.run_key
    _, files = _io.list_dir(root, spec.path)
    logs = sorted(
        (f for f in files if f.startswith("data-") and f.endswith(".log")), key=_io.natural_key
    )
    replay = _Replay()
    for name in logs:
        _replay(root, _io.join(spec.path, name), out, replay)
    if replay.bad:  # an operation not read may have been a param's or a metric's
        out.warn_partial(
            f"{spec.path}: {replay.bad} operation(s) or logged value(s) that cannot be read"
            " skipped",
            "params",
            "metrics",
        )
    if replay.copied:
        copied = ", ".join(sorted(set(replay.copied))[:5])
        out.warn_partial(
            f"{spec.path}: {copied}: copied from another run or field, its value not in the logs",
            "params",
            "metrics",
        )
    # a field assigned again takes its last value; two fields whose paths read as one
    # dotted name (``a/b.c`` and ``a/b/c``) are both kept, the one of fewer parts as
    # ``a.b.c`` and the other as ``a.b.c (#2)`` whatever the logs' order, and said
    for path, value in sorted(replay.assigned.items(), key=lambda item: (len(item[0]), item[0])):
        _common.add_param(out, ".".join(p.replace("/", ".") for p in path), value, spec.path)
    # likewise two series whose paths read as one name (``["a/b"]`` and ``["a", "b"]``):
    # merged, one series would hold two fields' points
    taken: set[str] = set()
    for path in sorted(replay.logged, key=lambda path: (len(path), path)):
        name = "/".join(path)
        kept = numbered(name, taken)
        if kept != name:
            out.warn(f"{spec.path}: metric {name} is logged by another field too, kept as {kept}")
        out.series[kept] = replay.logged[path]
    return out


_CLEARS = frozenset({"ClearFloatLog", "ClearStringLog", "ClearImageLog"})
"""The client's operations (``neptune.internal.operation``, named by their class) that
empty a series."""
_NO_VALUES = frozenset(
    {
        "LogStrings",
        "LogImages",
        "UploadFile",
        "UploadFileContent",
        "UploadFileSet",
        "DeleteFiles",
        "ConfigFloatSeries",
        "TrackFilesToArtifact",
        "ClearArtifact",
        "AddStrings",
        "RemoveStrings",
        "ClearStringSet",
    }
)
"""The client's other operations: files, text and image series, string sets, artifacts,
a series' unit and range; none sets a param or logs a number.  An operation of any type
not named here (a newer client's) may have, so it is counted as not read."""


class _Replay:
    """What replaying a run's operation logs gathers, by field path (its parts)."""

    def __init__(self) -> None:
        self.assigned: dict[tuple[str, ...], object] = {}
        self.logged: dict[tuple[str, ...], list[tuple[int, float]]] = {}
        self.bad = 0
        """Operations, and logged values, skipped as unreadable."""
        self.copied: list[str] = []
        """Fields given another run's value (``CopyAttribute``): what it was is not here."""


def _delete(field: tuple[str, ...], key: str, out: Loaded, replay: _Replay) -> None:
    """Forget a field (and any below it: a namespace), as a param, a series or meta."""
    below = key + "/"
    for known in (replay.assigned, replay.logged):
        for gone in [f for f in known if f == field or "/".join(f).startswith(below)]:
            del known[gone]
    for meta_key in [k for k in out.meta if k == key or k.startswith(below)]:
        del out.meta[meta_key]
    if key in ("sys", "sys/tags"):
        out.meta.pop("tags", None)
    if key in ("sys", "sys/name"):
        out.meta.pop("name", None)
    if key in ("sys", "sys/failed"):
        out.status = "unknown"


def _replay(root: RootLike, rel: str, out: Loaded, replay: _Replay) -> None:
    # an operation the log holds but that was not read may be a param's or a metric's
    for record in _io.read_json_lines(root, rel, out, parts=("params", "metrics")):
        op = record.get("obj")
        if isinstance(op, dict) and _apply(op, out, replay):
            _stamp(out, record.get("at"))
        else:
            replay.bad += 1


def _stamp(out: Loaded, value: object) -> None:
    stamp = _io.to_float(value)
    if stamp is not None:
        out.started = stamp if out.started is None else min(out.started, stamp)
        out.ended = stamp if out.ended is None else max(out.ended, stamp)


def _apply(op: dict[str, object], out: Loaded, replay: _Replay) -> bool:
    """Replay one operation; False when it cannot be read (no type, no path, a type this
    reader does not know)."""
    kind, path = op.get("type"), op.get("path")
    if not isinstance(kind, str) or not isinstance(path, list) or not path:
        return False
    key = "/".join(str(p) for p in path)
    field = tuple(str(p) for p in path)
    space = str(path[0])
    if kind.startswith("Assign"):
        value = op.get("value")
        if isinstance(value, (dict, list)) or space == "monitoring":
            return True
        if space in _META_SPACES:
            out.meta[key] = value if isinstance(value, (int, float, str)) else str(value)
            if key == "sys/name":
                out.meta["name"] = str(value)
            elif key == "sys/failed":
                out.status = "failed" if value is True else "unknown"
        else:
            replay.assigned[field] = (
                value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
            )
    elif key == "sys/tags" and kind in ("AddStrings", "RemoveStrings", "ClearStringSet"):
        _tags(kind, op.get("values"), out)
    elif kind in _CLEARS:  # ``run[path].clear()``: the points before it are gone
        replay.logged.pop(field, None)
    elif kind == "DeleteAttribute":  # ``del run[path]``: the field is gone, whatever it was
        _delete(field, key, out, replay)
    elif kind == "CopyAttribute":  # ``run[path] = other[...]``: a value not in this log
        _delete(field, key, out, replay)
        replay.copied.append(key)
    elif kind in ("LogFloats", "LogSeries"):
        values = op.get("values")
        if not isinstance(values, list):
            return False
        for item in values:
            value = _io.to_float(item.get("value")) if isinstance(item, dict) else None
            if value is None:
                replay.bad += 1
                continue
            points = replay.logged.setdefault(field, [])
            step = _io.to_int(item.get("step"))
            add_point({key: points}, key, len(points) if step is None else step, value)
            _stamp(out, item.get("ts"))
    elif kind not in _NO_VALUES:
        return False
    return True


def _tags(kind: str, values: object, out: Loaded) -> None:
    current = out.meta.get("tags")
    tags = list(current) if isinstance(current, list) else []
    if kind == "ClearStringSet":
        tags = []
    elif isinstance(values, list):
        names = [str(v) for v in values]
        if kind == "AddStrings":
            tags += [t for t in dict.fromkeys(names) if t not in tags]
        else:
            tags = [t for t in tags if t not in names]
    out.meta["tags"] = tags[:100]


ENTRY = Framework(
    name=FRAMEWORK,
    display="Neptune",
    priority=1100,
    detect=detect,
    load=load,
    owns_subtree=True,
)
