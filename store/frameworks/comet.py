"""Comet ``OfflineExperiment`` archives.

Each run is one ``<offline_directory>/<experiment_key>.zip`` (default directory
``.cometml-runs``; ``comet_ml.start(online=False)`` names it ``<key>-<suffix>.zip``)
holding ``experiment.json`` (offline_id, project_name, workspace, start_time/stop_time in
ms, tags) and ``messages.json``, one JSON message per line whose payload carries
``metric`` {metricName, metricValue, step}, ``param`` {paramName, paramValue} (``params``
when the value is a list), or, in a ``log_other`` message, {key, value} (the SDK's older
message shape nests {key, val} under ``log_other``).  The run's ``path`` is the archive
itself.  Reads are bounded: members are decompressed up to a cap whatever the header claims.

Comet flattens nested params with ``|`` and says so with the ``hasNestedParams`` other;
those keys are read back with ``.`` like every other framework's.  ``curr_step`` is
Comet's step counter, logged as a param at every step: it is not a hyperparameter.
"""

from __future__ import annotations

import re
import zipfile

from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks._metrics import add_point
from store.frameworks.flatten import MAX_COUNT, MAX_KEYS, Note, report
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Framework
from store.safeparse import load_json
from store.safezip import open_zip

FRAMEWORK = "comet"
DEFAULT_DIR = ".cometml-runs"
_KEY_ZIP = re.compile(r"^([0-9a-f]{32})(-[A-Za-z0-9]+)?\.zip$")
_MESSAGES_CAP = 64 * 1024 * 1024
_STEP_PARAM = "curr_step"
_NESTED_SEP = "|"


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        if not ctx.has_file_ending(rel, ".zip"):
            continue
        in_default = _io.basename(rel) == DEFAULT_DIR
        for name in sorted(ctx.entry(rel).files):
            match = _KEY_ZIP.match(name)
            if match is None and not (in_default and name.endswith(".zip")):
                continue
            key = match.group(1) if match else name[: -len(".zip")]
            specs.append(
                RunSpec(
                    path=_io.join(rel, name),
                    framework=FRAMEWORK,
                    name=_io.display_name(key),
                    experiment=None,
                    run_key=_io.display_name(key),
                )
            )
    return specs


def _member(archive: zipfile.ZipFile, name: str, cap: int) -> tuple[bytes, bool] | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    with archive.open(info) as handle:
        data = handle.read(cap + 1)
    return (data[:cap], True) if len(data) > cap else (data, False)


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    out.meta["run_id"] = spec.run_key
    try:
        with _io.open_stream(root, spec.path) as stream, open_zip(stream) as archive:
            experiment = _member(archive, "experiment.json", 1024 * 1024)
            messages = _member(archive, "messages.json", _MESSAGES_CAP)
    except (_io.ReadError, OSError, zipfile.BadZipFile, RuntimeError, ValueError, EOFError) as exc:
        out.warn_partial(
            f"{spec.path}: unreadable Comet archive ({' '.join(str(exc).split())[:160]})",
            "params",
            "metrics",
        )
        return out
    if experiment is None:
        out.warn(f"{spec.path}: no experiment.json in the archive")
    else:
        _apply_experiment(experiment[0], spec, out)
    if messages is not None:
        data, cut = messages
        if cut:
            out.warn_partial(
                f"{spec.path}: messages.json larger than {_MESSAGES_CAP} bytes, only the"
                " start was read",
                "params",
                "metrics",
            )
            data = data[: data.rfind(b"\n") + 1]  # a line the cap cut is no message
        _apply_messages(data, spec, out)
    return out


def _apply_experiment(data: bytes, spec: RunSpec, out: Loaded) -> None:
    try:
        info = load_json(data.decode("utf-8", "replace").splitlines()[0] if data else "")
    except (ValueError, IndexError):
        out.warn(f"{spec.path}: experiment.json is not valid JSON")
        return
    if not isinstance(info, dict):
        return
    for src, key in (
        ("project_name", "project"),
        ("workspace", "workspace"),
        ("offline_id", "run_id"),
    ):
        if info.get(src):
            out.meta[key] = str(info[src])
    if "project" in out.meta:
        out.meta["experiment"] = out.meta["project"]  # Comet's name for the experiment
    if isinstance(info.get("tags"), list):
        out.meta["tags"] = [str(t) for t in info["tags"]][:100]
    start, stop = _io.to_float(info.get("start_time")), _io.to_float(info.get("stop_time"))
    out.started = start / 1000.0 if start is not None else None
    out.ended = stop / 1000.0 if stop is not None else None
    if out.ended is not None:
        out.status = "finished"


def _apply_messages(data: bytes, spec: RunSpec, out: Loaded) -> None:
    counters: dict[str, int] = {}
    params: dict[str, object] = {}
    dropped: set[str] = set()
    rel = f"{spec.path}/messages.json"
    nested = False
    parts = ("params", "metrics")
    for message in _io.json_objects(data, spec.path, out, "message line", parts=parts):
        payload = message.get("payload")
        if not isinstance(payload, dict):
            continue
        metric = payload.get("metric")
        param = payload.get("param") or payload.get("params")
        if isinstance(metric, dict) and metric.get("metricName") is not None:
            name = str(metric["metricName"])
            value = _io.to_float(metric.get("metricValue"))
            step = _io.to_int(metric.get("step"))
            if step is None:
                step = counters.get(name, 0)
            counters[name] = step + 1
            if value is not None:
                add_point(out.series, name, step, value)
        if isinstance(param, dict) and param.get("paramName") is not None:
            name = str(param["paramName"])
            if name != _STEP_PARAM and (name in params or len(params) < MAX_KEYS):
                params[name] = param.get("paramValue")
            elif name != _STEP_PARAM and len(dropped) <= MAX_COUNT:
                dropped.add(name)
        other = _other(message, payload)
        if other is not None:
            key, val = other
            if key == "Name":
                out.meta["name"] = str(val)
                continue
            nested = nested or (key == "hasNestedParams" and val is True)
            others = out.meta.setdefault("log_other", {})
            if isinstance(others, dict) and len(others) < 200:
                others[key] = str(val)[:1000]
    # nested keys (``a|b``) read as ``a.b``, which a key of its own may be too: both are
    # kept, the one of fewer parts as ``a.b``, whatever order they were logged in (in the
    # log's order, two runs that logged the same two values the other way round read alike)
    ordered = sorted(params.items(), key=lambda item: (item[0].count(_NESTED_SEP), item[0]))
    for name, param_value in ordered if nested else params.items():
        _common.add_param(out, name.replace(_NESTED_SEP, ".") if nested else name, param_value, rel)
    if dropped:
        report(
            Note(
                "params",
                f"{rel}: {len(dropped)}{' or more' if len(dropped) > MAX_COUNT else ''} "
                f"params past the first {MAX_KEYS} not read (not compared)",
                cut=len(dropped),
                at_least=len(dropped) > MAX_COUNT,
            )
        )


def _other(message: dict[str, object], payload: dict[str, object]) -> tuple[str, object] | None:
    """The (key, value) of a ``log_other`` entry in either of Comet's two shapes."""
    legacy = payload.get("log_other")
    if isinstance(legacy, dict) and legacy.get("key") is not None:
        return str(legacy["key"]), legacy.get("val")
    if message.get("type") == "log_other" and payload.get("key") is not None:
        return str(payload["key"]), payload.get("value")
    return None


ENTRY = Framework(
    name=FRAMEWORK,
    display="Comet",
    priority=1200,
    detect=detect,
    load=load,
    marker_patterns=(r".*\.zip",),
)
