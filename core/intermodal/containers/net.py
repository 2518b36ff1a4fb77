"""A container on a network (`--network bridge` or a named one): its namespace and its endpoint.

The network namespace is made at the first start, before the runtime runs,
as a file under the run root that a bind mount keeps alive (as `ip netns
add` does under /run/netns); the OCI config names
that file, so the runtime joins it instead of making a new one.
`engine.networks.attach` then plugs it into the network, publishes ports and
writes the container's hosts and resolv.conf (which the engine bind-mounts).
The namespace and its endpoint stay from the first start to `rm`, so a
restarted container keeps its address. `none` and `host` need none of this;
`container:X` joins X's namespace and shares X's name files (`joined`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intermodal.errors import RuntimeFailure

if TYPE_CHECKING:
    from intermodal.containers.spec import ContainerSpec
    from intermodal.containers.store import ContainerStore
    from intermodal.engine import Engine
    from intermodal.network.manager import Pending

LOCAL_MODES = ("none", "host")


def uses_network(spec: ContainerSpec) -> bool:
    """Has an endpoint of its own (bridge or a named network), rather than none, host or another's."""
    return spec.network not in LOCAL_MODES and not spec.network.startswith("container:")


def joined(engine: Engine, store: ContainerStore, spec: ContainerSpec) -> tuple[str | None, str, Path] | None:
    """`--network container:X`: (the namespace to join, None for the host's; X's hostname; X's directory).

    X must be running (as in Docker): a namespace of a bridge or named network is X's namespace file,
    kept from its first start to its removal; X's own `none` namespace is joined through X's process,
    so the joining container must be started while X runs. /etc/hosts and resolv.conf are X's files.
    """
    if not spec.network.startswith("container:"):
        return None
    target = store.resolve(spec.network.partition(":")[2])  # raises ContainerNotFound
    record, state = store.read_record(target), store.read_state(target)
    if not state.get("Running"):
        raise RuntimeFailure(f"cannot join the network of container {record['Name']}: it is not running; "
                             "start it first")
    from intermodal.containers.spec import ContainerSpec as Spec

    mode = Spec.from_json(record["Spec"]).network
    if mode == "host":
        path = None
    elif mode.startswith("container:"):
        raise RuntimeFailure(f"container {record['Name']} shares another container's network itself; "
                             f"join that one instead ({mode})")
    elif mode == "none":
        path = f"/proc/{state['Pid']}/ns/net"
    else:
        path = str(netns_path(engine, target))
    return path, record["Hostname"], store.dir(target)


def netns_path(engine: Engine, cid: str) -> Path:
    return engine.paths.run_root / "netns" / cid


def check_network(engine: Engine, spec: ContainerSpec) -> None:
    """At create: the network must exist (the default `bridge` is made on first use)."""
    if not uses_network(spec):
        return
    if spec.network == "bridge":
        engine.networks.ensure_default()
    else:
        engine.networks.get(spec.network)  # raises NetworkNotFound with its own advice


def connect(engine: Engine, cid: str, record: dict[str, Any], spec: ContainerSpec, directory: Path) -> None:
    """At start: the namespace and the endpoint, unless an earlier start left them in place."""
    from intermodal.network.manager import EndpointRequest

    networks = engine.networks
    path = netns_path(engine, cid)
    if networks.endpoints(cid) and _is_netns(path):
        return
    if networks.endpoints(cid):
        networks.detach(cid)  # the namespace is gone (a reboot): plug a new one in
    _make_netns(path)
    try:
        networks.attach(cid, path, [EndpointRequest(spec.network, spec.ip, tuple(spec.network_aliases))],
                        list(spec.ports), name=record["Name"], hostname=record["Hostname"],
                        hosts_path=directory / "hosts", resolv_path=directory / "resolv.conf")
    except BaseException:
        _remove_netns(path)
        raise


def disconnect(engine: Engine, cid: str, *, wait: bool = True) -> Pending | None:
    """At rm: the endpoint, its ports and addresses, then the namespace.

    The veths are deleted explicitly, not left to the namespace's end: a
    copy of the namespace file's mount in any mount namespace made while it
    existed (/ is a private mount here) keeps the namespace, and with it
    the veth and its address, alive after our unmount. With ``wait=False``
    the endpoints go in a thread (see `NetworkManager.detach`); the caller
    must `wait()` on what is returned before it reports the removal done.
    """
    pending = engine.networks.detach(cid, wait=wait)
    try:
        _remove_netns(netns_path(engine, cid))
    except BaseException:
        if pending is not None:
            pending.wait()
        raise
    return pending


def settings(engine: Engine, cid: str) -> dict[str, Any]:
    return engine.networks.container_settings(cid)


def ports_text(engine: Engine, cid: str) -> str:
    """`ps`'s PORTS column: 0.0.0.0:8080->80/tcp, ..."""
    return ", ".join(f"{b.host_ip or '0.0.0.0'}:{b.host_port}->{b.key()}" for b in engine.networks.published_ports(cid))


def _is_netns(path: Path) -> bool:
    """A live namespace file is a bind mount of nsfs: another device than its directory's."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except FileNotFoundError:
        return False


def _make_netns(path: Path) -> None:
    """A new network namespace kept alive by a bind mount on *path*, as `ip netns add` makes one.

    A short-lived thread unshares its own network namespace (CLONE_NEWNET is
    per thread) and bind-mounts /proc/thread-self/ns/net on the file; the
    caller's namespace never changes, and no unshare(1) process is spawned.
    """
    if _is_netns(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    errors: list[BaseException] = []

    def work() -> None:
        from intermodal.runtime import syscalls

        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            syscalls.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", str(path), None, syscalls.MS_BIND)
        except BaseException as err:  # handed to the caller
            errors.append(err)

    thread = threading.Thread(target=work, name="imod-netns")
    thread.start()
    thread.join()
    if errors:
        path.unlink(missing_ok=True)
        raise RuntimeFailure(f"could not make a network namespace at {path}: {errors[0]}; "
                             "networking needs root (CAP_SYS_ADMIN)")


def _remove_netns(path: Path) -> None:
    if _is_netns(path):
        from intermodal.errors import KernelError
        from intermodal.runtime import syscalls

        try:
            syscalls.umount2(str(path), syscalls.MNT_DETACH)
        except KernelError as err:
            if _is_netns(path):
                raise RuntimeFailure(f"could not unmount the network namespace {path}: {err}") from err
    path.unlink(missing_ok=True)
