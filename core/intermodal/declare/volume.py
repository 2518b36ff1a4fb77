"""Volumes: a declaration against the volume's record.

Recreating a volume destroys its content, so a difference recreates it only
when the declaration allows it (`recreate: options-changed` or `always`);
otherwise the plan reports the difference with a warning and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intermodal.declare import normalise as norm
from intermodal.declare.compare import equal
from intermodal.declare.plan import Difference, Plan
from intermodal.errors import InvalidArgument

if TYPE_CHECKING:
    from intermodal.engine import Engine

RECREATE = ("never", "options-changed", "always")


@dataclass(frozen=True)
class Declared:
    name: str
    state: str = "present"
    values: Mapping[str, Any] = field(default_factory=dict)
    recreate: str = "never"


def declare(options: Mapping[str, Any]) -> Declared:
    o = {k: v for k, v in options.items() if v is not None}
    if not o.get("name"):
        raise InvalidArgument("name is required: give the volume's name")
    if o.get("recreate", "never") not in RECREATE:
        raise InvalidArgument(f"recreate {o['recreate']!r}: use one of {', '.join(RECREATE)}")
    values: dict[str, Any] = {}
    if "driver" in o:
        if o["driver"] != "local":
            raise InvalidArgument(f"driver {o['driver']!r} is not supported; use local")
        values["driver"] = "local"
    if o.get("driver_options"):
        raise InvalidArgument("driver_options: the engine's local driver takes no options yet; leave them out")
    if "labels" in o:
        values["labels"] = norm.string_map(o["labels"], "labels")
    return Declared(o["name"], o.get("state", "present"), values, o.get("recreate", "never"))


def actual(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"driver": record.get("Driver", "local"), "labels": dict(record.get("Labels") or {}),
            "options": dict(record.get("Options") or {})}


def expected(declared: Declared) -> dict[str, Any]:
    return dict(declared.values)


def compare(values: Mapping[str, Any], current: Mapping[str, Any]) -> list[Difference]:
    return [Difference(k, v, current.get(k)) for k, v in values.items() if not equal(v, current.get(k), "strict")]


def plan(declared: Declared, current: Mapping[str, Any] | None) -> Plan:
    if declared.state == "absent":
        return Plan(("remove",), (Difference("state", "absent", "present"),)) if current else Plan()
    if current is None:
        return Plan(("create",), (Difference("state", "present", "absent"),))
    differences = tuple(compare(expected(declared), actual(current)))
    if declared.recreate == "always" or (differences and declared.recreate == "options-changed"):
        return Plan(("recreate",), differences)
    warnings = ()
    if differences:
        names = ", ".join(d.name for d in differences)
        warnings = (f"volume {declared.name}: {names} differ, but recreating would destroy its content; "
                    "set recreate: options-changed to recreate it",)
    return Plan((), differences, warnings)


def read(engine: Engine, name: str) -> dict[str, Any] | None:
    volumes = engine.volumes
    return volumes.get(name) if volumes.exists(name) else None


def apply(engine: Engine, declared: Declared, the_plan: Plan) -> None:
    volumes = engine.volumes
    for action in the_plan.actions:
        if action in ("remove", "recreate"):
            volumes.remove(declared.name)
        if action in ("create", "recreate"):
            volumes.create(declared.name, labels=dict(declared.values.get("labels") or {}))
