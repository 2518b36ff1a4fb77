"""`docker update`: a container's restart policy and limits, changed in place.

The new values are checked as `create` checks them, applied to a running (or
paused) container's cgroup first (a limit the kernel refuses, e.g. memory
below what the container uses, changes nothing), then kept in its record
(so `inspect` and every later start see them), its bundle (the next start's
cgroup) and its monitor's ``monitor.json``, which the monitor reads again
at each exit to decide on a restart.
"""

from __future__ import annotations

import json

from intermodal.containers import status as st
from intermodal.containers.spec import ContainerSpec, parse_restart, parse_size
from intermodal.errors import InvalidArgument
from intermodal.records import replace

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from typing import Any

    from intermodal.containers.manager import ContainerManager

CPU_PERIOD = 100_000  # µs, as config.resources and Docker's --cpus
LIMITS = ("memory", "cpus", "pids_limit")


def normalise(*, restart: Any = None, memory: Any = None, cpus: Any = None, pids_limit: Any = None
              ) -> dict[str, Any]:
    """The fields to change, in ContainerSpec's form; None leaves a field alone, 0 (pids: <= 0) lifts a limit.

    Accepts the spec's own values (RestartPolicy, bytes, float, int) or what a user types
    ("on-failure:3", "512m", "1.5", "100"). Raises InvalidArgument.
    """
    changes: dict[str, Any] = {}
    if restart is not None:
        changes["restart"] = parse_restart(restart)
    if memory is not None:
        size = parse_size(memory)
        changes["memory"] = size or None
    if cpus is not None:
        try:
            number = float(cpus)
        except ValueError:
            raise InvalidArgument(f"invalid --cpus {cpus!r}: use a number such as 1.5 (0: no limit)") from None
        if number < 0:
            raise InvalidArgument(f"invalid --cpus {cpus!r}: it cannot be negative (0: no limit)")
        changes["cpus"] = number or None
    if pids_limit is not None:
        try:
            limit = int(pids_limit)
        except ValueError:
            raise InvalidArgument(f"invalid --pids-limit {pids_limit!r}: use a whole number (-1: no limit)") from None
        changes["pids_limit"] = limit if limit > 0 else None
    return changes


def update_container(manager: ContainerManager, name: str, changes: dict[str, Any]) -> None:
    """Apply *changes* (from `normalise`) to the container *name*. Raises ContainerNotFound, InvalidArgument,
    RuntimeFailure (the kernel refused a limit of the running container)."""
    from intermodal.containers import config as oci

    store = manager.store
    cid = store.resolve(name)
    with store.locked_existing(cid):
        record = store.read_record(cid)
        spec = ContainerSpec.from_json(record["Spec"])
        new = replace(spec, **changes)
        if "restart" in changes and spec.auto_remove and new.restart.name != "no":
            raise InvalidArgument(f"the restart policy of container {record['Name']} cannot change: it is removed "
                                  "when it exits (--rm); recreate it without --rm to give it a restart policy")
        new.check()
        wanted = oci.resources(new)  # refuses a memory limit below the minimum, as create does
        limits = live_resources(spec, new)
        state = st.effective(store.read_state(cid))
        if limits and state.get("Status") in ("running", "paused"):
            manager._runtime(record).update(cid, limits)
        record["Spec"] = new.to_json()
        store.write_record(cid, record)
        _update_bundle(store.dir(cid) / "bundle" / "config.json", wanted)
        if "restart" in changes:
            _update_monitor_config(store.dir(cid) / "monitor.json", new.restart.to_json())


def live_resources(old: ContainerSpec, new: ContainerSpec) -> dict[str, Any]:
    """The OCI linux.resources that change from *old* to *new*, with explicit "no limit" values for limits lifted."""
    out: dict[str, Any] = {}
    if new.memory != old.memory:
        out["memory"] = {"limit": new.memory if new.memory is not None else -1}
    if new.cpus != old.cpus:
        out["cpu"] = {"quota": int(new.cpus * CPU_PERIOD) if new.cpus is not None else -1, "period": CPU_PERIOD}
    if new.pids_limit != old.pids_limit:
        out["pids"] = {"limit": new.pids_limit if new.pids_limit is not None else 0}
    return out


def _update_bundle(path: Any, wanted: dict[str, Any]) -> None:
    """The next start's limits: the bundle's linux.resources memory/cpu/pids as *wanted* says (devices kept)."""
    from intermodal.containers.store import write_json_durable

    config = json.loads(path.read_bytes())
    resources = config.setdefault("linux", {}).setdefault("resources", {})
    for key in ("memory", "cpu", "pids"):
        if key in wanted:
            resources[key] = wanted[key]
        else:
            resources.pop(key, None)
    write_json_durable(path, config)


def _update_monitor_config(path: Any, restart: dict[str, Any]) -> None:
    """The running monitor reads its restart policy from here at each exit; a later start rewrites the file."""
    from intermodal.containers.store import write_json

    try:
        cfg = json.loads(path.read_bytes())
    except FileNotFoundError:
        return  # never started: the first start writes it from the record
    cfg["restart"] = restart
    write_json(path, cfg)
