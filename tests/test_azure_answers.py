"""az:// bucket trash against a tiny Azure Blob endpoint on loopback
(tests/azure_answers.py) for what Azurite cannot hold: a blob under a legal hold or an
immutability policy comes out ``locked``, with the reason, and Azure's 409 for one is told
from a missing permission."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from azure_answers import LEGAL_HOLD_MESSAGE, POLICY_MESSAGE, FakeAzure, fake_azure

from store.retention.bucket import TRASH, BucketTrash
from store.root import RootError
from store.root.backend import LockedError
from store.root.objstore import ObjectRoot

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
