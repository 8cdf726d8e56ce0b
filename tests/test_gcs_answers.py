"""gs:// roots against a tiny GCS JSON API on loopback (tests/gcs_answers.py) for what
fake-gcs-server never answers: transient errors are retried, a client error is not; an
object under a hold or a retention period comes out of a bucket trash ``locked``, with
the reason, and GCS's 403 for one is told from a missing permission."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from gcs_answers import HOLD_MESSAGE, RETENTION_MESSAGE, FakeGCS, error_body, fake_gcs

from store.retention.bucket import TRASH, BucketTrash
from store.root import NotFound, RootError
from store.root.backend import LockedError
from store.root.gcs import RETRY_SECONDS
from store.root.objstore import ObjectRoot

pytestmark = [pytest.mark.objstore, pytest.mark.usefixtures("isolated_cache")]
__all__ = ["fake_gcs"]


def test_transient_answers_are_retried(fake_gcs: FakeGCS) -> None:
    fake_gcs.put("p/ckpt.pt", b"weights")
    fake_gcs.fail_next = [503, 429]
    root = ObjectRoot(f"gs://{fake_gcs.bucket}/p")
    assert root.stat("ckpt.pt").size == len(b"weights")
    assert fake_gcs.seen == [("GET", f"/storage/v1/b/{fake_gcs.bucket}/o/p%2Fckpt.pt")] * 3
    assert root.stats.ops["objects.get"] == 3  # each attempt is a request paid for


def test_a_delete_whose_answer_was_lost_is_done(fake_gcs: FakeGCS) -> None:
    """The first DELETE removed the object but its answer never came: the DELETE is sent
    again and answered 404, which means done (bucket trash would otherwise take it for an
    object gone since the plan and remove the copy it had just made).  A read's 404 after a
    lost answer is still ``NotFound``."""
    resource = fake_gcs.put("p/ckpt.pt", b"weights")
    fake_gcs.drop_answers = 1
    backend = ObjectRoot(f"gs://{fake_gcs.bucket}/p").backend
    assert backend.delete("p/ckpt.pt", pin=resource["generation"]) is None
    assert "p/ckpt.pt" not in fake_gcs.objects
    assert [method for method, _ in fake_gcs.seen] == ["DELETE", "DELETE"]
    fake_gcs.drop_answers = 1
    with pytest.raises(NotFound):
        backend.head("p/ckpt.pt")
    assert [method for method, _ in fake_gcs.seen[2:]] == ["GET", "GET"]


def test_a_client_error_is_one_line_and_not_retried(fake_gcs: FakeGCS) -> None:
    fake_gcs.put("p/ckpt.pt", b"weights")
    fake_gcs.fail_next = [400]
    root = ObjectRoot(f"gs://{fake_gcs.bucket}/p")
    with pytest.raises(RootError) as caught:
        root.stat("ckpt.pt")
    assert "\n" not in str(caught.value)
    assert "400 try again later" in str(caught.value) and "ckpt.pt" in str(caught.value)
    assert len(fake_gcs.seen) == 1


FAR = "2099-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ({"temporaryHold": True}, "temporary hold"),
        ({"eventBasedHold": True}, "event-based hold"),
        ({"retentionExpirationTime": FAR}, f"retention until {FAR}"),
        ({"retention": {"mode": "Locked", "retainUntilTime": FAR}}, f"retention until {FAR}"),
    ],
    ids=["temporary-hold", "event-based-hold", "bucket-retention", "object-retention"],
)
def test_a_held_object_comes_out_of_apply_locked(
    fake_gcs: FakeGCS, meta: dict[str, Any], reason: str
) -> None:
    fake_gcs.put("p/ckpt.pt", b"held weights", **meta)
    fake_gcs.put("p/free.pt", b"free weights")
    trash = BucketTrash(ObjectRoot(f"gs://{fake_gcs.bucket}/p"))
    batch = trash.apply(trash.plan(["ckpt.pt", "free.pt"]))
    assert batch.counts() == {"locked": 1, "trashed": 1}
    held = next(item for item in batch.items if item.rel == "ckpt.pt")
    assert held.state == "locked" and reason in held.note and held.trash_key is None
    # the held object stays where it was, and nothing of it was copied to the trash
    assert fake_gcs.objects["p/ckpt.pt"][1] == b"held weights"
    assert set(fake_gcs.objects) == {
        "p/ckpt.pt",
        f"p/{TRASH}/{batch.batch}/free.pt",
        f"p/{TRASH}/{batch.batch}.json",
    }
    assert ("DELETE", "/storage/v1/b/held/o/p%2Fckpt.pt") not in fake_gcs.seen


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            error_body(
                403,
                HOLD_MESSAGE.format(bucket="held", name="k", kind="Temporary"),
                "retentionPolicyNotMet",
            ),
            "under active Temporary hold",
        ),
        (
            error_body(
                403, HOLD_MESSAGE.format(bucket="held", name="k", kind="Event-Based"), "forbidden"
            ),
            "under active Event-Based hold",
        ),
        (
            error_body(
                403, RETENTION_MESSAGE.format(bucket="held", name="k", until=FAR), "forbidden"
            ),
            "subject to bucket's retention policy",
        ),
        (error_body(403, "Object is locked.", "retentionPolicyNotMet"), "Object is locked."),
    ],
    ids=["temporary-hold", "event-based-hold-message", "retention-policy-message", "reason"],
)
def test_a_delete_refused_for_a_hold_is_locked(fake_gcs: FakeGCS, body: bytes, reason: str) -> None:
    """GCS's own 403 answers (the reason, or only the message, naming a hold or a retention
    period) are ``LockedError`` with the server's message."""
    fake_gcs.put("k", b"bytes")
    fake_gcs.refuse_delete["k"] = body
    backend = ObjectRoot(f"gs://{fake_gcs.bucket}").backend
    with pytest.raises(LockedError) as caught:
        backend.delete("k")
    assert reason in str(caught.value) and "\n" not in str(caught.value)
    assert getattr(caught.value, "outcome", "") == "locked"
    assert "k" in fake_gcs.objects


def test_a_forbidden_delete_is_failed_not_locked(fake_gcs: FakeGCS) -> None:
    """A 403 for a missing permission is no lock: apply reports it ``failed`` and removes
    the copy it made."""
    fake_gcs.put("p/ckpt.pt", b"weights")
    denied = "ci@example.iam.gserviceaccount.com does not have storage.objects.delete access"
    fake_gcs.refuse_delete["p/ckpt.pt"] = error_body(403, denied, "forbidden")
    backend = ObjectRoot(f"gs://{fake_gcs.bucket}/p").backend
    with pytest.raises(RootError) as caught:
        backend.delete("p/ckpt.pt")
    assert not isinstance(caught.value, LockedError) and denied in str(caught.value)
    trash = BucketTrash(ObjectRoot(f"gs://{fake_gcs.bucket}/p"))
    batch = trash.apply(trash.plan(["ckpt.pt"]))
    assert batch.counts() == {"failed": 1} and denied in batch.items[0].note
    assert set(fake_gcs.objects) == {"p/ckpt.pt", f"p/{TRASH}/{batch.batch}.json"}


@pytest.mark.slow
def test_a_server_that_keeps_failing_is_given_up_on_within_the_budget(fake_gcs: FakeGCS) -> None:
    """Transient answers are retried for ``RETRY_SECONDS`` at most, then one line."""
    fake_gcs.put("p/ckpt.pt", b"weights")
    fake_gcs.fail_next = [503] * 1000
    root = ObjectRoot(f"gs://{fake_gcs.bucket}/p")
    started = time.monotonic()
    with pytest.raises(RootError) as caught:
        root.stat("ckpt.pt")
    took = time.monotonic() - started
    assert "503" in str(caught.value) and "\n" not in str(caught.value)
    assert RETRY_SECONDS / 4 < took < RETRY_SECONDS + 10, took
    assert 4 <= len(fake_gcs.seen) <= 12, len(fake_gcs.seen)


def test_dot_names_are_refused_before_any_request(fake_gcs: FakeGCS) -> None:
    """GCS names no object ``.`` or ``..``, and gcsfs leaves such a whole name as a URL
    dot part that aiohttp resolves: ``b/held/o/..`` is the bucket (a DELETE of it is a
    bucket delete), ``b/held/o/.`` its listing.  Whole-bucket plans of them are refused,
    and the backend sends nothing for them."""
    fake_gcs.put("x", b"bytes")
    trash = BucketTrash(ObjectRoot(f"gs://{fake_gcs.bucket}"))
    batch = trash.apply(trash.plan(["%..", "%."]))
    assert batch.counts() == {"refused": 2}, batch.to_json()
    assert all("GCS names no object" in item.note for item in batch.items)
    backend = trash.store
    generation = fake_gcs.objects["x"][0]["generation"]
    calls: list[Callable[[], object]] = [
        lambda: backend.head(".."),
        lambda: backend.delete(".."),
        lambda: backend.delete("."),
        lambda: backend.copy("x", "..", 5, pin=generation),
    ]
    for call in calls:
        with pytest.raises(RootError, match="not sent"):
            call()
    assert fake_gcs.seen == [("POST", f"/upload/storage/v1/b/{fake_gcs.bucket}/o")]
    assert set(fake_gcs.objects) == {"x", f"{TRASH}/{batch.batch}.json"}


def test_an_edited_manifest_naming_a_dot_object_is_refused(fake_gcs: FakeGCS) -> None:
    """A whole-bucket manifest's item for the key ``..`` (its copy in the trash put there
    by whoever edited the manifest) had restore ask GCS for the bucket itself."""
    fake_gcs.put("x", b"bytes")
    trash = BucketTrash(ObjectRoot(f"gs://{fake_gcs.bucket}"))
    batch = trash.apply(trash.plan(["x"]))
    copy = fake_gcs.put(f"{TRASH}/{batch.batch}/..", b"planted")
    name = f"{TRASH}/{batch.batch}.json"
    manifest = json.loads(fake_gcs.objects[name][1])
    manifest["items"].append(
        {
            **manifest["items"][0],
            "rel": "%..",
            "key": "..",
            "size": len(b"planted"),
            "etag": copy["generation"],
            "trash_key": f"{TRASH}/{batch.batch}/..",
            "trash_pin": None,
        }
    )
    fake_gcs.put(name, json.dumps(manifest).encode())
    fake_gcs.seen.clear()
    restored = trash.restore(trash.load(batch.batch))
    assert restored.counts() == {"restored": 1, "refused": 1}, restored.to_json()
    bucket_level = {f"/storage/v1/b/{fake_gcs.bucket}/", f"/storage/v1/b/{fake_gcs.bucket}/o/"}
    assert not [seen for seen in fake_gcs.seen if seen[1] in bucket_level]
