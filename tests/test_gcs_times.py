"""GCS's RFC 3339 times become mtimes on every Python artlens supports (3.10's
``fromisoformat`` takes neither ``Z`` nor more than six digits of fraction)."""

from __future__ import annotations

import calendar

import pytest

from store.root.gcs import _mtime_ns

BASE = calendar.timegm((2026, 12, 6, 7, 29, 3)) * 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-12-06T07:29:03.768338Z", BASE + 768_338_000),
        ("2026-12-06T07:29:03.768Z", BASE + 768_000_000),
        ("2026-12-06T07:29:03.768338123Z", BASE + 768_338_000),
        ("2026-12-06T07:29:03Z", BASE),
        ("2026-12-06T09:29:03.5+02:00", BASE + 500_000_000),
        ("2026-12-06T07:29:03.25", BASE + 250_000_000),  # no zone: UTC
    ],
)
def test_gcs_times_are_read_whatever_their_fraction_and_zone(text: str, ns: int) -> None:
    assert abs(_mtime_ns(text) - ns) < 1_000  # float seconds: within a microsecond


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-06T07:29:03Z", None, 17])
def test_an_unreadable_time_is_zero(text: object) -> None:
    assert _mtime_ns(text) == 0
