"""MLflow runs: the file store (``mlruns/``) and the SQLite backend (``mlflow.db``).

File store: ``<exp_id>/meta.yaml`` names the experiment, ``<exp_id>/<run_id>/meta.yaml``
holds run_name, status (1..5 = RUNNING, SCHEDULED, FINISHED, FAILED, KILLED) and times in
ms; ``params/<key>`` files hold the value, ``metrics/<key>`` lines ``timestamp value step``
(keys with ``/`` are nested folders), ``tags/<key>``.  MLflow 3 logged models live in
``<exp_id>/models/m-<id>/`` and join their source run as extra paths.  ``.trash`` is skipped.

SQLite: opened read-only (``mode=ro``: ``immutable=1`` would be unsafe while MLflow
writes).  SQLite opens files by name, so on a root that is not local (an object store) the
database (and its ``-wal``) is first copied through the file layer into a private temporary
folder, up to ``MAX_COPY`` bytes; a bigger one is read on local roots only.  A run's
folder is where its ``artifact_uri`` lands under the root; a run with no such folder gets
the unique pseudo path ``<db folder>/mlflow.db#<run_id>``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse
import weakref
from collections.abc import Callable, Iterator
from contextlib import closing, suppress

from store import fsops
from store.frameworks import _common, _io
from store.frameworks._context import DetectContext
from store.frameworks._io import RootLike
from store.frameworks._metrics import add_point
from store.frameworks.flatten import Note, cut_text, numbered, report
from store.frameworks.model import Loaded, RunSpec
from store.frameworks.registry import Framework
from store.readonly import sqlite_uri
from store.root import RootError

FRAMEWORK = "mlflow"
DB_NAME = "mlflow.db"
PSEUDO = "#"
_STATUS_CODES = {1: "running", 2: "unknown", 3: "finished", 4: "failed", 5: "killed"}
_STATUS_WORDS = {
    "RUNNING": "running",
    "SCHEDULED": "unknown",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
}
_MODEL_DIR = re.compile(r"^m-[0-9a-f]+$")
_MAX_DB_RUNS = 20_000
_MAX_DB_METRIC_ROWS = 2_000_000
MAX_COPY = 256 * 1024 * 1024
"""Largest MLflow database (and as much again for its ``-wal``) copied from a root that is
not local so SQLite can open it."""
_COPY_CHUNK = 4 * 1024 * 1024


def _yaml_dict(root: RootLike, rel: str) -> dict[str, object] | None:
    try:
        data = _io.read_yaml(root, rel, 256 * 1024)
    except _io.ReadError:
        return None
    return data if isinstance(data, dict) else None


def _is_run_dir(ctx: DetectContext, rel: str) -> bool:
    """A run folder: meta.yaml beside metrics/params/artifacts, or beside tags/ alone.

    An experiment folder also holds meta.yaml and tags/ (experiment tags such as
    mlflow.note.content), but its subfolders are runs with a meta.yaml of their own.
    """
    entry = ctx.entry(rel)
    if "meta.yaml" not in entry.files:
        return False
    if entry.dirs & {"metrics", "params", "artifacts"}:
        return True
    if "tags" not in entry.dirs:
        return False
    return not any(
        "meta.yaml" in ctx.entry(_io.join(rel, d)).files for d in entry.dirs if d != "tags"
    )


def detect(ctx: DetectContext) -> list[RunSpec]:
    """File-store runs by their folder shape, SQLite runs from each ``mlflow.db``."""
    specs: dict[str, RunSpec] = {}
    exp_names: dict[str, str | None] = {}
    models: list[tuple[str, str]] = []  # (model folder, experiment folder)
    for rel in ctx.paths:
        if ".trash" in rel.split("/"):
            continue
        base = _io.basename(rel)
        if _MODEL_DIR.match(base) and _io.basename(_io.parent(rel)) == "models":
            if "meta.yaml" in ctx.entry(rel).files:
                models.append((rel, _io.parent(_io.parent(rel))))
            continue
        if not rel or not _is_run_dir(ctx, rel):
            continue
        exp_dir = _io.parent(rel)
        if exp_dir not in exp_names:
            exp_meta = _yaml_dict(ctx.root, _io.join(exp_dir, "meta.yaml"))
            name = exp_meta.get("name") if exp_meta else None
            exp_names[exp_dir] = str(name) if name is not None else None
        meta = _yaml_dict(ctx.root, _io.join(rel, "meta.yaml")) or {}
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or base)
        run_name = meta.get("run_name")
        specs[rel] = RunSpec(
            path=rel,
            framework=FRAMEWORK,
            name=str(run_name) if run_name else _io.display_name(base),
            experiment=exp_names[exp_dir],
            run_key=run_id,
        )
    by_key = {(spec.run_key, _io.parent(spec.path)): spec for spec in specs.values()}
    for model_rel, exp_dir in models:
        meta = _yaml_dict(ctx.root, _io.join(model_rel, "meta.yaml")) or {}
        source = meta.get("source_run_id")
        spec = by_key.get((str(source), exp_dir)) if source else None
        if spec is not None:
            spec = _with_extra(spec, model_rel)
            specs[spec.path] = spec
            by_key[(spec.run_key, exp_dir)] = spec
    for rel in ctx.paths:
        if DB_NAME in ctx.entry(rel).files:
            for spec in _detect_db(ctx, rel):
                if spec.path not in specs and not any(
                    s.run_key == spec.run_key for s in specs.values()
                ):
                    specs[spec.path] = spec
    return list(specs.values())


def _with_extra(spec: RunSpec, extra: str) -> RunSpec:
    return RunSpec(
        spec.path,
        spec.framework,
        spec.name,
        spec.experiment,
        (*spec.extra_paths, extra),
        spec.run_key,
    )


# --- SQLite backend ---------------------------------------------------------------------


class _CopiedConnection(sqlite3.Connection):
    """A connection to a private copy of a database: closing it (or losing it) removes the
    copy."""

    remove_copy: Callable[[], object] | None = None

    def close(self) -> None:
        super().close()
        if self.remove_copy is not None:
            self.remove_copy()


def connect(root: RootLike, db_rel: str) -> sqlite3.Connection:
    """A read-only connection to an MLflow database under the root (``ReadError`` if not)."""
    if _io.local_path(root) is not None:
        real = _io.regular_file(root, db_rel)
        try:
            conn = sqlite3.connect(sqlite_uri(real, "ro"), uri=True, timeout=1.0)
        except sqlite3.Error as exc:
            raise _io.ReadError(f"{db_rel}: not a readable MLflow database ({exc})") from None
    else:
        conn = _connect_copy(root, db_rel)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT run_uuid, status, artifact_uri FROM runs LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        conn.close()
        raise _io.ReadError(f"{db_rel}: not a readable MLflow database ({exc})") from None
    return conn


def _connect_copy(root: RootLike, db_rel: str) -> sqlite3.Connection:
    """A connection to a private copy of a database on a root that is not local."""
    import tempfile  # here: every command imports this module, few copy a database

    folder = tempfile.mkdtemp(prefix="artlens-mlflow-")
    try:
        for suffix in ("", "-wal"):
            if suffix and not _io.is_file(root, db_rel + suffix):
                continue
            _copy(root, db_rel + suffix, os.path.join(folder, DB_NAME + suffix), db_rel)
        conn = sqlite3.connect(
            os.path.join(folder, DB_NAME), timeout=1.0, factory=_CopiedConnection
        )
    except BaseException as exc:
        _remove_quietly(folder)
        if isinstance(exc, sqlite3.Error):
            raise _io.ReadError(f"{db_rel}: not a readable MLflow database ({exc})") from None
        raise
    assert isinstance(conn, _CopiedConnection)
    conn.remove_copy = weakref.finalize(conn, _remove_quietly, folder)
    return conn


def _remove_quietly(folder: str) -> None:
    """Remove our private copy by fd, never following a link placed inside it."""
    with suppress(OSError):
        fsops.remove_path(folder)


def _copy(root: RootLike, rel: str, dest: str, db_rel: str) -> None:
    """``rel`` into the local file ``dest``, through one pinned reader (``ReadError`` if
    the file is too big or changes during the copy)."""
    with _io.open_file(root, rel) as reader:
        if reader.size > MAX_COPY:
            raise _io.ReadError(
                f"{db_rel}: larger than {MAX_COPY >> 20} MiB; "
                "an MLflow database this big is read on local roots only"
            )
        try:
            with open(dest, "xb") as out:
                offset = 0
                while offset < reader.size:
                    chunk = reader.read_at(offset, min(_COPY_CHUNK, reader.size - offset))
                    if not chunk:
                        break
                    out.write(chunk)
                    offset += len(chunk)
        except RootError as exc:  # changed under the copy: one line naming the file
            raise _io.ReadError(str(exc)) from None
        except OSError as exc:  # the temporary folder (a full disk)
            raise _io.ReadError(f"{db_rel}: cannot copy to read it ({exc.strerror})") from None


def _detect_db(ctx: DetectContext, folder: str) -> Iterator[RunSpec]:
    db_rel = _io.join(folder, DB_NAME)
    try:
        conn = connect(ctx.root, db_rel)
    except _io.ReadError:
        return
    with closing(conn):
        try:
            experiments = {
                str(eid): str(name)
                for eid, name in conn.execute("SELECT experiment_id, name FROM experiments")
            }
            rows = conn.execute(
                "SELECT run_uuid, name, experiment_id, artifact_uri FROM runs "
                "ORDER BY start_time LIMIT ?",
                (_MAX_DB_RUNS,),
            ).fetchall()
            model_rows = _logged_models(conn)
        except sqlite3.Error:
            return
    models: dict[str, list[str]] = {}
    for run_id, location in model_rows:
        model_rel = _map_uri(ctx, folder, str(location), None, None)
        if model_rel is not None:
            models.setdefault(str(run_id), []).append(model_rel)
    for run_id, name, exp_id, artifact_uri in rows:
        run_id = str(run_id)
        path = _map_uri(ctx, folder, str(artifact_uri or ""), run_id, str(exp_id))
        yield RunSpec(
            path=path if path is not None else f"{db_rel}{PSEUDO}{run_id}",
            framework=FRAMEWORK,
            name=str(name) if name else run_id,
            experiment=experiments.get(str(exp_id)),
            extra_paths=tuple(models.get(run_id, ())),
            run_key=run_id,
        )


def _logged_models(conn: sqlite3.Connection) -> list[tuple[object, object]]:
    try:
        return conn.execute(
            "SELECT source_run_id, artifact_location FROM logged_models "
            "WHERE source_run_id IS NOT NULL LIMIT ?",
            (_MAX_DB_RUNS,),
        ).fetchall()
    except sqlite3.Error:
        return []


def _map_uri(
    ctx: DetectContext, db_folder: str, uri: str, run_id: str | None, exp_id: str | None
) -> str | None:
    """The root-relative folder an artifact URI points at (without ``/artifacts``)."""
    candidates: list[str] = []
    if uri.startswith("mlflow-artifacts:"):
        tail = urllib.parse.unquote(urllib.parse.urlparse(uri).path).lstrip("/")
        candidates.append(_io.join(db_folder, "mlartifacts", tail))
    elif uri.startswith("file:") or "://" not in uri:
        local = (
            urllib.parse.unquote(urllib.parse.urlparse(uri).path)
            if uri.startswith("file:")
            else uri
        )
        if os.path.isabs(local):
            rel = _relative_to_root(ctx.root, local)
            if rel is not None:
                candidates.append(rel)
        elif local:
            candidates.append(os.path.normpath(_io.join(db_folder, local)).replace(os.sep, "/"))
    for cand in candidates:
        cand = cand.rstrip("/")
        folder = _io.parent(cand) if _io.basename(cand) == "artifacts" else cand
        if folder in ctx.listing:
            return folder
    # The root may have moved since the run (a copy, another mount): find the folder by
    # its own name, <exp_id>/<run_id> for a run, models/m-<id> for a logged model.
    if run_id:
        for rel in ctx.by_name.get(run_id, ()):
            if exp_id is None or _io.basename(_io.parent(rel)) == exp_id:
                return rel
        return None
    tail = uri.rstrip("/")
    if tail.endswith("/artifacts"):
        tail = tail[: -len("/artifacts")]
    model_name = tail.rsplit("/", 1)[-1]
    if _MODEL_DIR.match(model_name):
        for rel in ctx.by_name.get(model_name, ()):
            if _io.basename(_io.parent(rel)) == "models":
                return rel
    return None


def _relative_to_root(root: RootLike, path: str) -> str | None:
    local = _io.local_path(root)
    if local is None:
        return None
    for base in (os.path.abspath(local), os.path.realpath(local)):
        if path == base:
            return ""
        if path.startswith(base.rstrip("/") + "/"):
            return os.path.normpath(path[len(base) :].lstrip("/"))
    return None


# --- reading ------------------------------------------------------------------------------


def load(root: RootLike, spec: RunSpec) -> Loaded:
    out = Loaded()
    if spec.run_key:
        out.meta["run_id"] = spec.run_key
    meta_rel = _io.join(spec.path, "meta.yaml")
    if PSEUDO not in spec.path and _exists(root, meta_rel):
        _load_file_store(root, spec, out)
        return out
    db_rel = _find_db(root, spec)
    if db_rel is None:
        out.warn(f"{spec.path}: no meta.yaml and no {DB_NAME} found for run {spec.run_key}")
        return out
    _load_db(root, db_rel, spec, out)
    return out


def _exists(root: RootLike, rel: str) -> bool:
    return _io.is_file(root, rel)


def _find_db(root: RootLike, spec: RunSpec) -> str | None:
    if PSEUDO in spec.path:
        return spec.path.split(PSEUDO, 1)[0]
    folder = spec.path
    while True:
        if _exists(root, _io.join(folder, DB_NAME)):
            return _io.join(folder, DB_NAME)
        if not folder:
            return None
        folder = _io.parent(folder)


def _load_file_store(root: RootLike, spec: RunSpec, out: Loaded) -> None:
    try:
        meta = _io.read_yaml(root, _io.join(spec.path, "meta.yaml"), 256 * 1024)
    except _io.ReadError as exc:
        out.warn(str(exc))
        meta = {}
    if not isinstance(meta, dict):
        out.warn(f"{spec.path}/meta.yaml: not a mapping")
        meta = {}
    status = meta.get("status")
    out.status = _STATUS_CODES.get(status, "unknown") if isinstance(status, int) else "unknown"
    out.started = _ms(meta.get("start_time"))
    out.ended = _ms(meta.get("end_time"))
    for key in ("user_id", "lifecycle_stage", "experiment_id", "artifact_uri"):
        if meta.get(key) is not None:
            out.meta[key] = str(meta[key])
    _note_deleted(out, meta.get("lifecycle_stage"), f"{spec.path}/meta.yaml")
    params_rel = _io.join(spec.path, "params")
    for name, value in _read_kv_dir(root, params_rel, out, "params").items():
        _common.add_param(out, name, _io.param_value(value), params_rel)
    tags = _read_kv_dir(root, _io.join(spec.path, "tags"), out)
    _apply_tags(tags, out)
    metrics_dir = _io.join(spec.path, "metrics")
    for name in _io.walk_files(root, metrics_dir, MAX_METRIC_FILES, out=out):
        _read_metric_file(root, _io.join(metrics_dir, name), _io.display_name(name), out)


MAX_METRIC_FILES = 20_000
"""Metric files of one run read; more marks its metrics read in part."""
MAX_KV = 10_000
"""Params (and tags) of one run read; past this, params are counted as not read."""
MAX_VALUE = 64 * 1024
"""Bytes of one param (or tag) file read; a longer value is marked cut (``cut_text``)."""


def _read_kv_dir(root: RootLike, folder: str, out: Loaded, part: str = "") -> dict[str, str]:
    values: dict[str, str] = {}
    others: list[str] = []
    names, total, floor = _io.walk_counted(root, folder, MAX_KV, others)
    # a FIFO or device where a value was written, or a file not read, is a value not seen
    parts = (part,) if part else ()
    _io.warn_not_files(out, folder, others, parts)
    if total > len(names):
        if part:
            _cut_params(folder, total - len(names), at_least=floor)
        else:
            more = f"at least {total:,}" if floor else f"{total:,}"
            out.warn(f"{folder}: {more} files, read the first {len(names):,} found")
    for name in names:
        rel = _io.join(folder, name)
        try:
            text, cut = _io.read_text(root, rel, MAX_VALUE)
        except _io.ReadError as exc:
            if part:
                out.warn_partial(str(exc), part)
            else:
                out.warn(str(exc))
            continue
        if cut:  # two values alike up to the cap may differ past it: marked, not compared
            out.warn(f"{rel}: value longer than 64 KiB, only its start read (not compared)")
            text = cut_text(text, _bytes_past(root, rel, MAX_VALUE))
        key = _io.display_name(name)
        if key in values:  # an undecodable byte and its spelling (``a\\x80``) read alike
            kept = numbered(key, set(values))
            out.warn(f"{folder}: two files read as {key}; the second kept as {kept}")
            key = kept
        values[key] = text
    return values


def _bytes_past(root: RootLike, rel: str, cap: int) -> int | None:
    """How many bytes of a file lie past the first ``cap`` (None when it cannot be told)."""
    try:
        size = _io.as_root(root).stat(rel).size
    except (RootError, OSError):
        return None
    return size - cap if size > cap else None


def _cut_params(where: str, count: int, *, at_least: bool = False) -> None:
    more = f"{count} or more" if at_least else str(count)
    report(
        Note(
            "params",
            f"{where}: {more} params past the first {MAX_KV} not read (not compared)",
            cut=count,
            at_least=at_least,
        )
    )


def _apply_tags(tags: dict[str, str], out: Loaded) -> None:
    wanted = {
        "mlflow.source.git.commit": "git_commit",
        "mlflow.source.git.repoURL": "git_remote",
        "mlflow.source.git.branch": "git_branch",
        "mlflow.source.name": "source",
        "mlflow.user": "user",
        "mlflow.runName": "run_name",
        "mlflow.parentRunId": "parent_run_id",
    }
    for tag, key in wanted.items():
        if tag in tags:
            out.meta[key] = tags[tag].strip()
    user_tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
    if user_tags:
        out.meta["tags"] = dict(list(user_tags.items())[:200])


def _read_metric_file(root: RootLike, rel: str, name: str, out: Loaded) -> None:
    """One metric's lines ``timestamp value step``, ordered as MLflow reads them.

    MLflow's latest value of a metric is the line with the greatest
    ``(step, timestamp, value)`` (``FileStore._get_metric_from_file``), not the last line:
    async logging and resumed runs append out of order.  The points are sorted by
    ``(step, timestamp)`` (file order on a tie) and MLflow's latest placed last of all, so
    "last" is MLflow's.  A line without a step is step 0, as MLflow reads it.  A last
    line without its line end is read once the run is quiet and the line whole
    (``whole_line``), as a CSV's last row is.
    """
    data = _io.read_log(root, rel, out, quiet_whole=whole_line)
    if data is None:
        return
    bad = 0
    lines: list[tuple[int, int, float]] = []  # (step, timestamp, value) in file order
    for line in data.splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            timestamp = int(parts[0])
            value = float(parts[1])
            step = int(parts[2]) if len(parts) > 2 else 0
        except (ValueError, IndexError):
            bad += 1
            continue
        lines.append((step, timestamp, value))
    for step, _timestamp, value in latest_last(lines):
        add_point(out.series, name, step, value)
    if bad:
        out.warn_partial(f"{rel}: {bad} malformed line(s) skipped", "metrics")


def whole_line(head: bytes, tail: bytes) -> bool:
    """Whether ``tail`` (a metric file's last line, without its line end) has the shape of
    a whole line: what ``_io.read_log`` asks of a quiet file's last line before it reads
    it (``_common.full_row`` asks the same of a CSV row).

    ``timestamp value step``, the three fields ``FileStore`` writes: a line cut before its
    step (``1700000001000 0.2``) would be read as step 0 with a value cut short.  The step
    ends the line, so it alone can have been cut (``1`` of ``12``): one below the step of
    the line before is not taken.  A file whose size is a multiple of 4 KiB was most
    likely left by a buffer flushed whole, and its last line is never taken."""
    if (len(head) + len(tail)) % 4096 == 0:
        return False
    fields = tail.split()
    try:
        int(fields[0]), float(fields[1])
        step = int(fields[2])
    except (ValueError, IndexError):
        return False
    if len(fields) != 3:
        return False
    body = head.rstrip(b"\r\n")
    before = body[body.rfind(b"\n") + 1 :].split()
    try:
        return len(before) != 3 or step >= int(before[2])
    except ValueError:
        return True


def latest_last(lines: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """``(step, timestamp, value)`` points sorted by step then timestamp (file order on a
    tie), with the one MLflow takes as latest last: Python's ``max`` over the file's order
    by the whole tuple, as ``FileStore`` does (a NaN value never wins a tie it is compared
    in, so there the earlier line stays latest)."""
    if not lines:
        return []
    latest = max(range(len(lines)), key=lambda i: lines[i])
    rest = sorted((i for i in range(len(lines)) if i != latest), key=lambda i: lines[i][:2])
    return [lines[i] for i in rest] + [lines[latest]]


def _note_deleted(out: Loaded, stage: object, where: str) -> None:
    """A run deleted in MLflow keeps its files (and its status, FINISHED most often) until
    ``mlflow gc``: the MLflow UI hides it, so it must not pass here for a run like any other."""
    if isinstance(stage, str) and stage.strip().lower() == "deleted":
        out.warn(
            f"{where}: run deleted in MLflow (lifecycle_stage: deleted); its files stay"
            " until mlflow gc"
        )


def _ms(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) / 1000.0


def _load_db(root: RootLike, db_rel: str, spec: RunSpec, out: Loaded) -> None:
    out.meta["backend"] = db_rel
    try:
        conn = connect(root, db_rel)
    except _io.ReadError as exc:  # the run's params and metrics are all in it
        out.warn_partial(str(exc), "params", "metrics")
        return
    with closing(conn):
        try:
            row = conn.execute(
                "SELECT status, start_time, end_time, artifact_uri, user_id, lifecycle_stage "
                "FROM runs WHERE run_uuid = ?",
                (spec.run_key,),
            ).fetchone()
            if row is None:
                out.warn(f"{db_rel}: run {spec.run_key} not found")
                return
            status, start, end, artifact_uri, user, stage = row
            out.status = _STATUS_WORDS.get(str(status), "unknown")
            out.started, out.ended = _ms(start), _ms(end)
            out.meta.update(artifact_uri=str(artifact_uri), user_id=str(user))
            out.meta["lifecycle_stage"] = str(stage)
            _note_deleted(out, stage, f"{db_rel} (run {spec.run_key})")
            rows = conn.execute(
                "SELECT key, value FROM params WHERE run_uuid = ? LIMIT ?",
                (spec.run_key, MAX_KV),
            ).fetchall()
            for key, value in rows:
                _common.add_param(out, str(key), _io.param_value(str(value)), db_rel)
            if len(rows) >= MAX_KV:
                (total,) = conn.execute(
                    "SELECT COUNT(*) FROM params WHERE run_uuid = ?", (spec.run_key,)
                ).fetchone()
                if int(total) > MAX_KV:
                    _cut_params(f"{db_rel} (run {spec.run_key})", int(total) - MAX_KV)
            tags = {
                str(k): str(v)
                for k, v in conn.execute(
                    "SELECT key, value FROM tags WHERE run_uuid = ? LIMIT 10000",
                    (spec.run_key,),
                )
            }
            _apply_tags(tags, out)
            cursor = conn.execute(
                # MLflow's latest is the greatest (step, timestamp, value), a NaN stored
                # as value 0 (SqlAlchemyStore._update_latest_metric_if_necessary)
                "SELECT key, value, step, is_nan FROM metrics WHERE run_uuid = ? "
                "ORDER BY key, step, timestamp, value LIMIT ?",
                (spec.run_key, _MAX_DB_METRIC_ROWS + 1),
            )
            for rows_read, (key, value, step, is_nan) in enumerate(cursor, 1):
                if rows_read > _MAX_DB_METRIC_ROWS:
                    out.warn_partial(
                        f"{db_rel}: run {spec.run_key}: metric rows past the first"
                        f" {_MAX_DB_METRIC_ROWS:,} not read",
                        "metrics",
                    )
                    break
                number = _io.to_float(value)
                if number is None or is_nan:
                    number = float("nan")
                add_point(out.series, str(key), int(step or 0), number)
        except (sqlite3.Error, ValueError, TypeError) as exc:  # stopped part way
            out.warn_partial(f"{db_rel}: {' '.join(str(exc).split())}", "params", "metrics")


ENTRY = Framework(
    name=FRAMEWORK,
    display="MLflow",
    priority=100,
    detect=detect,
    load=load,
    owns_subtree=True,
    markers=frozenset({"meta.yaml", DB_NAME}),
    # a run renamed (run_name in meta.yaml, an experiment's name in its own) or a run
    # written into the database changes what detection finds, not which files exist
    config_markers=frozenset({"meta.yaml"}),
    busy_markers=frozenset({DB_NAME, f"{DB_NAME}-wal"}),
    checklist=("params/*|@params", "metrics/*|@metrics", "artifacts/**"),
    kinds={"mlmodel": "config", "meta.yaml": "config"},
)
