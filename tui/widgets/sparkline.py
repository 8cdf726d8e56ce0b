"""Sparklines as plain strings of block characters, for table cells and legends."""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """``values`` squeezed into ``width`` cells (each cell the mean of its share), low to high.

    Non-finite values are skipped; an empty or flat series draws a flat line.
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite or width <= 0:
        return ""
    if len(finite) > width:
        size = len(finite) / width
        cells = []
        for index in range(width):
            chunk = finite[int(index * size) : max(int((index + 1) * size), int(index * size) + 1)]
            cells.append(sum(chunk) / len(chunk))
    else:
        cells = finite
    low, high = min(cells), max(cells)
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return BLOCKS[0] * len(cells)
    scale = (len(BLOCKS) - 1) / (high - low)
    return "".join(BLOCKS[round((v - low) * scale)] for v in cells)
