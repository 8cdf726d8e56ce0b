"""CSV/TSV diffs that understand metric logs: rows keyed by step/epoch, numeric deltas.

Training loops append one row per step or epoch, so rows are matched by such a key column
when one is obvious (else by position), and the last row of each numeric column is
summarised because that is usually the number someone comparing two runs wants.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from store.csvrows import csv_reader
from store.diff._io import FileRef, read_capped, ref_basename

MAX_TABLE_BYTES = 64 * 1024 * 1024
MAX_CELLS = 10_000
KEY_NAMES = ("step", "global_step", "_step", "epoch", "iteration", "iter", "trainer/global_step")
DELIMITERS = ",\t;|"


@dataclass(frozen=True)
class CellChange:
    row: str
    """The key value (or 0-based row index as text) of the row."""
    column: str
    old: str
    new: str
    delta: float | None


@dataclass(frozen=True)
class LastValue:
    column: str
    old: float | None
    new: float | None
    delta: float | None
    percent: float | None


@dataclass
class TableDiff:
    columns_added: list[str]
    columns_removed: list[str]
    key_column: str | None
    rows_old: int
    rows_new: int
    rows_added: list[str]
    rows_removed: list[str]
    rows_changed: int
    cells: list[CellChange]
    last_values: list[LastValue]
    equal: bool
    warnings: list[str] = field(default_factory=list)
    cells_changed: int = 0
    """Changed cells in all, listed in ``cells`` or not."""
    cells_more: int = 0
    """Changed cells past ``MAX_CELLS``: counted, not in ``cells``."""
    layout: list[str] = field(default_factory=list)
    """Tables equal after parsing whose bytes differ: what differs (``delimiter ";" vs
    ","``, a byte order mark, line ends, cells written otherwise), so equal is never said
    of files that are not the same bytes without a word."""
    unknown: bool = False
    """Equal as far as read, but not read to the end: not known equal."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    warnings: list[str]
    delimiter: str = ","
    cut: bool = False
    """A CSV error stopped the reading: rows past it were not read."""


def _sniff(sample: str, name: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return "\t" if name.lower().endswith((".tsv", ".tab")) else ","


def parse_table(data: bytes, name: str = "") -> Table:
    """Header and rows; ragged rows are padded or cut to the header, with a warning."""
    text = data.decode("utf-8", "backslashreplace")
    if text.startswith("\ufeff"):
        text = text[1:]
    delimiter = _sniff(text[:65536], name)
    warnings: list[str] = []
    rows: list[list[str]] = []
    cut = False
    try:
        for row in csv_reader(text, delimiter):
            rows.append(row)
    except csv.Error as exc:
        cut = True
        warnings.append(f"{name or 'table'}: CSV error after row {len(rows)}: {exc}")
    rows = [row for row in rows if row]
    if not rows:
        return Table([], [], warnings, delimiter, cut)
    header = rows[0]
    width = len(header)
    ragged = sum(1 for row in rows[1:] if len(row) != width)
    if ragged:
        warnings.append(f"{name or 'table'}: {ragged} rows do not have {width} columns")
    # cells past the header are compared too (as "(column N)"), never cut off unseen
    wide = max(len(row) for row in rows)
    header = header + [f"(column {i + 1})" for i in range(width, wide)]
    body = [(row + [""] * wide)[:wide] for row in rows[1:]]
    return Table(header, body, warnings, delimiter, cut)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value


def _integer(text: str) -> int | None:
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    return int(stripped) if digits.isascii() and digits.isdigit() else None


def _same_number(before: str, after: str, a: float, b: float) -> bool:
    """Two cells that read as the same number: floats compare as floats (``1`` is
    ``1.0``), but two integers past float precision (seeds, ids) compare exactly."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a != b:
        return False
    int_a, int_b = _integer(before), _integer(after)
    return int_a is None or int_b is None or int_a == int_b


def _unique_names(header: list[str]) -> list[str]:
    """Column names with a repeated name's later columns as ``name#2``, ``name#3``..."""
    seen: dict[str, int] = {}
    taken = set(header)
    names: list[str] = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] == 1:
            names.append(name)
            continue
        number = seen[name]
        while f"{name}#{number}" in taken:
            number += 1
        names.append(f"{name}#{number}")
        taken.add(names[-1])
    return names


def _unique_column(table: Table, index: int) -> bool:
    values = [row[index] for row in table.rows]
    return all(values) and len(set(values)) == len(values)


def _key_column(old: Table, new: Table, shared: list[str]) -> str | None:
    candidates = [name for name in shared if name.strip().lower() in KEY_NAMES]
    if shared and shared[0] == old.header[0] == new.header[0]:
        candidates.append(shared[0])
    for name in candidates:
        if _unique_column(old, old.header.index(name)) and _unique_column(
            new, new.header.index(name)
        ):
            return name
    return None


def _last_number(table: Table, index: int) -> float | None:
    """The column's last number: a NaN or inf there (a run that diverged) is the last
    value, never skipped for the finite one before it; a blank cell (a metric not
    logged that step) or text is."""
    for row in reversed(table.rows):
        value = _number(row[index])
        if value is not None:
            return value
    return None


def diff_tables(old: Table, new: Table) -> TableDiff:
    """Compare two parsed tables (see ``parse_table``)."""
    warnings = old.warnings + new.warnings
    # the columns as the files name them: ``a,a`` is not ``a,a#2`` once ``a`` is renamed
    header_old, header_new = old.header, new.header
    for table, side in ((old, "old"), (new, "new")):
        if len(set(table.header)) != len(table.header):
            warnings.append(
                f"{side} table repeats column names; the later ones are compared as NAME#2..."
            )
            table = Table(_unique_names(table.header), table.rows, table.warnings, table.delimiter)
            if side == "old":
                old = table
            else:
                new = table
    old_cols = {name: i for i, name in enumerate(old.header)}
    new_cols = {name: i for i, name in enumerate(new.header)}
    shared = [name for name in old_cols if name in new_cols]
    key = _key_column(old, new, shared)
    if key is not None:
        old_rows = {row[old_cols[key]]: row for row in old.rows}
        new_rows = {row[new_cols[key]]: row for row in new.rows}
    else:
        old_rows = {str(i): row for i, row in enumerate(old.rows)}
        new_rows = {str(i): row for i, row in enumerate(new.rows)}
    cells: list[CellChange] = []
    cells_changed = 0
    rows_changed = 0
    for row_key, old_row in old_rows.items():
        new_row = new_rows.get(row_key)
        if new_row is None:
            continue
        changed = False
        for name in shared:
            before, after = old_row[old_cols[name]], new_row[new_cols[name]]
            if before == after:
                continue
            a, b = _number(before), _number(after)
            if a is not None and b is not None and _same_number(before, after, a, b):
                continue
            changed = True
            cells_changed += 1
            if len(cells) < MAX_CELLS:
                delta = b - a if a is not None and b is not None else None
                if delta is not None and not math.isfinite(delta):
                    delta = None  # to or from NaN or inf: no number of a change
                int_a, int_b = _integer(before), _integer(after)
                if int_a is not None and int_b is not None:
                    delta = float(int_b - int_a)  # exact where floats round both alike
                cells.append(CellChange(row_key, name, before, after, delta))
        rows_changed += changed
    if cells_changed > len(cells):
        warnings.append(
            f"{cells_changed - len(cells)} more changed cell(s) not listed: "
            f"only the first {len(cells)} are"
        )
    last_values: list[LastValue] = []
    for name in shared:
        if name == key:
            continue
        a, b = _last_number(old, old_cols[name]), _last_number(new, new_cols[name])
        if a is None and b is None:
            continue
        # no delta to or from NaN or inf: ``nan - nan`` is no change, ``inf - 1`` no size
        finite = a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
        delta = b - a if finite and a is not None and b is not None else None
        percent = delta / abs(a) * 100 if delta is not None and a else None
        last_values.append(LastValue(name, a, b, delta, percent))
    added_cols = [name for name in new_cols if name not in old_cols]
    removed_cols = [name for name in old_cols if name not in new_cols]
    rows_added = [k for k in new_rows if k not in old_rows]
    rows_removed = [k for k in old_rows if k not in new_rows]
    equal = not (added_cols or removed_cols or rows_added or rows_removed or rows_changed)
    if key is not None and [k for k in old_rows if k in new_rows] != [
        k for k in new_rows if k in old_rows
    ]:
        equal = False  # the same rows in another order: the last values differ
        warnings.append(f"rows are in a different order (by {key})")
    if not (added_cols or removed_cols) and old.header != new.header:
        warnings.append("the same columns in a different order")
    elif old.header == new.header and header_old != header_new:
        renamed = [
            f"column {i + 1} is {a!r} in the old table, {b!r} in the new"
            for i, (a, b) in enumerate(zip(header_old, header_new, strict=True))
            if a != b
        ]
        warnings.append("; ".join(renamed))
    return TableDiff(
        columns_added=added_cols,
        columns_removed=removed_cols,
        key_column=key,
        rows_old=len(old.rows),
        rows_new=len(new.rows),
        rows_added=rows_added,
        rows_removed=rows_removed,
        rows_changed=rows_changed,
        cells=cells,
        last_values=last_values,
        equal=equal and header_old == header_new,
        warnings=warnings,
        cells_changed=cells_changed,
        cells_more=cells_changed - len(cells),
    )


def diff_csv(path_a: FileRef, path_b: FileRef, *, max_bytes: int = MAX_TABLE_BYTES) -> TableDiff:
    """Diff two CSV/TSV files (delimiter sniffed), each parsed up to ``max_bytes``; raises
    ``DiffError`` if unreadable."""
    tables: list[Table] = []
    raw: list[bytes] = []
    any_capped = False
    for path in (path_a, path_b):
        data, capped = read_capped(path, max_bytes)
        name = ref_basename(path)
        if capped:
            any_capped = True
            data = data[: data.rfind(b"\n") + 1]
        raw.append(data)
        table = parse_table(data, name)
        if capped:
            table.warnings.append(f"{name}: only the first {max_bytes} bytes were read")
        tables.append(table)
    result = diff_tables(tables[0], tables[1])
    if any_capped and result.equal:
        from store.diff.binary import differ_past_cap

        past = differ_past_cap(path_a, path_b, max_bytes)
        if past is not None:
            result.equal = False
            result.warnings.append(past[0])
            result.unknown = past[1]
    if result.equal and raw[0] != raw[1] and (tables[0].cut or tables[1].cut):
        # the rows past a CSV error were never compared: equal there is not known
        result.equal = False
        result.warnings.append(
            "the rows after a CSV error were not compared: the tables are not known to be equal"
        )
    if result.equal and raw[0] != raw[1]:
        result.layout = layout_differences(raw[0], raw[1], tables[0], tables[1])
    return result


_BOM = b"\xef\xbb\xbf"


def _line_ends(data: bytes) -> str:
    crlf = data.count(b"\r\n")
    lf = data.count(b"\n") - crlf
    cr = data.count(b"\r") - crlf
    kinds = [name for name, count in (("CRLF", crlf), ("LF", lf), ("CR", cr)) if count]
    return "mixed " + "/".join(kinds) if len(kinds) > 1 else (kinds[0] if kinds else "none")


def _shown_delimiter(delimiter: str) -> str:
    return {"\t": "tab", " ": "space"}.get(delimiter, repr(delimiter))


def layout_differences(old: bytes, new: bytes, table_old: Table, table_new: Table) -> list[str]:
    """What differs between two tables' bytes that their parsed cells do not show, one
    phrase each; never empty for bytes that differ."""
    found: list[str] = []
    if table_old.delimiter != table_new.delimiter:
        found.append(
            f"delimiter {_shown_delimiter(table_old.delimiter)} vs "
            f"{_shown_delimiter(table_new.delimiter)}"
        )
    bom_old, bom_new = old.startswith(_BOM), new.startswith(_BOM)
    if bom_old != bom_new:
        found.append(f"UTF-8 byte order mark in the {'old' if bom_old else 'new'} file only")
    body_old, body_new = old.removeprefix(_BOM), new.removeprefix(_BOM)
    ends_old, ends_new = _line_ends(body_old), _line_ends(body_new)
    if ends_old != ends_new:
        found.append(f"line ends {ends_old} vs {ends_new}")
    plain_old = body_old.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    plain_new = body_new.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if table_old.delimiter != table_new.delimiter:
        plain_new = plain_new.replace(table_new.delimiter.encode(), table_old.delimiter.encode())
    if plain_old != plain_new or not found:
        found.append("cells written differently (quoting, number spelling, blank lines)")
    return found
