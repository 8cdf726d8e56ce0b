"""Retention's JSON-lines files read back line by line, torn lines reported by number."""

from __future__ import annotations

from store.retention.jsonl import TORN, json_lines


def test_lines_are_numbered_blank_ones_skipped_and_a_torn_tail_flagged() -> None:
    data = b'{"op": "intent"}\n\n  \n[1, 2]\n{"op": "do'
    assert list(json_lines(data)) == [(1, {"op": "intent"}), (4, [1, 2]), (5, TORN)]


def test_bytes_that_are_not_utf8_make_a_torn_line_not_an_error() -> None:
    assert list(json_lines(b'"\xff\xfe"\n"ok"\n')) == [(1, TORN), (2, "ok")]


def test_a_lone_surrogate_written_raw_survives() -> None:
    assert list(json_lines(b'"a\xed\xb3\xbf"\n')) == [(1, "a\udcff")]
