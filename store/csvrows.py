"""CSV readers that behave the same on every supported Python.

Python 3.10's csv module stops with "line contains NUL" where 3.11+ reads on; metrics files
cut off mid-write often hold NULs (preallocated blocks), so they are replaced first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator


def csv_reader(text: str, delimiter: str = ",") -> Iterator[list[str]]:
    """``csv.reader`` over ``text`` with NULs shown as U+FFFD."""
    return csv.reader(io.StringIO(text.replace("\x00", "\ufffd"), newline=""), delimiter=delimiter)
