"""The file layer holds end to end: real fixtures read through an in-memory ``Root`` give
what the same files give through a local folder (runs, params, metrics, status, series,
inspection verdicts, previews, hashes).  A reader that still needs a local path shows up
here as a difference."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from store.frameworks import RunSpec, detect_runs, mlflow, read_metric_series, read_run
from store.frameworks.mlflow import PSEUDO
from store.frameworks.model import DirListing
from store.hashing import hash_at
from store.inspect import inspect_at
from store.preview import preview_at
from store.root import ChangedError, NotAFile, NotFound, Root, UnsafeRelPath
from store.root.local import LocalRoot
from tests.memroot import MemRoot
from tests.test_frameworks import listing_of

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = FIXTURES / "frameworks"
MODELS = FIXTURES / "models"

pytestmark = pytest.mark.skipif(
    not (RUNS / "EXPECTED.json").exists(), reason="real fixtures not generated"
)


def listing_from(root: Root) -> dict[str, DirListing]:
    """The scanner's listing, made from the root's own ``walk`` (no local path)."""
    out: dict[str, DirListing] = {}
    for folder, entries in root.walk():
        dirs = frozenset(e.name for e in entries if e.kind == "dir")
        files = frozenset(e.name for e in entries if e.kind in ("file", "symlink"))
        out[folder] = DirListing(dirs, files)
    return out


@pytest.fixture(scope="module")
def mem() -> MemRoot:
    return MemRoot.copy_of(RUNS, url="mem://bucket/frameworks")


@pytest.fixture(scope="module")
def local_runs() -> dict[str, RunSpec]:
    return {s.path: s for s in detect_runs(RUNS, listing_of(RUNS))}


@pytest.fixture(scope="module")
def mem_runs(mem: MemRoot) -> dict[str, RunSpec]:
    return {s.path: s for s in detect_runs(mem, listing_from(mem))}


def test_the_memory_copy_lists_what_the_folder_does(mem: MemRoot) -> None:
    """Less the fixtures' symlinks (W&B's dangling ``debug-core.log``): a bucket has none."""
    links = {p.relative_to(RUNS).as_posix() for p in RUNS.rglob("*") if p.is_symlink()}
    assert links  # the comparison below leaves something out
    want = {
        folder: DirListing(
            entry.dirs, frozenset(f for f in entry.files if f"{folder}/{f}" not in links)
        )
        for folder, entry in listing_of(RUNS).items()
    }
    assert listing_from(mem) == want


def test_the_same_runs_are_detected_through_memory(
    local_runs: dict[str, RunSpec], mem_runs: dict[str, RunSpec]
) -> None:
    assert {s.framework for s in local_runs.values()} >= {
        "mlflow",
        "lightning",
        "hf-trainer",
        "wandb",
    }
    assert mem_runs == local_runs


@pytest.mark.parametrize(
    "framework",
    [
        *("mlflow", "lightning", "hf-trainer", "wandb", "hydra", "dvclive", "tensorboard"),
        *("comet", "neptune", "keras", "mmengine", "detectron2", "ultralytics", "timm", "nanogpt"),
    ],
)
def test_every_run_reads_the_same_through_memory(
    framework: str, mem: MemRoot, local_runs: dict[str, RunSpec]
) -> None:
    specs = [s for s in local_runs.values() if s.framework == framework]
    assert specs, framework
    before = mem.reads
    for spec in specs:
        local = read_run(RUNS, spec)
        remote = read_run(mem, spec)
        assert remote.params == local.params, spec.path
        assert remote.metrics == local.metrics, spec.path
        assert remote.status == local.status, spec.path
        assert (remote.started, remote.ended) == (local.started, local.ended), spec.path
        assert remote.meta == local.meta, spec.path
        assert read_metric_series(mem, spec) == read_metric_series(RUNS, spec), spec.path
    assert mem.reads > before  # read here, not from a path on this machine


def test_an_mlflow_database_copied_from_memory_is_removed_after_use(
    mem: MemRoot,
    local_runs: dict[str, RunSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spec = next(s for s in local_runs.values() if PSEUDO in s.path or "mlflow-sqlite" in s.path)
    info = read_run(mem, spec)
    assert info.params and info.meta["warnings"] == []
    assert list(tmp_path.iterdir()) == []


def test_an_mlflow_database_too_big_to_copy_says_local_roots_only(
    mem: MemRoot, local_runs: dict[str, RunSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlflow, "MAX_COPY", 1024)
    spec = next(s for s in local_runs.values() if "mlflow-sqlite" in s.path)
    info = read_run(mem, spec)
    assert not info.params
    warnings = info.meta["warnings"]
    assert isinstance(warnings, list)
    assert any("local roots only" in str(w) for w in warnings)
    assert read_run(RUNS, spec).params  # a local root reads it whatever its size


@pytest.fixture(scope="module")
def models() -> MemRoot:
    return MemRoot.copy_of(FIXTURES / "models", url="mem://bucket/fixtures/models")


@pytest.mark.parametrize("rel", [p.name for p in sorted(MODELS.iterdir()) if p.is_file()])
def test_inspect_preview_and_hash_agree_through_memory(rel: str, models: MemRoot) -> None:
    local = LocalRoot(MODELS)
    want = inspect_at(local, rel)
    got = inspect_at(models, rel)
    assert (got.format, got.verdict, got.reasons, got.imports) == (
        want.format,
        want.verdict,
        want.reasons,
        want.imports,
    )
    assert got.summary == want.summary
    assert preview_at(models, rel) == preview_at(local, rel)
    mem_hash, local_hash = hash_at(models, rel), hash_at(local, rel)
    assert mem_hash.error is None and mem_hash.digest is not None
    assert (mem_hash.digest, mem_hash.head) == (local_hash.digest, local_hash.head)
    assert mem_hash.version == models.identity_of(rel)


def test_the_memory_root_keeps_the_contract() -> None:
    root = MemRoot({"a/b.txt": b"hello", "c.txt": b"x"})
    assert [(e.name, e.kind) for e in root.list_dir()] == [("a", "dir"), ("c.txt", "file")]
    with pytest.raises(UnsafeRelPath):
        root.open("a/../c.txt")
    with pytest.raises(NotAFile):
        root.open("a")
    with pytest.raises(NotFound):
        root.stat("missing")
    assert root.read_capped("a/b.txt", 3) == (b"hel", True)
    reader = root.open("a/b.txt")
    assert reader.read_at(1, 3) == b"ell"
    root.put("a/b.txt", b"HELLO")
    with pytest.raises(ChangedError):
        reader.read_at(0, 5)


def test_every_run_file_previews_and_hashes_the_same_through_memory(mem: MemRoot) -> None:
    """Logs, configs, CSVs, event files and checkpoints of every framework fixture."""
    local = LocalRoot(RUNS)
    rels = sorted(mem.files)
    assert len(rels) > 100
    for rel in rels:
        assert preview_at(mem, rel) == preview_at(local, rel), rel
        got, want = inspect_at(mem, rel), inspect_at(local, rel)
        assert (got.format, got.verdict, got.reasons) == (want.format, want.verdict, want.reasons)
        assert hash_at(mem, rel).digest == hash_at(local, rel).digest, rel
