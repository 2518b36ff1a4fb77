"""Making a container: name, directory, root filesystem, volumes, bundle.

All or nothing: each step registers its undo, and any failure undoes what was
done, so a failed or racing `create` never leaves half a container. The
record (``config.json``) is written last; until then the container does not
exist for anyone else.
"""

from __future__ import annotations

import os
from pathlib import Path

from intermodal.containers import config as oci
from intermodal.containers.spec import ContainerSpec, Mount
from intermodal.containers.store import ContainerStore, new_id, replace_file, write_json_durable
from intermodal.errors import InvalidArgument
from intermodal.fsutil import remove_tree

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from intermodal.engine import Engine
    from intermodal.images.store import ImageRecord


PULL_POLICIES = ("missing", "always", "never")


def create_container(engine: Engine, store: ContainerStore, spec: ContainerSpec, *, pull: str = "missing",
                     pull_options: dict[str, Any] | None = None, runtime: str | None = None,
                     cid: str | None = None) -> str:
    """Create the container and return its id (*cid*, chosen ahead by its monitor, else a new one).
    Raises ImageNotFound, AlreadyExists, InvalidArgument, and the registry's errors when the image has to be pulled."""
    image = find_image(engine, spec.image, pull, pull_options or {})
    image_config = engine.images.config(image)
    cid = cid or new_id()
    undo: list[Callable[[], None]] = []
    with store.lock(cid):
        try:
            name = _claim_name(store, spec.name, cid)
            undo.append(lambda: store.release_name(name, cid))
            directory = store.dir(cid)
            directory.mkdir(parents=True, mode=0o700)
            undo.append(lambda: remove_tree(directory))
            from intermodal.containers import net

            net.check_network(engine, spec)
            rootfs = engine.images.store.layers.mount(image.diff_ids, directory)
            undo.append(lambda: engine.images.store.layers.unmount(directory))
            spec = spec.with_name(name)
            mounts = _volumes(engine, spec, image_config, Path(rootfs), undo)
            hostname = spec.hostname or (os.uname().nodename if spec.network == "host" else cid[:12])
            other = net.joined(engine, store, spec)  # --network container:X
            if other is not None:
                hostname = spec.hostname or other[1]
            etc = etc_files(directory, hostname, spec.network, spec)
            if other is not None:  # X's names, kept current by the network code, as in Docker
                etc.update({"/etc/hosts": str(other[2] / "hosts"), "/etc/resolv.conf": str(other[2] / "resolv.conf")})
            runtime = _runtime_name(runtime, engine.paths.root)
            netns = str(net.netns_path(engine, cid)) if net.uses_network(spec) else other[0] if other else None
            inputs = oci.BundleInputs(cid, str(rootfs), hostname, etc, tuple(mounts), f"/intermodal/{cid}", netns)
            bundle = oci.build_config(spec, image_config, inputs)
            # A `--rm` container is not started again after a crash: its bundle need not be durable.
            write_json_durable(directory / "bundle" / "config.json", bundle, durable=not spec.auto_remove)
            store.write_state(cid, {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                                    "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                                    "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z",
                                    "RestartCount": 0})
            record = _record(cid, name, spec, image, image_config, hostname, mounts, runtime, str(rootfs))
            record["Args"] = bundle["process"]["args"]
            store.write_record(cid, record)
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except Exception:  # keep undoing; the original error is what matters
                    pass
            store.lock_path(cid).unlink(missing_ok=True)  # the id is given up: so is its lock
            raise
    return cid


def find_image(engine: Engine, name: str, policy: str, options: dict[str, Any]) -> ImageRecord:
    """The image by Docker's pull policy: `missing` pulls what the store lacks, `always` pulls, `never` never."""
    from intermodal.errors import ImageNotFound

    if policy not in PULL_POLICIES:
        raise InvalidArgument(f"unknown pull policy {policy!r}: use missing, always or never")
    if policy == "always":
        return engine.images.pull(name, **options)
    try:
        return engine.images.get(name)
    except ImageNotFound:
        if policy == "never" or _looks_like_id(name):
            raise
    return engine.images.pull(name, **options)


def _looks_like_id(name: str) -> bool:
    """A short or full image id is never pulled (Docker would try docker.io/library/<hex>)."""
    text = name.removeprefix("sha256:")
    return len(text) >= 12 and all(c in "0123456789abcdef" for c in text)


def _claim_name(store: ContainerStore, wanted: str | None, cid: str) -> str:
    if wanted:
        store.reserve_name(wanted, cid)
        return wanted
    from intermodal.errors import AlreadyExists

    for _ in range(50):  # bounded: 2,500 combinations, a clash is rare
        first, last = os.urandom(2)  # not `random`: its import costs more than these two bytes
        name = f"{_ADJECTIVES[first % len(_ADJECTIVES)]}_{_NAMES[last % len(_NAMES)]}"
        try:
            store.reserve_name(name, cid)
            return name
        except AlreadyExists:
            continue
    name = f"intermodal_{cid[:12]}"
    store.reserve_name(name, cid)
    return name


def _volumes(engine: Engine, spec: ContainerSpec, image_config: dict[str, Any], rootfs: Path,
             undo: list[Callable[[], None]]) -> list[tuple[Mount, str]]:
    """Each mount with its host source; volumes created (anonymous ones too) and seeded from the image."""
    mounts = list(spec.mounts)
    targets = {m.target.rstrip("/") for m in mounts}
    for target in (oci.image_section(image_config).get("Volumes") or {}):
        if target.rstrip("/") not in targets:
            mounts.append(Mount("volume", target))  # the image's VOLUME: an anonymous volume, as Docker
    out: list[tuple[Mount, str]] = []
    for m in mounts:
        if m.type == "bind":
            if not os.path.exists(m.source):
                raise InvalidArgument(f"bind mount source {m.source} does not exist on this host; "
                                      "create it first or fix the path")
            out.append((m, m.source))
        elif m.type == "tmpfs":
            out.append((m, ""))
        else:
            out.append(_volume(engine, m, rootfs, undo))
    return out


def _volume(engine: Engine, m: Mount, rootfs: Path, undo: list[Callable[[], None]]) -> tuple[Mount, str]:
    volumes = engine.volumes
    anonymous = not m.source
    if anonymous or not volumes.exists(m.source):
        name = volumes.create(m.source or None, anonymous=anonymous)["Name"]
        undo.append(lambda: volumes.remove(name, force=True))
        m = Mount(m.type, m.target, name, m.readonly, m.options)
    if "nocopy" not in m.options:
        volumes.seed(m.source, _inside(rootfs, m.target))
    return m, str(volumes.path(m.source))


def _inside(rootfs: Path, target: str) -> Path:
    """*target* under *rootfs*, refusing symlinks that lead out of it."""
    path = Path(os.path.realpath(rootfs / target.lstrip("/")))
    if path != rootfs and not str(path).startswith(str(rootfs) + os.sep):
        return rootfs / ".intermodal-nonexistent"
    return path


def etc_files(directory: Path, hostname: str, network: str, spec: ContainerSpec | None = None) -> dict[str, str]:
    """The name files, with *spec*'s --dns* and --add-host. On a network of the container's own the network
    code rewrites them at start. On the host's network, as Docker: the host's files unless options are given;
    --add-host then makes a hosts file of its own, --dns* a resolv.conf of the options over the host's."""
    from intermodal.containers import net

    hosts, resolv = oci.hosts_file(hostname, network), oci.resolv_conf(network)
    if spec is not None and spec.extra_hosts:
        base = oci.hosts_file(hostname, "none") if network == "host" else hosts
        hosts = base + "".join(f"{ip}\t{name}\n" for name, ip in net.extra_hosts(spec, None))
    if spec is not None and (spec.dns or spec.dns_search or spec.dns_options):
        from intermodal.network import hosts as hostlib

        dns, search, options = net.resolv_settings(spec)
        host = hostlib.host_resolv_conf()
        if network == "host" and not dns:  # the host's own resolvers, loopback ones too: same namespace
            dns = hostlib.nameservers(host) or None
        resolv = hostlib.render_resolv(dns, search, options, host)
    files = {
        "/etc/hostname": (directory / "hostname", hostname + "\n"),
        "/etc/hosts": (directory / "hosts", hosts),
        "/etc/resolv.conf": (directory / "resolv.conf", resolv),
    }
    for path, text in files.values():
        replace_file(path, text.encode(), 0o644)  # `start` rebuilds them if a crash lost them
    return {dest: str(path) for dest, (path, _) in files.items()}


def _runtime_name(wanted: str | None, root: Path) -> str:
    from intermodal.containers.runtime_client import choose_runtime

    return choose_runtime(wanted, root)


def _record(cid: str, name: str, spec: ContainerSpec, image: ImageRecord, image_config: dict[str, Any],
            hostname: str, mounts: list[tuple[Mount, str]], runtime: str, rootfs: str) -> dict[str, Any]:
    from intermodal.containers.status import now_rfc3339

    return {
        "Id": cid,
        "Name": name,
        "Created": now_rfc3339(),
        "Image": image.id,
        "DiffIds": list(image.diff_ids),
        "ImageName": spec.image,
        "Spec": spec.to_json(),
        "Mounts": [{**m.to_json(), "HostSource": src} for m, src in mounts],
        "Hostname": hostname,
        "ExposedPorts": exposed_ports(spec, image_config),
        "StopSignal": oci.stop_signal(spec, image_config),
        "Healthcheck": oci.resolve_healthcheck(spec, image_config),
        "Runtime": runtime,
        "Rootfs": rootfs,
    }


def exposed_ports(spec: ContainerSpec, image_config: dict[str, Any]) -> list[str]:
    """Config.ExposedPorts as Docker shows it: the image's EXPOSE, --expose and every -p container port."""
    items = [*(oci.image_section(image_config).get("ExposedPorts") or {}), *spec.expose, *spec.ports]
    if not items:
        return []
    from intermodal.network import ports as portlib

    found = {f"{r.container_port}/{r.proto}": None for item in items for r in portlib.parse(item)}
    return sorted(found, key=lambda key: (int(key.split("/")[0]), key))


_ADJECTIVES = ("brave", "calm", "eager", "fond", "gifted", "happy", "jolly", "keen", "lucid", "merry", "nifty",
               "quirky", "relaxed", "sharp", "stoic", "tender", "vivid", "wizardly", "zen", "bold", "cool",
               "dreamy", "elastic", "festive", "great", "hardcore", "inspiring", "loving", "modest", "nostalgic",
               "optimistic", "peaceful", "quiet", "romantic", "serene", "trusting", "upbeat", "vigilant",
               "wonderful", "youthful", "zealous", "admiring", "busy", "clever", "distracted", "ecstatic",
               "focused", "goofy", "hungry", "intelligent")
_NAMES = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "hamilton",
          "liskov", "lamport", "kay", "backus", "mccarthy", "perlman", "wozniak", "babbage", "boole", "church",
          "curie", "darwin", "einstein", "euler", "fermat", "gauss", "hawking", "hypatia", "kepler", "lalande",
          "meitner", "newton", "noether", "pascal", "planck", "poincare", "ramanujan", "shannon", "tesla",
          "volta", "wiles", "yonath", "bohr", "cerf", "diffie", "engelbart", "feynman", "goldwasser", "hellman",
          "johnson", "kilby")
