"""CSV readers that behave the same on every supported Python.

Python 3.10's csv module stops with "line contains NUL" where 3.11+ reads on; metrics files
cut off mid-write often hold NULs (preallocated blocks), so they are replaced first.

csv also stops at a field over ``csv.field_size_limit()`` (131,072 characters by default),
dropping every row after it: a long note or a garbled cell in a metric log cut its
metrics short.  That limit bounds the memory of reading a stream; these readers parse a
string already in memory (every caller reads a capped number of bytes), whose fields are
never longer than it, so the limit is raised to the text's length.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

_MAX_FIELD_LIMIT = 2**31 - 1
"""The largest limit csv takes on every platform (a C long)."""


def csv_reader(text: str, delimiter: str = ",") -> Iterator[list[str]]:
    """``csv.reader`` over ``text`` with NULs shown as U+FFFD, and fields as long as the text."""
    needed = min(len(text) + 1, _MAX_FIELD_LIMIT)
    if csv.field_size_limit() < needed:  # process-wide: only ever raised, never lowered
        csv.field_size_limit(needed)
    return csv.reader(io.StringIO(text.replace("\x00", "\ufffd"), newline=""), delimiter=delimiter)
