"""`Plan`: what a front end will do, and why, as a pure value.

The same plan renders as Ansible's before/after diff and Salt's old/new
changes; check mode and `test=True` simply do not execute it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, NamedTuple

from intermodal.records import is_record


class Difference(NamedTuple):
    """One option whose declared value differs from the engine's (both normalised)."""

    name: str
    declared: Any
    actual: Any


@dataclass(frozen=True)
class Plan:
    """*actions* in the order they run (empty: nothing to do); *differences* say why."""

    actions: tuple[str, ...] = ()
    differences: tuple[Difference, ...] = ()
    warnings: tuple[str, ...] = ()
    # Values the front end needs to execute the plan (e.g. the resolved spec); not shown to users.
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def has(self, action: str) -> bool:
        return any(a == action or a.startswith(action + ":") for a in self.actions)

    def before_after(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Each differing option's engine value (before) and declared value (after), JSON-friendly."""
        before = {d.name: jsonable(d.actual) for d in self.differences}
        after = {d.name: jsonable(d.declared) for d in self.differences}
        return before, after

    def to_data(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "differences": [{"option": d.name, "declared": jsonable(d.declared), "actual": jsonable(d.actual)}
                            for d in self.differences],
            "warnings": list(self.warnings),
        }


def jsonable(value: Any) -> Any:
    """Tuples, sets, records, frozen dataclasses and friends as plain JSON values (sets sorted, for stable output)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "to_json"):
        return jsonable(value.to_json())
    if is_record(value):
        return {name: jsonable(getattr(value, name)) for name in value._fields}
    if is_dataclass(value):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    return str(value)
