"""Retention on a bucket prefix: trash, restore and purge objects without downloading them.

A versioned bucket already keeps what a delete hides: trash is a plain delete (S3 puts a
delete marker on top), restore removes that marker (the trashed version is current again)
and purge deletes the trashed version and the marker for good.  An unversioned bucket has
no such net: trash copies the object server side to ``<prefix>/.artlens-trash/<batch>/``
and then deletes the original, restore copies it back and purge deletes the copy.

Every step is pinned to the object the plan saw (its ``pin``: the ETag on S3 and Azure,
the generation on GCS): on S3 the copy is ``CopySourceIfMatch`` and the delete of the
original ``IfMatch``, on GCS ``ifSourceGenerationMatch`` and ``ifGenerationMatch``, on
Azure ``If-Match`` on the copy's source and on the delete, so an object overwritten since
the plan is reported ``changed`` and left alone (a copy already made is removed again).
GCS and Azure have no delete markers to remove: their buckets are always trashed by copy.
A restore never replaces an object that appeared at the original key since.  Object Lock
retention and legal holds are respected and reported: a locked version is not purged.

Planning is free of side effects (``plan``); ``apply`` is the only call that changes the
bucket, and writes a manifest (``<prefix>/.artlens-trash/<batch>.json``) that ``restore``
and ``purge`` read, so a batch can be undone from any machine.  The manifest lies where
anyone who may write the bucket may edit it: apply also records what it trashed in the
user state (``store.userstate``), and restore and purge act only on items that match that
record; a versioned batch with no record here is purged only when the caller trusts its
manifest (``--trust-manifest``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from store.errors import ArtlensError
from store.root import ChangedError, NotFound, RootError
from store.root.backend import ObjectInfo
from store.root.objstore import ObjectRoot
from store.safeparse import load_json

if TYPE_CHECKING:
    import sqlite_utils

    from store.retention.candidates import Candidate
    from store.retention.plan import PinSource, Plan, _Nesting
    from store.retention.trash import Progress, Report
    from store.userstate import TrashedObject

TRASH = ".artlens-trash"

STORAGE_PER_GB_MONTH = 0.023
"""S3 Standard's list price per GB-month, for the plan's "frees about $x a month" line."""


NEWER_AT_KEY = "an object was written at the key since: not restored, still in the trash"
"""Why a restore left an item trashed (its bytes stay in the trash, restorable later or
purgeable), never ``kept`` with its trashed bytes out of reach of a purge."""

MARKER_IS_OBJECT = (
    "not in the shape apply writes: its marker is a version with bytes, not a delete "
    "marker: nothing deleted"
)

LEFT_IN_TRASH = "the object is back; its copy in the trash could not be deleted: a purge deletes it"
"""The note of a restored item whose trash copy is still there (``Item.trash_key`` kept):
the object is back at its key, and the copy is what a purge of the batch frees."""

NOT_THE_TRASHED_BYTES = "not the bytes apply trashed"
"""The start of the note of an item whose trashed version or trash copy is not what apply
recorded (its size and ETag or generation): refused, nothing deleted or restored."""


NOT_RECORDED = "not what apply recorded on this machine"
"""The start of the note of an item whose fields differ from the record its apply kept in
the user state (``store.userstate``): refused, nothing deleted or restored."""

TRUST_MANIFEST = "--trust-manifest"


def no_record(batch: Batch) -> str:
    """Why purge left a versioned batch's item: this machine holds no record of its apply."""
    return (
        f"no record of batch {batch.batch} on this machine (applied from another, or the "
        f"user state lost): not purged; `artlens bucket purge URL {batch.batch} --yes "
        f"{TRUST_MANIFEST}` purges it as its manifest in the bucket says"
    )


BATCH_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{8}")
"""A batch id as ``plan`` makes it (``20260101T120000-0123abcd``): part of every key of
its trash, it is never taken from a manifest or a listing in another shape."""


def is_batch_id(text: str) -> bool:
    return BATCH_ID.fullmatch(text) is not None


class BucketRetentionError(ArtlensError):
    """A batch could not be planned, applied, restored or purged; one line."""


STATES = frozenset(
    {"planned", "trashed", "restored", "purged", "changed", "locked", "missing", "failed"}
    | {"kept", "refused"}
)
"""Every state an item of a batch can be in."""


@dataclass
class Item:
    """One object of a batch, as the plan saw it and as apply left it."""

    rel: str
    key: str
    size: int
    etag: str
    """What the store's conditional requests match (S3 the ETag, GCS the generation)."""
    version: str | None = None
    """The trashed version (versioned buckets)."""
    marker: str | None = None
    """The delete marker apply put on top (versioned buckets)."""
    trash_key: str | None = None
    """Where apply copied the object (unversioned buckets)."""
    state: str = "planned"
    """planned, trashed, restored, purged, changed, locked, missing, failed, kept (and
    refused: a loaded manifest's item not in the shape apply writes)"""
    note: str = ""
    identity: str = ""
    """The object's identity as an index holds it (``Entry.identity``)."""
    trash_pin: str | None = None
    """The trash copy's own pin, where it differs from ``etag`` (a GCS generation)."""


@dataclass
class Batch:
    """A plan, then the record of what was done with it."""

    url: str
    batch: str
    versioned: bool
    items: list[Item] = field(default_factory=list)
    created: float = 0.0

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.items if i.state in ("planned", "trashed"))

    def monthly_cost(self, per_gb_month: float = STORAGE_PER_GB_MONTH) -> float:
        """What the planned objects cost to store a month, at ``per_gb_month``: what a
        purge frees (a trash alone frees nothing: the bytes stay in the bucket)."""
        return self.total_bytes / 1e9 * per_gb_month

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for item in self.items:
            found[item.state] = found.get(item.state, 0) + 1
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "batch": self.batch,
            "versioned": self.versioned,
            "created": self.created,
            "bytes": self.total_bytes,
            "monthly_cost_usd": round(self.monthly_cost(), 6),
            "counts": self.counts(),
            "items": [asdict(i) for i in self.items],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Batch:
        try:
            items = [Item(**raw) for raw in data["items"]]
            return cls(
                str(data["url"]),
                str(data["batch"]),
                bool(data["versioned"]),
                items,
                float(data.get("created", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BucketRetentionError(f"not a batch manifest: {exc}") from None


def leftover(item: Item) -> bool:
    """Whether ``item`` was restored but its copy is still in the trash (a purge frees it)."""
    return item.state == "restored" and item.trash_key is not None


class BucketTrash:
    """Trash, restore and purge on one bucket prefix."""

    def __init__(self, root: ObjectRoot) -> None:
        self.root = root
        self.bucket = root.bucket
        self.store = root.backend
        self._recorded: Mapping[str, TrashedObject] = {}
        """What apply recorded here of the batch being restored or purged, by key."""

    # -- planning ------------------------------------------------------------------

    def plan(self, rels: list[str]) -> Batch:
        """A batch of the objects at ``rels`` (HEAD each: size, ETag, version), changing
        nothing.  A missing object is listed ``missing``."""
        batch = Batch(
            self.root.url,
            time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8],
            self.root.versioned,
            created=time.time(),
        )
        for rel in dict.fromkeys(rels):  # one item per key: never two acting on it
            key = self.root.key_of(rel)
            if key.split("/")[len(self._prefix_parts()) :][:1] == [TRASH]:
                raise BucketRetentionError(f"{rel}: inside the trash")
            unsafe = self._unsafe(batch, rel, key)
            if unsafe is not None:
                batch.items.append(Item(rel, key, 0, "", state="refused", note=unsafe))
                continue
            head = self._head(key)
            if head is None:
                batch.items.append(Item(rel, key, 0, "", state="missing", note="no such object"))
                continue
            batch.items.append(
                Item(
                    rel,
                    key,
                    head.size,
                    head.pin,
                    head.version if batch.versioned else None,
                    note="multipart ETag" if self._multipart(head) else "",
                    identity=head.identity,
                )
            )
        return batch

    # -- apply ---------------------------------------------------------------------

    def apply(self, batch: Batch) -> Batch:
        """Trash every planned object; writes the manifest.  Items that changed since the
        plan are ``changed`` and left in place."""
        if batch.url != self.root.url:
            raise BucketRetentionError(f"the batch is for {batch.url}, not {self.root.url}")
        for item in batch.items:
            if item.state != "planned":
                continue
            try:
                if batch.versioned:
                    self._trash_versioned(item)
                else:
                    self._trash_copy(batch, item)
            except RootError as exc:
                item.state, item.note = getattr(exc, "outcome", "failed"), str(exc)[:300]
        self._save(batch)
        self._record(batch)
        return batch

    def _record(self, batch: Batch) -> None:
        """Keep what ``batch`` trashed in the user state, where only this user writes: the
        manifest lies in the bucket, where anyone who may write there may edit every field
        of an item to those of another version of its key (``_unrecorded``).  Kept after
        the manifest is saved: a batch that could not be recorded is still restorable."""
        from store.userstate import TrashedObject, UserState, UserStateError

        trashed = [
            TrashedObject(i.key, i.size, i.etag, i.version, i.marker, i.trash_key, i.trash_pin)
            for i in batch.items
            if i.state == "trashed"
        ]
        if not trashed:
            return
        try:
            with UserState() as state:
                state.record_trashed(batch.url, batch.batch, trashed)
        except UserStateError as exc:
            raise BucketRetentionError(
                f"batch {batch.batch} is applied (its manifest is in the bucket) but not "
                f"recorded on this machine: {exc}; purging it needs {TRUST_MANIFEST}"
            ) from None

    def _records(self, batch: Batch) -> dict[str, TrashedObject]:
        """What this machine recorded of ``batch``'s apply, by key (empty: none)."""
        from store.userstate import UserState, UserStateError

        try:
            with UserState() as state:
                return state.trashed(batch.url, batch.batch)
        except UserStateError as exc:
            raise BucketRetentionError(f"batch {batch.batch}: {exc}") from None

    def _unrecorded(self, item: Item) -> bool:
        """Refuse ``item`` (state ``refused``, a note; True) unless its batch recorded
        nothing here or it is what apply recorded: same key, size, ETag or generation,
        version, marker and trash copy.  A manifest's item edited whole to name another,
        older version of its key (its version id, ETag and size, all read from a versions
        listing) passes every check made against the bucket; purge destroyed that version.
        Asked last, just before the step that changes the bucket, after the checks against
        the bucket (whose notes say more)."""
        if not self._recorded:
            return False
        recorded = self._recorded.get(item.key)
        if recorded is None:
            item.state = "refused"
            item.note = f"{NOT_RECORDED}: no item of its key: nothing done"
            return True
        fields = (
            ("version", item.version, recorded.version),
            ("marker", item.marker, recorded.marker),
            ("trash key", item.trash_key, recorded.trash_key),
            ("trash pin", item.trash_pin, recorded.trash_pin),
            ("ETag", item.etag, recorded.etag),
            ("size", item.size, recorded.size),
        )
        for name, got, kept in fields:
            if got != kept:
                item.state = "refused"
                item.note = (
                    f"{NOT_RECORDED}: {name} {str(got)[:80]!r} where apply recorded "
                    f"{str(kept)[:80]!r}: nothing done"
                )
                return True
        return False

    def _trash_versioned(self, item: Item) -> None:
        if item.version is None:  # written before versioning: a marker would replace it
            item.state, item.note = "kept", "no version id (written before versioning): not trashed"
            return
        head = self._head(item.key)
        if head is None or head.pin != item.etag or head.version != item.version:
            item.state, item.note = "changed", "overwritten or deleted since the plan"
            return
        marker = self.store.delete(item.key)
        if marker is None:
            item.state, item.note = "failed", "the bucket put no delete marker"
            return
        item.marker = marker
        item.state = "trashed"

    def _trash_copy(self, batch: Batch, item: Item) -> None:
        trash_key = self._trash_key(batch, item.key)
        try:
            copied = self.store.copy(item.key, trash_key, item.size, pin=item.etag)
        except (ChangedError, NotFound):
            item.state, item.note = "changed", "overwritten since the plan"
            return
        item.trash_key = trash_key
        if copied != item.etag:
            item.trash_pin = copied
        try:
            self.store.delete(item.key, pin=item.etag)
        except RootError as exc:
            # overwritten between the copy and the delete: keep the new object, drop the copy
            self.store.delete(trash_key)
            item.trash_key = item.trash_pin = None
            changed = isinstance(exc, (ChangedError, NotFound))
            item.state = "changed" if changed else "failed"
            item.note = "overwritten since the plan" if changed else str(exc)[:300]
            return
        item.state = "trashed"

    # -- restore and purge ---------------------------------------------------------

    def restore(self, batch: Batch) -> Batch:
        """Bring every trashed object back where it was, never over a newer object, nor
        an item that is not what apply recorded here (``_unrecorded``)."""
        self._recorded = self._records(batch)
        for item in batch.items:
            if item.state != "trashed":
                continue
            try:
                if batch.versioned:
                    self._restore_versioned(item)
                else:
                    self._restore_copy(item)
            except RootError as exc:
                item.note = f"restore failed: {str(exc)[:300]}"
        self._save(batch)
        return batch

    def _restore_versioned(self, item: Item) -> None:
        if self._head(item.key) is not None:
            # the item stays trashed: its version is still there, to restore once the
            # newer object is gone, or to purge
            item.note = NEWER_AT_KEY
            return
        if self._refused_bytes(item):
            return
        if self._object_version(item.key, str(item.marker)):
            item.state, item.note = "refused", MARKER_IS_OBJECT
            return
        if self._unrecorded(item):
            return
        self.store.delete(item.key, version=str(item.marker))
        try:
            head = self._head(item.key)
        except RootError as exc:
            # the marker is gone: the trashed version is the current one again
            item.state, item.marker = "restored", None
            item.note = f"marker removed; the object could not be checked: {str(exc)[:300]}"
            return
        if head is None or head.version != item.version:
            item.note = "marker removed, but the trashed version is not the current one"
            return
        item.state, item.marker, item.note = "restored", None, ""

    def _restore_copy(self, item: Item) -> None:
        if self._head(item.key) is not None:
            item.note = NEWER_AT_KEY  # the copy stays in the trash, restorable or purgeable
            return
        assert item.trash_key is not None
        if self._refused_bytes(item) or self._unrecorded(item):
            return
        self.store.copy(item.trash_key, item.key, item.size, pin=item.trash_pin or item.etag)
        # the object is back: whatever happens to the copy now, the item is restored
        item.state, item.note = "restored", ""
        self._drop_leftover(item)

    def _drop_leftover(self, item: Item) -> None:
        """Delete a restored item's copy in the trash (pinned to the copy apply made);
        one that cannot be deleted is kept in ``trash_key`` and said (``LEFT_IN_TRASH``),
        for a purge to delete."""
        try:
            self.store.delete(str(item.trash_key), pin=item.trash_pin or item.etag)
        except RootError as exc:
            item.note = f"{LEFT_IN_TRASH} ({str(exc)[:300]})"
            return
        item.trash_key = item.trash_pin = None
        item.note = ""

    def purge(self, batch: Batch, *, trust_manifest: bool = False) -> Batch:
        """Delete the trashed bytes for good (locked versions are kept and reported), of
        items that are what apply recorded here (``_unrecorded``).  A versioned batch this
        machine holds no record of is left (``no_record``) unless ``trust_manifest``: its
        purge deletes versions by the ids its manifest names.  A batch trashed by copy is
        purged without one: only its own trash copies are deleted, pinned to their ETags,
        which whoever may edit its manifest may delete anyway."""
        self._recorded = self._records(batch)
        for item in batch.items:
            if not (leftover(item) or item.state == "trashed"):
                continue
            if batch.versioned and not self._recorded and not trust_manifest:
                item.note = no_record(batch)
                continue
            if leftover(item):
                self._purge_leftover(item)
                continue
            try:
                if batch.versioned:
                    head = self._head(item.key)
                    if head is not None and head.version in (item.version, item.marker):
                        # the version to delete for good is the live object, not one a
                        # delete marker hides: no trash apply left it so
                        item.note = "the trashed version is the current one: not purged"
                        continue
                    if self._refused_bytes(item):
                        continue
                    lock = self.store.lock_of(item.key, str(item.version))
                    if lock:
                        item.note = lock
                        continue
                    if self._object_version(item.key, str(item.marker)):
                        item.state, item.note = "refused", MARKER_IS_OBJECT
                        continue
                    if self._unrecorded(item):
                        continue
                    self.store.delete(item.key, version=str(item.version))
                    self.store.delete(item.key, version=str(item.marker))
                else:
                    if self._refused_bytes(item) or self._unrecorded(item):
                        continue
                    # pinned: a copy rewritten since the check is not deleted either
                    self.store.delete(str(item.trash_key), pin=item.trash_pin or item.etag)
            except RootError as exc:
                item.note = f"purge failed: {str(exc)[:300]}"
                continue
            item.state, item.note = "purged", ""
        self._save(batch)
        return batch

    def _purge_leftover(self, item: Item) -> None:
        """The copy a restore left in the trash (the object itself is back), deleted."""
        try:
            if self._refused_bytes(item) or self._unrecorded(item):
                return
        except RootError as exc:
            item.note = f"{LEFT_IN_TRASH} (purge failed: {str(exc)[:300]})"
            return
        self._drop_leftover(item)

    def load(self, batch_id: str) -> Batch:
        """A batch by its id, from its manifest in the bucket."""
        if not is_batch_id(batch_id):
            raise BucketRetentionError(f"not a batch id: {batch_id[:80]!r}")
        data, more = self.root.read_capped(f"{TRASH}/{batch_id}.json", 64 * 1024 * 1024)
        if more:
            raise BucketRetentionError(f"batch {batch_id}: manifest too large")
        try:
            raw = load_json(data)
        except ValueError as exc:
            raise BucketRetentionError(f"batch {batch_id}: manifest unreadable: {exc}") from None
        if not isinstance(raw, dict):
            raise BucketRetentionError(f"batch {batch_id}: not a manifest")
        batch = Batch.from_json(raw)
        if batch.batch != batch_id or batch.url != self.root.url:
            raise BucketRetentionError(
                f"batch {batch_id}: the manifest is for batch {batch.batch[:80]!r} of "
                f"{batch.url[:200]!r}, not of {self.root.url}"
            )
        acting: dict[str, int] = {}
        for item in batch.items:
            if item.state == "trashed" or (item.state == "restored" and item.trash_key):
                acting[str(item.key)] = acting.get(str(item.key), 0) + 1
        for item in batch.items:
            why = self._refused(batch, item)
            if why is None and acting.get(str(item.key), 0) > 1 and item.state != "refused":
                # apply writes one item per key: which of two is the batch's own cannot be
                # told, and both name the same trashed bytes (or one names others)
                why = f"{acting[str(item.key)]} items of the batch act on its key"
            if why is not None:
                item.state, item.note = "refused", f"not in the shape apply writes: {why}"
            elif item.state == "kept" and (item.trash_key or item.marker):
                # an older restore marked an item it did not restore (a newer object at
                # the key) ``kept`` and left its trashed bytes: they are still trashed
                item.state, item.note = "trashed", NEWER_AT_KEY
        return batch

    def _refused(self, batch: Batch, item: Item) -> str | None:
        """Why a manifest's item cannot be acted on, or None.  The manifest lies in the
        bucket, where anyone who may write there may edit it: every field is checked
        against what ``apply`` writes (the key of its path under this root, never in the
        trash; the trash copy's key under this batch), so a restore or a purge never
        touches another key than the batch's own."""
        texts = (item.rel, item.key, item.etag, item.state, item.note, item.identity)
        if not all(isinstance(v, str) for v in texts):
            return "a field that is no text"
        optional = (item.version, item.marker, item.trash_key, item.trash_pin)
        if not all(v is None or isinstance(v, str) for v in optional):
            return "a field that is no text"
        if not isinstance(item.size, int) or isinstance(item.size, bool) or item.size < 0:
            return "no size"
        if item.state not in STATES:
            return f"state {item.state[:40]!r}"
        try:
            key = self.root.key_of(item.rel)
        except (RootError, ValueError):
            return f"path {item.rel[:200]!r}"
        if key != item.key:
            return f"key {item.key[:200]!r} is not that of path {item.rel[:200]!r}"
        if key.split("/")[len(self._prefix_parts()) :][:1] == [TRASH]:
            return f"{item.rel[:200]!r} is inside the trash"
        if item.trash_key is not None and item.trash_key != self._trash_key(batch, key):
            return f"trash key {item.trash_key[:200]!r} is not this batch's copy of the path"
        unsafe = self._unsafe(batch, item.rel, key)
        if unsafe is not None:
            return unsafe
        return self._refused_method(batch, item)

    def _unsafe(self, batch: Batch, rel: str, key: str) -> str | None:
        """Why the object at ``rel`` cannot be trashed, restored or purged by its key, or
        None: the root itself (its key is the object beside the root, outside it), or a
        key, or its copy's key in the trash, that the store would take for another
        object's (``Backend.unsafe_key``: Azure resolves ``..`` in a blob's URL, so
        ``p/../x`` is ``x``, outside the prefix)."""
        if not rel:
            return "the root itself is no object of the root: nothing done"
        for what, name in (("key", key), ("trash key", self._trash_key(batch, key))):
            why = self.store.unsafe_key(name)
            if why is not None:
                return f"{what} {name[:200]!r}: {why}: nothing done"
        return None

    def _refused_method(self, batch: Batch, item: Item) -> str | None:
        """Why an item's fields do not fit how its batch trashed it, or None: a versioned
        batch's item hides a version (an id, never S3's ``null``, which names an
        unversioned bucket's live object) under a marker, with no copy; a copy batch's item
        has its copy's key once trashed, and no version.  An edited ``versioned`` flag, or
        a version dropped in, made purge delete the live object at the key for good (or the
        object named ``None``)."""
        if batch.versioned:
            if self.store.scheme != "s3":
                return f"a {self.store.scheme} bucket is trashed by copy, never by version"
            if item.trash_key is not None or item.trash_pin is not None:
                return "a trash copy in a batch trashed by version"
            if item.state == "trashed" and not (item.version and item.marker):
                return "no version or marker for an object trashed by version"
            if "null" in (item.version, item.marker):
                return "version 'null' (an unversioned object) in a batch trashed by version"
            return None
        if item.version is not None or item.marker is not None:
            return "a version or a marker in a batch trashed by copy"
        if item.state == "trashed" and item.trash_key is None:
            return "no trash copy for an object trashed by copy"
        return None

    def _trash_key(self, batch: Batch, key: str) -> str:
        """Where ``apply`` copies ``key`` in an unversioned bucket."""
        below = key[len(self.root.prefix) + 1 :] if self.root.prefix else key
        return "/".join(p for p in (self.root.prefix, TRASH, batch.batch, below) if p)

    # -- helpers -------------------------------------------------------------------

    def _prefix_parts(self) -> list[str]:
        return self.root.prefix.split("/") if self.root.prefix else []

    def _save(self, batch: Batch) -> None:
        key = "/".join(p for p in (self.root.prefix, TRASH, batch.batch + ".json") if p)
        body = json.dumps(batch.to_json(), ensure_ascii=True).encode()
        self.store.put(key, body)

    def _multipart(self, head: ObjectInfo) -> bool:
        """An S3 ETag that is no MD5 of the bytes (GCS and Azure never claim one)."""
        return self.store.scheme == "s3" and not head.content_hash

    def _object_version(self, key: str, version: str) -> bool:
        """Whether ``version`` of ``key`` is an object's version (a HEAD of it answers with
        the object), not a delete marker (whose HEAD the store refuses) nor gone; a HEAD
        that fails otherwise raises, so nothing is deleted on a network blip.  The
        manifest's ``marker`` is deleted by version id, for good: an edited one naming a
        version with bytes (one written at the key since, then deleted) would destroy it."""
        try:
            self.store.head(key, version=version)
        except NotFound:  # a delete marker's HEAD is refused, and a gone version is gone
            return False
        return True  # any other failure is raised: the item is left as it is, and said

    def _refused_bytes(self, item: Item) -> bool:
        """Refuse ``item`` (state ``refused``, a note; True) unless what restore or purge
        would act on is what apply trashed: the trashed version (versioned) or the trash
        copy has the size and ETag (S3, Azure) or generation (GCS) the item recorded, by
        one HEAD.  The manifest lies in the bucket, where anyone who may write there may
        edit it: a ``version`` edited to name another, older version of the key made purge
        delete those bytes for good.  A version or copy that is not there is refused too;
        a HEAD that fails otherwise raises (the item is left trashed, and said)."""
        if item.version is not None:
            where, version, pin = f"version {item.version[:80]!r}", item.version, item.etag
        else:
            where, version, pin = "its trash copy", None, item.trash_pin or item.etag
        try:
            head = self.store.head(item.trash_key or item.key, version=version)
        except NotFound:
            item.state = "refused"
            item.note = f"{NOT_THE_TRASHED_BYTES}: {where} is not there: nothing deleted"
            return True
        if head.size != item.size or head.pin != pin:
            item.state = "refused"
            item.note = (
                f"{NOT_THE_TRASHED_BYTES}: {where} holds {head.size} bytes, ETag "
                f"{head.pin[:80]!r}, where apply trashed {item.size} bytes, ETag "
                f"{pin[:80]!r}: nothing deleted"
            )
            return True
        return False

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            return self.store.head(key)
        except NotFound:
            return None


MAX_TRASH_ENTRIES = 10_000
"""Names listed in a bucket's trash folder (a batch is a manifest and, unversioned, a
folder of copies) before its listing is a problem line instead."""


def list_batches(root: ObjectRoot) -> tuple[list[Batch], list[str]]:
    """Every batch in the trash of ``root`` (its manifests, ``<prefix>/.artlens-trash/
    <batch>.json``, each loaded and checked as restore and purge load it), oldest first,
    and one printable line per manifest or listing that could not be read: what a bucket's
    trash holds is never shown as nothing because it could not be read."""
    from store.paths import display
    from store.root import TooManyEntries

    trash = BucketTrash(root)
    problems: list[str] = []
    try:
        names = root.list_dir(TRASH, limit=MAX_TRASH_ENTRIES)
    except NotFound:
        return [], []
    except TooManyEntries:
        return [], [f"its trash holds more than {MAX_TRASH_ENTRIES} names: not listed"]
    except (RootError, ValueError) as exc:
        return [], [f"its trash could not be listed: {display(str(exc)[:300])}"]
    batches = []
    for entry in names:
        if entry.kind != "file" or not entry.name.endswith(".json"):
            continue  # an unversioned batch's folder of copies
        batch_id = entry.name.removesuffix(".json")
        try:
            batches.append(trash.load(batch_id))
        except (RootError, ArtlensError, ValueError) as exc:
            problems.append(f"batch {display(batch_id[:80])}: {display(str(exc)[:300])}")
    batches.sort(key=lambda b: (b.created, b.batch))
    return batches, problems


RUN_SKIPPED = "run skipped; re-index and plan again"


def kept_changed(root: ObjectRoot, kept: Sequence[Candidate]) -> str | None:
    """Why a run's removals must wait, or None: a unit the plan keeps in it is gone or
    changed since the plan (a file: its size or ETag differs, by one HEAD; a checkpoint
    folder: no object is left below it, by the first checked pages of its listing,
    ``ObjectRoot.any_below``), as
    ``store.retention.trash`` checks a folder's kept units."""
    from store.objscan import identity_number
    from store.paths import display

    for unit in kept:
        shown = display(unit.path)
        try:
            key = root.key_of(unit.path)
            if unit.is_dir:
                if not root.any_below(unit.path, markers=False):
                    return f"kept {shown} is gone since the plan: {RUN_SKIPPED}"
                continue
            head = root.backend.head(key)
        except NotFound:
            return f"kept {shown} is gone since the plan: {RUN_SKIPPED}"
        except (RootError, ValueError) as exc:
            return f"kept {shown} cannot be checked ({str(exc)[:200]}): {RUN_SKIPPED}"
        if (head.size, identity_number(head.identity)) != (unit.size, unit.inode):
            return f"kept {shown} changed since the plan (size or ETag): {RUN_SKIPPED}"
    return None


def apply_candidates(
    root: ObjectRoot, removals: Sequence[Candidate], kept: Sequence[Candidate] = ()
) -> tuple[Report, Batch]:
    """A retention plan's removals under an object-store root, trashed as one batch.

    Each object (a checkpoint folder's members one by one) is re-checked against what the
    index saw when the plan was made: a size or ETag that differs now is ``changed`` and
    left in place, as a changed local file is skipped.  ``kept`` are the units the plan
    keeps in the same runs: when one of a run's is gone or changed (``kept_changed``),
    none of that run's removals is applied, so a stale plan never leaves a run with
    nothing it meant to keep."""
    from store.objscan import identity_number
    from store.retention.trash import ItemResult, Report

    kept_by_run: dict[tuple[int, str], list[Candidate]] = {}
    for unit in kept:
        kept_by_run.setdefault((unit.run_id, unit.run_path), []).append(unit)
    run_skipped: dict[tuple[int, str], str | None] = {}
    waiting: list[tuple[Candidate, str]] = []
    applied: list[Candidate] = []
    for candidate in removals:
        run = (candidate.run_id, candidate.run_path)
        if run not in run_skipped:
            run_skipped[run] = kept_changed(root, kept_by_run.get(run, []))
        why = run_skipped[run]
        if why is None:
            applied.append(candidate)
        else:
            waiting.append((candidate, why))
    removals = applied

    expected: dict[str, tuple[int, int]] = {}
    for candidate in removals:
        members = (
            [(m.path, m.size, m.inode) for m in candidate.members]
            if candidate.is_dir
            else [(candidate.path, candidate.size, candidate.inode)]
        )
        for path, size, inode in members:
            expected[path] = (size, inode)
    trash = BucketTrash(root)
    batch = trash.plan(sorted(expected))
    for item in batch.items:
        if item.state != "planned":
            continue
        size, inode = expected[item.rel]
        if (item.size, identity_number(item.identity)) != (size, inode):
            item.state = "changed"
            item.note = "changed since the plan"
    if any(item.state == "planned" for item in batch.items):
        batch = trash.apply(batch)
    report = Report()
    for candidate, why in waiting:
        report.skipped.append(
            ItemResult(root.url, candidate.path, "skipped", why, candidate.size, batch.batch)
        )
    for item in batch.items:
        if item.state == "trashed":
            report.done.append(
                ItemResult(root.url, item.rel, "trashed", "", item.size, batch.batch)
            )
        else:
            reason = f"{item.state}: {item.note}" if item.note else item.state
            report.skipped.append(
                ItemResult(root.url, item.rel, "skipped", reason, item.size, batch.batch)
            )
    return report, batch


# --- a retention plan's bucket part: what `retention apply` and the retention view share ---


def split_buckets(plan: Plan) -> tuple[Plan, dict[str, list[Candidate]]]:
    """The plan's part under folder roots, and its removals under each object-store root
    (by URL)."""
    from dataclasses import replace

    from store.root import is_url

    buckets: dict[str, list[Candidate]] = {}
    for item in plan.removals:
        if is_url(item.root):
            buckets.setdefault(item.root, []).append(item)
    if not buckets:
        return plan, buckets
    return replace(plan, items=[i for i in plan.items if not is_url(i.root)]), buckets


def check_bucket_roots(plan: Plan, index: sqlite_utils.Database) -> None:
    """``PlanError`` (one line naming it) when ``plan`` names an object-store root that
    ``index`` does not hold: a saved plan is a file anyone may have edited, and only the
    roots of this index are ever acted on (``trash.check_plan_roots`` for folders)."""
    from store.paths import display, key
    from store.retention.plan import PlanError
    from store.root import is_url

    indexed = {bytes(path) for (path,) in index.conn.execute("SELECT path FROM roots")}
    for root in dict.fromkeys(item.root for item in plan.items):
        if is_url(root) and key(root) not in indexed:
            raise PlanError(
                f"plan {display(plan.id)} names {display(root)}, which is not a root of "
                "this index: nothing moved"
            )


def apply_buckets(
    buckets: Mapping[str, Sequence[Candidate]],
    plan: Plan,
    report: Report,
    *,
    pins: PinSource | None = None,
    nesting: _Nesting | None = None,
    progress: Progress | None = None,
    done_before: int = 0,
    index: sqlite_utils.Database | None = None,
) -> list[tuple[str, str]]:
    """Trash each bucket's removals as one batch (``apply_candidates``: re-checked against
    the plan's sizes and identities, and against the units ``plan`` keeps in the same
    runs); their results join ``report``.  With ``pins`` (the user's), a removal pinned
    now is skipped, as ``trash.apply_plan`` skips a folder's.  With ``index``, a removal
    it does not hold as planned (path, size, ETag; a folder's every member and nothing
    else) is skipped, as a folder's is: the plan's own sizes and ETags are no proof, a
    saved plan being a file anyone may edit.  ``(url, batch id)`` of each batch that
    trashed something (its manifest is in the bucket)."""
    from store.paths import display, key
    from store.retention.plan import _pins_for
    from store.retention.policy import Policy
    from store.retention.trash import _UNHELD, ItemResult, _pinned_now, _unheld
    from store.root import open_root

    total = done_before + sum(len(items) for items in buckets.values())
    done = done_before
    batches = []
    for url, items in sorted(buckets.items()):
        root = open_root(url)
        if not isinstance(root, ObjectRoot):
            raise BucketRetentionError(f"not an object-store root: {display(url)}")
        root_pins = _pins_for(url, pins, Policy(), nesting) if pins is not None else None
        unheld: dict[int, str] = {}
        if index is not None:
            row = index.conn.execute("SELECT id FROM roots WHERE path = ?", [key(url)]).fetchone()
            unheld = (
                _unheld(index, int(row[0]), list(items))
                if row is not None
                else {id(item): _UNHELD for item in items}
            )
        applied = []
        for item in items:
            why = unheld.get(id(item)) or _pinned_now(root_pins, item)
            if why is None:
                applied.append(item)
            else:
                report.skipped.append(ItemResult(url, item.path, "skipped", why, item.size))
        kept = [i for i in plan.items if i.keep and i.root == url]
        if applied:
            got, batch = apply_candidates(root, applied, kept)
            report.done += got.done
            report.skipped += got.skipped
            if got.done:
                batches.append((url, batch.batch))
        done += len(items)
        if progress:
            progress(done, total, url)
    return batches


def refresh_buckets(db: sqlite_utils.Database, urls: Sequence[str]) -> None:
    """Re-list each bucket root at ``urls`` that ``db`` indexes (a page per 1000 keys), so
    the index drops what was trashed or holds what came back, and every indexed prefix
    around or inside one (it holds the same objects)."""
    from store.objscan import ObjectIndexer
    from store.retention.plan import roots_sharing_files
    from store.root import open_root

    sharing = [other for url in urls for other in roots_sharing_files(db, url)]
    for url in dict.fromkeys([*urls, *sharing]):
        root = open_root(url)
        indexed = db.conn.execute(
            "SELECT 1 FROM roots WHERE path = ?", [root.url.encode()]
        ).fetchone()
        if isinstance(root, ObjectRoot) and indexed:
            ObjectIndexer(db, root).scan()


def restore_batches(urls: Sequence[str], batches: Sequence[str]) -> Report:
    """Restore each batch (an id a bucket apply reported) from whichever of the buckets
    at ``urls`` holds its manifest; a batch none holds is a ``BucketRetentionError``."""
    from store.paths import display
    from store.retention.trash import ItemResult, Report
    from store.root import open_root

    report = Report()
    trashes = []
    for url in urls:
        root = open_root(url)
        if not isinstance(root, ObjectRoot):
            raise BucketRetentionError(f"not an object-store root: {display(url)}")
        trashes.append(BucketTrash(root))
    for batch_id in batches:
        if not is_batch_id(batch_id):
            raise BucketRetentionError(f"no batch {display(batch_id)!r}: not a batch id")
        problems: list[str] = []
        for trash in trashes:
            try:
                batch = trash.load(batch_id)
            except NotFound:
                continue  # not this bucket's batch
            except (RootError, ArtlensError) as exc:
                # this bucket's manifest of the batch, unreadable or not one: said, never
                # "no batch" (nor another bucket's batch of the same id taken instead)
                problems.append(f"{display(trash.root.url)}: {display(str(exc)[:300])}")
                continue
            # a refused item (edited, not in the shape apply writes) is said, never left out
            was = {item.rel for item in batch.items if item.state in ("trashed", "refused")}
            batch = trash.restore(batch)
            for item in batch.items:
                if item.rel not in was:
                    continue
                if item.state == "restored":
                    report.done.append(
                        ItemResult(batch.url, item.rel, "restored", "", item.size, batch.batch)
                    )
                else:
                    reason = f"{item.state}: {item.note}" if item.note else item.state
                    report.skipped.append(
                        ItemResult(batch.url, item.rel, "skipped", reason, item.size, batch.batch)
                    )
            break
        else:
            if problems:
                raise BucketRetentionError(
                    f"batch {display(batch_id)!r} cannot be restored: {'; '.join(problems)}"
                )
            raise BucketRetentionError(
                f"no batch {display(batch_id)!r} in {', '.join(display(u) for u in urls)}"
            )
    return report


def purge_batches(batches: Sequence[tuple[str, str]], *, trust_manifest: bool = False) -> Report:
    """Purge each ``(bucket URL, batch id)`` (``BucketTrash.purge``: locked versions are
    kept, and a versioned batch this machine holds no record of only with
    ``trust_manifest``); each object the batch held trashed is done or skipped, with why."""
    from store.retention.trash import ItemResult, Report
    from store.root import open_root

    report = Report()
    for url in dict.fromkeys(url for url, _ in batches):
        root = open_root(url)
        if not isinstance(root, ObjectRoot):
            raise BucketRetentionError(f"not an object-store root: {url}")
        trash = BucketTrash(root)
        for batch_id in dict.fromkeys(b for u, b in batches if u == url):
            batch = trash.load(batch_id)
            was = [i for i, item in enumerate(batch.items) if item.state in ("trashed", "refused")]
            copies = [i for i, item in enumerate(batch.items) if leftover(item)]
            batch = trash.purge(batch, trust_manifest=trust_manifest)
            for item in (batch.items[i] for i in copies):
                if leftover(item):
                    reason = f"{item.state}: {item.note}" if item.note else item.state
                    report.skipped.append(
                        ItemResult(url, item.rel, "skipped", reason, item.size, batch.batch)
                    )
            for item in (batch.items[i] for i in was):
                if item.state == "purged":
                    report.done.append(
                        ItemResult(url, item.rel, "purged", "", item.size, batch.batch)
                    )
                else:
                    reason = f"{item.state}: {item.note}" if item.note else item.state
                    report.skipped.append(
                        ItemResult(url, item.rel, "skipped", reason, item.size, batch.batch)
                    )
    return report
