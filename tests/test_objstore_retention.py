"""Retention on buckets against a real S3 server: trash, restore and purge round-trip every
byte, in a versioned bucket (delete markers) and an unversioned one (server-side copies)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from objstore_server import MULTIPART_KEY, S3Server, fresh_bucket, s3_server, seed_files

from store.retention.bucket import TRASH, BucketTrash
from store.root.objstore import ObjectRoot, key_to_rel

pytestmark = pytest.mark.objstore
__all__ = ["fresh_bucket", "s3_server"]

CHOSEN = [
    "models/evil.pkl",
    MULTIPART_KEY,
    "lightning/lightning_logs/version_0/checkpoints/last.ckpt",
    "hostile/ctl\x1b[31mred.txt",
    "hostile/../up.txt",
]


def _keys(server: S3Server, bucket: str) -> set[str]:
    """The live keys outside the trash (one listing: the seed fits a page)."""
    page = server.call("list_objects_v2", Bucket=bucket)
    return {o["Key"] for o in page.get("Contents", []) if not o["Key"].startswith(TRASH)}


def _bytes(server: S3Server, bucket: str, keys: list[str]) -> dict[str, bytes]:
    return {k: server.fs.cat_file(f"{bucket}/{k}") for k in keys}


@pytest.mark.parametrize("versioned", [True, False])
def test_apply_then_restore_round_trips_every_byte(
    s3_server: S3Server, fresh_bucket: Callable[..., str], versioned: bool
) -> None:
    bucket = fresh_bucket(versioned=versioned)
    keys = _keys(s3_server, bucket)
    before = _bytes(s3_server, bucket, CHOSEN)
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    plan = trash.plan([key_to_rel(k) for k in CHOSEN])
    assert _keys(s3_server, bucket) == keys  # planning changes nothing
    assert plan.total_bytes == sum(len(b) for b in before.values())
    assert plan.monthly_cost() > 0
    multipart = next(i for i in plan.items if i.key == MULTIPART_KEY)
    assert multipart.note == "multipart ETag"

    applied = trash.apply(plan)
    assert applied.counts() == {"trashed": len(CHOSEN)}
    assert _keys(s3_server, bucket) == keys - set(CHOSEN)

    restored = BucketTrash(ObjectRoot(f"s3://{bucket}")).restore(trash.load(plan.batch))
    assert restored.counts() == {"restored": len(CHOSEN)}
    assert _keys(s3_server, bucket) == keys
    assert _bytes(s3_server, bucket, CHOSEN) == before  # every byte back
    if not versioned:  # the copies are gone from the trash again
        left = s3_server.contents(bucket, f"{TRASH}/{plan.batch}/")
        assert left == {}


@pytest.mark.parametrize("versioned", [True, False])
def test_purge_deletes_for_good(s3_server: S3Server, versioned: bool) -> None:
    bucket = s3_server.new_bucket(versioned=versioned)
    s3_server.put(bucket, "models/evil.pkl", b"bytes")
    s3_server.put(bucket, "models/kept.pkl", b"kept")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["models/evil.pkl"]))
    assert trash.purge(batch).counts() == {"purged": 1}
    assert _keys(s3_server, bucket) == {"models/kept.pkl"}
    versions = s3_server.call("list_object_versions", Bucket=bucket, Prefix="models/evil.pkl")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    trashed = s3_server.call("list_objects_v2", Bucket=bucket, Prefix=f"{TRASH}/{batch.batch}/")
    assert not trashed.get("Contents")
    assert trash.restore(trash.load(batch.batch)).counts() == {"purged": 1}  # nothing to undo


@pytest.mark.parametrize("versioned", [True, False])
def test_an_object_overwritten_after_the_plan_is_left_alone(
    s3_server: S3Server, versioned: bool
) -> None:
    bucket = s3_server.new_bucket(versioned=versioned)
    s3_server.put(bucket, "run/ckpt.pt", b"old")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    plan = trash.plan(["run/ckpt.pt", "run/missing.pt"])
    s3_server.put(bucket, "run/ckpt.pt", b"new bytes")
    applied = trash.apply(plan)
    assert applied.counts() == {"changed": 1, "missing": 1}
    assert _keys(s3_server, bucket) == {"run/ckpt.pt"}
    assert _bytes(s3_server, bucket, ["run/ckpt.pt"]) == {"run/ckpt.pt": b"new bytes"}


def test_restore_never_replaces_a_newer_object(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "p/ckpt.pt", b"old")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}/p"))
    batch = trash.apply(trash.plan(["ckpt.pt"]))
    s3_server.put(bucket, "p/ckpt.pt", b"written since")
    assert trash.restore(batch).counts() == {"trashed": 1}  # still trashed: purgeable
    assert s3_server.contents(bucket, "p/ckpt.pt") == {"p/ckpt.pt": b"written since"}


def test_legal_hold_is_respected_and_reported(s3_server: S3Server) -> None:
    bucket = f"artlens-locked-{uuid.uuid4().hex[:12]}"
    s3_server.call("create_bucket", Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3_server.put(bucket, "ckpt.pt", b"held")
    s3_server.call(
        "put_object_legal_hold", Bucket=bucket, Key="ckpt.pt", LegalHold={"Status": "ON"}
    )
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["ckpt.pt"]))
    assert batch.counts() == {"trashed": 1}  # a delete marker is allowed under a hold
    purged = trash.purge(batch)
    assert purged.counts() == {"trashed": 1} and "legal hold" in purged.items[0].note
    assert trash.restore(purged).counts() == {"restored": 1}
    assert s3_server.contents(bucket, "ckpt.pt") == {"ckpt.pt": b"held"}


def test_seed_is_what_the_buckets_hold(s3_server: S3Server, fresh_bucket: Any) -> None:
    bucket = fresh_bucket(versioned=False)
    expected = seed_files()
    assert _keys(s3_server, bucket) == {*expected, MULTIPART_KEY}


def test_an_object_from_before_versioning_is_kept(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "old.ckpt", b"from before versioning")
    s3_server.call(
        "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["old.ckpt"]))
    assert batch.counts() == {"kept": 1} and "before versioning" in batch.items[0].note
    assert _keys(s3_server, bucket) == {"old.ckpt"}


def _unit(path: str, *, is_dir: bool, size: int = 0, identity: str = "") -> Any:
    from store.objscan import identity_number
    from store.retention.candidates import Candidate

    inode = identity_number(identity) if identity else 0
    ftype = "dir" if is_dir else "file"
    return Candidate("", 1, "run", "hf", False, path, is_dir, size, 0, inode, ftype, None)


def test_a_kept_checkpoint_folder_emptied_since_the_plan_holds_back_its_run(
    s3_server: S3Server,
) -> None:
    """A kept folder unit is there while some object lies below it (its zero-byte folder
    marker does not count); once it is empty, the run's removals wait."""
    from store.retention.bucket import apply_candidates

    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "p/run/checkpoint-1.bin", b"old weights")
    s3_server.put(bucket, "p/run/checkpoint-2/", b"")
    s3_server.put(bucket, "p/run/checkpoint-2/model.bin", b"kept weights")
    root = ObjectRoot(f"s3://{bucket}/p")
    identity = root.backend.head("p/run/checkpoint-1.bin").identity
    removal = _unit("run/checkpoint-1.bin", is_dir=False, size=11, identity=identity)
    kept = _unit("run/checkpoint-2", is_dir=True)
    s3_server.call("delete_object", Bucket=bucket, Key="p/run/checkpoint-2/model.bin")

    report, _ = apply_candidates(root, [removal], [kept])
    assert report.done == []
    assert [(r.path, r.reason.split(":")[0]) for r in report.skipped] == [
        ("run/checkpoint-1.bin", "kept run/checkpoint-2 is gone since the plan")
    ]
    assert "p/run/checkpoint-1.bin" in _keys(s3_server, bucket)

    s3_server.put(bucket, "p/run/checkpoint-2/model.bin", b"kept weights")
    report, _ = apply_candidates(root, [removal], [kept])
    assert [r.path for r in report.done] == ["run/checkpoint-1.bin"]
    assert "p/run/checkpoint-1.bin" not in _keys(s3_server, bucket)


@pytest.mark.parametrize("versioned", [True, False])
def test_a_manifest_an_older_restore_left_kept_is_purged_in_full(
    s3_server: S3Server, versioned: bool
) -> None:
    """An older restore that met a newer object at the key marked the item ``kept`` in the
    manifest and left its trashed bytes (the copy, or the version under its marker); purge
    only acted on ``trashed`` items, so those bytes stayed for good.  Loaded, such an item
    is trashed again, and a purge frees it."""
    bucket = s3_server.new_bucket(versioned=versioned)
    s3_server.put(bucket, "p/ckpt.pt", b"old")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}/p"))
    batch = trash.apply(trash.plan(["ckpt.pt"]))
    s3_server.put(bucket, "p/ckpt.pt", b"written since")
    batch.items[0].state, batch.items[0].note = "kept", "an object appeared at the key"
    trash._save(batch)  # the manifest as the older restore wrote it
    loaded = trash.load(batch.batch)
    assert loaded.counts() == {"trashed": 1} and "still in the trash" in loaded.items[0].note
    assert trash.purge(loaded).counts() == {"purged": 1}
    assert s3_server.contents(bucket, "p/") == {"p/ckpt.pt": b"written since"} | {
        f"p/{TRASH}/{batch.batch}.json": s3_server.fs.cat_file(
            f"{bucket}/p/{TRASH}/{batch.batch}.json"
        )
    }
    if versioned:
        versions = s3_server.call("list_object_versions", Bucket=bucket, Prefix="p/ckpt.pt")
        assert len(versions["Versions"]) == 1 and not versions.get("DeleteMarkers")
