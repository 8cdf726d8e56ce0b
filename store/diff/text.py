"""Line diffs fast enough for multi-megabyte logs.

``difflib`` is quadratic on repetitive input, so the engine here works on the structure
logs actually have: long equal runs broken by few edits.  Equal runs are skipped with
galloping slice comparisons (C speed); at each mismatch a bounded Myers search finds the
cheapest way back to a run of ``SYNC`` equal lines.  Small inputs get an exact (minimal)
Myers diff.  When a region is too different for the bounded search, a line that occurs
in both sides is used as an anchor and the region becomes one replace block, flagged as
``approximate``.  Lines may be ``str`` or ``bytes``; bytes are decoded only for output.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from store.diff._io import DiffError, FileRef, read_capped

LineTag = Literal["equal", "delete", "insert"]
Opcode = tuple[str, int, int, int, int]

SYNC = 6
"""Equal lines in a row that count as being back in step after an edit."""
EXACT_LIMIT = 4000
"""Middle sections (after common prefix/suffix) up to this many lines get an exact diff."""
EXACT_MAX_D = 1500
LOCAL_MAX_D = 300
INTRALINE_MAX = 400
"""Longest line (in characters) given character-level spans."""
INTRALINE_MID = 120
"""Longest changed middle (after the common head and tail) worth a token diff."""
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk; ``spans`` are the changed character ranges within ``text``."""

    tag: LineTag
    text: str
    old_no: int | None
    new_no: int | None
    spans: tuple[tuple[int, int], ...] = ()


@dataclass
class Hunk:
    """A unified-diff hunk; starts are 1-based as in ``@@ -old_start,old_len ...``."""

    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: list[DiffLine]

    def header(self) -> str:
        return (
            f"@@ -{_range(self.old_start, self.old_len)} +{_range(self.new_start, self.new_len)} @@"
        )


@dataclass
class TextDiff:
    hunks: list[Hunk]
    equal: bool
    added: int
    removed: int
    old_count: int
    new_count: int
    approximate: bool = False
    """Some region was too different to align and is shown as one replace block."""
    truncated_at: tuple[int, int] | None = None
    """0-based (old, new) line indices where diffing stopped because of ``max_lines``."""
    notes: list[str] = field(default_factory=list)
    unknown: bool = False
    """Equal as far as read, but not read to the end: not known equal."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def unified(self, old_name: str = "a", new_name: str = "b") -> list[str]:
        """The diff as unified-format lines (no trailing newlines)."""
        if not self.hunks:
            return []
        out = [f"--- {old_name}", f"+++ {new_name}"]
        marks = {"equal": " ", "delete": "-", "insert": "+"}
        for hunk in self.hunks:
            out.append(hunk.header())
            out.extend(marks[line.tag] + line.text for line in hunk.lines)
        return out

    def flat_lines(self) -> list[DiffLine]:
        """All hunk lines in order: the row space that navigation positions refer to."""
        return [line for hunk in self.hunks for line in hunk.lines]

    def change_starts(self) -> list[int]:
        """Indices into ``flat_lines()`` where a block of changed lines begins."""
        starts: list[int] = []
        previous = "equal"
        index = 0
        for hunk in self.hunks:
            previous = "equal"
            for line in hunk.lines:
                if line.tag != "equal" and previous == "equal":
                    starts.append(index)
                previous = line.tag
                index += 1
        return starts


def _range(start: int, length: int) -> str:
    if length == 1:
        return str(start)
    return f"{start},{length}"


def next_change(starts: Sequence[int], position: int) -> int | None:
    """The first change start after ``position`` (for an ``n`` key), or None."""
    index = bisect.bisect_right(starts, position)
    return starts[index] if index < len(starts) else None


def previous_change(starts: Sequence[int], position: int) -> int | None:
    """The last change start before ``position`` (for a ``p`` key), or None."""
    index = bisect.bisect_left(starts, position)
    return starts[index - 1] if index > 0 else None


# --- core -----------------------------------------------------------------------------


def _run_length(a: Sequence[Hashable], b: Sequence[Hashable], i: int, j: int, limit: int) -> int:
    """How many lines match from ``a[i]``/``b[j]`` on, at most ``limit``."""
    if limit <= 0 or a[i] != b[j]:
        return 0
    k = 1
    while k < limit and k < 8:
        if a[i + k] != b[j + k]:
            return k
        k += 1
    if k == limit:
        return k
    lo, step = k, 16
    while True:
        hi = min(lo + step, limit)
        if a[i + lo : i + hi] == b[j + lo : j + hi]:
            lo = hi
            if lo == limit:
                return lo
            step *= 2
        else:
            break
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[i + lo : i + mid] == b[j + lo : j + mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _suffix_length(a: Sequence[Hashable], b: Sequence[Hashable], limit: int) -> int:
    """How many trailing lines ``a`` and ``b`` share, at most ``limit``."""
    n, m = len(a), len(b)
    lo, step = 0, 8
    while lo < limit:
        hi = min(lo + step, limit)
        if a[n - hi : n - lo] == b[m - hi : m - lo]:
            lo = hi
            step *= 2
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if a[n - mid : n - lo] == b[m - mid : m - lo]:
                    lo = mid
                else:
                    hi = mid
            return lo
    return lo


Block = tuple[int, int, int]


def _myers(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    x0: int,
    y0: int,
    n: int,
    m: int,
    sync: int,
    max_d: int,
) -> tuple[list[Block], int, int] | None:
    """Cheapest edit path from (x0, y0) to (n, m) or to the start of ``sync`` equal lines.

    Returns the equal runs along the path and the point reached, or None when more than
    ``max_d`` edits would be needed.
    """
    big_n, big_m = n - x0, m - y0
    v: dict[int, int] = {1: 0}
    trace: list[dict[int, int]] = []
    for d in range(max_d + 1):
        current: dict[int, int] = {}
        for k in range(-d, d + 1, 2):
            if k == -d:
                x = v[k + 1]
            elif k == d:
                x = v[k - 1] + 1 if v[k - 1] >= 0 else -1
            else:
                left, down = v[k - 1], v[k + 1]
                x = down if left < down else (left + 1 if left >= 0 else -1)
            y = x - k
            if x < 0 or x > big_n or y > big_m:
                current[k] = -1
                continue
            start = x
            run = _run_length(a, b, x0 + x, y0 + y, min(big_n - x, big_m - y))
            x += run
            current[k] = x
            end_reached = x >= big_n and x - k >= big_m
            if end_reached or run >= sync:
                trace.append(current)
                stop_x = x if end_reached else start
                return _backtrack(trace, d, k, stop_x, x0, y0), x0 + stop_x, y0 + stop_x - k
        trace.append(current)
        v = current
    return None


def _backtrack(
    trace: list[dict[int, int]], d: int, k: int, x: int, x0: int, y0: int
) -> list[Block]:
    blocks: list[Block] = []
    while d > 0:
        prev = trace[d - 1]
        if k == -d or (k != d and prev[k - 1] < prev[k + 1]):
            prev_k = k + 1
            mid_x = prev[prev_k]
        else:
            prev_k = k - 1
            mid_x = prev[prev_k] + 1
        if x > mid_x:
            blocks.append((x0 + mid_x, y0 + mid_x - k, x - mid_x))
        x = prev[prev_k]
        k = prev_k
        d -= 1
    if x > 0:
        blocks.append((x0, y0, x))
    blocks.reverse()
    return blocks


def _anchor(
    a: Sequence[Hashable], b: Sequence[Hashable], i: int, j: int, n: int, m: int
) -> tuple[int, int] | None:
    """A point past (i, j) where ``SYNC`` lines match again, searching widening windows."""
    window = 4096
    while True:
        a_end, b_end = min(n, i + window), min(m, j + window)
        first: dict[Hashable, int] = {}
        for y in range(b_end - 1, j - 1, -1):
            first[b[y]] = y
        for x in range(i, a_end):
            y = first.get(a[x], -1)
            if y >= 0 and _run_length(a, b, x, y, min(SYNC, n - x, m - y)) >= min(
                SYNC, n - x, m - y
            ):
                return x, y
        if a_end == n and b_end == m:
            return None
        window *= 4


@dataclass
class _Core:
    blocks: list[Block]
    approximate: bool
    stop: tuple[int, int] | None


def _core(
    a: Sequence[Hashable], b: Sequence[Hashable], max_changes: int | None, exact: bool = True
) -> _Core:
    n, m = len(a), len(b)
    prefix = _run_length(a, b, 0, 0, min(n, m))
    suffix = _suffix_length(a, b, min(n, m) - prefix)
    end_a, end_b = n - suffix, m - suffix
    blocks: list[Block] = [(0, 0, prefix)] if prefix else []
    approximate = False
    stop: tuple[int, int] | None = None
    i, j = prefix, prefix
    if exact and (end_a - i) + (end_b - j) <= EXACT_LIMIT:
        found = _myers(a, b, i, j, end_a, end_b, end_a + end_b + 1, EXACT_MAX_D)
        if found is not None:
            blocks.extend(found[0])
            i, j = end_a, end_b
    changes = 0
    while i < end_a and j < end_b:
        run = _run_length(a, b, i, j, min(end_a - i, end_b - j))
        if run:
            blocks.append((i, j, run))
            i += run
            j += run
            continue
        if max_changes is not None and changes >= max_changes:
            stop = (i, j)
            break
        found = _myers(a, b, i, j, end_a, end_b, SYNC, LOCAL_MAX_D)
        if found is None:
            approximate = True
            point = _anchor(a, b, i, j, end_a, end_b)
            ni, nj = point if point is not None else (end_a, end_b)
            if max_changes is not None and changes + (ni - i) + (nj - j) > max_changes:
                budget = max(2, max_changes - changes)
                ti = min(ni, i + budget // 2)
                tj = min(nj, j + budget - (ti - i))
                stop = (ti, tj)
                break
        else:
            blocks.extend(found[0])
            ni, nj = found[1], found[2]
        matched = sum(size for _, _, size in found[0]) if found is not None else 0
        changes += (ni - i) + (nj - j) - 2 * matched
        i, j = ni, nj
    if stop is None and suffix:
        blocks.append((end_a, end_b, suffix))
    return _Core(blocks, approximate, stop)


def opcodes_from_blocks(blocks: list[Block], n: int, m: int) -> list[Opcode]:
    """difflib-style opcodes (equal/replace/delete/insert) covering a[:n] and b[:m]."""
    codes: list[Opcode] = []
    i = j = 0
    for bi, bj, size in [*blocks, (n, m, 0)]:
        if i < bi and j < bj:
            codes.append(("replace", i, bi, j, bj))
        elif i < bi:
            codes.append(("delete", i, bi, j, bj))
        elif j < bj:
            codes.append(("insert", i, bi, j, bj))
        if size:
            if codes and codes[-1][0] == "equal":
                _, ei, _, ej, _ = codes[-1]
                codes[-1] = ("equal", ei, bi + size, ej, bj + size)
            else:
                codes.append(("equal", bi, bi + size, bj, bj + size))
        i, j = bi + size, bj + size
    return codes


def diff_opcodes(
    a: Sequence[Hashable], b: Sequence[Hashable], *, exact: bool = True
) -> list[Opcode]:
    """Opcodes turning ``a`` into ``b`` (the whole input, no cap).

    ``exact=False`` skips the minimal diff even on small inputs and uses the resync engine
    that large inputs get, which is what tests of that engine need.
    """
    core = _core(a, b, None, exact)
    return opcodes_from_blocks(core.blocks, len(a), len(b))


def _grouped(codes: list[Opcode], context: int) -> list[list[Opcode]]:
    """Opcodes grouped into hunks with ``context`` lines, as difflib groups them."""
    if not codes:
        return []
    codes = list(codes)
    tag, i1, i2, j1, j2 = codes[0]
    if tag == "equal":
        codes[0] = (tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    tag, i1, i2, j1, j2 = codes[-1]
    if tag == "equal":
        codes[-1] = (tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    groups: list[list[Opcode]] = []
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            groups.append(group)
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        groups.append(group)
    return [g for g in groups if any(code[0] != "equal" for code in g)]


def _as_text(line: object) -> str:
    if isinstance(line, bytes):
        return line.decode("utf-8", "backslashreplace")
    return str(line)


_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def _offsets(tokens: list[str], start: int) -> list[int]:
    """Character offset of each token, plus the end offset."""
    offsets = [start]
    for token in tokens:
        offsets.append(offsets[-1] + len(token))
    return offsets


def _extend(spans: list[tuple[int, int]], start: int, end: int) -> None:
    if spans and spans[-1][1] == start:
        spans[-1] = (spans[-1][0], end)
    else:
        spans.append((start, end))


def intraline_spans(
    old: str, new: str
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """Changed character ranges in a replaced pair of lines (old spans, new spans).

    Words, runs of spaces and single punctuation marks are the units, so a changed number
    is highlighted whole; lines longer than ``INTRALINE_MAX`` get one span.
    """
    if len(old) > INTRALINE_MAX or len(new) > INTRALINE_MAX:
        return ((0, len(old)),) if old else (), ((0, len(new)),) if new else ()
    limit = min(len(old), len(new))
    head = 0
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_mid, new_mid = old[head : len(old) - tail], new[head : len(new) - tail]
    if not old_mid or not new_mid or max(len(old_mid), len(new_mid)) > INTRALINE_MID:
        old_spans = ((head, head + len(old_mid)),) if old_mid else ()
        new_spans = ((head, head + len(new_mid)),) if new_mid else ()
        return old_spans, new_spans
    old_tokens, new_tokens = _TOKEN.findall(old_mid), _TOKEN.findall(new_mid)
    old_out: list[tuple[int, int]] = []
    new_out: list[tuple[int, int]] = []
    old_at = _offsets(old_tokens, head)
    new_at = _offsets(new_tokens, head)
    old_set, new_set = set(old_tokens), set(new_tokens)
    found = None
    if 2 * len(old_set & new_set) >= min(len(old_set), len(new_set)):
        found = _myers(old_tokens, new_tokens, 0, 0, len(old_tokens), len(new_tokens), 1 << 30, 8)
    if found is None:
        return ((head, head + len(old_mid)),), ((head, head + len(new_mid)),)
    for tag, i1, i2, j1, j2 in opcodes_from_blocks(found[0], len(old_tokens), len(new_tokens)):
        if tag == "equal":
            continue
        if i2 > i1:
            _extend(old_out, old_at[i1], old_at[i2])
        if j2 > j1:
            _extend(new_out, new_at[j1], new_at[j2])
    return tuple(old_out), tuple(new_out)


def _hunk(group: list[Opcode], a: Sequence[object], b: Sequence[object], intraline: bool) -> Hunk:
    lines: list[DiffLine] = []
    for tag, i1, i2, j1, j2 in group:
        if tag == "equal":
            for offset in range(i2 - i1):
                text = _as_text(a[i1 + offset])
                lines.append(DiffLine("equal", text, i1 + offset + 1, j1 + offset + 1))
            continue
        olds = [_as_text(a[x]) for x in range(i1, i2)]
        news = [_as_text(b[y]) for y in range(j1, j2)]
        old_spans: list[tuple[tuple[int, int], ...]] = [()] * len(olds)
        new_spans: list[tuple[tuple[int, int], ...]] = [()] * len(news)
        if intraline and tag == "replace":
            for k in range(min(len(olds), len(news))):
                old_spans[k], new_spans[k] = intraline_spans(olds[k], news[k])
        for k, text in enumerate(olds):
            lines.append(DiffLine("delete", text, i1 + k + 1, None, old_spans[k]))
        for k, text in enumerate(news):
            lines.append(DiffLine("insert", text, None, j1 + k + 1, new_spans[k]))
    first = group[0]
    last = group[-1]
    old_len, new_len = last[2] - first[1], last[4] - first[3]
    old_start = first[1] + 1 if old_len else first[1]
    new_start = first[3] + 1 if new_len else first[3]
    return Hunk(old_start, old_len, new_start, new_len, lines)


def diff_text(
    a_lines: Sequence[str] | Sequence[bytes],
    b_lines: Sequence[str] | Sequence[bytes],
    *,
    context: int = 3,
    max_lines: int | None = 100_000,
    intraline: bool = True,
) -> TextDiff:
    """Unified-style hunks turning ``a_lines`` into ``b_lines``.

    ``max_lines`` caps the number of changed lines diffed; past it the result stops and
    ``truncated_at`` says where.  Lines are compared exactly (no newline stripping).
    """
    a: Sequence[Hashable] = a_lines
    b: Sequence[Hashable] = b_lines
    core = _core(a, b, max_lines)
    n, m = (len(a), len(b)) if core.stop is None else core.stop
    codes = opcodes_from_blocks(core.blocks, n, m)
    if core.stop is not None:
        codes = [code for code in codes if code[1] < code[2] or code[3] < code[4]]
        tail = min(context, len(a) - n, len(b) - m)
        if tail:
            codes.append(("equal", n, n + tail, m, m + tail))
    hunks = [_hunk(group, a_lines, b_lines, intraline) for group in _grouped(codes, context)]
    added = sum(j2 - j1 for tag, _, _, j1, j2 in codes if tag != "equal")
    removed = sum(i2 - i1 for tag, i1, i2, _, _ in codes if tag != "equal")
    notes: list[str] = []
    if core.approximate:
        notes.append("some regions differ too much to align; shown as whole replaced blocks")
    if core.stop is not None:
        notes.append(f"stopped after {max_lines} changed lines at old line {core.stop[0] + 1}")
    return TextDiff(
        hunks=hunks,
        equal=not hunks and core.stop is None,
        added=added,
        removed=removed,
        old_count=len(a),
        new_count=len(b),
        approximate=core.approximate,
        truncated_at=core.stop,
        notes=notes,
    )


def split_lines(data: bytes) -> tuple[list[bytes], bool]:
    """Lines of ``data`` without their ``\\n``, and whether the last line ended with one."""
    if not data:
        return [], True
    lines = data.split(b"\n")
    ends_with_newline = lines[-1] == b""
    if ends_with_newline:
        lines.pop()
    return lines, ends_with_newline


def diff_files_text(
    path_a: FileRef,
    path_b: FileRef,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    context: int = 3,
    max_lines: int | None = 100_000,
    intraline: bool = True,
) -> TextDiff:
    """Text diff of two files, each read up to ``max_bytes``; raises ``DiffError``."""
    data_a, capped_a = read_capped(path_a, max_bytes)
    data_b, capped_b = read_capped(path_b, max_bytes)
    if capped_a or capped_b:
        cut = max(data_a.rfind(b"\n") + 1 if capped_a else 0, 0)
        data_a = data_a[:cut] if capped_a and cut else data_a
        cut = data_b.rfind(b"\n") + 1 if capped_b else 0
        data_b = data_b[:cut] if capped_b and cut else data_b
    lines_a, newline_a = split_lines(data_a)
    lines_b, newline_b = split_lines(data_b)
    result = diff_text(lines_a, lines_b, context=context, max_lines=max_lines, intraline=intraline)
    for name, capped in (("old", capped_a), ("new", capped_b)):
        if capped:
            result.notes.append(f"{name} file read only up to {max_bytes} bytes")
    if (capped_a or capped_b) and result.equal:
        from store.diff.binary import differ_past_cap

        past = differ_past_cap(path_a, path_b, max_bytes)
        if past is not None:
            result.equal = False
            result.notes.append(past[0])
            result.unknown = past[1]
    if newline_a != newline_b and result.truncated_at is None:
        side = "old" if not newline_a else "new"
        result.notes.append(f"{side} file has no newline at end of file")
        result.equal = False
    return result


def side_by_side(hunk: Hunk) -> list[tuple[DiffLine | None, DiffLine | None]]:
    """Rows pairing old and new lines: equal lines together, replaced lines in order."""
    rows: list[tuple[DiffLine | None, DiffLine | None]] = []
    deletes: list[DiffLine] = []
    inserts: list[DiffLine] = []

    def flush() -> None:
        for k in range(max(len(deletes), len(inserts))):
            rows.append(
                (deletes[k] if k < len(deletes) else None, inserts[k] if k < len(inserts) else None)
            )
        deletes.clear()
        inserts.clear()

    for line in hunk.lines:
        if line.tag == "equal":
            flush()
            rows.append((line, line))
        elif line.tag == "delete":
            if inserts:
                flush()
            deletes.append(line)
        else:
            inserts.append(line)
    flush()
    return rows


__all__ = [
    "DiffError",
    "DiffLine",
    "Hunk",
    "TextDiff",
    "diff_files_text",
    "diff_opcodes",
    "diff_text",
    "intraline_spans",
    "next_change",
    "previous_change",
    "side_by_side",
    "split_lines",
]
