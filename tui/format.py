"""Human formatting of sizes and times, shared by the CLI and the TUI."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

DANGER = "bold white on red"
"""Danger markers (``!``, ``!N``): white on red keeps 8:1 contrast when NO_COLOR turns
colours grey, where bold red on a dark panel fell to about 1.2:1."""
WARNING = "bold black on yellow"
"""Markers that ask for attention (an incomplete checklist, a missing item)."""


def human_size(n: int | float | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(size) < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}P"


def human_age(ts: float | None, now: float | None = None) -> str:
    """'3s', '5m', '2h', '4d' ago; '-' when unknown."""
    if ts is None:
        return "-"
    delta = max(0.0, (now if now is not None else time.time()) - ts)
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= seconds:
            return f"{int(delta // seconds)}{unit}"
    return f"{int(delta)}s"


def short_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def metric_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def keep_end(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells from the left: a checkpoint's step and metric are at
    the end of its name, so that is the part to keep."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    cut = text[-width:]  # a character is a cell or more (bar a few): no more is kept
    while cut and cell_len(cut) > width - 1:
        cut = cut[1:]
    return "…" + cut


def cut_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: its start and its end around an ellipsis (run
    names differ at their end as often as at their start: a seed, a date, a step)."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    head, tail = text[: width // 2], text[len(text) - (width - 1) // 2 :]
    while head and cell_len(head) + cell_len(tail) > width - 1:
        head, tail = (head[:-1], tail) if cell_len(head) >= cell_len(tail) else (head, tail[1:])
    return f"{head}…{tail}"


def cut_name(name: str, width: int) -> str:
    """A file's ``name`` in at most ``width`` cells, cut in its middle so that its end (the
    extension, and a step or shard number before it) stays: ``model-000…00004.safetensors``."""
    from rich.cells import cell_len

    if cell_len(name) <= width:
        return name
    if width <= 1:
        return "…"[:width]
    end, cut = _cut_points(name, width)
    return f"{name[:end]}…{name[cut:]}"


def _cut_points(name: str, width: int) -> tuple[int, int]:
    """(end of the head, start of the tail) that ``cut_name`` keeps of a ``name`` too wide
    for ``width`` (2 or more) cells."""
    from rich.cells import cell_len

    stem, dot, ext = name.rpartition(".")
    tail_cells = (width - 1) // 2
    if dot and stem and 0 < len(ext) <= 12:  # an extension and a few characters before it
        tail_cells = max(tail_cells, min(cell_len(ext) + 5, width - 2))
    cut, used = len(name), 0
    while cut > 0 and used + cell_len(name[cut - 1]) <= tail_cells:
        cut -= 1
        used += cell_len(name[cut])
    room = width - 1 - used
    end = 0
    while end < cut and cell_len(name[end]) <= room:
        room -= cell_len(name[end])
        end += 1
    return end, cut


WORD_CELLS = 4
"""Characters of the number or word a difference is in, shown on either side of it."""


ALIKE_SCAN = 256
"""Siblings looked at from each end of those sharing a cut name's head: a folder of
100,000 checkpoints costs a label no more than one of 512."""


def cut_name_apart(name: str, width: int, siblings: Sequence[str]) -> str:
    """``cut_name``, unless a sibling's name has the head and the tail that cut keeps (the
    cut would read as either): then the part that tells ``name`` from those siblings is
    kept too, between ellipses (``run-lr0.00…1…-final.pt`` beside ``…3…``), with as much
    of the start and the end as still fits.  ``siblings``: the folder's names, sorted
    (those sharing the head are found by bisection, ``ALIKE_SCAN`` from each end)."""
    from bisect import bisect_left

    from rich.cells import cell_len

    if cell_len(name) <= width or width < 3:
        return cut_name(name, width)
    end, cut = _cut_points(name, width)
    head, tail = name[:end], name[cut:]
    lo = bisect_left(siblings, head)
    hi = bisect_left(siblings, head + "\U0010ffff", lo)
    if hi - lo > 2 * ALIKE_SCAN:  # sorted: the ends of the run hold the extremes
        block = [*siblings[lo : lo + ALIKE_SCAN], *siblings[hi - ALIKE_SCAN : hi]]
    else:
        block = list(siblings[lo:hi])
    alike = [
        other
        for other in block
        if other != name
        and len(other) >= len(head) + len(tail)
        and other.startswith(head)
        and other.endswith(tail)
    ]
    if not alike:
        return f"{head}…{tail}"
    # the span of ``name`` where the alike siblings differ: in sorted order the ones that
    # share the least of its start (or, reversed, of its end) are the first and the last
    start = min(_common_start(name, min(alike)), _common_start(name, max(alike)))
    ends = [other[::-1] for other in alike]
    backwards = name[::-1]
    same_end = min(_common_start(backwards, min(ends)), _common_start(backwards, max(ends)))
    stop = len(name) - min(same_end, len(name) - start)
    if stop <= start:  # ``name`` is the other one less some characters: show where
        start, stop = (start, start + 1) if start < len(name) else (start - 1, start)
    return _keep_spans(name, width, start, stop)


def _common_start(one: str, two: str) -> int:
    """How many characters ``one`` and ``two`` share from their start."""
    at = 0
    for a, b in zip(one, two, strict=False):
        if a != b:
            break
        at += 1
    return at


def _keep_spans(name: str, width: int, start: int, stop: int) -> str:
    """``name`` in at most ``width`` (3 or more) cells showing ``name[start:stop]`` (or its
    start) and, room allowing, the number or word it is in (``00001``, not ``1``), then as
    much of the name's end (its extension first) and start as fits."""
    from rich.cells import cell_len

    def shown(spans: list[tuple[int, int]]) -> str:
        parts, at = [], 0
        for a, b in sorted(spans):
            if a > at:
                parts.append("…")
            parts.append(name[max(a, at) : b])
            at = max(at, b)
        if at < len(name):
            parts.append("…")
        return "".join(parts)

    def fits(spans: list[tuple[int, int]]) -> bool:
        return cell_len(shown(spans)) <= width

    core = (start, start + 1)
    if not fits([core]):
        return cut_name(name, width)
    while core[1] < stop and fits([(core[0], core[1] + 1)]):
        core = (core[0], core[1] + 1)
    for _ in range(WORD_CELLS):  # the word around it, its start first
        if core[0] > 0 and name[core[0] - 1].isalnum() and fits([(core[0] - 1, core[1])]):
            core = (core[0] - 1, core[1])
        if core[1] < len(name) and name[core[1]].isalnum() and fits([(core[0], core[1] + 1)]):
            core = (core[0], core[1] + 1)
    spans = [core]
    _, tail_from = _cut_points(name, width)
    for begin in range(max(tail_from, core[1]), len(name)):
        if fits([*spans, (begin, len(name))]):
            spans.append((begin, len(name)))
            break
    head = core[0] if fits([*spans, (0, core[0])]) else 0
    while head < core[0] and fits([*spans, (0, head + 1)]):
        head += 1
    if head:
        spans.append((0, head))
    return shown(spans)


def fit_apart(names: Sequence[str], width: int, *, keep_ends: bool = False) -> list[str]:
    """Each of ``names`` (as shown: escaped) in at most ``width`` cells, such that two
    different names never show the same text (``run_<150 x b>_1`` and ``..._2`` cut to
    their first 60 characters did): cut in the middle (``cut_middle``); names whose cuts
    read alike keep their end, or else their start, where that tells them apart, and are
    left whole where nothing shorter does.  ``keep_ends``: paths, whose end (the file's
    name) says most, keep their end first, then are cut in the middle."""
    from rich.cells import cell_len

    def keep_start(text: str) -> str:
        if cell_len(text) <= width:
            return text
        cut = text[:width]
        while cut and cell_len(cut) > width - 1:
            cut = cut[:-1]
        return cut + "…"

    ending: Callable[[str], str] = partial(keep_end, width=width)
    middle: Callable[[str], str] = partial(cut_middle, width=width)
    cutters = [ending, middle] if keep_ends else [middle, ending]
    # a printable ASCII name is a cell a character: one that fits is shown whole, and two
    # different whole names never read alike (the runs table asks this of every run)
    shown = [name if len(name) <= width and name.isascii() else cutters[0](name) for name in names]
    if all(cut is name for cut, name in zip(shown, names, strict=True)):
        return shown
    for cutter in (cutters[1], keep_start, lambda text: text):
        sources: dict[str, set[str]] = {}
        for name, cut in zip(names, shown, strict=True):
            sources.setdefault(cut, set()).add(name)
        alike = {i for i, cut in enumerate(shown) if len(sources[cut]) > 1}
        if not alike:
            break
        retry = {i: cutter(names[i]) for i in alike}
        for i, cut in retry.items():
            shown[i] = cut
    return shown


UNREAD_MARK = "?"
"""After a size that leaves out places the scans could not read (the run's warnings name
them, in its detail)."""
