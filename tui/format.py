"""Human formatting of sizes and times, shared by the CLI and the TUI."""

from __future__ import annotations

import time

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
    cut = text
    while cut and cell_len(cut) > width - 1:
        cut = cut[1:]
    return "…" + cut


UNREAD_MARK = "?"
"""After a size that leaves out places the scans could not read (the run's warnings name
them, in its detail)."""
