"""ObjectRoot against a real S3 server on loopback: listings, identities, pinned ranged reads."""

from __future__ import annotations

from typing import Any

import pytest
from objstore_server import MULTIPART_KEY, S3Server, fresh_bucket, s3_server, seeded

from store.root import ChangedError, NotAFile, NotFound, Reader, Root, RootError, UnsafeRelPath
from store.root.objstore import (
    BLOCK_SIZE,
    CACHE_BLOCKS,
    ObjectRoot,
    decode_part,
    encode_part,
    is_content_hash,
    key_to_rel,
    rel_to_key,
)

pytestmark = pytest.mark.objstore
__all__ = ["fresh_bucket", "s3_server", "seeded"]


def test_key_parts_map_one_to_one_and_never_step_out() -> None:
    for part in ["", ".", "..", "%", "%41", "a\x00b", "plain", "ctl\x1b[31m", "[bold]"]:
        encoded = encode_part(part)
        assert decode_part(encoded) == part
        assert encoded not in ("", ".", "..") and "\x00" not in encoded and "/" not in encoded
    assert key_to_rel("a//b") == "a/%/b"
    assert key_to_rel("a/../b") == "a/%../b"
    assert rel_to_key(key_to_rel("a/../b/%41")) == "a/../b/%41"
    with pytest.raises(UnsafeRelPath):
        rel_to_key("a/../b")


def test_multipart_etag_is_not_a_content_hash() -> None:
    assert is_content_hash('"5eb63bbbe01eeed093cb22bb8f5acdc3"')
    assert not is_content_hash('"326078dc9f7f9af267714c26f3d05fc3-2"')


@pytest.mark.parametrize("which", ["versioned", "plain"])
def test_walk_lists_every_key_with_its_identity(
    s3_server: S3Server, seeded: dict[str, Any], which: str
) -> None:
    root = ObjectRoot(f"s3://{seeded[which]}")
    assert isinstance(root, Root)
    found: dict[str, int] = {}
    identities: dict[str, str] = {}
    for folder, entries in root.walk():
        for entry in entries:
            if entry.kind == "file":
                rel = f"{folder}/{entry.name}" if folder else entry.name
                found[rel] = entry.size
                identities[rel] = entry.identity
    files: dict[str, bytes] = seeded["files"]
    assert found == {key_to_rel(k): len(v) for k, v in files.items()}
    assert identities[MULTIPART_KEY].endswith("-2")  # a multipart ETag
    assert not is_content_hash(identities[MULTIPART_KEY])
    assert is_content_hash(identities["models/evil.pkl"])
    # one page of 1000 keys holds the whole seed: walking costs a handful of requests
    assert root.stats.requests <= 3


def test_list_dir_by_delimiter_keeps_hostile_keys(
    s3_server: S3Server, seeded: dict[str, Any]
) -> None:
    root = ObjectRoot(f"s3://{seeded['plain']}")
    top = {e.name: e.kind for e in root.list_dir()}
    assert top == {"mlflow": "dir", "lightning": "dir", "models": "dir", "hostile": "dir"}
    hostile = {e.name: e.kind for e in root.list_dir("hostile")}
    assert hostile["%"] == "dir" and hostile["%.."] == "dir"
    assert hostile["ctl\x1b[31mred.txt"] == "file" and hostile["[bold]x.txt"] == "file"
    assert hostile["%%2541.txt"] == "file"
    assert [e.name for e in root.list_dir("hostile/%..")] == ["up.txt"]
    data, more = root.read_capped("hostile/%../up.txt", 100)
    assert (data, more) == (b"a dot-dot part\n", False)
    data, more = root.read_capped("hostile/%/double.txt", 4)
    assert (data, more) == (b"an e", True)
    with pytest.raises(RootError):
        root.list_dir("no-such-folder")
    with pytest.raises(UnsafeRelPath):
        root.list_dir("hostile/..")


def test_prefix_root_and_stat(s3_server: S3Server, seeded: dict[str, Any]) -> None:
    root = ObjectRoot(f"s3://{seeded['versioned']}/models/")
    assert root.url == f"s3://{seeded['versioned']}/models"
    names = {e.name for e in root.list_dir()}
    assert names == {"evil.pkl", "multipart.bin"}
    entry = root.stat("evil.pkl")
    assert entry.kind == "file" and entry.size == len(seeded["files"]["models/evil.pkl"])
    assert entry.mtime_ns > 0
    listed = {e.name: e.identity for e in root.list_dir()}
    assert listed["evil.pkl"] == entry.identity  # a listing and a HEAD agree
    with pytest.raises(NotAFile):
        root.open("missing.bin")
    with pytest.raises(NotFound, match="no such object or folder"):
        ObjectRoot(f"s3://{seeded['versioned']}/modelz").list_dir()


def test_reader_fetches_blocks_once_and_only_what_is_read(
    s3_server: S3Server, seeded: dict[str, Any]
) -> None:
    root = ObjectRoot(f"s3://{seeded['plain']}")
    body: bytes = seeded["files"][MULTIPART_KEY]
    before = root.stats.to_json()
    with root.open(MULTIPART_KEY) as reader:  # one GET: it pins the ETag, fills block 0
        assert isinstance(reader, Reader)
        assert reader.size == len(body)
        assert root.stats.requests - before["requests"] == 1
        assert reader.read_at(10, 100) == body[10:110]  # block 0: cached
        assert reader.read_at(BLOCK_SIZE - 5, 10) == body[BLOCK_SIZE - 5 : BLOCK_SIZE + 5]
        assert reader.read_at(0, 50) == body[:50]  # cached: no request
        assert reader.read_at(len(body) - 4, 100) == body[-4:]
        after = root.stats.to_json()
    assert after["requests"] - before["requests"] == 3
    assert after["bytes"] - before["bytes"] <= 3 * BLOCK_SIZE


def test_a_read_wider_than_the_cache_keeps_its_cached_blocks(
    s3_server: S3Server, seeded: dict[str, Any]
) -> None:
    """Cached blocks inside a read of more than CACHE_BLOCKS blocks were evicted by the
    fetch of the rest, and the read failed with a KeyError."""
    root = ObjectRoot(f"s3://{seeded['plain']}")
    body: bytes = seeded["files"][MULTIPART_KEY]
    with root.open(MULTIPART_KEY) as reader:  # block 0 cached
        assert reader.read_at(len(body) - 10, 10) == body[-10:]  # an older block besides
        span = (CACHE_BLOCKS + 10) * BLOCK_SIZE
        assert reader.read_at(0, span) == body[:span]
        assert reader.read_at(5, 20) == body[5:25]


@pytest.mark.parametrize("versioned", [False, True])
def test_overwrite_mid_read_is_changed_or_still_the_old_bytes(
    s3_server: S3Server, versioned: bool
) -> None:
    bucket = s3_server.new_bucket(versioned=versioned)
    old = b"A" * (3 * BLOCK_SIZE)
    s3_server.put(bucket, "ckpt.bin", old)
    root = ObjectRoot(f"s3://{bucket}")
    with root.open("ckpt.bin") as reader:
        assert reader.read_at(0, 10) == b"A" * 10
        s3_server.put(bucket, "ckpt.bin", b"B" * (3 * BLOCK_SIZE))
        if versioned:
            # pinned to the version it opened: the old bytes, never a mix
            assert reader.read_at(2 * BLOCK_SIZE, 10) == b"A" * 10
        else:
            with pytest.raises(ChangedError):
                reader.read_at(2 * BLOCK_SIZE, 10)


def test_missing_bucket_is_one_line(s3_server: S3Server) -> None:
    root = ObjectRoot("s3://no-such-bucket-here")
    with pytest.raises(RootError) as caught:
        root.list_dir()
    assert "\n" not in str(caught.value) and "no-such-bucket-here" in str(caught.value)


def test_other_schemes_say_so() -> None:
    with pytest.raises(RootError, match="not supported"):
        ObjectRoot("ftp://host/prefix")


def test_empty_object_and_folder_marker(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    s3_server.put(bucket, "run/empty.txt", b"")
    s3_server.put(bucket, "run/", b"")  # a console's "create folder" marker
    root = ObjectRoot(f"s3://{bucket}")
    assert root.read_capped("run/empty.txt", 10) == (b"", False)
    assert [(e.name, e.size) for e in root.list_dir("run")] == [("empty.txt", 0)]
    assert [(f, [e.name for e in es]) for f, es in root.walk()] == [
        ("", ["run"]),
        ("run", ["empty.txt"]),
    ]
    with root.open("run/empty.txt") as reader:
        assert reader.read_at(0, 10) == b""


def test_open_root_dispatches_urls(s3_server: S3Server, seeded: dict[str, Any]) -> None:
    from store.root import open_root

    root = open_root(f"s3://{seeded['plain']}/models")
    assert isinstance(root, ObjectRoot) and root.name == "models"
    assert {e.name for e in root.list_dir()} == {"evil.pkl", "multipart.bin"}
    azure = open_root("az://container/prefix")  # no request until it is read
    assert isinstance(azure, ObjectRoot) and azure.url == "az://container/prefix"
