"""An object's size comes from the server's headers, which are input like any other."""

from __future__ import annotations

from typing import Any

import pytest

from store.root import RootError
from store.root.objstore import _total_size


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
    with pytest.raises(RootError, match="no usable object size"):
        _total_size(response, 3)
