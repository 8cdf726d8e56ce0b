"""An object's size comes from the server's headers, which are input like any other."""

from __future__ import annotations

from typing import Any

import pytest

from store.root import RootError
from store.root.backend import range_total, size_field
from store.root.s3 import _total_size


@pytest.mark.parametrize(
    ("response", "size"),
    [
        ({"ContentRange": "bytes 0-9/1234", "ContentLength": 10}, 1234),
        ({"ContentRange": "bytes 0-9/*", "ContentLength": 10}, 10),
        ({"ContentLength": 7}, 7),
        ({}, 3),
    ],
)
def test_sizes_the_server_states(response: dict[str, Any], size: int) -> None:
    assert _total_size(response, 3) == size


@pytest.mark.parametrize(
    "response",
    [
        {"ContentRange": "bytes 0-9/\u00b2", "ContentLength": "ten"},  # a digit int() refuses
        {"ContentRange": "bytes 0-9/" + "9" * 40, "ContentLength": -1},
        {"ContentLength": True},
    ],
)
def test_a_hostile_size_is_a_root_error(response: dict[str, Any]) -> None:
    with pytest.raises(RootError, match="no usable size"):
        _total_size(response, 3)


@pytest.mark.parametrize(
    ("header", "total"),
    [("bytes 0-9/1234", 1234), ("bytes 0-9/*", None), ("bytes 0-9/\u00b2", None), ("", None)],
)
def test_range_totals(header: str, total: int | None) -> None:
    assert range_total(header) == total


@pytest.mark.parametrize(("value", "size"), [(5, 5), ("123", 123)])
def test_sizes_from_a_listing(value: object, size: int) -> None:
    assert size_field(value, "gs://b/k") == size


@pytest.mark.parametrize("value", ["12a", "\u00b2", -3, True, None, "9" * 30, 1.5])
def test_a_hostile_listing_size_is_a_root_error(value: object) -> None:
    with pytest.raises(RootError, match="gs://b/k: the store sent no usable size"):
        size_field(value, "gs://b/k")
