"""`compare(declared, actual, mode)`: one option, both sides already normalised."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any


def equal(declared: Any, actual: Any, mode: str) -> bool:
    """True when *actual* satisfies *declared* under *mode* (strict, allow_more_present, ignore).

    allow_more_present accepts extra dict entries and set members on the engine's side; ordered
    values (argv lists) and scalars are always compared whole.
    """
    if mode == "ignore":
        return True
    if mode == "allow_more_present":
        if isinstance(declared, Mapping) and isinstance(actual, Mapping):
            return all(k in actual and actual[k] == v for k, v in declared.items())
        if isinstance(declared, Set) and isinstance(actual, Set):
            return declared <= actual
    return declared == actual
