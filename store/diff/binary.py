"""Byte-level and image diffs: sizes, xxh3-128 hashes, first differing offset, pixels.

Both files are read together in bounded chunks, so two multi-gigabyte blobs cost two
chunks of memory and one pass.  Image dimensions come from the file headers (PNG IHDR,
GIF, JPEG SOF) so they work without Pillow; the share of differing pixels needs Pillow.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

import xxhash

from store.diff._io import CompareBudget, DiffError, FileRef, RegularFile, ref_basename
from store.hashing import Skipped, data_segments

CHUNK = 1 << 20
SEARCH_WHEN_SIZES_DIFFER = 64 << 20
"""Bytes searched for the first difference of two files whose sizes already tell them
apart: a 50 GB file against a small one is not read whole to say what its size says."""
MAX_HOLE_HASH = 1 << 30
"""Bytes of holes (of sparse files) fed to the hashes as the zeros they read as; with more,
the two files are still compared in full (a hole in both reads as zeros in both) but the
hashes are left out: hashing 1 TiB of zeros takes minutes and tells nothing."""
_ZEROS = bytes(CHUNK)
IMAGE_HEAD = 65536
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000


@dataclass
class BinaryDiff:
    size_old: int
    size_new: int
    hash_old: str | None
    hash_new: str | None
    equal: bool
    first_difference: int | None
    """Offset of the first differing byte (the shorter length if one is a prefix)."""
    notes: list[str] = field(default_factory=list)
    unknown: bool = False
    """Equal as far as read, but not read to the end (``CompareBudget``): not known equal."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _first_mismatch(a: bytes, b: bytes) -> int:
    """Offset of the first differing byte of two unequal chunks (binary search on slices)."""
    limit = min(len(a), len(b))
    lo, hi = 0, limit
    if a[:limit] == b[:limit]:
        return limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def data_ranges(old: RegularFile, new: RegularFile, limit: int) -> list[tuple[int, int]]:
    """The ranges of ``[0, limit)`` that hold data in either of two local files, merged and
    in order: everywhere else both have holes (``SEEK_HOLE``), which read as zeros in both,
    so the two are equal there without a read.  The whole range when a side is not a
    local file, is not sparse, or its filesystem cannot tell."""
    whole = [(0, limit)] if limit else []
    if old.fd < 0 or new.fd < 0 or not limit:
        return whole
    found: list[tuple[int, int]] = []
    for handle in (old, new):
        if os.fstat(handle.fd).st_blocks * 512 >= handle.size:
            return whole  # no holes worth looking for: this side is read whole anyway
        segments = data_segments(handle.fd, handle.size)
        if isinstance(segments, Skipped):
            return whole
        found.extend((start, min(end, limit)) for start, end in segments if start < limit)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _feed_zeros(hashes: tuple[Any, ...], count: int) -> None:
    while count > 0:
        step = min(CHUNK, count)
        for hasher in hashes:
            hasher.update(_ZEROS if step == CHUNK else _ZEROS[:step])
        count -= step


def unread_note(reached: int, size: int, budget: CompareBudget) -> str:
    """What a comparison that ran out of ``budget`` at byte ``reached`` of ``size`` knows."""
    return (
        f"compared the first {reached} of {size} bytes, equal so far; not read further "
        f"({budget.bound()}): not known equal"
    )


def diff_binary(
    path_a: FileRef,
    path_b: FileRef,
    *,
    max_bytes: int | None = None,
) -> BinaryDiff:
    """Compare two files byte by byte; hashes cover at most ``max_bytes`` when given.

    Files of different sizes differ: they are not hashed, and their first differing byte is
    searched for in the first ``SEARCH_WHEN_SIZES_DIFFER`` bytes only.  Of two sparse
    files only the ranges that hold data in either are read (``data_ranges``); their
    holes are hashed as zeros up to ``MAX_HOLE_HASH`` bytes, else the hashes are left out
    and a note says so.  Reading stops where a ``CompareBudget`` runs out: files equal up
    to there are ``unknown``, a difference found before it is a difference."""
    notes: list[str] = []
    with RegularFile(path_a) as old, RegularFile(path_b) as new:
        if old.size != new.size:
            return _sizes_differ(old, new, max_bytes)
        limit = max(old.size, new.size)
        if max_bytes is not None and limit > max_bytes:
            limit = max_bytes
            notes.append(f"only the first {max_bytes} bytes were compared; hashes omitted")
        ranges = data_ranges(old, new, limit)
        holes = limit - sum(end - start for start, end in ranges)
        hashed = holes <= MAX_HOLE_HASH
        if not hashed:
            notes.append(
                f"{holes} bytes are holes in both files (they read as zeros in both, "
                "so they are equal there unread); hashes omitted"
            )
        budget = CompareBudget()
        hash_a, hash_b = xxhash.xxh3_128(), xxhash.xxh3_128()
        first: int | None = None
        stopped_at: int | None = None
        offset = 0
        for start, end in [*ranges, (limit, limit)]:
            if hashed:
                _feed_zeros((hash_a, hash_b), start - offset)
            offset = start
            while offset < end:
                step = min(CHUNK, end - offset)
                if not budget.spend(step):
                    stopped_at = offset
                    break
                chunk_a = old.read_at(offset, step)
                chunk_b = new.read_at(offset, step)
                if len(chunk_a) != step or len(chunk_b) != len(chunk_a):
                    raise DiffError("a file shrank while it was being compared")
                if hashed:
                    hash_a.update(chunk_a)
                    hash_b.update(chunk_b)
                if first is None and chunk_a != chunk_b:
                    first = offset + _first_mismatch(chunk_a, chunk_b)
                offset += len(chunk_a)
            if stopped_at is not None:
                break
        old.check()
        new.check()
        if stopped_at is not None:
            if first is None:
                notes.append(unread_note(stopped_at, old.size, budget))
            else:
                notes.append(f"hashes omitted: not read past byte {stopped_at} ({budget.bound()})")
        complete = limit == max(old.size, new.size) and hashed and stopped_at is None
        equal = first is None and limit == old.size and stopped_at is None
        return BinaryDiff(
            size_old=old.size,
            size_new=new.size,
            hash_old=hash_a.hexdigest() if complete else None,
            hash_new=hash_b.hexdigest() if complete else None,
            equal=equal,
            first_difference=first,
            notes=notes,
            unknown=first is None and stopped_at is not None,
        )


def differ_past_cap(path_a: FileRef, path_b: FileRef, cap: int) -> tuple[str, bool] | None:
    """For two files an engine read only up to ``cap`` bytes and found equal there: None
    when they are byte-identical, else a note saying they differ past what was compared
    (a capped read that found nothing is not 'equal'), and whether that is unknown: the
    files equal as far as a ``CompareBudget`` let them be read."""
    where: int | None = None
    stopped_at: int | None = None
    budget = CompareBudget()
    with RegularFile(path_a) as old, RegularFile(path_b) as new:
        shorter = min(old.size, new.size)
        # stops at the first difference (these files are large), and reads no hole of both
        for start, end in data_ranges(old, new, shorter):
            offset = start
            while where is None and offset < end:
                step = min(CHUNK, end - offset)
                if not budget.spend(step):
                    stopped_at = offset
                    break
                chunk_a, chunk_b = old.read_at(offset, step), new.read_at(offset, step)
                if chunk_a != chunk_b:
                    where = offset + _first_mismatch(chunk_a, chunk_b)
                elif len(chunk_a) < step:
                    raise DiffError("a file shrank while it was being compared")
                offset += step
            if where is not None or stopped_at is not None:
                break
        if where is None and stopped_at is None and old.size != new.size:
            where = shorter  # one is a prefix of the other
        old.check()
        new.check()
    if stopped_at is not None:
        return unread_note(stopped_at, max(old.size, new.size), budget), True
    if where is None:
        return None
    return (
        f"the files differ past the first {cap} bytes compared (first difference at byte {where})",
        False,
    )


def _sizes_differ(old: RegularFile, new: RegularFile, max_bytes: int | None) -> BinaryDiff:
    shorter = min(old.size, new.size)
    bound = (
        SEARCH_WHEN_SIZES_DIFFER if max_bytes is None else min(max_bytes, SEARCH_WHEN_SIZES_DIFFER)
    )
    limit = min(shorter, bound)
    first: int | None = None
    offset = 0
    while offset < limit:
        step = min(CHUNK, limit - offset)
        chunk_a, chunk_b = old.read_at(offset, step), new.read_at(offset, step)
        if chunk_a != chunk_b:
            first = offset + _first_mismatch(chunk_a, chunk_b)
            break
        offset += step
    notes = [f"sizes differ ({old.size} and {new.size} bytes): different without hashing"]
    if first is None and limit == shorter:
        first = shorter  # one is a prefix of the other
    elif first is None:
        notes.append(
            f"the first {limit} bytes are the same; the first difference not searched further"
        )
    return BinaryDiff(old.size, new.size, None, None, False, first, notes)


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int | None
    height: int | None
    mode: str | None


@dataclass
class ImageDiff:
    old: ImageInfo
    new: ImageInfo
    equal: bool
    """Byte-identical files."""
    differing_pixels: float | None
    """Share (0..1) of pixels that differ, when Pillow is importable and sizes match."""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_info(head: bytes) -> ImageInfo | None:
    """Format, size and mode from the first bytes of a PNG, GIF or JPEG; None otherwise."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) >= 26 and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            bits, color = head[24], head[25]
            mode = _PNG_MODES.get(color)
            if mode == "L" and bits == 1:
                mode = "1"
            elif mode == "L" and bits == 16:
                mode = "I;16"
            return ImageInfo("PNG", width, height, mode)
        return ImageInfo("PNG", None, None, None)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        if len(head) >= 10:
            width, height = struct.unpack("<HH", head[6:10])
            return ImageInfo("GIF", width, height, "P")
        return ImageInfo("GIF", None, None, None)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_info(head)
    return None


def _jpeg_info(head: bytes) -> ImageInfo:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            break
        marker = head[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", head[pos + 2 : pos + 4])[0]
        if marker in _JPEG_SOF and pos + 9 < len(head):
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            components = head[pos + 9]
            mode = {1: "L", 3: "RGB", 4: "CMYK"}.get(components)
            return ImageInfo("JPEG", width, height, mode)
        pos += 2 + length
    return ImageInfo("JPEG", None, None, None)


def _pixel_share(data_a: bytes, data_b: bytes) -> float | None:
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return None
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data_a)) as img_a, Image.open(io.BytesIO(data_b)) as img_b:
            if img_a.size != img_b.size:
                return None
            a, b = img_a.convert("RGBA"), img_b.convert("RGBA")
            difference = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v else 0)
            histogram = difference.histogram()
            total = a.size[0] * a.size[1]
            return histogram[255] / total if total else 0.0
    except Exception:
        return None


def diff_images(path_a: FileRef, path_b: FileRef) -> ImageDiff:
    """Dimensions, mode and (with Pillow) share of differing pixels of two images."""
    infos: list[ImageInfo] = []
    datas: list[bytes] = []
    notes: list[str] = []
    for path in (path_a, path_b):
        with RegularFile(path) as handle:
            head = handle.read_at(0, IMAGE_HEAD)
            info = image_info(head) or ImageInfo("unknown", None, None, None)
            infos.append(info)
            if handle.size <= MAX_IMAGE_BYTES:
                datas.append(head + handle.read_at(len(head), handle.size - len(head)))
            else:
                notes.append(f"{ref_basename(path)} too large to compare pixels")
                datas.append(b"")
    equal = bool(datas[0]) and datas[0] == datas[1]
    share: float | None = 0.0 if equal else None
    if not equal and datas[0] and datas[1]:
        share = _pixel_share(datas[0], datas[1])
        if share is None and (infos[0].width, infos[0].height) == (infos[1].width, infos[1].height):
            notes.append("pixel comparison needs Pillow")
    if not datas[0] or not datas[1]:
        equal = diff_binary(path_a, path_b).equal
    return ImageDiff(infos[0], infos[1], equal, share, notes)


__all__ = ["BinaryDiff", "DiffError", "ImageDiff", "ImageInfo", "diff_binary", "diff_images"]
