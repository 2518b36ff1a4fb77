"""Removing containers: `rm` (with --force, killed first), a `--rm` container after its exit, `prune`."""

from __future__ import annotations

import _signal  # not `signal`, an enum module (~1 ms)

from intermodal.containers import status as st
from intermodal.containers.manager import KILL_WAIT
from intermodal.containers.spec import ContainerSpec
from intermodal.errors import Conflict, ContainerNotFound, InUse, RuntimeFailure, VolumeNotFound

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from intermodal.containers.manager import ContainerManager

MONITOR_EXIT_WAIT = 30.0  # seconds for the monitor of a killed container to finish before rm gives up
STALE_CGROUP_AGE = 60.0  # seconds: an empty container cgroup older than this belongs to no start in progress


def remove(manager: ContainerManager, name: str, *, force: bool = False, volumes: bool = False) -> str:
    """Remove a container (stopping it first with *force*); returns its name."""
    cid = manager.store.resolve(name)
    with manager.store.locked_existing(cid):
        record = manager.store.read_record(cid)
        state = st.effective(manager.store.read_state(cid))
        live = state.get("Status") in st.LIVE
        if live and not force:
            raise Conflict(f"cannot remove container {record['Name']}: it is {state['Status']}; "
                           "stop it first (`imod stop`), or use --force")
        manager.store.update_state(cid, StopRequested=True, Removing=True)
    if live:
        manager._terminate(cid, record, int(_signal.SIGKILL), KILL_WAIT)
    state = manager.store.read_state(cid)
    if state.get("MonitorPid") and not st.pid_gone(state["MonitorPid"], state.get("MonitorStart", 0),
                                                   MONITOR_EXIT_WAIT):
        raise RuntimeFailure(f"the monitor of container {record['Name']} (pid {state['MonitorPid']}) did not "
                             "finish; try again, or kill that process")
    remove_stopped(manager, cid, volumes=volumes)
    return record["Name"]


def remove_exited(manager: ContainerManager, name: str) -> None:
    """Remove a `--rm` container its monitor reported as exited (the monitor itself may still run)."""
    try:
        remove_stopped(manager, manager.store.resolve(name), volumes=True)
    except ContainerNotFound:
        pass  # the monitor was faster


def remove_stopped(manager: ContainerManager, cid: str, *, volumes: bool) -> None:
    """Remove a container that does not run, under its lock: runtime, network, rootfs, record, name."""
    from intermodal.fsutil import remove_tree

    anonymous: list[str] = []
    with manager.store.locked_existing(cid):
        record = manager.store.read_record(cid)
        directory = manager.store.dir(cid)
        manager._runtime(record).delete(cid, force=True)
        from intermodal.containers import net

        pending = None
        if net.uses_network(ContainerSpec.from_json(record["Spec"])) or net.has_state(manager.engine, cid):
            pending = net.disconnect(manager.engine, cid, wait=False)  # veths go while the rootfs is unmounted
        manager.engine.images.store.layers.unmount(directory)
        if volumes:
            anonymous = [m["Source"] for m in record.get("Mounts", ())
                         if m.get("Type") == "volume" and _anonymous(manager, m["Source"])]
        (directory / "config.json").unlink()  # from here on it no longer exists for anyone
        manager.store.release_name(record["Name"], cid)
        remove_tree(directory)
        if pending is not None:
            pending.wait()
        manager.store.lock_path(cid).unlink(missing_ok=True)
    for volume in anonymous:
        try:
            manager.engine.volumes.remove(volume)
        except InUse:
            pass  # Docker keeps a volume another container still uses


def _anonymous(manager: ContainerManager, volume: str) -> bool:
    try:
        return bool(manager.engine.volumes.get(volume).get("Anonymous"))
    except VolumeNotFound:
        return False


def prune(manager: ContainerManager) -> list[str]:
    """Remove every container that is not running; returns their ids. Empty container cgroups older
    than STALE_CGROUP_AGE, which no container owns any more, go too."""
    removed = []
    for c in manager.list():
        if c.status in st.LIVE:
            continue
        try:
            remove_stopped(manager, c.id, volumes=False)
        except (ContainerNotFound, Conflict):
            continue  # removed or started by someone else meanwhile
        removed.append(c.id)
    from intermodal.runtime.cgroups import remove_stale

    remove_stale("/intermodal", older_than=STALE_CGROUP_AGE)  # what killed starts left (runtime/staging.py)
    return removed


def preload() -> None:
    """Import what `remove_stopped` will: an attached `imod run --rm` calls it while the monitor starts the
    container, when it only waits (~1.5 ms less between the container's exit and imod's)."""
    from intermodal.containers import net  # noqa: F401
    from intermodal.runtime import container  # noqa: F401  (our runtime's delete)
    from intermodal.runtime.cgroups import import_backend

    import_backend()


def remove_after_exit(root: str, run_root: str, cid: str) -> None:
    """Called by the monitor of a `--rm` container once it has recorded the exit."""
    from intermodal.engine import Engine

    manager = Engine(root, run_root).containers
    if manager.store.exists(cid):
        remove_stopped(manager, cid, volumes=True)
