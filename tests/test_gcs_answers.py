"""gs:// roots against a tiny GCS JSON API on loopback (tests/gcs_answers.py) for what
fake-gcs-server never answers: transient errors are retried, a client error is not."""

from __future__ import annotations

import pytest
from gcs_answers import FakeGCS, fake_gcs

from store.root import RootError
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


def test_a_client_error_is_one_line_and_not_retried(fake_gcs: FakeGCS) -> None:
    fake_gcs.put("p/ckpt.pt", b"weights")
    fake_gcs.fail_next = [400]
    root = ObjectRoot(f"gs://{fake_gcs.bucket}/p")
    with pytest.raises(RootError) as caught:
        root.stat("ckpt.pt")
    assert "\n" not in str(caught.value)
    assert "400 try again later" in str(caught.value) and "ckpt.pt" in str(caught.value)
    assert len(fake_gcs.seen) == 1
