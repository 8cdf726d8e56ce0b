"""az:// bucket trash against a tiny Azure Blob endpoint on loopback
(tests/azure_answers.py) for what Azurite cannot hold: a blob under a legal hold or an
immutability policy comes out ``locked``, with the reason, and Azure's 409 for one is told
from a missing permission."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.utils import formatdate

import pytest
from azure_answers import LEGAL_HOLD_MESSAGE, POLICY_MESSAGE, Blob, FakeAzure, fake_azure

from store.retention.bucket import TRASH, BucketTrash
from store.root import RootError
from store.root.backend import LockedError
from store.root.objstore import ObjectRoot, key_to_rel

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fake_azure"]

FAR = formatdate(4102444800, usegmt=True)  # 2100-01-01
PAST = formatdate(946684800, usegmt=True)  # 2000-01-01


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x-ms-legal-hold": "true"}, "legal hold"),
        (
            {"x-ms-immutability-policy-until-date": FAR, "x-ms-immutability-policy-mode": "locked"},
            "immutability policy until 2100-01-01",
        ),
    ],
    ids=["legal-hold", "immutability-policy"],
)
def test_a_held_blob_comes_out_of_apply_locked(
    fake_azure: FakeAzure, headers: dict[str, str], reason: str
) -> None:
    fake_azure.put("p/ckpt.pt", b"held weights", **headers)
    fake_azure.put("p/free.pt", b"free weights")
    fake_azure.put("p/expired.pt", b"expired", **{"x-ms-immutability-policy-until-date": PAST})
    trash = BucketTrash(ObjectRoot(f"az://{fake_azure.container}/p"))
    batch = trash.apply(trash.plan(["ckpt.pt", "free.pt", "expired.pt"]))
    assert batch.counts() == {"locked": 1, "trashed": 2}
    held = next(item for item in batch.items if item.rel == "ckpt.pt")
    assert held.state == "locked" and reason in held.note and held.trash_key is None
    assert fake_azure.blobs["p/ckpt.pt"].body == b"held weights"
    assert set(fake_azure.blobs) == {
        "p/ckpt.pt",
        f"p/{TRASH}/{batch.batch}/free.pt",
        f"p/{TRASH}/{batch.batch}/expired.pt",
        f"p/{TRASH}/{batch.batch}.json",
    }
    assert ("DELETE", "p/ckpt.pt") not in fake_azure.seen


def test_a_container_policy_refusing_the_delete_is_locked(fake_azure: FakeAzure) -> None:
    """A container-wide policy shows in no blob's properties: the copy is made, the delete
    refused (409), and the copy cannot be removed either; the blob stays, reported
    ``locked`` with Azure's reason."""
    fake_azure.put("p/ckpt.pt", b"weights")
    fake_azure.refuse_every_delete = (409, "BlobImmutableDueToPolicy", POLICY_MESSAGE)
    trash = BucketTrash(ObjectRoot(f"az://{fake_azure.container}/p"))
    batch = trash.apply(trash.plan(["ckpt.pt"]))
    assert batch.counts() == {"locked": 1}
    assert "immutable due to a policy" in batch.items[0].note
    assert fake_azure.blobs["p/ckpt.pt"].body == b"weights"


@pytest.mark.parametrize(
    ("refusal", "locked"),
    [
        ((409, "BlobImmutableDueToLegalHold", LEGAL_HOLD_MESSAGE), True),
        ((409, "BlobImmutableDueToPolicy", POLICY_MESSAGE), True),
        ((403, "AuthorizationPermissionMismatch", "This request is not authorized."), False),
    ],
    ids=["legal-hold", "policy", "permission"],
)
def test_a_refused_delete_is_locked_only_for_a_hold_or_policy(
    fake_azure: FakeAzure, refusal: tuple[int, str, str], locked: bool
) -> None:
    fake_azure.put("k", b"bytes")
    fake_azure.refuse_delete["k"] = refusal
    backend = ObjectRoot(f"az://{fake_azure.container}").backend
    with pytest.raises(RootError) as caught:
        backend.delete("k")
    assert isinstance(caught.value, LockedError) is locked
    assert refusal[2] in str(caught.value) and "\n" not in str(caught.value)
    assert "k" in fake_azure.blobs


def test_bucket_dups_on_azure_never_take_etags_for_content(fake_azure: FakeAzure) -> None:
    """Azure's ETag follows writes, not bytes: two copies of one checkpoint never share
    one, so the dups said nothing of them, silently, and two ETags alike would have been
    called a "multipart ETag" match.  Now they are said to be uncompared, and
    ``full_hash`` compares their bytes."""
    from store.objdups import object_duplicates

    fake_azure.put("a/model.bin", b"same bytes" * 100)
    fake_azure.put("b/model.bin", b"same bytes" * 100)
    fake_azure.put("c/model.bin", b"other byte" * 100)
    fake_azure.put("d/small.bin", b"alone")
    root = ObjectRoot(f"az://{fake_azure.container}")
    found = object_duplicates(root)
    assert found.groups == []
    (warning,) = found.warnings
    assert warning.startswith("3 object(s) share a size") and "--full-hash" in warning
    exact = object_duplicates(root, full_hash=True)
    assert exact.warnings == []
    assert [(g.certainty, g.paths) for g in exact.groups] == [
        ("exact", ["a/model.bin", "b/model.bin"])
    ]


ALIASING_KEYS = [
    "../other/x",  # requests and the service resolve it: the blob "other/x"
    "sub\\..\\..\\other\\x",  # the service reads "\" as "/", then resolves the dots
    "./a.ckpt",  # the blob "p/a.ckpt": two names, one blob
    "%2e%2e/other/x",  # percent-encoded dots: the service resolves those too
    "a.ckpt.",  # a part ending in ".": Azure advises against it
    "sub/",  # a name ending in "/": Azure advises against it
]


def test_names_azure_resolves_are_never_trashed(fake_azure: FakeAzure) -> None:
    """A name whose blob URL Azure resolves (``..``, ``.``, a backslash) named another
    blob: ``p/../other/x`` was a HEAD, a copy and a delete of ``other/x``, outside the
    root's prefix ``p``.  Each is refused, one line, before any request for it."""
    fake_azure.put("p/a.ckpt", b"inside")
    fake_azure.put("other/x", b"outside the root")
    trash = BucketTrash(ObjectRoot(f"az://{fake_azure.container}/p"))
    batch = trash.apply(trash.plan([key_to_rel(k) for k in ALIASING_KEYS]))
    assert batch.counts() == {"refused": len(ALIASING_KEYS)}, batch.to_json()
    assert all("nothing done" in item.note for item in batch.items)
    assert {k: b.body for k, b in fake_azure.blobs.items() if "/.artlens-trash/" not in k} == {
        "p/a.ckpt": b"inside",
        "other/x": b"outside the root",
    }
    assert [seen for seen in fake_azure.seen if seen[0] != "PUT"] == []


def _add_item(fake: FakeAzure, batch_id: str, below: str, copy: Blob) -> None:
    """Edit the batch's manifest (in the bucket, where anyone who may write may edit it):
    one more trashed item, for the key ``p/<below>``, its trash key as apply builds it,
    its size and ETag those of ``copy``, the blob Azure takes that trash key for."""
    name = f"p/{TRASH}/{batch_id}.json"
    manifest = json.loads(fake.blobs[name].body)
    manifest["items"].append(
        {
            **manifest["items"][0],
            "rel": key_to_rel(below),
            "key": f"p/{below}",
            "size": len(copy.body),
            "etag": copy.etag,
            "trash_key": f"p/{TRASH}/{batch_id}/{below}",
            "trash_pin": None,
        }
    )
    fake.put(name, json.dumps(manifest).encode())


def test_an_edited_manifest_never_restores_outside_the_prefix(fake_azure: FakeAzure) -> None:
    """An item for ``p/../other/new`` (its copy ``p/.artlens-trash/B/../other/new`` is
    ``p/.artlens-trash/other/new`` to Azure, put there by whoever edited the manifest)
    was restored to the blob ``other/new``: a write outside the root's prefix."""
    fake_azure.put("p/a.ckpt", b"inside")
    trash = BucketTrash(ObjectRoot(f"az://{fake_azure.container}/p"))
    batch = trash.apply(trash.plan(["a.ckpt"]))
    planted = fake_azure.put(f"p/{TRASH}/other/new", b"planted")
    _add_item(fake_azure, batch.batch, "../other/new", planted)
    restored = trash.restore(trash.load(batch.batch))
    assert restored.counts() == {"restored": 1, "refused": 1}, restored.to_json()
    assert "other/new" not in fake_azure.blobs
    assert fake_azure.blobs["p/a.ckpt"].body == b"inside"


def test_an_edited_manifest_never_purges_outside_the_prefix(fake_azure: FakeAzure) -> None:
    """An item whose trash key ``p/.artlens-trash/B/../../../other/x`` is the blob
    ``other/x`` to Azure (its size and ETag copied from a listing) had purge delete
    ``other/x``, outside the root's prefix, for good."""
    fake_azure.put("p/a.ckpt", b"inside")
    fake_azure.put("other/x", b"outside the root")
    trash = BucketTrash(ObjectRoot(f"az://{fake_azure.container}/p"))
    batch = trash.apply(trash.plan(["a.ckpt"]))
    _add_item(fake_azure, batch.batch, "../../../other/x", fake_azure.blobs["other/x"])
    purged = trash.purge(trash.load(batch.batch))
    assert purged.counts() == {"purged": 1, "refused": 1}, purged.to_json()
    assert fake_azure.blobs["other/x"].body == b"outside the root"
    assert ("DELETE", "other/x") not in fake_azure.seen


def test_the_backend_sends_no_request_for_a_name_azure_resolves(fake_azure: FakeAzure) -> None:
    backend = ObjectRoot(f"az://{fake_azure.container}").backend
    etag = fake_azure.put("x", b"bytes").etag
    calls: list[Callable[[], object]] = [
        lambda: backend.head("p/../x"),
        lambda: backend.delete("p/../x"),
        lambda: backend.put("p/./x", b"new"),
        lambda: backend.copy("x", "p\\..\\x", 5, pin=etag),
    ]
    for call in calls:
        with pytest.raises(RootError, match="not sent"):
            call()
    assert fake_azure.blobs["x"].body == b"bytes"
    assert [s for s in fake_azure.seen if s[0] != "HEAD" or s[1] != "x"] == []
