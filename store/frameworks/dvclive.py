"""DVCLive folders (``dvclive/`` by default).

``metrics.json`` holds the latest values (nested by ``/`` in metric names), ``params.yaml``
the logged params, ``plots/metrics/<name>.tsv`` one series per metric (``step`` and the
value; newer versions add ``timestamp``).  When the folder DVCLive ran in holds the
``dvc.yaml`` DVCLive wrote for it, that project folder belongs to the run too
(``extra_paths``): ``exp_a/model.pt`` beside ``exp_a/dvclive/`` is the run's artifact.
The run stays the ``dvclive/`` folder; a project that holds another run is not claimed.
"""

from __future__ import annotations

import csv

from store.csvrows import csv_reader
from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks._metrics import add_point
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Framework

FRAMEWORK = "dvclive"
MAX_PLOTS = 5000
"""Files under ``plots/metrics`` looked at; more marks the run's metrics read in part."""


def detect(ctx: DetectContext) -> list[RunSpec]:
    specs = []
    for rel in ctx.paths:
        entry = ctx.entry(rel)
        named = _io.basename(rel) == "dvclive"
        has_plots = "metrics" in ctx.entry(_io.join(rel, "plots")).dirs
        if not (
            (named and entry.files & {"metrics.json", "params.yaml"})
            or ("metrics.json" in entry.files and has_plots)
        ):
            continue
        parent = _io.parent(rel)
        owner = _io.basename(parent) if parent else _io.root_name(ctx.root)
        specs.append(
            RunSpec(
                path=rel,
                framework=FRAMEWORK,
                name=_io.display_name(owner if named else _io.basename(rel) or owner),
                experiment=None,
                extra_paths=(parent,) if rel and _is_project_of(ctx, parent, rel) else (),
            )
        )
    return specs


_OWN_KEYS = frozenset({"params", "metrics", "plots", "artifacts"})
"""The only top-level keys of the ``dvc.yaml`` DVCLive writes (a pipeline adds ``stages``)."""


def _is_project_of(ctx: DetectContext, project: str, rel: str) -> bool:
    """True when ``project`` is the experiment folder DVCLive ran in: it holds the
    ``dvc.yaml`` DVCLive wrote, naming this very folder's metrics or params, and is no
    repository root (a DVC pipeline's ``dvc.yaml`` has stages; a repo root holds far more
    than one experiment).  The run then owns the project folder: the model saved beside
    ``dvclive/`` is its artifact."""
    entry = ctx.entry(project)
    if "dvc.yaml" not in entry.files or entry.dirs & {".git", ".dvc"}:
        return False
    try:
        data = _io.read_yaml(ctx.root, _io.join(project, "dvc.yaml"), 64 * 1024)
    except _io.ReadError:
        return False
    if not isinstance(data, dict) or not data or not set(data) <= _OWN_KEYS:
        return False
    folder = _io.basename(rel)
    own = {f"{folder}/metrics.json", f"{folder}/params.yaml"}
    named = [data.get("metrics"), data.get("params")]
    return any(
        isinstance(items, list) and own & {i for i in items if isinstance(i, str)}
        for items in named
    )


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    _common.read_params(root, _io.join(spec.path, "params.yaml"), out)
    _common.read_json_finals(root, _io.join(spec.path, "metrics.json"), out)
    plots = _io.join(spec.path, "plots", "metrics")
    for name in _io.walk_files(root, plots, MAX_PLOTS, out=out):
        if name.endswith(".tsv"):
            _read_tsv(root, _io.join(plots, name), _io.display_name(name[: -len(".tsv")]), out)
    return out


def _read_tsv(root: RootLike, rel: str, name: str, out: Loaded) -> None:
    data = _io.read_log(
        root, rel, out, quiet_whole=lambda head, tail: _common.full_row(head, tail, "\t")
    )
    if data is None:
        return
    rows = csv_reader(data.decode("utf-8", "replace"), "\t")
    try:
        header = [h.strip().lower() for h in next(rows)]
    except (StopIteration, csv.Error):
        out.warn_partial(f"{rel}: empty TSV", "metrics")
        return
    step_col = header.index("step") if "step" in header else None
    short = name.rsplit("/", 1)[-1].lower()
    value_col = header.index(short) if short in header else len(header) - 1
    bad = 0
    previous: int | None = None
    back: tuple[int, int, int] | None = None
    try:
        for index, row in enumerate(rows):
            if len(row) != len(header):  # a cell lost or added: its value may be another's
                bad += bool(row)
                continue
            step = (
                _io.to_int(row[step_col]) if step_col is not None and step_col < len(row) else index
            )
            value = _io.to_float(row[value_col])
            if value is None or step is None:
                bad += 1
                continue
            if previous is not None and step < previous and back is None:
                back = (index + 2, previous, step)
            previous = step
            add_point(out.series, name, step, value)
    except csv.Error as exc:
        out.warn_partial(f"{rel}: {exc}", "metrics")
    if bad:
        out.warn_partial(f"{rel}: {bad} malformed row(s) skipped", "metrics")
    if back is not None:
        # ``Live(resume=True)`` appends from the step after the last one logged; a step set
        # back (``live.step = ...`` after loading an older checkpoint) appends over rows a
        # dead session logged, with nothing in the file to tell them apart
        line, high, low = back
        out.warn_partial(
            f"{rel}: line {line}: the step goes back from {high} to {low} (a resumed Live"
            " whose step was set back, or on purpose?): which rows are current cannot be"
            " told; all kept",
            "metrics",
        )


ENTRY = Framework(
    name=FRAMEWORK,
    display="DVCLive",
    priority=1000,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=frozenset({"metrics.json", "params.yaml", "dvc.yaml"}),
    checklist=("params.yaml|@params", "metrics.json|plots/metrics/"),
)
