"""CSV cells that are safe in a terminal and in a spreadsheet.

Every string goes through ``visible`` (no raw ESC, OSC or CSI reaches a terminal that
``cat``s the file), and a cell a spreadsheet would read as a formula (starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``, as OWASP advises.
Numbers stay numbers: a cell that is a plain decimal number (``-0.25``, ``1e-3``) cannot be
a formula, and a ``'`` would turn a negative metric into text.
"""

from __future__ import annotations

import json
import math
import re

from store.jsonstrict import finite, finite_name
from store.safetext import printable_surrogates, visible

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_cell(value: object) -> str:
    """``value`` as one CSV cell: escaped, never a formula, numbers kept as numbers."""
    if value is None:
        return ""
    structured = isinstance(value, (dict, list))
    # structured values as strict JSON, as --json writes them (a NaN inside as "NaN")
    text = json.dumps(finite(value), ensure_ascii=False) if structured else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        text = finite_name(value)  # as --json names it: "nan" is text a param may hold
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        text = "'" + text
    return visible(printable_surrogates(text))
