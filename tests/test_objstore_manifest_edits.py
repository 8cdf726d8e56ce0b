"""A bucket trash manifest lies in the bucket, where anyone who may write there may edit
it: restore and purge act only on items in the shape apply writes (the key of the item's
path under this root, the trash copy of that key under this batch, a version a delete
marker hides), against a real S3 server on loopback.  An edited manifest used to make
``purge`` delete any key of the bucket, or the live version of an object."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from objstore_server import S3Server, fresh_bucket, s3_server

from store.retention.bucket import TRASH, BucketRetentionError, BucketTrash
from store.root.objstore import ObjectRoot

pytestmark = pytest.mark.objstore
__all__ = ["fresh_bucket", "s3_server"]

TRASHED = "lightning/lightning_logs/version_0/checkpoints/last.ckpt"
LIVE = "lightning/lightning_logs/version_1/checkpoints/last.ckpt"


def _edit(
    server: S3Server, bucket: str, batch: str, change: Callable[[dict[str, Any]], None]
) -> None:
    key = f"{TRASH}/{batch}.json"
    manifest = json.loads(server.fs.cat_file(f"{bucket}/{key}"))
    change(manifest)
    server.put(bucket, key, json.dumps(manifest).encode())


def _exists(server: S3Server, bucket: str, key: str) -> bool:
    try:
        server.call("head_object", Bucket=bucket, Key=key)
    except FileNotFoundError:
        return False
    return True


def test_an_edited_trash_key_makes_purge_delete_nothing_else(
    s3_server: S3Server, fresh_bucket: Callable[..., str]
) -> None:
    bucket = fresh_bucket(versioned=False)
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan([TRASHED]))
    assert batch.counts() == {"trashed": 1}

    def point_at_a_live_object(manifest: dict[str, Any]) -> None:
        manifest["items"][0]["trash_key"] = LIVE

    _edit(s3_server, bucket, batch.batch, point_at_a_live_object)
    loaded = BucketTrash(ObjectRoot(f"s3://{bucket}")).load(batch.batch)
    purged = trash.purge(loaded)
    assert _exists(s3_server, bucket, LIVE)
    assert "purged" not in purged.counts()
    assert purged.counts() == {"refused": 1} and "trash key" in purged.items[0].note


def test_an_edited_key_or_path_is_refused(
    s3_server: S3Server, fresh_bucket: Callable[..., str]
) -> None:
    bucket = fresh_bucket(versioned=False)
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan([TRASHED]))

    def restore_over_elsewhere(manifest: dict[str, Any]) -> None:
        manifest["items"][0]["key"] = "elsewhere/" + TRASHED

    _edit(s3_server, bucket, batch.batch, restore_over_elsewhere)
    restored = trash.restore(trash.load(batch.batch))
    assert not _exists(s3_server, bucket, "elsewhere/" + TRASHED)
    assert restored.counts() == {"refused": 1}


def test_a_manifest_of_another_batch_or_root_is_refused(
    s3_server: S3Server, fresh_bucket: Callable[..., str]
) -> None:
    bucket = fresh_bucket(versioned=False)
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan([TRASHED]))

    def another_root(manifest: dict[str, Any]) -> None:
        manifest["url"] = "s3://someone-else"

    _edit(s3_server, bucket, batch.batch, another_root)
    with pytest.raises(BucketRetentionError, match="not of"):
        trash.load(batch.batch)


def test_purge_never_deletes_the_live_version(
    s3_server: S3Server, fresh_bucket: Callable[..., str]
) -> None:
    """In a versioned bucket purge deletes the version a delete marker hides: one edited
    to name the live object's current version is not purged."""
    bucket = fresh_bucket(versioned=True)
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    live_version = s3_server.call("head_object", Bucket=bucket, Key=LIVE)["VersionId"]
    batch = trash.apply(trash.plan([TRASHED]))
    assert batch.counts() == {"trashed": 1}

    def aim_at_the_live_object(manifest: dict[str, Any]) -> None:
        item = manifest["items"][0]
        item["rel"], item["key"], item["version"] = LIVE, LIVE, live_version

    _edit(s3_server, bucket, batch.batch, aim_at_the_live_object)
    purged = trash.purge(trash.load(batch.batch))
    assert "purged" not in purged.counts()
    assert "current one" in purged.items[0].note
    assert s3_server.call("head_object", Bucket=bucket, Key=LIVE)["VersionId"] == live_version


def _flip_to_versioned(manifest: dict[str, Any]) -> None:
    manifest["versioned"] = True
    item = manifest["items"][0]
    item["version"], item["marker"], item["trash_key"], item["trash_pin"] = (
        "null",
        "no-such-marker",
        None,
        None,
    )


def _drop_the_trash_key(manifest: dict[str, Any]) -> None:
    manifest["items"][0]["trash_key"] = None


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_flip_to_versioned, "version 'null'"),
        (_drop_the_trash_key, "no trash copy"),
    ],
)
@pytest.mark.parametrize("verb", ["restore", "purge"])
def test_an_edited_way_of_trashing_deletes_no_live_object(
    s3_server: S3Server, edit: Callable[[dict[str, Any]], None], why: str, verb: str
) -> None:
    """A batch trashed by copy in an unversioned bucket, its manifest edited to say it was
    trashed by version (version ``null``, S3's name for an unversioned object): purge
    deleted the live object written at the key since, for good.  Its trash key dropped,
    purge deleted the object named ``None`` (and restore, the key free, failed on an
    assertion).  Each
    such item is refused, and nothing is deleted."""
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "k.pt", b"trashed")
    s3_server.put(bucket, "None", b"an object named None")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["k.pt"]))
    s3_server.put(bucket, "k.pt", b"live, written since")
    before = s3_server.contents(bucket)
    _edit(s3_server, bucket, batch.batch, edit)
    loaded = trash.load(batch.batch)
    done = trash.restore(loaded) if verb == "restore" else trash.purge(loaded)
    assert done.counts() == {"refused": 1} and why in done.items[0].note
    after = s3_server.contents(bucket)
    manifest = f"{TRASH}/{batch.batch}.json"
    assert {k: v for k, v in after.items() if k != manifest} == {
        k: v for k, v in before.items() if k != manifest
    }


@pytest.mark.parametrize("verb", ["restore", "purge"])
def test_an_edited_marker_naming_a_version_with_bytes_is_never_deleted(
    s3_server: S3Server, verb: str
) -> None:
    """Restore removes the item's delete marker, and purge deletes it, by version id: for
    good.  A manifest edited to name as the marker a version with bytes (one written at
    the key after the trash, then deleted: kept by versioning, recoverable) made restore
    or purge destroy that version.  The item is refused and the version stays."""
    bucket = s3_server.new_bucket(versioned=True)
    s3_server.put(bucket, "k.pt", b"trashed bytes")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["k.pt"]))
    assert batch.counts() == {"trashed": 1}
    s3_server.put(bucket, "k.pt", b"written since, then deleted")
    precious = s3_server.call("head_object", Bucket=bucket, Key="k.pt")["VersionId"]
    s3_server.call("delete_object", Bucket=bucket, Key="k.pt")  # a marker on top

    def aim_at_the_precious_version(manifest: dict[str, Any]) -> None:
        manifest["items"][0]["marker"] = precious

    _edit(s3_server, bucket, batch.batch, aim_at_the_precious_version)
    loaded = trash.load(batch.batch)
    done = trash.restore(loaded) if verb == "restore" else trash.purge(loaded)
    assert done.counts() == {"refused": 1} and "not a delete marker" in done.items[0].note
    versions = s3_server.call("list_object_versions", Bucket=bucket, Prefix="k.pt")
    assert precious in {v["VersionId"] for v in versions.get("Versions", [])}
    assert len(versions["Versions"]) == 2  # the trashed version is untouched too


@pytest.mark.parametrize("verb", ["restore", "purge"])
def test_an_edited_version_naming_an_older_version_is_never_deleted(
    s3_server: S3Server, verb: str
) -> None:
    """Purge deletes the version the manifest names for good, once it is not the current
    one: a manifest edited to name another, older version of the key (real bytes, kept by
    versioning) made purge destroy it, and restore remove the marker for it.  Restore and
    purge act only on the version whose size and ETag apply recorded: the item is refused,
    and every version and the marker stay."""
    bucket = s3_server.new_bucket(versioned=True)
    s3_server.put(bucket, "k.pt", b"an older version, kept on purpose")
    older = s3_server.call("head_object", Bucket=bucket, Key="k.pt")["VersionId"]
    s3_server.put(bucket, "k.pt", b"trashed bytes")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["k.pt"]))
    assert batch.counts() == {"trashed": 1}
    before = s3_server.call("list_object_versions", Bucket=bucket, Prefix="k.pt")

    def aim_at_the_older_version(manifest: dict[str, Any]) -> None:
        manifest["items"][0]["version"] = older

    _edit(s3_server, bucket, batch.batch, aim_at_the_older_version)
    loaded = trash.load(batch.batch)
    done = trash.restore(loaded) if verb == "restore" else trash.purge(loaded)
    assert done.counts() == {"refused": 1}
    assert "not the bytes apply trashed" in done.items[0].note
    after = s3_server.call("list_object_versions", Bucket=bucket, Prefix="k.pt")
    assert {v["VersionId"] for v in after["Versions"]} == {
        v["VersionId"] for v in before["Versions"]
    }
    assert {m["VersionId"] for m in after["DeleteMarkers"]} == {
        m["VersionId"] for m in before["DeleteMarkers"]
    }


@pytest.mark.parametrize("verb", ["restore", "purge"])
def test_a_trash_copy_that_is_not_the_trashed_bytes_is_left_alone(
    s3_server: S3Server, verb: str
) -> None:
    """A batch trashed by copy whose manifest's size was edited, or whose copy in the
    trash was rewritten since (anyone who may write the bucket may): purge deleted the copy
    and restore wrote it back whatever it held.  Both refuse the item; nothing is deleted
    and nothing is written at the key."""
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "k.pt", b"trashed bytes")
    s3_server.put(bucket, "j.pt", b"trashed too")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["k.pt", "j.pt"]))
    assert batch.counts() == {"trashed": 2}

    def edit_a_size(manifest: dict[str, Any]) -> None:
        manifest["items"][0]["size"] = 1

    _edit(s3_server, bucket, batch.batch, edit_a_size)
    s3_server.put(bucket, str(batch.items[1].trash_key), b"someone else's bytes")
    before = s3_server.contents(bucket)
    loaded = trash.load(batch.batch)
    done = trash.restore(loaded) if verb == "restore" else trash.purge(loaded)
    assert done.counts() == {"refused": 2}
    assert all("not the bytes apply trashed" in item.note for item in done.items)
    manifest = f"{TRASH}/{batch.batch}.json"
    after = s3_server.contents(bucket)
    assert {k: v for k, v in after.items() if k != manifest} == {
        k: v for k, v in before.items() if k != manifest
    }


def test_a_restore_that_cannot_delete_its_trash_copy_says_the_object_is_back(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore that copied the object back but whose delete of the trash copy failed
    (here the store refuses it, AccessDenied) left the item ``trashed`` with 'restore
    failed', while the object was back; a second restore then said a newer object was
    written at the key.  The item is ``restored``, its copy left in the trash is said and
    kept for a purge, which deletes it and nothing else."""
    from store.retention.bucket import purge_batches
    from store.retention.service import bucket_entries

    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "k.pt", b"trashed bytes")
    root = ObjectRoot(f"s3://{bucket}")
    trash = BucketTrash(root)
    batch = trash.apply(trash.plan(["k.pt"]))
    copy = str(batch.items[0].trash_key)
    fs_class = type(root.fs)  # the class: an instance's attribute would outlive undo()
    real_call = fs_class.call_s3

    def refuse_deleting_the_copy(self: Any, op: str, *args: Any, **kwargs: Any) -> Any:
        if op == "delete_object" and kwargs.get("Key") == copy:
            raise PermissionError("AccessDenied")
        return real_call(self, op, *args, **kwargs)

    monkeypatch.setattr(fs_class, "call_s3", refuse_deleting_the_copy)
    restored = trash.restore(trash.load(batch.batch))
    item = restored.items[0]
    assert item.state == "restored" and "copy in the trash could not be deleted" in item.note
    assert s3_server.contents(bucket)["k.pt"] == b"trashed bytes"
    assert s3_server.contents(bucket)[copy] == b"trashed bytes"
    monkeypatch.undo()

    again = trash.restore(trash.load(batch.batch))
    assert again.items[0].state == "restored"
    assert "newer object" not in again.items[0].note
    entries, problems = bucket_entries(f"s3://{bucket}")
    assert [e.path for e in entries] == ["k.pt"] and problems == []
    assert "a purge deletes it" in str(entries[0].note)

    report = purge_batches([(f"s3://{bucket}", batch.batch)])
    assert report.skipped == []
    after = s3_server.contents(bucket)
    assert after["k.pt"] == b"trashed bytes" and copy not in after
    final = trash.load(batch.batch).items[0]
    assert (final.state, final.trash_key, final.note) == ("restored", None, "")


def test_a_duplicated_item_for_one_key_is_refused(s3_server: S3Server) -> None:
    """Apply writes one item per key.  A manifest given a second item for the trashed key,
    naming an older version of it (its own size and ETag copied in, so that version's HEAD
    matches), made purge delete that older version for good beside the trashed one.
    Every item acting on a key named twice is refused, and nothing is deleted."""
    bucket = s3_server.new_bucket(versioned=True)
    s3_server.put(bucket, "k.pt", b"an older version, kept on purpose")
    older = s3_server.call("head_object", Bucket=bucket, Key="k.pt")
    s3_server.put(bucket, "k.pt", b"trashed bytes")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["k.pt"]))
    assert batch.counts() == {"trashed": 1}
    before = s3_server.call("list_object_versions", Bucket=bucket, Prefix="k.pt")

    def add_an_item_for_the_older_version(manifest: dict[str, Any]) -> None:
        twin = dict(manifest["items"][0])
        twin["version"] = older["VersionId"]
        twin["etag"], twin["size"] = older["ETag"], older["ContentLength"]
        manifest["items"].insert(0, twin)  # acted on first

    _edit(s3_server, bucket, batch.batch, add_an_item_for_the_older_version)
    purged = trash.purge(trash.load(batch.batch))
    assert purged.counts() == {"refused": 2}
    assert all("2 items of the batch act on its key" in i.note for i in purged.items)
    after = s3_server.call("list_object_versions", Bucket=bucket, Prefix="k.pt")
    assert {v["VersionId"] for v in after["Versions"]} == {
        v["VersionId"] for v in before["Versions"]
    }


@pytest.mark.parametrize("verb", ["restore", "purge"])
def test_an_item_refused_on_load_is_said_and_exits_1(s3_server: S3Server, verb: str) -> None:
    """An item refused as the manifest is read (here its trash key edited to name a live
    object) was left out of what ``bucket restore`` and ``bucket purge --yes`` were asked
    to do: nothing on stderr, exit 0, as if the batch were done.  It is named on stderr
    with why, and the command exits 1."""
    from click.testing import CliRunner

    from tui.cli import main

    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "runs/a.pt", b"trashed")
    s3_server.put(bucket, "runs/live.pt", b"live")
    url = f"s3://{bucket}/runs"
    trash = BucketTrash(ObjectRoot(url))
    batch = trash.apply(trash.plan(["a.pt"]))
    key = f"runs/{TRASH}/{batch.batch}.json"
    manifest = json.loads(s3_server.fs.cat_file(f"{bucket}/{key}"))
    manifest["items"][0]["trash_key"] = "runs/live.pt"
    s3_server.put(bucket, key, json.dumps(manifest).encode())
    args = ["bucket", verb, url, batch.batch] + (["--yes"] if verb == "purge" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("artlens: skipped a.pt: refused: not in the shape")
    assert s3_server.contents(bucket, "runs/live.pt") == {"runs/live.pt": b"live"}


def test_a_manifest_whose_batch_id_is_not_one_apply_makes_is_refused(
    s3_server: S3Server,
) -> None:
    """A batch id is part of every key of its trash: a manifest put in the trash under
    another name (path or URL characters, anything) is a problem line of the trash, never
    a batch restore or purge acts on, and such an id is no batch to restore."""
    from store.retention.bucket import list_batches, restore_batches

    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "k.pt", b"trashed")
    root = ObjectRoot(f"s3://{bucket}")
    trash = BucketTrash(root)
    batch = trash.apply(trash.plan(["k.pt"]))
    manifest = json.loads(s3_server.fs.cat_file(f"{bucket}/{TRASH}/{batch.batch}.json"))
    odd = "x?y#z\\..%"
    manifest["batch"] = odd
    manifest["items"][0]["trash_key"] = f"{TRASH}/{odd}/k.pt"
    s3_server.put(bucket, f"{TRASH}/{odd}.json", json.dumps(manifest).encode())
    s3_server.put(bucket, f"{TRASH}/{odd}/k.pt", b"trashed")
    batches, problems = list_batches(root)
    assert [b.batch for b in batches] == [batch.batch]
    assert len(problems) == 1 and "not a batch id" in problems[0]
    with pytest.raises(BucketRetentionError, match="not a batch id"):
        restore_batches([root.url], [odd])


def test_a_plan_has_one_item_per_key(s3_server: S3Server) -> None:
    """A path asked twice is one item: two items acting on one key are refused on load."""
    bucket = s3_server.new_bucket(versioned=True)
    s3_server.put(bucket, "k.pt", b"bytes")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["k.pt", "k.pt"]))
    assert [(i.rel, i.state) for i in batch.items] == [("k.pt", "trashed")]


def _versions(server: S3Server, bucket: str, key: str) -> tuple[set[str], set[str]]:
    """The version ids and the delete-marker ids of ``key``."""
    listed = server.call("list_object_versions", Bucket=bucket, Prefix=key)
    return (
        {v["VersionId"] for v in listed.get("Versions", [])},
        {m["VersionId"] for m in listed.get("DeleteMarkers", [])},
    )


@pytest.mark.parametrize("verb", ["restore", "purge"])
def test_an_item_edited_whole_to_an_older_version_is_never_deleted(
    s3_server: S3Server, verb: str
) -> None:
    """A manifest whose item's version id, ETag and size were all edited to those of an
    older version of the key (read from a versions listing) passed every check made
    against the bucket, and purge destroyed that older version and the marker.  The item
    is checked against the record apply kept on this machine, which only artlens writes:
    refused, every version and the marker stay."""
    bucket = s3_server.new_bucket(versioned=True)
    older = s3_server.put(bucket, "k.pt", b"an older version, kept on purpose")
    s3_server.put(bucket, "k.pt", b"trashed bytes")
    trash = BucketTrash(ObjectRoot(f"s3://{bucket}"))
    batch = trash.apply(trash.plan(["k.pt"]))
    assert batch.counts() == {"trashed": 1}
    before = _versions(s3_server, bucket, "k.pt")

    def aim_at_the_older_version(manifest: dict[str, Any]) -> None:
        item = manifest["items"][0]
        item["version"], item["etag"] = older["VersionId"], older["ETag"]
        item["size"] = len(b"an older version, kept on purpose")

    _edit(s3_server, bucket, batch.batch, aim_at_the_older_version)
    loaded = trash.load(batch.batch)
    done = trash.restore(loaded) if verb == "restore" else trash.purge(loaded)
    assert done.counts() == {"refused": 1}, done.to_json()
    assert "apply recorded" in done.items[0].note and "version" in done.items[0].note
    assert _versions(s3_server, bucket, "k.pt") == before


def test_a_batch_applied_elsewhere_is_purged_only_when_asked(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A versioned batch this machine holds no record of (applied from another one, or
    the user state lost) is restored as its manifest says, but not purged: its item is
    skipped saying so, exit 1, unless ``--trust-manifest`` says to go by the manifest.
    A batch trashed by copy is purged anyway: purge deletes only that batch's own
    trash copies, pinned to their ETags, which whoever may edit its manifest may delete."""
    from click.testing import CliRunner

    from tui.cli import main

    bucket = s3_server.new_bucket(versioned=True)
    s3_server.put(bucket, "runs/a.pt", b"trashed")
    s3_server.put(bucket, "runs/b.pt", b"trashed too")
    url = f"s3://{bucket}/runs"
    trash = BucketTrash(ObjectRoot(url))
    first = trash.apply(trash.plan(["a.pt"]))
    second = trash.apply(trash.plan(["b.pt"]))
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "another-machine.db"))
    refused = CliRunner().invoke(main, ["bucket", "purge", url, first.batch, "--yes"])
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith("artlens: skipped a.pt: trashed: no record of batch")
    assert "--trust-manifest" in refused.stderr
    assert len(_versions(s3_server, bucket, "runs/a.pt")[0]) == 1
    args = ["bucket", "purge", url, first.batch, "--yes", "--trust-manifest"]
    purged = CliRunner().invoke(main, args)
    assert purged.exit_code == 0, purged.output
    assert _versions(s3_server, bucket, "runs/a.pt") == (set(), set())
    restored = CliRunner().invoke(main, ["bucket", "restore", url, second.batch])
    assert restored.exit_code == 0, restored.output
    assert s3_server.contents(bucket, "runs/b.pt") == {"runs/b.pt": b"trashed too"}

    plain = s3_server.new_bucket(versioned=False)
    s3_server.put(plain, "c.pt", b"copied")
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "this-machine.db"))
    copied = BucketTrash(ObjectRoot(f"s3://{plain}"))
    batch = copied.apply(copied.plan(["c.pt"]))
    monkeypatch.setenv("ARTLENS_STATE", str(tmp_path / "another-machine.db"))
    assert copied.purge(copied.load(batch.batch)).counts() == {"purged": 1}
