"""Diff engines read through the file layer: a Root's reader diffs as a path does."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from store.diff import FileDiff, diff_files
from store.diff._io import DiffError, RegularFile
from store.diff.checkpoints import summarize_checkpoints
from store.diff.runs import ArtifactChange
from store.diff.tensors import TensorDiff, diff_safetensors
from store.root.local import LocalRoot
from tests.memroot import MemReader, MemRoot


def test_a_root_reader_reads_and_a_change_under_it_is_a_diff_error(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"0123456789")
    with RegularFile(LocalRoot(tmp_path).open("a.bin"), "a.bin") as handle:
        assert (handle.size, handle.name) == (10, "a.bin")
        assert handle.fd >= 0
        assert list(handle.chunks(2, 9, 3)) == [b"234", b"567", b"8"]
        os.truncate(tmp_path / "a.bin", 4)
        with pytest.raises(DiffError, match="changed while it was being compared"):
            handle.read_at(0, 4)
        with pytest.raises(DiffError):
            handle.check()
    with pytest.raises(DiffError, match="not a regular file"):
        RegularFile(tmp_path)


FIXTURES = Path(__file__).parent / "fixtures"
LIGHTNING = FIXTURES / "frameworks" / "lightning" / "lightning_logs"
PAIRS = {
    "torch zip checkpoints": ("v0/last.ckpt", "v1/last.ckpt"),
    "same checkpoint": ("v0/last.ckpt", "v0/copy.ckpt"),
    "hparams": ("v0/hparams.yaml", "v1/hparams.yaml"),
    "metrics": ("v0/metrics.csv", "v1/metrics.csv"),
    "safetensors": ("a.safetensors", "b.safetensors"),
    "models": ("legacy.pt", "state_dict.pt"),
    "refused torch zip": ("evil.pt", "v0/last.ckpt"),
    "text": ("a.txt", "b.txt"),
    "broken json": ("a.json", "b.json"),
    "binary": ("a.bin", "b.bin"),
    "missing": ("a.txt", "gone.txt"),
}


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real checkpoints, configs and tables from the fixtures, and a few written here."""
    from tests.test_diff_formats import f32, write_safetensors

    folder = tmp_path_factory.mktemp("pairs")
    for side, version in (("v0", "version_0"), ("v1", "version_1")):
        (folder / side).mkdir()
        for name in ("checkpoints/last.ckpt", "hparams.yaml", "metrics.csv"):
            shutil.copyfile(LIGHTNING / version / name, folder / side / Path(name).name)
    shutil.copyfile(folder / "v0" / "last.ckpt", folder / "v0" / "copy.ckpt")
    for name in ("legacy.pt", "state_dict.pt"):
        shutil.copyfile(FIXTURES / "models" / name, folder / name)
    shutil.copyfile(FIXTURES / "pickles" / "torch_zip_evil.pt", folder / "evil.pt")
    write_safetensors(folder / "a.safetensors", {"w": ("F32", [3], f32(1, 2, 3))}, {"k": "1"})
    write_safetensors(folder / "b.safetensors", {"w": ("F32", [3], f32(1, 2.5, 3))}, {"k": "2"})
    (folder / "a.txt").write_text("one\ntwo\nthree\n")
    (folder / "b.txt").write_text("one\n2\nthree\nfour\n")
    (folder / "a.json").write_text('{"lr": 0.1}')
    (folder / "b.json").write_text('{"lr": ')
    (folder / "a.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "b.bin").write_bytes(bytes(range(256)) * 39 + b"\x01" * 256)
    return folder


def as_json(result: FileDiff, folder: Path) -> str:
    """A diff's JSON with the folder left out of the names (a root names files by rel)."""
    return json.dumps(result.to_json(), default=str, sort_keys=True).replace(f"{folder}/", "")


@pytest.mark.parametrize("what", sorted(PAIRS))
def test_a_file_diff_through_any_root_is_the_local_diff(what: str, pair_folder: Path) -> None:
    """The same pair diffed by local path, through a LocalRoot and through an in-memory
    root (no descriptor, no path): the same answer, read where the root keeps it."""
    rel_a, rel_b = PAIRS[what]
    want = as_json(diff_files(pair_folder / rel_a, pair_folder / rel_b), pair_folder)
    local = LocalRoot(pair_folder)
    assert as_json(diff_files((local, rel_a), (local, rel_b)), pair_folder) == want
    mem = MemRoot.copy_of(pair_folder)
    got = diff_files((mem, rel_a), (mem, rel_b))
    if what == "missing":  # each root words its own "not found"
        assert got.error is not None and got.error.startswith("cannot open 'gone.txt': ")
        assert (got.kind, got.result, got.size_old) == ("binary", None, None)
        return
    assert as_json(got, pair_folder) == want
    assert mem.reads > 0


def test_torch_zips_on_a_root_are_mapped_not_refused(pair_folder: Path) -> None:
    mem = MemRoot.copy_of(pair_folder)
    result = diff_files((mem, "v0/last.ckpt"), (mem, "v1/last.ckpt"))
    assert result.kind == "tensors" and result.error is None and result.notes == []
    assert isinstance(result.result, TensorDiff) and result.result.format == "torch-zip"
    assert result.result.counts().get("values_changed", 0) > 0
    refused = diff_files((mem, "evil.pt"), (mem, "v0/last.ckpt"))
    assert refused.kind == "model" and "refused" in refused.notes[0]


def test_a_run_diff_summarizes_checkpoints_on_any_root(pair_folder: Path) -> None:
    change = ArtifactChange("last.ckpt", 1, 1, "a", "b")
    want = summarize_checkpoints(
        [change], os.fsencode(pair_folder / "v0"), os.fsencode(pair_folder / "v1")
    )
    mem = MemRoot.copy_of(pair_folder)
    got = summarize_checkpoints([change], (mem, "v0"), (mem, "v1"))
    assert got == want and got[0].tensors is not None and got[0].tensors.skipped is None


def test_a_file_changed_on_its_root_mid_diff_is_an_error_not_a_diff(pair_folder: Path) -> None:
    mem = MemRoot.copy_of(pair_folder)
    with RegularFile((mem, "a.bin")) as handle:
        mem.put("a.bin", b"rewritten")
        with pytest.raises(DiffError, match="changed while it was being compared"):
            handle.read_at(0, 4)
    with pytest.raises(DiffError, match=r"cannot open 'nope\.bin'"):
        RegularFile((mem, "nope.bin"))


class CountingRoot(MemRoot):
    """An in-memory root that remembers what was opened."""

    opened: list[str]

    def open(self, rel: str) -> MemReader:
        self.opened.append(rel)
        return super().open(rel)


def test_safetensors_header_and_data_come_from_one_pinned_reader(pair_folder: Path) -> None:
    """One open per side: a rewrite between reading the header and the tensors cannot
    pair one version's offsets with the other's bytes."""
    root = CountingRoot(MemRoot.copy_of(pair_folder).files)
    root.opened = []
    result = diff_safetensors((root, "a.safetensors"), (root, "b.safetensors"))
    assert sorted(root.opened) == ["a.safetensors", "b.safetensors"]
    assert result.counts() == {"values_changed": 1} and len(result.metadata) == 1
